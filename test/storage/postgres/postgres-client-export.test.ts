import { PostgresStorage } from '../../../src/storage/postgres/postgres-storage.js';
import { describePostgres, freshSchema } from '../../support/postgres.js';
import { clientExportSuite } from '../client-export-conformance.js';

describePostgres('PostgreSQL', () => {
  const drops: (() => Promise<void>)[] = [];

  clientExportSuite('postgres', {
    async create() {
      const schema = await freshSchema();
      drops.push(schema.drop);
      return PostgresStorage.open(schema.uri);
    },
    async cleanup() {
      // The suite closes its storages before this runs.
      for (const drop of drops.splice(0)) await drop();
    },
  });
});
