/** PostgresStorage.open with `create: false`: the database is read as it is, and nothing is created in it. */
import { afterEach, beforeEach, expect, test } from 'vitest';
import { isTcsyncError, parseClientId } from '../../../src/index.js';
import { PostgresStorage } from '../../../src/storage/postgres/postgres-storage.js';
import { adminQuery, describePostgres, freshSchema } from '../../support/postgres.js';

describePostgres('PostgresStorage.open(uri, { create: false })', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  beforeEach(async () => {
    schema = await freshSchema();
  });
  afterEach(() => schema.drop());

  const tables = async () =>
    (await adminQuery('SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename', [schema.schema])).rows.map((r) => r.tablename as string);

  test('on an empty schema lists no clients or tombstones, exports none, and creates no table', async () => {
    const storage = await PostgresStorage.open(schema.uri, { create: false });
    try {
      expect(await storage.listClients(null, 10)).toEqual([]);
      expect(await storage.listTombstones(null, 10)).toEqual([]);
      const id = parseClientId('11111111-1111-4111-8111-111111111111');
      expect(await storage.isTombstoned(id)).toBe(false);
      expect(await storage.exportClient(id, async () => 'called')).toBeNull();
    } finally {
      await storage.close();
    }
    expect(await tables()).toEqual([]);
  });

  test('refuses a layout of a newer tcsync, as open does', async () => {
    await (await PostgresStorage.open(schema.uri)).close();
    await adminQuery(`UPDATE ${schema.schema}.tcsync_schema SET version = 99`);
    const refused = await PostgresStorage.open(schema.uri, { create: false }).catch((err: unknown) => err);
    expect(isTcsyncError(refused, 'UNSUPPORTED_FORMAT')).toBe(true);
  });
});
