/**
 * A database that upstream taskchampion-sync-server set up (its tables, no tcsync_* ones) is
 * left exactly as it was by what only reads it or refuses it: migrate refusing it as a DEST that
 * holds clients, migrate reading it as a SOURCE, and verify --connection.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from 'vitest';
import { randomUUID } from 'node:crypto';
import { newVersionId, NIL_VERSION_ID, parseClientId } from '../../src/index.js';
import { adminQuery, describePostgres, freshSchema } from '../support/postgres.js';
import { buildFixture, runCli, tempDir } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
let source: string;
beforeAll(async () => {
  root = await tempDir();
  source = path.join(root.dir, 'source');
  await buildFixture(source);
});
afterAll(() => root.cleanup());

describePostgres("a database in upstream's layout", () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  const client = parseClientId(randomUUID());
  const versions = [newVersionId(), newVersionId()];

  beforeEach(async () => {
    schema = await freshSchema();
    const ddl = await readFile(new URL('../fixtures/upstream-postgres-schema.sql', import.meta.url), 'utf8');
    await adminQuery(`SET search_path = ${schema.schema}; ${ddl}`);
    await adminQuery(`INSERT INTO ${schema.schema}.clients (client_id, latest_version_id) VALUES ($1, $2)`, [client, versions[1]]);
    await adminQuery(
      `INSERT INTO ${schema.schema}.versions (client_id, version_id, parent_version_id, history_segment) VALUES ($1, $2, $3, '\\x0102'), ($1, $4, $2, '\\x03')`,
      [client, versions[0], NIL_VERSION_ID, versions[1]],
    );
  });
  afterEach(() => schema.drop());

  /** The schema's tables and every row of upstream's two, to compare before and after. */
  async function state() {
    const tables = await adminQuery('SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename', [schema.schema]);
    const clients = await adminQuery(`SELECT * FROM ${schema.schema}.clients ORDER BY client_id`);
    const rows = await adminQuery(`SELECT * FROM ${schema.schema}.versions ORDER BY version_id`);
    return { tables: tables.rows.map((r) => r.tablename as string), clients: clients.rows, versions: rows.rows };
  }

  test('migrate refuses it as DEST (exit 1) and creates no tcsync_* table in it', async () => {
    const before = await state();
    expect(before.tables).toEqual(['clients', 'versions']);
    const result = await runCli('migrate', ['--from', source, '--to', schema.uri]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/holds clients already/);
    expect(await state()).toEqual(before);
  });

  test('verify --connection checks it (exit 0), reading the missing tcsync_* tables as empty, and creates none', async () => {
    const before = await state();
    const result = await runCli('verify', ['--connection', schema.uri]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^sound: 1 client, 2 versions, /);
    expect(await state()).toEqual(before);
  });

  test('migrate reads it as SOURCE into a data directory and leaves it as it was', async () => {
    const before = await state();
    const dest = path.join(root.dir, `from-upstream-${schema.schema}`);
    const result = await runCli('migrate', ['--from', schema.uri, '--to', dest]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^migrate: 1 clients, 2 versions, 0 tombstones, /);
    expect(await state()).toEqual(before);
  });
});
