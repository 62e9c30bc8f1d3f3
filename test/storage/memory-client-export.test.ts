import { InMemoryStorage } from '../../src/storage/memory-storage.js';
import { clientExportSuite } from './client-export-conformance.js';

clientExportSuite('in-memory', { create: async () => new InMemoryStorage() });
