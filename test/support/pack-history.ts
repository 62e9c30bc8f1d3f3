/**
 * Client histories laid out for the tests of a compaction's and a pruning's steps (their kill
 * points and their system calls' order): packs to merge and to keep, loose versions, loose copies
 * of packed versions that a compaction cut short left, and versions added long ago, all made
 * through FileStorage. And the check that a client holds such a history, less what was pruned.
 */
import { link, mkdir, readdir, utimes } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, parseVersionId, type ClientId, type VersionId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn, type Storage } from '../../src/storage/storage.js';

export interface PackHistory {
  readonly clientId: ClientId;
  /** Every version, oldest first; each one's segment is segmentOf(its index). */
  readonly ids: readonly VersionId[];
  /** How many of them are loose files, for a compaction to pack (loose copies of packed ones aside). */
  readonly loose: number;
  /** The cut to prune with (Storage.pruneVersions' addedBefore)... */
  readonly cut: Date;
  /** ...and how many of the oldest versions it deletes. */
  readonly pruned: number;
}

export function segmentOf(i: number): Uint8Array {
  return new TextEncoder().encode(`version ${i} `.padEnd(200, '.'));
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Adds `count` versions on top of `ids`, one transaction each, and appends their ids. */
async function addVersions(storage: Storage, clientId: ClientId, ids: VersionId[], count: number): Promise<void> {
  for (let k = 0; k < count; k++) {
    const i = ids.length;
    const id = newVersionId();
    await withTxn(storage, clientId, async (txn) => {
      if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
      await txn.addVersion(id, ids[i - 1] ?? NIL_VERSION_ID, segmentOf(i));
    });
    ids.push(id);
  }
}

async function setSnapshot(storage: Storage, clientId: ClientId, versionId: VersionId): Promise<void> {
  await withTxn(storage, clientId, (txn) => txn.setSnapshot({ versionId, timestamp: new Date(), versionsSince: 0 }, new Uint8Array([1, 2, 3])));
}

/** Makes loose versions look added `days` ago: their files' mtime is their added time (a pack keeps it). */
async function age(dataDir: string, clientId: ClientId, ids: readonly VersionId[], days: number): Promise<void> {
  const when = new Date(Date.now() - days * DAY_MS);
  for (const id of ids) await utimes(path.join(dataDir, clientId, 'versions', `${id}.version`), when, when);
}

async function open(dataDir: string): Promise<FileStorage> {
  return FileStorage.open(dataDir, { compactAfter: 0 });
}

/**
 * Packs of 8, 2 and 2 versions (three of the smallest tier), 2 loose versions on top, a loose
 * copy of the 4th (packed) left beside them as by a compaction that a crash cut short, and a
 * snapshot of the 13th: a compaction packs the loose ones with the three packs (merged, removed
 * after), and then sweeps the loose copy. The cut, in the future, prunes everything up to the
 * snapshot.
 */
export async function prepareCompaction(dataDir: string): Promise<PackHistory> {
  const clientId = parseClientId(crypto.randomUUID());
  const storage = await open(dataDir);
  const ids: VersionId[] = [];
  try {
    await addVersions(storage, clientId, ids, 8);
    const restore = await stashCopies(dataDir, clientId, [ids[3]!], [ids[2]!]);
    await storage.compact(clientId);
    await addVersions(storage, clientId, ids, 2);
    await storage.compact(clientId);
    await addVersions(storage, clientId, ids, 2);
    await storage.compact(clientId);
    await restore();
    await addVersions(storage, clientId, ids, 2);
    await setSnapshot(storage, clientId, ids[12]!);
  } finally {
    await storage.close();
  }
  return { clientId, ids, loose: 2, cut: new Date(Date.now() + DAY_MS), pruned: 13 };
}

/**
 * A pack of versions 0-3, of which 0-2 were added ten days ago, with loose copies of 1 and 2
 * left beside it as by a compaction that a crash cut short; a snapshot of 3 and a loose version
 * 4. The cut, five days ago, prunes 0-2: the snapshot's version is too new, its parent is the
 * newest old enough. So a pruning rewrites the pack with 3 alone and removes the loose copies
 * of 1 and 2 before its commit, and the pack after it.
 */
export async function preparePruning(dataDir: string): Promise<PackHistory> {
  const clientId = parseClientId(crypto.randomUUID());
  const storage = await open(dataDir);
  const ids: VersionId[] = [];
  try {
    await addVersions(storage, clientId, ids, 3);
    await age(dataDir, clientId, ids, 10);
    await addVersions(storage, clientId, ids, 1);
    const restore = await stashCopies(dataDir, clientId, [ids[1]!, ids[2]!], [ids[0]!, ids[1]!]);
    await storage.compact(clientId);
    await restore();
    await setSnapshot(storage, clientId, ids[3]!);
    await addVersions(storage, clientId, ids, 1);
  } finally {
    await storage.close();
  }
  return { clientId, ids, loose: 1, cut: new Date(Date.now() - 5 * DAY_MS), pruned: 3 };
}

/**
 * Keeps links to the loose files of `versions` and the `.child` links of `parents` aside; the
 * function it returns puts them back (after a compaction removed them).
 */
async function stashCopies(dataDir: string, clientId: ClientId, versions: readonly VersionId[], parents: readonly VersionId[]): Promise<() => Promise<void>> {
  const dir = path.join(dataDir, clientId, 'versions');
  const stash = path.join(path.dirname(dataDir), `stash-${crypto.randomUUID()}`);
  await mkdir(stash);
  const names = [...versions.map((id) => `${id}.version`), ...parents.map((id) => `${id}.child`)];
  for (const name of names) await link(path.join(dir, name), path.join(stash, name));
  return async () => {
    for (const name of names) await link(path.join(stash, name), path.join(dir, name));
  };
}

/**
 * The client holds `history` less its `pruned` oldest versions: the latest is its last; every
 * other version is read by id, with its bytes, and by its parent's id (the newest pruned one's
 * child too), back from the latest; no pruned version is read either way; and no other version
 * file on disk (a leftover) reads as a version.
 */
export async function expectPrunedHistory(storage: Storage, dataDir: string, history: PackHistory, pruned: number): Promise<void> {
  const { clientId, ids } = history;
  const parentOf = (i: number) => (i === 0 ? NIL_VERSION_ID : ids[i - 1]!);
  const onDisk = (await readdir(path.join(dataDir, clientId, 'versions')))
    .filter((name) => name.endsWith('.version'))
    .map((name) => parseVersionId(name.slice(0, -'.version'.length)));
  await withTxn(storage, clientId, async (txn) => {
    const latest = (await txn.getClient())?.latestVersionId;
    expect(latest, 'the latest version').toBe(ids.at(-1));
    expect(await txn.getVersionByParent(latest!), 'a child of the latest').toBeNull();
    for (let i = ids.length - 1; i >= 0; i--) {
      const byId = await txn.getVersion(ids[i]!);
      const byParent = await txn.getVersionByParent(parentOf(i));
      if (i < pruned) {
        expect(byId, `pruned version ${i} by id`).toBeNull();
        expect(byParent, `pruned version ${i} by parent`).toBeNull();
        continue;
      }
      expect(byId?.parentVersionId, `version ${i}'s parent`).toBe(parentOf(i));
      expect(Buffer.from(byId!.historySegment).toString(), `version ${i}'s bytes`).toBe(Buffer.from(segmentOf(i)).toString());
      expect(byParent?.versionId, `version ${i} by parent`).toBe(ids[i]);
    }
    const kept = new Set<string>(ids.slice(pruned));
    for (const id of onDisk.filter((id) => !kept.has(id))) expect(await txn.getVersion(id), `leftover ${id}`).toBeNull();
  });
}
