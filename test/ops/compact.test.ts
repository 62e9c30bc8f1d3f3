/** `tcsync compact`: every client's loose versions into packs, on a stopped or a live data directory. */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { FileStorage, NIL_VERSION_ID, newVersionId, parseClientId, withTxn, type ClientId, type VersionId } from '../../src/index.js';
import { buildFixture, runCli, spawnWriter, tempDir, until } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
let dataDir: string;
beforeEach(async () => {
  root = await tempDir();
  dataDir = path.join(root.dir, 'data');
});
afterEach(() => root.cleanup());

const LONG = parseClientId('55555555-5555-4555-8555-555555555555');

async function addHistory(clientId: ClientId, count: number): Promise<VersionId[]> {
  const storage = await FileStorage.open(dataDir, { compactAfter: 0 });
  const ids: VersionId[] = [];
  for (let i = 0; i < count; i++) {
    const id = newVersionId();
    await withTxn(storage, clientId, async (txn) => {
      if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
      await txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, Buffer.from(`version ${i}`));
    });
    ids.push(id);
  }
  await storage.close();
  return ids;
}

/** Follows the chain from the nil version by parent, as a new replica does; the ids in order. */
async function walk(clientId: ClientId): Promise<VersionId[]> {
  const storage = await FileStorage.open(dataDir, { compactAfter: 0 });
  try {
    return await withTxn(storage, clientId, async (txn) => {
      const ids: VersionId[] = [];
      for (let v = await txn.getVersionByParent(NIL_VERSION_ID); v !== null; v = await txn.getVersionByParent(v.versionId)) ids.push(v.versionId);
      return ids;
    });
  } finally {
    await storage.close();
  }
}

test('packs every client of a stopped data directory, and a second run finds nothing to do', async () => {
  const fx = await buildFixture(dataDir);
  const long = await addHistory(LONG, 150);
  const first = await runCli('compact', ['--data-dir', dataDir]);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  expect(first.stdout).toBe('compacted 4 of 4 clients: 160 versions moved into packs\n');
  expect(await walk(LONG)).toEqual(long);
  expect(await walk(fx.withSnapshot)).toEqual(fx.withSnapshotVersions);
  expect(await walk(fx.plain)).toEqual(fx.plainVersions);
  for (const client of [LONG, fx.withSnapshot, fx.plain, fx.startsMidway]) {
    expect(await readdir(path.join(dataDir, client, 'versions'))).toEqual([]);
    expect((await readdir(path.join(dataDir, client))).filter((name) => name.endsWith('.pack'))).toHaveLength(1);
  }
  const second = await runCli('compact', [], { DATA_DIR: dataDir });
  expect(second.code).toBe(0);
  expect(second.stdout).toBe('compacted 0 of 4 clients: 0 versions moved into packs\n');
});

test('compacts a live data directory while another process writes: every acknowledged version stays in the chain', async () => {
  await addHistory(LONG, 1);
  const writer = spawnWriter(dataDir, LONG);
  try {
    await until(() => writer.acks.length >= 50);
    for (let run = 0; run < 3; run++) {
      const result = await runCli('compact', ['--data-dir', dataDir]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    }
    await until(() => writer.acks.length >= 200);
  } finally {
    writer.child.kill('SIGTERM');
    await writer.exited;
  }
  const chain = await walk(LONG);
  // The writer's first add conflicts with the version made above and goes on from it.
  expect(chain.slice(1, 1 + writer.acks.length)).toEqual(writer.acks);
});

test('bad usage exits 2; a directory that is not a data directory exits 1 with the reason', async () => {
  const bad = await runCli('compact', ['--bogus']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("Try 'tcsync compact --help'");
  const missing = await runCli('compact', ['--data-dir', path.join(root.dir, 'nope')]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/^tcsync compact: .*not a tcsync data directory/);
});
