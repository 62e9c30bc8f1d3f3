/** `tcsync migrate`: every id, byte and snapshot survives files -> PostgreSQL -> files and upstream SQLite -> files; a refused DEST is untouched. */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FileStorage, NIL_VERSION_ID, newVersionId, parseClientId, parseVersionId, withTxn, type ClientId, type VersionId } from '../../src/index.js';
import type { ClientSource } from '../../src/storage/client-export.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { describePostgres, freshSchema } from '../support/postgres.js';
import { SmallFs, smallFsUnavailable } from '../support/small-fs.js';
import { buildFixture, buildLargeDataDir, buildPackedFixture, runCli, spawnWriter, tempDir, until, type Fixture, type PackedFixture } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
let source: string;
let fx: Fixture;
beforeAll(async () => {
  root = await tempDir();
  source = path.join(root.dir, 'source');
  fx = await buildFixture(source);
});
afterAll(() => root.cleanup());

/** Everything a storage holds, through the export interface: the form two storages are compared in. */
async function contents(storage: ClientSource) {
  const clients: Record<string, unknown> = {};
  for (const id of await storage.listClients(null, 1000)) {
    clients[id] = await storage.exportClient(id, async (client) => {
      const versions = [];
      // Ids, parents and bytes; not when each was added, which a storage may or may not know.
      for await (const v of client.versions()) versions.push({ versionId: v.versionId, parentVersionId: v.parentVersionId, historySegment: Buffer.from(v.historySegment).toString('base64') });
      versions.sort((a, b) => a.versionId.localeCompare(b.versionId));
      const snapshotData = client.snapshot ? Buffer.from(await client.readSnapshot()).toString('base64') : null;
      return { latestVersionId: client.latestVersionId, snapshot: client.snapshot, snapshotData, versions };
    });
  }
  return { clients, tombstones: await storage.listTombstones(null, 1000) };
}

async function contentsOfDir(dir: string) {
  return contentsOpened(await FileStorage.open(dir));
}

async function contentsOfDatabase(uri: string) {
  return contentsOpened(await PostgresStorage.open(uri));
}

async function contentsOpened(storage: ClientSource & { close(): Promise<void> }) {
  try {
    return await contents(storage);
  } finally {
    await storage.close();
  }
}

/** Every file under `dir` with its bytes, to show that a refused DEST was not touched. */
async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath, entry.name);
    out[path.relative(dir, file)] = entry.isFile() ? (await readFile(file)).toString('base64') : 'dir';
  }
  return out;
}

describePostgres('through PostgreSQL', () => {
  test('files -> PostgreSQL -> files keeps every client, version, byte, snapshot and tombstone', async () => {
    const schema = await freshSchema();
    try {
      const there = await runCli('migrate', ['--from', source, '--to', schema.uri]);
      expect(there.stderr).toBe('');
      expect(there.code).toBe(0);
      expect(there.stdout).toMatch(/^migrate: 3 clients, 10 versions, 1 tombstones, [\d.]+ KiB copied to the PostgreSQL database .* and verified in [\d.]+ s\n$/);
      // The password is not echoed.
      expect(there.stdout).not.toContain('tcsync_test:');

      const back = path.join(root.dir, 'back-from-postgres');
      const result = await runCli('migrate', ['--from', schema.uri, '--to', back]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const [before, after] = [await contentsOfDir(source), await contentsOfDir(back)];
      expect(Object.keys(before.clients).sort()).toEqual([fx.withSnapshot, fx.plain, fx.startsMidway].sort());
      expect(after).toEqual(before);
      expect((await runCli('verify', ['--data-dir', back])).code).toBe(0);

      // A database with clients is refused, and gets nothing.
      const refused = await runCli('migrate', ['--from', source, '--to', schema.uri]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/holds clients already/);
      expect(await contentsOfDatabase(schema.uri)).toEqual(before);
    } finally {
      await schema.drop();
    }
  });
});

describe('from compacted and pruned histories (packs)', () => {
  let packedSource: string;
  let packed: PackedFixture;
  beforeAll(async () => {
    packedSource = path.join(root.dir, 'packed-source');
    packed = await buildPackedFixture(packedSource);
  });

  /** The fixture's remaining versions: all 35 of one client, the 10 after the pruning of the other. */
  const expectEveryVersion = async (contentsThere: Awaited<ReturnType<typeof contents>>) => {
    const ids = (client: string) => ((contentsThere.clients[client] as { versions: Array<{ versionId: string }> }).versions).map((v) => v.versionId).sort();
    expect(ids(packed.packed)).toEqual([...packed.packedVersions].sort());
    expect(ids(packed.pruned)).toEqual(packed.prunedVersions.slice(15).sort());
  };

  test('-> files copies every packed and loose version', async () => {
    const dest = path.join(root.dir, 'packed-dest');
    const result = await runCli('migrate', ['--from', packedSource, '--to', dest]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^migrate: 2 clients, 45 versions, 0 tombstones, /);
    const [before, after] = [await contentsOfDir(packedSource), await contentsOfDir(dest)];
    await expectEveryVersion(before);
    expect(after).toEqual(before);
    expect((await runCli('verify', ['--data-dir', dest])).stdout).toMatch(/^sound: 2 clients, 45 versions/);
  });

  describePostgres('through PostgreSQL', () => {
    test('-> PostgreSQL copies every packed and loose version', async () => {
      const schema = await freshSchema();
      try {
        const result = await runCli('migrate', ['--from', packedSource, '--to', schema.uri]);
        expect(result.stderr).toBe('');
        expect(result.code).toBe(0);
        expect(result.stdout).toMatch(/^migrate: 2 clients, 45 versions, 0 tombstones, /);
        const before = await contentsOfDir(packedSource);
        expect(await contentsOfDatabase(schema.uri)).toEqual(before);
      } finally {
        await schema.drop();
      }
    });
  });
});

describe("from upstream's SQLite database", () => {
  const ids = {
    withSnapshot: parseClientId('aaaaaaaa-0000-4000-8000-000000000001'),
    plain: parseClientId('aaaaaaaa-0000-4000-8000-000000000002'),
    empty: parseClientId('aaaaaaaa-0000-4000-8000-000000000003'),
  };
  let sqlitePath: string;
  const versions: Array<{ client: ClientId; id: VersionId; parent: VersionId; bytes: Buffer }> = [];
  const emptyLatest = newVersionId();

  beforeAll(() => {
    sqlitePath = path.join(root.dir, 'taskchampion-sync-server.sqlite3');
    const db = new Database(sqlitePath);
    // Upstream's sqlite crate (SqliteStorage::new), verbatim: ids as text, bytes as BLOB.
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE IF NOT EXISTS clients (
                    client_id STRING PRIMARY KEY,
                    latest_version_id STRING,
                    snapshot_version_id STRING,
                    versions_since_snapshot INTEGER,
                    snapshot_timestamp INTEGER,
                    snapshot BLOB);`);
    db.exec('CREATE TABLE IF NOT EXISTS versions (version_id STRING PRIMARY KEY, client_id STRING, parent_version_id STRING, history_segment BLOB);');
    db.exec('CREATE INDEX IF NOT EXISTS versions_by_parent ON versions (parent_version_id);');
    const addVersion = db.prepare('INSERT INTO versions (version_id, client_id, parent_version_id, history_segment) VALUES (?, ?, ?, ?)');
    for (const [client, count] of [[ids.withSnapshot, 4], [ids.plain, 2]] as const) {
      let parent = NIL_VERSION_ID;
      for (let i = 0; i < count; i++) {
        const id = newVersionId();
        const bytes = Buffer.from(Array.from({ length: 300 + i }, (_, n) => (n * 7 + i) % 256));
        addVersion.run(id, client, parent, bytes);
        versions.push({ client, id, parent, bytes });
        parent = id;
      }
      db.prepare('INSERT INTO clients (client_id, latest_version_id) VALUES (?, ?)').run(client, parent);
    }
    const snapshotOf = versions[2]!;
    db.prepare('UPDATE clients SET snapshot_version_id = ?, snapshot_timestamp = ?, versions_since_snapshot = ?, snapshot = ? WHERE client_id = ?')
      .run(snapshotOf.id, 1764590400, 1, Buffer.alloc(5000, 3), ids.withSnapshot);
    db.prepare('INSERT INTO clients (client_id, latest_version_id) VALUES (?, ?)').run(ids.empty, emptyLatest);
    db.close();
  });

  test('-> files keeps every id, parent, byte and the snapshot with its version, time and versionsSince', async () => {
    const dest = path.join(root.dir, 'from-sqlite');
    const result = await runCli('migrate', ['--from', `sqlite:${sqlitePath}`, '--to', dest]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^migrate: 3 clients, 6 versions, 0 tombstones/);
    const storage = await FileStorage.open(dest);
    try {
      expect(await storage.listClients(null, 10)).toEqual([ids.withSnapshot, ids.plain, ids.empty]);
      for (const v of versions) {
        const read = await withTxn(storage, v.client, async (txn) => [await txn.getVersion(v.id), await txn.getVersionByParent(v.parent)]);
        for (const version of read) expect(version).toEqual({ versionId: v.id, parentVersionId: v.parent, historySegment: new Uint8Array(v.bytes) });
      }
      const client = await withTxn(storage, ids.withSnapshot, (txn) => txn.getClient());
      expect(client).toEqual({
        latestVersionId: versions[3]!.id,
        snapshot: { versionId: versions[2]!.id, timestamp: new Date(1764590400 * 1000), versionsSince: 1 },
      });
      expect(await withTxn(storage, ids.withSnapshot, (txn) => txn.getSnapshotData(versions[2]!.id))).toEqual(new Uint8Array(Buffer.alloc(5000, 3)));
      expect(await withTxn(storage, ids.plain, (txn) => txn.getClient())).toEqual({ latestVersionId: versions[5]!.id, snapshot: null });
      expect(await withTxn(storage, ids.empty, (txn) => txn.getClient())).toEqual({ latestVersionId: emptyLatest, snapshot: null });
    } finally {
      await storage.close();
    }
    expect((await runCli('verify', ['--data-dir', dest])).code).toBe(0);
  });

  test('while upstream writes, migrate copies the committed state and changes nothing in its files', async () => {
    const files = async () => Object.fromEntries(await Promise.all(
      (await readdir(root.dir)).filter((n) => n.startsWith('taskchampion-sync-server.sqlite3')).map(async (n) => [n, (await readFile(path.join(root.dir, n))).toString('base64')]),
    ));
    const writer = new Database(sqlitePath);
    try {
      // Upstream in the middle of an add-version: its transaction holds the write lock, uncommitted.
      writer.exec('BEGIN IMMEDIATE');
      writer.prepare('INSERT INTO versions (version_id, client_id, parent_version_id, history_segment) VALUES (?, ?, ?, ?)').run(newVersionId(), ids.plain, versions[5]!.id, Buffer.from('uncommitted'));
      writer.prepare('UPDATE clients SET latest_version_id = ? WHERE client_id = ?').run(newVersionId(), ids.plain);
      const before = await files();
      const dest = path.join(root.dir, 'from-live-sqlite');
      const result = await runCli('migrate', ['--from', `sqlite:${sqlitePath}`, '--to', dest]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^migrate: 3 clients, 6 versions/);
      expect(await files()).toEqual(before);
      const storage = await FileStorage.open(dest);
      try {
        expect(await withTxn(storage, ids.plain, (txn) => txn.getClient())).toEqual({ latestVersionId: versions[5]!.id, snapshot: null });
      } finally {
        await storage.close();
      }
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
    }
  });

  test('a file that is not upstream\'s database is refused (exit 1)', async () => {
    const other = path.join(root.dir, 'not-upstream.sqlite3');
    new Database(other).exec('CREATE TABLE notes (text STRING)');
    const result = await runCli('migrate', ['--from', `sqlite:${other}`, '--to', path.join(root.dir, 'from-other')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no clients and versions tables/);
    await expect(readdir(path.join(root.dir, 'from-other'))).rejects.toThrow(/ENOENT/);
  });
});

describe('a refused DEST is left untouched', () => {
  test('a data directory that holds clients', async () => {
    const dest = path.join(root.dir, 'holds-clients');
    await buildFixture(dest);
    const before = await snapshotTree(dest);
    const result = await runCli('migrate', ['--from', source, '--to', dest]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/is not empty/);
    expect(await snapshotTree(dest)).toEqual(before);
  });

  test('a directory with any file in it', async () => {
    const dest = path.join(root.dir, 'not-empty');
    await mkdir(dest);
    await writeFile(path.join(dest, 'notes.txt'), 'mine');
    const result = await runCli('migrate', ['--from', source, '--to', dest]);
    expect(result.code).toBe(1);
    expect(await snapshotTree(dest)).toEqual({ 'notes.txt': Buffer.from('mine').toString('base64') });
    expect((await readdir(root.dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  test('an empty directory is a valid DEST', async () => {
    const dest = path.join(root.dir, 'empty-dest');
    await mkdir(dest);
    expect((await runCli('migrate', ['--from', source, '--to', dest])).code).toBe(0);
    expect(await contentsOfDir(dest)).toEqual(await contentsOfDir(source));
  });
});

test('a live SOURCE is copied consistently: every version acknowledged before migrate began is in DEST, which verifies', async () => {
  const live = path.join(root.dir, 'live');
  await FileStorage.open(live).then((s) => s.close());
  const clients = [1, 2].map((n) => `0000000${n}-dddd-4bbb-8ccc-00000000000${n}`);
  // Two writers per client race each other, as two replicas of one user do.
  const writers = clients.flatMap((client) => [spawnWriter(live, client), spawnWriter(live, client)]);
  try {
    await until(() => {
      if (writers.some((w) => w.child.exitCode !== null)) throw new Error('a writer died');
      return writers.every((w) => w.acks.length >= 15);
    });
    const acknowledged = writers.map((w, i) => ({ client: clients[Math.floor(i / 2)] as string, versions: [...w.acks] }));
    const dest = path.join(root.dir, 'live-copy');
    const result = await runCli('migrate', ['--from', live, '--to', dest]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The writers went on meanwhile: the copy raced real commits.
    expect(writers.some((w, i) => w.acks.length > (acknowledged[i]?.versions.length ?? 0))).toBe(true);
    const copy = await FileStorage.open(dest);
    try {
      for (const { client, versions } of acknowledged) {
        await withTxn(copy, parseClientId(client), async (txn) => {
          for (const id of versions) expect(await txn.getVersion(parseVersionId(id)), `${client} ${id}`).not.toBeNull();
        });
      }
    } finally {
      await copy.close();
    }
    expect((await runCli('verify', ['--data-dir', dest])).code).toBe(0);
  } finally {
    for (const w of writers) w.child.kill('SIGTERM');
    await Promise.all(writers.map((w) => w.exited));
  }
});

describe('exit codes', () => {
  test('bad usage exits 2', async () => {
    expect((await runCli('migrate', ['--to', path.join(root.dir, 'x')])).code).toBe(2);
    expect((await runCli('migrate', ['--from', source])).code).toBe(2);
    expect((await runCli('migrate', ['--from', source, '--to', 'sqlite:/tmp/x.sqlite3'])).code).toBe(2);
    expect((await runCli('migrate', ['--from', source, '--to', 'x', '--frobnicate'])).code).toBe(2);
  });

  test('a SOURCE that is not a data directory exits 1 and creates nothing', async () => {
    const dest = path.join(root.dir, 'from-nowhere');
    const result = await runCli('migrate', ['--from', path.join(root.dir, 'nowhere'), '--to', dest]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/not a tcsync data directory|does not exist|not a directory/);
    await expect(readdir(dest)).rejects.toThrow(/ENOENT/);
  });
});

describe.skipIf(smallFsUnavailable !== null)('into a data directory on a disk that fills up', () => {
  let fs: SmallFs;
  beforeAll(() => {
    fs = SmallFs.create(16);
  });
  afterAll(() => fs.destroy());

  test('fails with exit 1 and leaves nothing that looks like clients', async () => {
    const big = path.join(root.dir, 'big');
    await buildLargeDataDir(big);
    fs.leaveFree(1024 * 1024);
    const dest = path.join(fs.dir, 'dest');
    const result = await runCli('migrate', ['--from', big, '--to', dest]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/DISK_FULL|ENOSPC|no space/i);
    expect((await readdir(fs.dir)).filter((n) => !n.startsWith('.filler') && n !== 'lost+found')).toEqual([]);
  });
});
