/** `tcsync usage`: every client by the bytes it stores, largest first, from a data directory or a database. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { FileStorage } from '../../src/index.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { describePostgres, freshSchema } from '../support/postgres.js';
import { buildFixture, runCli, spawnWriter, tempDir, until, type Fixture } from './support.js';

/** The fixture's segments are `segment N of <client id>`: 49 bytes each. */
const SEGMENT = 49;

let root: { dir: string; cleanup: () => Promise<void> };
let dataDir: string;
let fx: Fixture;
beforeAll(async () => {
  root = await tempDir();
  dataDir = path.join(root.dir, 'data');
  fx = await buildFixture(dataDir);
});
afterAll(() => root.cleanup());

/** The rows the fixture gives, largest first: the snapshot (2000 bytes) puts its client on top. */
const expectedRows = () => [
  { clientId: fx.withSnapshot, versions: 5, bytes: 5 * SEGMENT + 2000 },
  { clientId: fx.plain, versions: 3, bytes: 3 * SEGMENT },
  { clientId: fx.startsMidway, versions: 2, bytes: 2 * SEGMENT },
];

describe('on a data directory', () => {
  test('prints a table of the clients by bytes, largest first, and a totals line (exit 0)', async () => {
    const before = Date.now();
    const result = await runCli('usage', ['--data-dir', dataDir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CLIENT +VERSIONS +BYTES +OLDEST VERSION ADDED$/);
    const rows = lines.slice(1, -1).map((line) => line.split(/ +/));
    expect(rows.map(([id, versions, bytes]) => ({ clientId: id, versions: Number(versions), bytes: Number(bytes) }))).toEqual(expectedRows());
    for (const row of rows) expect(Date.parse(row[3]!)).toBeLessThanOrEqual(before);
    // The deleted client is not listed.
    expect(result.stdout).not.toContain(fx.deleted);
    const total = 10 * SEGMENT + 2000;
    expect(lines.at(-1)).toBe(`total: 3 clients, 10 versions, ${(total / 1024).toFixed(1)} KiB (${total} bytes)`);
  });

  test('--json gives the same rows, with times as RFC 3339', async () => {
    const result = await runCli('usage', ['--data-dir', dataDir, '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ clients: expectedRows(), versions: 10, bytes: 10 * SEGMENT + 2000 });
    for (const row of report.clients) expect(row.oldestVersionAddedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('reads the data directory from DATA_DIR when --data-dir is not given', async () => {
    const result = await runCli('usage', ['--json'], { DATA_DIR: dataDir });
    expect(JSON.parse(result.stdout).clients).toHaveLength(3);
  });

  test('never fails while a live writer commits, and counts what it acknowledged', async () => {
    const copy = path.join(root.dir, 'live');
    await buildFixture(copy);
    const client = '55555555-5555-4555-8555-555555555555';
    const writer = spawnWriter(copy, client);
    try {
      await until(() => writer.acks.length >= 5);
      for (let i = 0; i < 5; i++) {
        const acked = writer.acks.length;
        const result = await runCli('usage', ['--data-dir', copy, '--json']);
        expect(result.stderr).toBe('');
        expect(result.code).toBe(0);
        const row = JSON.parse(result.stdout).clients.find((c: { clientId: string }) => c.clientId === client);
        expect(row.versions).toBeGreaterThanOrEqual(acked);
      }
    } finally {
      writer.child.kill('SIGTERM');
      await writer.exited;
    }
  });
});

describe('bad usage and failures', () => {
  test('an unknown option, --connection with --data-dir, or a URI that is not PostgreSQL is bad usage (exit 2)', async () => {
    expect((await runCli('usage', ['--frobnicate'])).code).toBe(2);
    expect((await runCli('usage', ['--data-dir', dataDir, '--connection', 'postgresql://127.0.0.1/x'])).code).toBe(2);
    const wrongUri = await runCli('usage', ['--connection', 'mysql://127.0.0.1/x']);
    expect(wrongUri.code).toBe(2);
    expect(wrongUri.stderr).toMatch(/^tcsync usage: .*\nTry 'tcsync usage --help'\.\n$/);
  });

  test('a directory that is not a data directory exits 1 and creates nothing', async () => {
    const missing = path.join(root.dir, 'missing');
    const result = await runCli('usage', ['--data-dir', missing]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tcsync usage: .*not a tcsync data directory/);
    expect(existsSync(missing)).toBe(false);
  });

  test('a database that cannot be reached exits 1 without showing the password', async () => {
    const result = await runCli('usage', ['--connection', 'postgresql://nobody:secret@127.0.0.1:1/none']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tcsync usage: /);
    expect(result.stderr).not.toContain('secret');
  });

  test('tcsync lists the command in its help, and `tcsync usage --help` describes it (exit 0)', async () => {
    const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(process.execPath, [cli, ...args], (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout })),
      );
    expect((await run(['--help'])).stdout).toMatch(/^ {2}usage +list clients by the bytes they store/m);
    const help = await run(['usage', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: tcsync usage \[--data-dir DIR \| --connection URI\] \[--json\]/);
  });
});

describePostgres('on a database', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  beforeEach(async () => {
    schema = await freshSchema();
    const [from, to] = [await FileStorage.open(dataDir), await PostgresStorage.open(schema.uri)];
    try {
      for (const id of await from.listClients(null, 100)) await from.exportClient(id, (client) => to.importClient(client));
    } finally {
      await Promise.all([from.close(), to.close()]);
    }
  });
  afterEach(() => schema.drop());

  test('lists the same clients and bytes as the data directory they came from, with when the oldest version was added', async () => {
    const now = Date.now();
    const text = await runCli('usage', ['--connection', schema.uri]);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    const rows = text.stdout.trimEnd().split('\n').slice(1, -1).map((line) => line.split(/ +/));
    expect(rows.map(([id, versions, bytes]) => ({ clientId: id, versions: Number(versions), bytes: Number(bytes) }))).toEqual(expectedRows());
    // The source's times where its export gives them, else the import's.
    for (const row of rows) expect(Date.parse(row[3]!)).toBeLessThanOrEqual(now);
    const json = JSON.parse((await runCli('usage', ['--connection', schema.uri, '--json'])).stdout);
    expect(json.clients).toMatchObject(expectedRows());
    for (const row of json.clients) expect(row.oldestVersionAddedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});
