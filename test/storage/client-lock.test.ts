/** The client lock kept between transactions: reused while busy, handed over when wanted, dropped on close. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { access, mkdir, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir = '';
afterEach(() => removeDir(dir));

const exists = (p: string) => access(p).then(() => true, () => false);

it('a storage busy committing to a client hands the lock to another one that waits', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const busy = await FileStorage.open(dir);
  const other = await FileStorage.open(dir);
  await withTxn(busy, clientId, (txn) => txn.newClient(NIL_VERSION_ID));

  let stop = false;
  let busyCommits = 0;
  const hammer = (async () => {
    while (!stop) {
      await withTxn(busy, clientId, async (txn) => {
        await txn.addVersion(newVersionId(), (await txn.getClient())!.latestVersionId, new Uint8Array(8));
      });
      busyCommits += 1;
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  const seen = await withTxn(other, clientId, async (txn) => {
    const id = newVersionId();
    await txn.addVersion(id, (await txn.getClient())!.latestVersionId, new Uint8Array(8));
    return id;
  });
  const waited = Date.now() - started;
  const before = busyCommits;
  await new Promise((r) => setTimeout(r, 100));
  stop = true;
  await hammer;

  expect(waited).toBeLessThan(1000);
  expect(busyCommits).toBeGreaterThan(before);
  // The busy storage saw the other's commit: it re-read the client after losing the lease.
  const found = await withTxn(busy, clientId, (txn) => txn.getVersion(seen));
  expect(found?.versionId).toBe(seen);
  await busy.close();
  await other.close();
});

it('close releases the locks kept between transactions', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const storage = await FileStorage.open(dir, { lingerMs: 60_000 });
  await withTxn(storage, clientId, (txn) => txn.newClient(NIL_VERSION_ID));
  const lockDir = path.join(dir, 'locks', `${clientId}.lock`);
  expect(await exists(lockDir)).toBe(true);
  await storage.close();
  expect(await exists(lockDir)).toBe(false);
});

it('what a storage cached under a lease is not trusted after it: a fast commit by another process in between is seen', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const first = await FileStorage.open(dir);
  const second = await FileStorage.open(dir);
  const add = (storage: FileStorage) =>
    withTxn(storage, clientId, async (txn) => {
      const id = newVersionId();
      await txn.addVersion(id, (await txn.getClient())!.latestVersionId, new Uint8Array(8));
      return id;
    });
  const pastLinger = () => new Promise((r) => setTimeout(r, 100));
  await withTxn(first, clientId, (txn) => txn.newClient(NIL_VERSION_ID));
  const a = await add(first);
  await pastLinger();
  // One version on top of the latest: client.json stays as it was, only a .child link appears.
  const b = await add(second);
  await pastLinger();
  const seen = await withTxn(first, clientId, async (txn) => ({
    latest: (await txn.getClient())!.latestVersionId,
    child: (await txn.getVersionByParent(a))?.versionId,
  }));
  expect(seen).toEqual({ latest: b, child: b });
  await first.close();
  await second.close();
});

describe('a commit checks the lock directory itself, before proper-lockfile\'s next refresh could notice', () => {
  /** Opens a transaction that stages one version, lets `meddle` act on its lock directory, commits. */
  async function commitAfter(meddle: (lockDir: string) => Promise<void>, stage: 'version' | 'snapshot') {
    dir = await makeTempDir();
    const clientId = parseClientId(crypto.randomUUID());
    const storage = await FileStorage.open(dir, { staleMs: 8000 });
    await withTxn(storage, clientId, (txn) => txn.newClient(NIL_VERSION_ID));
    const txn = await storage.txn(clientId);
    const id = newVersionId();
    await txn.addVersion(id, NIL_VERSION_ID, new Uint8Array(8));
    // A snapshot makes it the commit through client.json's rename instead of the .child link.
    if (stage === 'snapshot') await txn.setSnapshot({ versionId: id, timestamp: new Date(), versionsSince: 0 }, new Uint8Array(4));
    const lockDir = path.join(dir, 'locks', `${clientId}.lock`);
    await meddle(lockDir);
    const outcome = await txn.commit().then(() => 'committed', (err: { code?: string }) => err.code);
    await storage.close();
    // The holder that made the lock directory again lets it go, or the reader would wait for it.
    await rm(lockDir, { recursive: true, force: true });
    const reader = await FileStorage.open(dir);
    const latest = await withTxn(reader, clientId, async (t) => (await t.getClient())?.latestVersionId);
    await reader.close();
    return { outcome, latest };
  }

  const staleFor = (ms: number) => async (lockDir: string) => {
    const then = new Date(Date.now() - ms);
    await utimes(lockDir, then, then);
  };
  const takenOver = async (lockDir: string) => {
    await rm(lockDir, { recursive: true });
    await mkdir(lockDir);
  };

  for (const stage of ['version', 'snapshot'] as const) {
    it(`a lock not refreshed for 3/4 of staleMs fails the ${stage} commit`, async () => {
      expect(await commitAfter(staleFor(6500), stage)).toEqual({ outcome: 'LOCK_LOST', latest: NIL_VERSION_ID });
    });

    it(`a lock directory made again by someone else fails the ${stage} commit`, async () => {
      expect(await commitAfter(takenOver, stage)).toEqual({ outcome: 'LOCK_LOST', latest: NIL_VERSION_ID });
    });
  }

  it('a lock only late in its refresh fails the commit but stays usable and is released on close', async () => {
    dir = await makeTempDir();
    const clientId = parseClientId(crypto.randomUUID());
    // A lock this process dropped without releasing would keep it out too, until LOCK_TIMEOUT.
    const storage = await FileStorage.open(dir, { lingerMs: 60_000, waitMs: 1000 });
    await withTxn(storage, clientId, (txn) => txn.newClient(NIL_VERSION_ID));
    const lockDir = path.join(dir, 'locks', `${clientId}.lock`);
    const add = () => withTxn(storage, clientId, async (txn) => txn.addVersion(newVersionId(), (await txn.getClient())!.latestVersionId, new Uint8Array(8)));
    await staleFor(6500)(lockDir);
    await expect(add()).rejects.toMatchObject({ code: 'LOCK_LOST' });
    // As proper-lockfile's next refresh would: the lock was ours all along.
    await staleFor(0)(lockDir);
    await add();
    await storage.close();
    expect(await exists(lockDir)).toBe(false);
  });

  it('a commit that finds its lock taken over leaves every file alone, even those it wrote', async () => {
    dir = await makeTempDir();
    const clientId = parseClientId(crypto.randomUUID());
    const storage = await FileStorage.open(dir);
    const txn = await storage.txn(clientId);
    await txn.newClient(NIL_VERSION_ID);
    await txn.addVersion(newVersionId(), NIL_VERSION_ID, new Uint8Array(8));
    // The commit checks its lock before it writes anything, then starts writing; meanwhile (before
    // its first wait ends) a new holder takes the lock and creates the same client's directory.
    const committing = txn.commit();
    const lockDir = path.join(dir, 'locks', `${clientId}.lock`);
    rmSync(lockDir, { recursive: true });
    mkdirSync(lockDir);
    const theirs = path.join(dir, clientId, 'theirs');
    mkdirSync(path.dirname(theirs), { recursive: true });
    writeFileSync(theirs, '');
    await expect(committing).rejects.toMatchObject({ code: 'LOCK_LOST' });
    expect(await exists(theirs)).toBe(true);
    rmSync(lockDir, { recursive: true });
    await storage.close();
  });

  it('a lock refreshed within the time commits', async () => {
    const { outcome, latest } = await commitAfter(staleFor(3000), 'version');
    expect(outcome).toBe('committed');
    expect(latest).not.toBe(NIL_VERSION_ID);
  });
});
