/** `tcsync verify --connection`: a database is checked as a data directory is, with the same exit codes and output forms. */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from 'vitest';
import { FileStorage, newVersionId } from '../../src/index.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { adminQuery, describePostgres, freshSchema } from '../support/postgres.js';
import { buildFixture, runCli, tempDir, type Fixture } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
let source: string;
let fx: Fixture;
beforeAll(async () => {
  root = await tempDir();
  source = path.join(root.dir, 'source');
  fx = await buildFixture(source);
});
afterAll(() => root.cleanup());

test('--connection together with --data-dir, or a URI that is not PostgreSQL, is bad usage (exit 2)', async () => {
  expect((await runCli('verify', ['--data-dir', source, '--connection', 'postgresql://127.0.0.1/x'])).code).toBe(2);
  expect((await runCli('verify', ['--connection', 'mysql://127.0.0.1/x'])).code).toBe(2);
});

test('a database that cannot be reached exits 1 with a message', async () => {
  const result = await runCli('verify', ['--connection', 'postgresql://nobody:secret@127.0.0.1:1/none']);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^tcsync verify: /);
  expect(result.stderr).not.toContain('secret');
});

describePostgres('on a database', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  beforeEach(async () => {
    schema = await freshSchema();
    // The fixture, copied in through the export interface.
    const [from, to] = [await FileStorage.open(source), await PostgresStorage.open(schema.uri)];
    try {
      for (const id of await from.listClients(null, 100)) await from.exportClient(id, (client) => to.importClient(client));
    } finally {
      await Promise.all([from.close(), to.close()]);
    }
  });
  afterEach(() => schema.drop());

  const sql = (text: string, values: unknown[] = []) => adminQuery(text.replaceAll('$schema', schema.schema), values);

  test('a sound database exits 0 with the one-line summary a data directory gets', async () => {
    const result = await runCli('verify', ['--connection', schema.uri]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^sound: 3 clients, 10 versions, [\d.]+ KiB \([\d.]+ s\)\n$/);
  });

  test('a version deleted mid-chain cuts the chain: its ancestors are named as off the chain (exit 1, text and JSON)', async () => {
    const third = fx.withSnapshotVersions[2];
    await sql('DELETE FROM $schema.versions WHERE version_id = $1', [third]);
    const text = await runCli('verify', ['--connection', schema.uri]);
    expect(text.code).toBe(1);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toContain(`problem  ${fx.withSnapshot}/versions/${fx.withSnapshotVersions[0]}: stored (with 1 later versions), but not on the chain from the latest version ${fx.withSnapshotVersions[4]}`);
    expect(lines.at(-1)).toMatch(/^NOT SOUND: 1 problem; checked 3 clients, 7 versions/);

    const json = await runCli('verify', ['--connection', schema.uri, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ sound: false, clients: 3, versions: 7 });
    expect(report.dataDir).not.toContain('tcsync_test:');
    expect(report.findings).toEqual([
      {
        severity: 'problem',
        client: fx.withSnapshot,
        file: `${fx.withSnapshot}/versions/${fx.withSnapshotVersions[0]}`,
        message: `stored (with 1 later versions), but not on the chain from the latest version ${fx.withSnapshotVersions[4]}`,
        repaired: false,
      },
    ]);
  });

  test('a snapshot of a version off the chain is a warning, and exit 0', async () => {
    await sql('UPDATE $schema.clients SET snapshot_version_id = $1 WHERE client_id = $2', [newVersionId(), fx.withSnapshot]);
    const result = await runCli('verify', ['--connection', schema.uri]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^warning  [0-9a-f-]{36}: the snapshot is of version [0-9a-f-]{36}, which is not on the chain from the latest version\n/);
    expect(result.stdout).toMatch(/\nsound: 3 clients, 10 versions, .*1 warning/);
  });
});
