import { InMemoryStorage } from '../../src/storage/memory-storage.js';
import { storageConformanceSuite } from './conformance.js';

storageConformanceSuite('in-memory', { create: async () => new InMemoryStorage() });
