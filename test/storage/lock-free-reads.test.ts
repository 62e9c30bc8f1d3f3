/**
 * An optimistic transaction on files reads without the lock (file-txn.ts): its view is the
 * client as it loaded it, what it cannot read consistently makes it TXN_STALE (withTxn runs it
 * again), and its commit checks under the lock that the client is still as it read it. Another
 * process is played by a second FileStorage on the same data directory: it shares no memory and
 * no lock queue with the reader, only the files.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isTcsyncError, type ErrorCode } from '../../src/errors.js';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { LockFs } from '../../src/storage/file/lock-fs.js';
import { withTxn, type StorageTxn } from '../../src/storage/storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

/**
 * What another process does between two system calls of the reader's, where no public call can
 * pause it: run once, right after the reader's next read of a version file by name, before it
 * checks that version's link. Without one set, the reads are the module's own.
 */
const betweenReads = vi.hoisted(() => ({ next: null as (() => Promise<unknown>) | null }));
vi.mock('../../src/storage/file/durable-fs.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/storage/file/durable-fs.js')>();
  return {
    ...actual,
    readFileStatOrNull: async (file: string) => {
      const read = await actual.readFileStatOrNull(file);
      const meanwhile = betweenReads.next;
      betweenReads.next = null;
      await meanwhile?.();
      return read;
    },
  };
});

let dir: string;
/** The reader, and the other process that writes meanwhile. */
let reader: FileStorage;
let other: FileStorage;
let clientId: ClientId;
const bytes = (...v: number[]) => new Uint8Array(v);

beforeEach(async () => {
  dir = await makeTempDir();
  reader = await FileStorage.open(dir);
  other = await FileStorage.open(dir);
  clientId = parseClientId(crypto.randomUUID());
});
afterEach(async () => {
  await Promise.all([reader.close(), other.close()]);
  await removeDir(dir);
});

async function errorCode(promise: Promise<unknown>): Promise<ErrorCode | unknown> {
  return promise.then(
    () => 'no error',
    (e: unknown) => (isTcsyncError(e) ? e.code : e),
  );
}

/** Adds `count` versions on top of the latest, each in a transaction of `storage`'s. */
async function append(storage: FileStorage, count: number): Promise<VersionId[]> {
  const ids: VersionId[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(
      await withTxn(storage, clientId, async (txn) => {
        if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
        const id = newVersionId();
        await txn.addVersion(id, (await txn.getClient())!.latestVersionId, bytes(i));
        return id;
      }),
    );
  }
  return ids;
}

const lockDir = () => path.join(dir, 'locks', `${clientId}.lock`);

/**
 * Waits until the lock that either storage keeps for a while after its commits (lingerMs) is
 * dropped: a reader that finds the lock taken reads under it instead, and would keep the other
 * process from writing until its transaction ends. Once the directory is gone, a reader takes no
 * lock, even while the removal has not yet reported back to the storage that made it.
 */
async function settled(): Promise<void> {
  for (let i = 0; existsSync(lockDir()); i++) {
    if (i > 200) throw new Error('the other process keeps the lock');
    await sleep(5);
  }
}

/** A transaction of the reader's as withTxn's first attempt makes it, begun while nobody holds the lock. */
async function optimistic(): Promise<StorageTxn> {
  await settled();
  return reader.txn(clientId, { optimistic: true });
}

/** getClient of `txn`, which must take no lock. */
async function latestOf(txn: StorageTxn): Promise<VersionId | undefined> {
  const client = await txn.getClient();
  expect(existsSync(lockDir()), 'the reader took the lock').toBe(false);
  return client?.latestVersionId;
}

describe('the view of a transaction without the lock', () => {
  it('is the client as loaded: a child another process adds to its latest meanwhile is not in it', async () => {
    const [, v2] = await append(other, 2);
    const txn = await optimistic();
    expect(await latestOf(txn)).toBe(v2);
    const [v3] = await append(other, 1);
    expect(await txn.getVersionByParent(v2!)).toBeNull();
    expect(await txn.getVersion(v3!)).toBeNull();
    expect((await txn.getClient())?.latestVersionId).toBe(v2);
    await txn.commit();
    // A transaction begun after it sees the new version.
    expect(await withTxn(reader, clientId, async (t) => (await t.getVersionByParent(v2!))?.versionId)).toBe(v3);
  });

  it('a version of the view read after another process committed is stale, not absent: withTxn answers it', async () => {
    const [v1, v2] = await append(other, 2);
    const txn = await optimistic();
    expect(await latestOf(txn)).toBe(v2);
    await append(other, 1);
    // v1 and v2 are in the view, but the files no longer tell that without a walk of the chain.
    expect(await errorCode(txn.getVersion(v1!))).toBe('TXN_STALE');
    await txn.rollback();

    let runs = 0;
    await settled();
    const [version, child] = await withTxn(reader, clientId, async (t) => {
      if (runs === 0) await latestOf(t);
      if (runs++ === 0) await append(other, 1);
      return [await t.getVersion(v1!), await t.getVersionByParent(v1!)];
    });
    expect(runs).toBe(2);
    expect(version?.versionId).toBe(v1);
    expect(child?.versionId).toBe(v2);
  });

  it('a snapshot replaced between getClient and getSnapshotData is stale: withTxn answers the new one', async () => {
    const [v1, v2] = await append(other, 2);
    const snapshot = (versionId: VersionId, data: Uint8Array) =>
      withTxn(other, clientId, (t) => t.setSnapshot({ versionId, timestamp: new Date(), versionsSince: 0 }, data));
    await snapshot(v1!, bytes(1, 1));
    let runs = 0;
    await settled();
    const answer = await withTxn(reader, clientId, async (t) => {
      if (runs === 0) await latestOf(t);
      const client = await t.getClient();
      // The replacing commit removes the blob that the client as loaded names.
      if (runs++ === 0) await snapshot(v2!, bytes(2, 2));
      return { versionId: client!.snapshot!.versionId, data: await t.getSnapshotData(client!.snapshot!.versionId) };
    });
    expect(runs).toBe(2);
    expect(answer).toEqual({ versionId: v2, data: bytes(2, 2) });
  });

  it('a commit on what another process changed since it was read is TXN_STALE and commits nothing', async () => {
    const [, v2] = await append(other, 2);
    const txn = await optimistic();
    expect(await latestOf(txn)).toBe(v2);
    const [v3] = await append(other, 1);
    // Its own read says v2 is the latest, so the add is accepted, until the commit looks again.
    await txn.addVersion(newVersionId(), v2!, bytes(9));
    expect(await errorCode(txn.commit())).toBe('TXN_STALE');
    expect(await withTxn(reader, clientId, async (t) => [(await t.getClient())?.latestVersionId, await t.getVersionByParent(v3!)])).toEqual([v3, null]);

    // Through withTxn, the work runs again on the client as it is now, and sees the conflict.
    let runs = 0;
    await settled();
    const latest = await withTxn(reader, clientId, async (t) => {
      if (runs === 0) await latestOf(t);
      const seen = (await t.getClient())!.latestVersionId;
      if (runs++ === 0) await append(other, 1);
      await t.addVersion(newVersionId(), seen, bytes(8));
      return seen;
    });
    expect(runs).toBe(2);
    expect(latest).not.toBe(v3);
  });
});

/**
 * Holds back the report of the next removal of the client's lock directory: `removed` resolves
 * once the directory is gone, and the storage that removes it hears so only at `report()`. The
 * removal is proper-lockfile's, through the file system the storage gives it (lock-fs.ts).
 */
function holdLockRemoval(): { removed: Promise<void>; report: () => void } {
  const original = LockFs.prototype.rmdir;
  let removed!: () => void;
  let report: () => void = () => undefined;
  const spy = vi.spyOn(LockFs.prototype, 'rmdir').mockImplementation(function (this: LockFs, dir, callback) {
    if (dir !== lockDir()) return original.call(this, dir, callback);
    spy.mockRestore();
    original.call(this, dir, (err) => {
      report = () => callback(err);
      removed();
    });
  });
  return { removed: new Promise((resolve) => (removed = resolve)), report: () => report() };
}

describe('a reader without the lock while its own process drops the lock it kept after a commit', () => {
  it('takes no lock once the directory is gone, though the removal has not reported back', async () => {
    const removal = holdLockRemoval();
    const [v1] = await append(reader, 1);
    // The reader's lock lingers after its commit, then goes: the directory first.
    await removal.removed;
    expect(existsSync(lockDir())).toBe(false);
    const txn = await reader.txn(clientId, { optimistic: true });
    // getClient decides at once whether to take the lock; a reader that counted the removal as a
    // transaction at the client would wait for it, then take the lock.
    const read = latestOf(txn);
    removal.report();
    try {
      expect(await read).toBe(v1);
    } finally {
      await txn.rollback();
    }
  });
});

describe('a view that a compaction or a pruning replaced', () => {
  /** Runs `read` in a transaction of the reader's whose first run loads the client before `meanwhile`; its answer and runs. */
  async function readAcross<T>(meanwhile: () => Promise<unknown>, read: (t: StorageTxn) => Promise<T>): Promise<{ answer: T; runs: number }> {
    let runs = 0;
    await settled();
    const answer = await withTxn(reader, clientId, async (t) => {
      if (runs === 0) await latestOf(t);
      if (runs++ === 0) await meanwhile();
      return read(t);
    });
    return { answer, runs };
  }

  it('loose versions it read as loose and a compaction packed are stale, not absent: withTxn answers them from the pack', async () => {
    const [v1, v2] = await append(other, 3);
    const txn = await optimistic();
    await latestOf(txn);
    expect(await other.compact(clientId)).toEqual({ packed: 3, merged: 0 });
    // Their files are gone; client.json, replaced, tells why.
    expect(await errorCode(txn.getVersion(v2!))).toBe('TXN_STALE');
    expect(await errorCode(txn.getVersionByParent(v1!))).toBe('TXN_STALE');
    await txn.rollback();

    const [w1, w2] = await append(other, 3);
    const { answer, runs } = await readAcross(() => other.compact(clientId), async (t) => [await t.getVersion(w2!), await t.getVersionByParent(w1!)]);
    expect(runs).toBe(2);
    expect(answer.map((v) => v?.versionId)).toEqual([w2, w2]);
  });

  it('a loose version read just before a compaction packed it and removed its link is stale, not absent', async () => {
    const [, v2] = await append(other, 3);
    const txn = await optimistic();
    await latestOf(txn);
    // The version file is read; then its parent's `.child` link, removed by the compaction meanwhile, is looked at.
    betweenReads.next = () => other.compact(clientId);
    expect(await errorCode(txn.getVersion(v2!))).toBe('TXN_STALE');
    expect(betweenReads.next).toBe(null);
    await txn.rollback();

    const [, w2] = await append(other, 3);
    const { answer, runs } = await readAcross(async () => (betweenReads.next = () => other.compact(clientId)), (t) => t.getVersion(w2!));
    expect(runs).toBe(2);
    expect(answer?.versionId).toBe(w2);
  });

  it('a pack it read from that a compaction merged away is stale, not CORRUPT', async () => {
    // Three packs of the smallest tier, which the next compaction merges (base 4).
    const twoMorePacks = async () => {
      for (let i = 0; i < 2; i++) {
        await append(other, 1);
        await other.compact(clientId);
      }
    };
    const [v1] = await append(other, 2);
    await other.compact(clientId);
    await twoMorePacks();
    await append(other, 3);
    const txn = await optimistic();
    await latestOf(txn);
    // 3 loose and the three packs make a new pack of 7: the pack of v1 is removed.
    expect(await other.compact(clientId)).toEqual({ packed: 3, merged: 3 });
    expect(await errorCode(txn.getVersion(v1!))).toBe('TXN_STALE');
    await txn.rollback();

    await twoMorePacks();
    await append(other, 3);
    const { answer, runs } = await readAcross(() => other.compact(clientId), (t) => t.getVersion(v1!));
    expect(runs).toBe(2);
    expect(answer?.versionId).toBe(v1);
  });

  it('versions a pruning deleted under it are stale, then gone; the first version after the cut is still a child', async () => {
    const [v1, v2, v3] = await append(other, 4);
    await withTxn(other, clientId, (t) => t.setSnapshot({ versionId: v2!, timestamp: new Date(), versionsSince: 0 }, bytes(1)));
    await other.compact(clientId);
    const future = new Date(Date.now() + 60_000);
    const { answer, runs } = await readAcross(() => other.pruneVersions(clientId, future), async (t) => [
      await t.getVersion(v1!),
      await t.getVersionByParent(v1!),
      await t.getVersionByParent(v2!),
    ]);
    expect(runs).toBe(2);
    expect(answer.map((v) => v?.versionId ?? null)).toEqual([null, null, v3]);
  });
});
