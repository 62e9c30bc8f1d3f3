/**
 * The file storage on a real small ext4 file system that fills up or turns read-only: an
 * acknowledged commit always reads back byte for byte, a refused one leaves nothing visible and
 * no files, and reads go on without a writable disk.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTcsyncError } from '../../src/errors.js';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { SmallFs, smallFsUnavailable } from '../support/small-fs.js';
import { readChain } from '../support/storage-chain.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const clientId: ClientId = parseClientId('5a1e5a1e-0000-4000-8000-000000000001');
let fs: SmallFs;
let dataDir: string;
let storage: FileStorage;

const segment = (size: number, seed: number) => new Uint8Array(size).map((_, i) => (i * 31 + seed) & 0xff);

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'no error',
    (err: unknown) => (isTcsyncError(err) ? err.code : String(err)),
  );
}

/** Adds one version on top of the latest (creating the client first), in one transaction. */
function addOn(s: FileStorage, bytes: Uint8Array, versionId: VersionId = newVersionId()): Promise<VersionId> {
  return withTxn(s, clientId, async (txn) => {
    if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
    await txn.addVersion(versionId, (await txn.getClient())!.latestVersionId, bytes);
    return versionId;
  });
}

function setSnapshot(s: FileStorage, bytes: Uint8Array): Promise<void> {
  return withTxn(s, clientId, async (txn) => {
    const { latestVersionId } = (await txn.getClient())!;
    await txn.setSnapshot({ versionId: latestVersionId, timestamp: new Date(), versionsSince: 0 }, bytes);
  });
}

function readVersion(s: FileStorage, versionId: VersionId) {
  return withTxn(s, clientId, (txn) => txn.getVersion(versionId));
}

function readSnapshot(s: FileStorage) {
  return withTxn(s, clientId, async (txn) => {
    const client = await txn.getClient();
    return client?.snapshot ? { meta: client.snapshot, data: await txn.getSnapshotData(client.snapshot.versionId) } : null;
  });
}

const clientFiles = async () => [
  ...(await readdir(path.join(dataDir, clientId))).filter((n) => n !== 'versions'),
  ...(await readdir(path.join(dataDir, clientId, 'versions'))),
].sort();

/** What a second process would see: a storage that has nothing cached and holds no lock. */
async function reopened<T>(work: (s: FileStorage) => Promise<T>): Promise<T> {
  await storage.close();
  const fresh = await FileStorage.open(dataDir);
  try {
    return await work(fresh);
  } finally {
    await fresh.close();
    storage = await FileStorage.open(dataDir);
  }
}

describe.skipIf(smallFsUnavailable !== null)('on a small real file system', () => {
  beforeEach(async () => {
    fs = SmallFs.create(24);
    dataDir = path.join(fs.dir, 'data');
    storage = await FileStorage.open(dataDir);
  });
  afterEach(async () => {
    await storage.close();
    fs.destroy();
  });

  describe('that is nearly full', () => {
    it('refuses a version larger than the free space with DISK_FULL, shows none of it, keeps no file, and takes it once space returns', async () => {
      const first = await addOn(storage, segment(KiB, 1));
      const before = await clientFiles();
      fs.leaveFree(MiB);
      const big = segment(2 * MiB, 2);
      const id = newVersionId();
      expect(await codeOf(addOn(storage, big, id))).toBe('DISK_FULL');
      expect(await readVersion(storage, id)).toBeNull();
      expect(await readChain(storage, clientId)).toEqual({ chain: [first], latest: first });
      expect(await clientFiles()).toEqual(before);

      fs.release();
      await addOn(storage, big, id);
      expect(Buffer.from((await readVersion(storage, id))!.historySegment).equals(Buffer.from(big))).toBe(true);
      await reopened(async (s) => {
        expect(Buffer.from((await readVersion(s, id))!.historySegment).equals(Buffer.from(big))).toBe(true);
      });
    });

    it('reads every acknowledged version back byte for byte while filling the disk to the last block', async () => {
      fs.leaveFree(3 * MiB);
      const acked: Array<{ id: VersionId; bytes: Uint8Array }> = [];
      for (let i = 0; i < 1000; i++) {
        const bytes = segment(61_000, i);
        const result = await addOn(storage, bytes).then(
          (id) => ({ id }),
          (err: unknown) => ({ err }),
        );
        if ('err' in result) {
          expect(isTcsyncError(result.err, 'DISK_FULL'), String(result.err)).toBe(true);
          break;
        }
        acked.push({ id: result.id, bytes });
      }
      expect(acked.length).toBeGreaterThan(10);
      expect(fs.freeBytes()).toBeLessThan(61_000 + 8 * KiB);
      await reopened(async (s) => {
        expect((await readChain(s, clientId)).chain).toEqual(acked.map((v) => v.id));
        for (const { id, bytes } of acked) {
          expect(Buffer.from((await readVersion(s, id))!.historySegment).equals(Buffer.from(bytes))).toBe(true);
        }
      });
    });

    it('refuses a snapshot larger than the free space and keeps the previous one whole', async () => {
      await addOn(storage, segment(KiB, 1));
      const good = segment(100 * KiB, 3);
      await setSnapshot(storage, good);
      const before = await clientFiles();
      fs.leaveFree(MiB);
      expect(await codeOf(setSnapshot(storage, segment(8 * MiB, 4)))).toBe('DISK_FULL');
      expect(await clientFiles()).toEqual(before);
      await reopened(async (s) => {
        const snapshot = await readSnapshot(s);
        expect(Buffer.from(snapshot!.data!).equals(Buffer.from(good))).toBe(true);
      });
    });

    it('refuses a new client that does not fit and leaves no directory for it', async () => {
      fs.leaveFree(0);
      expect(['DISK_FULL']).toContain(await codeOf(addOn(storage, segment(KiB, 1))));
      fs.release();
      expect(await readdir(dataDir)).not.toContain(clientId);
    });
  });

  describe('that is full to the last block', () => {
    it('still serves reads to a process that holds no lock, and refuses writes with DISK_FULL', async () => {
      const first = await addOn(storage, segment(KiB, 1));
      await setSnapshot(storage, segment(10 * KiB, 5));
      const second = await addOn(storage, segment(KiB, 2));
      fs.leaveFree(0);
      await reopened(async (s) => {
        expect(await readChain(s, clientId)).toEqual({ chain: [first, second], latest: second });
        expect((await readSnapshot(s))!.meta.versionId).toBe(first);
        expect(Buffer.from((await readSnapshot(s))!.data!).equals(Buffer.from(segment(10 * KiB, 5)))).toBe(true);
        expect(await codeOf(addOn(s, segment(KiB, 3)))).toBe('DISK_FULL');
        expect(await codeOf(s.deleteClient(clientId))).toBe('DISK_FULL');
      });
      fs.release();
      expect(await codeOf(addOn(storage, segment(KiB, 3)))).toBe('no error');
    });
  });

  describe('that is mounted read-only', () => {
    it('opens, serves reads, refuses writes with READ_ONLY, and writes again once remounted read-write', async () => {
      const first = await addOn(storage, segment(KiB, 1));
      await setSnapshot(storage, segment(10 * KiB, 5));
      await storage.close();
      fs.remount('ro');
      storage = await FileStorage.open(dataDir);
      expect(await readChain(storage, clientId)).toEqual({ chain: [first], latest: first });
      expect(Buffer.from((await readSnapshot(storage))!.data!).equals(Buffer.from(segment(10 * KiB, 5)))).toBe(true);
      expect(await codeOf(addOn(storage, segment(KiB, 2)))).toBe('READ_ONLY');
      expect(await codeOf(storage.deleteClient(clientId))).toBe('READ_ONLY');

      fs.remount('rw');
      const second = await addOn(storage, segment(KiB, 2));
      expect(await readChain(storage, clientId)).toEqual({ chain: [first, second], latest: second });
    });

    it('reads a commit whose links were still pending when the disk turned read-only', async () => {
      // Several versions in one transaction on a client that exists commit by client.json, which
      // lists their links (a new client's are made before its commit).
      const first = await addOn(storage, segment(KiB, 0));
      const ids = await withTxn(storage, clientId, async (txn) => {
        const a = newVersionId();
        const b = newVersionId();
        await txn.addVersion(a, first, segment(KiB, 1));
        await txn.addVersion(b, a, segment(KiB, 2));
        return [a, b];
      });
      await storage.close();
      // As a crash right after the commit point leaves it: client.json names links not yet made.
      const { unlink } = await import('node:fs/promises');
      for (const parent of [first, ids[0]!]) await unlink(path.join(dataDir, clientId, 'versions', `${parent}.child`));
      fs.remount('ro');
      storage = await FileStorage.open(dataDir);
      expect(await readChain(storage, clientId)).toEqual({ chain: [first, ...ids], latest: ids[1] });
      expect((await readVersion(storage, ids[1]!))?.parentVersionId).toBe(ids[0]);
    });
  });
});
