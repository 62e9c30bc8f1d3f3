import { PostgresStorage } from '../../../src/storage/postgres/postgres-storage.js';
import type { Storage } from '../../../src/storage/storage.js';
import { describePostgres, freshSchema } from '../../support/postgres.js';
import { storageConformanceSuite } from '../conformance.js';

describePostgres('PostgreSQL', () => {
  const opened: PostgresStorage[] = [];
  const drops: (() => Promise<void>)[] = [];
  const uriOf = new WeakMap<Storage, string>();

  const open = async (uri: string) => {
    const storage = await PostgresStorage.open(uri);
    opened.push(storage);
    uriOf.set(storage, uri);
    return storage;
  };

  storageConformanceSuite('postgres', {
    async create() {
      const schema = await freshSchema();
      drops.push(schema.drop);
      return open(schema.uri);
    },
    reopen: async (storage) => open(uriOf.get(storage)!),
    async cleanup() {
      await Promise.all(opened.splice(0).map((storage) => storage.close()));
      for (const drop of drops.splice(0)) await drop();
    },
  });
});
