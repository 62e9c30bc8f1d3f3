import { copyFile, link, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, type ClientId, type VersionId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn, type Storage } from '../../src/storage/storage.js';

const CLIENT = '6f1c1fd8-8d63-4c47-9d52-2a1f6c0f3d11' as ClientId;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tcsync-packs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function segment(i: number): Uint8Array {
  return new TextEncoder().encode(`version ${i} `.padEnd(100, '.'));
}

/** Adds `n` versions on top of `parent`, one transaction each; their ids oldest first. */
async function addVersions(storage: Storage, n: number, parent: VersionId = NIL_VERSION_ID, from = 0): Promise<VersionId[]> {
  const ids: VersionId[] = [];
  for (let i = 0; i < n; i++) {
    const id = newVersionId();
    await withTxn(storage, CLIENT, async (txn) => {
      if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
      await txn.addVersion(id, parent, segment(from + i));
    });
    ids.push(id);
    parent = id;
  }
  return ids;
}

/** Every version by its id and by its parent, checked against what was added. */
async function expectHistory(storage: Storage, ids: readonly VersionId[], first = 0): Promise<void> {
  await withTxn(storage, CLIENT, async (txn) => {
    expect((await txn.getClient())?.latestVersionId).toBe(ids.at(-1));
    let parent: VersionId = NIL_VERSION_ID;
    for (const [i, id] of ids.entries()) {
      const byId = await txn.getVersion(id);
      expect(byId?.parentVersionId).toBe(parent);
      expect(Buffer.from(byId!.historySegment).toString()).toBe(Buffer.from(segment(first + i)).toString());
      expect((await txn.getVersionByParent(parent))?.versionId).toBe(id);
      parent = id;
    }
    expect(await txn.getVersionByParent(parent)).toBeNull();
  });
}

async function clientFiles(): Promise<{ packs: string[]; loose: number }> {
  const names = await readdir(path.join(dir, CLIENT));
  const versions = await readdir(path.join(dir, CLIENT, 'versions'));
  return { packs: names.filter((n) => n.endsWith('.pack')), loose: versions.filter((n) => n.endsWith('.version')).length };
}

describe('packs', () => {
  it('a compaction moves every loose version into a pack, and each is read back by id and by parent', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    const ids = await addVersions(storage, 150);
    expect(await storage.compact(CLIENT)).toEqual({ packed: 150, merged: 0 });
    expect(await clientFiles()).toEqual({ packs: [expect.stringMatching(/^pack-.*\.pack$/)], loose: 0 });
    await expectHistory(storage, ids);
    await storage.close();
    // Another process (a new storage) reads the packs from client.json alone.
    const again = await FileStorage.open(dir, { compactAfter: 0 });
    await expectHistory(again, ids);
    const more = await addVersions(again, 10, ids.at(-1), 150);
    await expectHistory(again, [...ids, ...more]);
    await again.close();
  });

  it('merges packs as a counter in base 4 carries, so a client keeps few of them', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    let ids: VersionId[] = [];
    const counts: number[] = [];
    for (let round = 0; round < 8; round++) {
      ids = [...ids, ...(await addVersions(storage, 10, ids.at(-1) ?? NIL_VERSION_ID, ids.length))];
      await storage.compact(CLIENT);
      counts.push((await clientFiles()).packs.length);
    }
    // Every pack of under 256 versions is of tier 0, of which a client keeps three at most:
    // 10; 10+10; 10+10+10; 40; 40+10; 40+10+10; 70; 70+10.
    expect(counts).toEqual([1, 2, 3, 1, 2, 3, 1, 2]);
    await expectHistory(storage, ids);
    await storage.close();
  });

  it('compacts by itself once a client has compactAfter loose versions and pauses', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 20, compactQuietMs: 200 });
    const ids = await addVersions(storage, 45);
    await expect.poll(async () => (await clientFiles()).loose, { timeout: 5000 }).toBe(0);
    expect((await clientFiles()).packs.length).toBeGreaterThan(0);
    await expectHistory(storage, ids);
    await storage.close();
  });

  it('does not compact a client that keeps committing until it has 256 times compactAfter loose versions', async () => {
    // A pause that never comes within the test: only the busy rule can compact.
    const storage = await FileStorage.open(dir, { compactAfter: 1, compactQuietMs: 600_000 });
    const ids = await addVersions(storage, 255);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await clientFiles()).toEqual({ packs: [], loose: 255 });
    ids.push(...(await addVersions(storage, 1, ids.at(-1), 255)));
    await expect.poll(async () => (await clientFiles()).packs.length, { timeout: 5000 }).toBe(1);
    await expectHistory(storage, ids);
    await storage.close();
  });

  it('a compaction under way when the storage closes finishes, and close() waits for it', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    const ids = await addVersions(storage, 20);
    const compacting = storage.compact(CLIENT);
    await storage.close();
    expect(await compacting).toEqual({ packed: 20, merged: 0 });
    const again = await FileStorage.open(dir, { compactAfter: 0 });
    expect(await clientFiles()).toEqual({ packs: [expect.stringMatching(/^pack-.*\.pack$/)], loose: 0 });
    await expectHistory(again, ids);
    await again.close();
  });

  it('a damaged record is CORRUPT, never its bytes', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    const ids = await addVersions(storage, 5);
    await storage.compact(CLIENT);
    const [pack] = (await clientFiles()).packs;
    const file = path.join(dir, CLIENT, pack!);
    const bytes = await readFile(file);
    const at = bytes.indexOf('version 2 ');
    bytes[at] = bytes[at]! ^ 0x20;
    await writeFile(file, bytes);
    await storage.close();
    const again = await FileStorage.open(dir, { compactAfter: 0 });
    await expect(withTxn(again, CLIENT, (txn) => txn.getVersion(ids[2]!))).rejects.toMatchObject({ code: 'CORRUPT' });
    expect((await withTxn(again, CLIENT, (txn) => txn.getVersion(ids[1]!)))?.versionId).toBe(ids[1]);
    await again.close();
  });

  it('prunes what the snapshot covers, packed or loose, and keeps the rest', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    const ids = await addVersions(storage, 30);
    await storage.compact(CLIENT);
    const more = await addVersions(storage, 10, ids.at(-1), 30);
    const all = [...ids, ...more];
    const snapshotAt = all[34]!;
    await withTxn(storage, CLIENT, (txn) => txn.setSnapshot({ versionId: snapshotAt, timestamp: new Date(), versionsSince: 0 }, new Uint8Array([1, 2, 3])));
    expect(await storage.pruneVersions(CLIENT, new Date(Date.now() + 60_000))).toBe(35);
    expect(await storage.pruneVersions(CLIENT, new Date(Date.now() + 60_000))).toBe(0);
    await withTxn(storage, CLIENT, async (txn) => {
      expect(await txn.getVersion(all[0]!)).toBeNull();
      expect(await txn.getVersion(snapshotAt)).toBeNull();
      expect(await txn.getVersionByParent(all[10]!)).toBeNull();
      expect((await txn.getVersionByParent(snapshotAt))?.versionId).toBe(all[35]);
      expect((await txn.getVersion(all[39]!))?.parentVersionId).toBe(all[38]);
      expect(await txn.getSnapshotData(snapshotAt)).toEqual(new Uint8Array([1, 2, 3]));
    });
    await storage.close();
    const again = await FileStorage.open(dir, { compactAfter: 0 });
    await withTxn(again, CLIENT, async (txn) => {
      expect(await txn.getVersion(all[3]!)).toBeNull();
      expect((await txn.getClient())?.latestVersionId).toBe(all[39]);
      expect((await txn.getVersionByParent(all[36]!))?.versionId).toBe(all[37]);
    });
    await again.close();
  });

  it('prunes nothing without a snapshot, and nothing added after the cut', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    const ids = await addVersions(storage, 10);
    expect(await storage.pruneVersions(CLIENT, new Date(Date.now() + 60_000))).toBe(0);
    await withTxn(storage, CLIENT, (txn) => txn.setSnapshot({ versionId: ids[5]!, timestamp: new Date(), versionsSince: 0 }, new Uint8Array([1])));
    expect(await storage.pruneVersions(CLIENT, new Date(Date.now() - 60_000))).toBe(0);
    await expectHistory(storage, ids);
    await storage.close();
  });

  it('the next compaction removes loose copies and old unnamed packs that a crash left, and keeps a young one', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    const ids = await addVersions(storage, 20);
    const versionsDir = path.join(dir, CLIENT, 'versions');
    // What a crash between client.json's rename and the removal of the loose files leaves.
    await copyFile(path.join(versionsDir, `${ids[3]}.version`), path.join(dir, 'copy'));
    await storage.compact(CLIENT);
    await copyFile(path.join(dir, 'copy'), path.join(versionsDir, `${ids[3]}.version`));
    await link(path.join(versionsDir, `${ids[3]}.version`), path.join(versionsDir, `${ids[2]}.child`));
    // Packs that a crash left unnamed: one of an hour ago, and one that a compaction may be writing now.
    const [named] = (await clientFiles()).packs;
    const old = path.join(dir, CLIENT, 'pack-00000000-0000-4000-8000-000000000001.pack');
    const young = path.join(dir, CLIENT, `pack-00000000-0000-4000-8000-000000000002.pack.123`);
    await copyFile(path.join(dir, CLIENT, named!), old);
    await copyFile(path.join(dir, CLIENT, named!), young);
    const hourAgo = new Date(Date.now() - 61 * 60 * 1000);
    await utimes(old, hourAgo, hourAgo);
    const more = await addVersions(storage, 3, ids.at(-1), 20);
    await storage.compact(CLIENT);
    expect(await readdir(versionsDir)).toEqual([]);
    const names = await readdir(path.join(dir, CLIENT));
    expect(names).not.toContain(path.basename(old));
    expect(names).toContain(path.basename(young));
    await expectHistory(storage, [...ids, ...more]);
    await storage.close();
  });

  it('a data directory of format 1 stays format 1 until a pack is written', async () => {
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    const ids = await addVersions(storage, 3);
    await storage.close();
    const formatFile = path.join(dir, 'format.json');
    await writeFile(formatFile, '{"format":"tcsync","version":1}\n');
    const reader = await FileStorage.open(dir, { compactAfter: 0 });
    await expectHistory(reader, ids);
    expect(JSON.parse(await readFile(formatFile, 'utf8')).version).toBe(1);
    await reader.compact(CLIENT);
    expect(JSON.parse(await readFile(formatFile, 'utf8')).version).toBe(2);
    await expectHistory(reader, ids);
    await reader.close();
  });
});
