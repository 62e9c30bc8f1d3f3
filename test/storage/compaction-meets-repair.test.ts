/**
 * A compaction writes its pack without the client's lock, and names it in client.json under the
 * lock. Until then the pack is, to everyone else, a leftover that `verify --repair` removes under
 * the lock. The compaction must then give up, not name a pack that is gone and remove the loose
 * files whose versions it holds.
 */
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, type ClientId, type VersionId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn, type Storage } from '../../src/storage/storage.js';

const CLIENT = '7a2d2fe9-9e74-4d58-8e63-3b2f7d1f4e22' as ClientId;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tcsync-compaction-repair-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function addVersions(storage: Storage, n: number): Promise<VersionId[]> {
  const ids: VersionId[] = [];
  for (let i = 0; i < n; i++) {
    const id = newVersionId();
    await withTxn(storage, CLIENT, async (txn) => {
      if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
      await txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, new Uint8Array([i]));
    });
    ids.push(id);
  }
  return ids;
}

async function expectHistory(storage: Storage, ids: readonly VersionId[]): Promise<void> {
  await withTxn(storage, CLIENT, async (txn) => {
    let parent: VersionId = NIL_VERSION_ID;
    for (const [i, id] of ids.entries()) {
      const version = await txn.getVersionByParent(parent);
      expect(version?.versionId).toBe(id);
      expect(version?.historySegment).toEqual(new Uint8Array([i]));
      parent = id;
    }
  });
}

const packFiles = async () => (await readdir(path.join(dir, CLIENT))).filter((name) => /^pack-.*\.pack$/.test(name));

it('a compaction whose pack was removed before it could name it (verify --repair under the lock) gives up, and loses nothing', async () => {
  const server = await FileStorage.open(dir, { compactAfter: 0 });
  // Another process's view of the directory, holding the client's lock as verify --repair does.
  const verify = await FileStorage.open(dir, { compactAfter: 0 });
  try {
    const ids = await addVersions(server, 30);
    let compaction: Promise<unknown> | undefined;
    await verify.withClientLock(CLIENT, async () => {
      // Planned and written without the lock; named once the lock is free.
      compaction = server.compact(CLIENT);
      await expect.poll(packFiles, { timeout: 10_000 }).toHaveLength(1);
      // An unnamed pack, to whoever holds the lock: removed as a leftover.
      await unlink(path.join(dir, CLIENT, (await packFiles())[0]!));
    });
    expect(await compaction).toBeNull();
    expect(await packFiles()).toEqual([]);
    await expectHistory(server, ids);
    // Another process reads them too, and the next compaction packs them after all.
    await expectHistory(verify, ids);
    expect(await server.compact(CLIENT)).toEqual({ packed: 30, merged: 0 });
    await expectHistory(verify, ids);
  } finally {
    await verify.close();
    await server.close();
  }
});
