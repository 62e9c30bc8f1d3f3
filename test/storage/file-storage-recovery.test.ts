/**
 * The file storage's behaviour after crashes and damage, set up by writing the files a crash or a
 * bad disk would leave, then reading through the public interface.
 */
import { cp, link, mkdir, readFile, readdir, rename, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTcsyncError, type ErrorCode } from '../../src/errors.js';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
import { DATA_FORMAT, FileStorage } from '../../src/storage/file/file-storage.js';
import { encodeVersion } from '../../src/storage/file/version-file.js';
import { withTxn, type StorageTxn } from '../../src/storage/storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir: string;
let storage: FileStorage;
let clientId: ClientId;
const bytes = (...v: number[]) => new Uint8Array(v);
const inTxn = <T>(work: (txn: StorageTxn) => Promise<T>) => withTxn(storage, clientId, work);
const versionsDir = () => path.join(dir, clientId, 'versions');

async function errorCode(promise: Promise<unknown>): Promise<ErrorCode | unknown> {
  return promise.then(
    () => 'no error',
    (e: unknown) => (isTcsyncError(e) ? e.code : e),
  );
}

async function chain(count: number): Promise<VersionId[]> {
  return inTxn(async (txn) => {
    if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
    const ids: VersionId[] = [];
    for (let i = 0; i < count; i++) {
      const id = newVersionId();
      await txn.addVersion(id, ids.at(-1) ?? (await txn.getClient())!.latestVersionId, bytes(i));
      ids.push(id);
    }
    return ids;
  });
}

/** One version per transaction: the fast commit path. */
async function appendEach(count: number): Promise<VersionId[]> {
  const ids: VersionId[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(
      await inTxn(async (txn) => {
        const id = newVersionId();
        await txn.addVersion(id, (await txn.getClient())!.latestVersionId, bytes(i));
        return id;
      }),
    );
  }
  return ids;
}

async function reopen(): Promise<void> {
  await storage.close();
  storage = await FileStorage.open(dir);
}

beforeEach(async () => {
  dir = await makeTempDir();
  storage = await FileStorage.open(dir);
  clientId = parseClientId(crypto.randomUUID());
});
afterEach(async () => {
  await storage.close();
  await removeDir(dir);
});

describe('leftovers of crashed transactions', () => {
  it('a staged version file without its .child link is invisible, and its id can be committed later', async () => {
    const [v1] = await chain(1);
    const staged = newVersionId();
    await writeFile(path.join(versionsDir(), `${staged}.version`), Buffer.concat(encodeVersion({ versionId: staged, parentVersionId: v1!, historySegment: bytes(6, 6) })));
    await reopen();
    await inTxn(async (txn) => {
      expect((await txn.getClient())?.latestVersionId).toBe(v1);
      expect(await txn.getVersion(staged)).toBeNull();
      expect(await txn.getVersionByParent(v1!)).toBeNull();
      await txn.addVersion(staged, v1!, bytes(1, 2, 3));
    });
    expect((await inTxn((txn) => txn.getVersion(staged)))?.historySegment).toEqual(bytes(1, 2, 3));
  });

  it('a committed id added again is VERSION_EXISTS at commit, in either commit path, and changes no file', async () => {
    const [v1] = await chain(1);
    const [, v3] = await appendEach(2);
    const before = await readdir(versionsDir());
    const v1Bytes = await readFile(path.join(versionsDir(), `${v1}.version`));
    // One version on top of the latest (the link commit), then two at once (the client.json commit).
    expect(await errorCode(inTxn((txn) => txn.addVersion(v1!, v3!, bytes(9))))).toBe('VERSION_EXISTS');
    expect(await errorCode(inTxn(async (txn) => {
      const fresh = newVersionId();
      await txn.addVersion(fresh, v3!, bytes(8));
      await txn.addVersion(v1!, fresh, bytes(9));
    }))).toBe('VERSION_EXISTS');
    expect((await readdir(versionsDir())).sort()).toEqual(before.sort());
    expect(await readFile(path.join(versionsDir(), `${v1}.version`))).toEqual(v1Bytes);
    expect((await inTxn((txn) => txn.getClient()))?.latestVersionId).toBe(v3);
  });

  it('a torn version file left by a crash mid-write reads as absent', async () => {
    const [v1] = await chain(1);
    const torn = newVersionId();
    await writeFile(path.join(versionsDir(), `${torn}.version`), '{"versionId":"');
    await reopen();
    expect(await inTxn((txn) => txn.getVersion(torn))).toBeNull();
    expect((await inTxn((txn) => txn.getClient()))?.latestVersionId).toBe(v1);
  });

  it('a crash after client.json was committed but before its .child links is repaired on load', async () => {
    // Versions added in one transaction to a client that exists are committed by client.json,
    // which lists their links as pending; a new client's links are made before its commit.
    const [v0] = await chain(1);
    const [v1, v2] = await chain(2);
    await unlink(path.join(versionsDir(), `${v0}.child`));
    await unlink(path.join(versionsDir(), `${v1}.child`));
    await reopen();
    await inTxn(async (txn) => {
      expect((await txn.getClient())?.latestVersionId).toBe(v2);
      expect((await txn.getVersionByParent(v0!))?.versionId).toBe(v1);
      expect((await txn.getVersion(v2!))?.parentVersionId).toBe(v1);
    });
    expect((await readdir(versionsDir())).filter((f) => f.endsWith('.child'))).toHaveLength(3);
  });

  it('temporary and unreferenced files are ignored; a directory without client.json is no client', async () => {
    const [v1] = await chain(1);
    await writeFile(path.join(dir, clientId, 'client.json.12345'), '{"torn');
    await writeFile(path.join(dir, clientId, `snapshot-${crypto.randomUUID()}.bin`), 'garbage');
    expect((await inTxn((txn) => txn.getClient()))?.latestVersionId).toBe(v1);

    // As an older tcsync's creation, built in place, leaves it when interrupted.
    const other = parseClientId(crypto.randomUUID());
    await mkdir(path.join(dir, other, 'versions'), { recursive: true });
    await writeFile(path.join(dir, other, 'versions', `${newVersionId()}.version`), 'torn');
    expect(await withTxn(storage, other, (txn) => txn.getClient())).toBeNull();
    expect(await storage.listClients(null, 10)).toEqual([clientId]);
    await withTxn(storage, other, (txn) => txn.newClient(NIL_VERSION_ID));
    expect((await withTxn(storage, other, (txn) => txn.getClient()))?.latestVersionId).toBe(NIL_VERSION_ID);
    expect(await readdir(path.join(dir, other, 'versions'))).toEqual([]);
  });

  /** A new client's directory as #commitNewClient builds it under trash/, all but its rename into place. */
  async function buildUnderTrash(id: ClientId): Promise<string> {
    const built = path.join(dir, 'trash', `${id}.new-${crypto.randomUUID()}`);
    const version = newVersionId();
    await mkdir(path.join(built, 'versions'), { recursive: true });
    await writeFile(path.join(built, 'versions', `${version}.version`), encodeVersion({ versionId: version, parentVersionId: NIL_VERSION_ID, historySegment: bytes(1) }));
    await link(path.join(built, 'versions', `${version}.version`), path.join(built, 'versions', `${NIL_VERSION_ID}.child`));
    await writeFile(path.join(built, 'client.json'), JSON.stringify({ checkpointVersionId: version }));
    return built;
  }

  it('a new client whose creation was interrupted before its rename is no client, and the next opening removes it', async () => {
    await buildUnderTrash(clientId);
    expect(await inTxn((txn) => txn.getClient())).toBeNull();
    await reopen();
    expect(await readdir(path.join(dir, 'trash'))).toEqual([]);
    expect(await storage.listClients(null, 10)).toEqual([]);
  });

  it('an opening leaves alone a new client that another process is building under its lock', async () => {
    let opening: Promise<FileStorage> | null = null;
    await storage.withClientLock(clientId, async (clientDir) => {
      const built = await buildUnderTrash(clientId);
      opening = FileStorage.open(dir);
      await sleep(200);
      // The builder commits: its directory is still whole.
      await rename(built, clientDir);
    });
    const other = await opening!;
    try {
      expect(await readdir(path.join(dir, 'trash'))).toEqual([]);
      expect(await readdir(versionsDir())).toHaveLength(2);
    } finally {
      await other.close();
    }
  });

  it('replacing a snapshot removes the old blob', async () => {
    const [v1, v2] = await chain(2);
    await inTxn((txn) => txn.setSnapshot({ versionId: v1!, timestamp: new Date(), versionsSince: 1 }, bytes(1)));
    await inTxn((txn) => txn.setSnapshot({ versionId: v2!, timestamp: new Date(), versionsSince: 0 }, bytes(2)));
    const blobs = (await readdir(path.join(dir, clientId))).filter((f) => f.startsWith('snapshot-'));
    expect(blobs).toHaveLength(1);
    expect(await inTxn((txn) => txn.getSnapshotData(v2!))).toEqual(bytes(2));
  });
});

describe('copies', () => {
  it('a copy of the data directory that did not keep hard links still works', async () => {
    const ids = await chain(3);
    await appendEach(2);
    await storage.close();
    const copy = `${dir}-copy`;
    // fs.cp, like `cp -r`, copies each hard link as a file of its own.
    await cp(dir, copy, { recursive: true });
    storage = await FileStorage.open(copy);
    try {
      const client = await inTxn((txn) => txn.getClient());
      await inTxn(async (txn) => {
        for (const id of ids) expect((await txn.getVersion(id))?.versionId).toBe(id);
        expect((await txn.getVersionByParent(ids[0]!))?.versionId).toBe(ids[1]);
      });
      await appendEach(1);
      expect((await inTxn((txn) => txn.getVersionByParent(client!.latestVersionId)))).not.toBeNull();
    } finally {
      await storage.close();
      await removeDir(copy);
      storage = await FileStorage.open(dir);
    }
  });
});

describe('damage', () => {
  it('a torn client.json is CORRUPT for that client only', async () => {
    await chain(1);
    await writeFile(path.join(dir, clientId, 'client.json'), '{"format": 1, "checkpointVer');
    await reopen();
    expect(await errorCode(inTxn((txn) => txn.getClient()))).toBe('CORRUPT');
    const other = parseClientId(crypto.randomUUID());
    await withTxn(storage, other, (txn) => txn.newClient(NIL_VERSION_ID));
  });

  it('a truncated version file is CORRUPT, not a short segment', async () => {
    const [v1] = await chain(1);
    await truncate(path.join(versionsDir(), `${v1}.version`), 150);
    expect(await errorCode(inTxn((txn) => txn.getVersion(v1!)))).toBe('CORRUPT');
    expect(await errorCode(inTxn((txn) => txn.getVersionByParent(NIL_VERSION_ID)))).toBe('CORRUPT');
  });

  it('a snapshot blob whose bytes changed is CORRUPT', async () => {
    const [v1] = await chain(1);
    await inTxn((txn) => txn.setSnapshot({ versionId: v1!, timestamp: new Date(), versionsSince: 0 }, bytes(1, 2, 3)));
    const [blob] = (await readdir(path.join(dir, clientId))).filter((f) => f.startsWith('snapshot-'));
    await writeFile(path.join(dir, clientId, blob!), bytes(1, 2, 4));
    expect(await errorCode(inTxn((txn) => txn.getSnapshotData(v1!)))).toBe('CORRUPT');
  });

  it('a .child link that names another parent is CORRUPT', async () => {
    const [v1, v2] = await chain(2);
    await unlink(path.join(versionsDir(), `${v1}.child`));
    await link(path.join(versionsDir(), `${v1}.version`), path.join(versionsDir(), `${v1}.child`));
    expect(await errorCode(inTxn((txn) => txn.getVersionByParent(v1!)))).toBe('CORRUPT');
    expect(v2).toBeDefined();
  });
});

describe('checkpoints', () => {
  it('client.json is rewritten every 64 fast commits, and state reads the same either side', async () => {
    await chain(1);
    const metaFile = path.join(dir, clientId, 'client.json');
    const first = JSON.parse(await readFile(metaFile, 'utf8'));
    const ids = await appendEach(64);
    expect(JSON.parse(await readFile(metaFile, 'utf8')).checkpointVersionId).toBe(ids.at(-1));
    expect(first.checkpointVersionId).not.toBe(ids.at(-1));
    const more = await appendEach(10);
    await reopen();
    expect((await inTxn((txn) => txn.getClient()))?.latestVersionId).toBe(more.at(-1));
  });
});

describe('hostile input and bad state', () => {
  it('an id that skipped the parser cannot name a path', async () => {
    for (const bad of ['../../etc', '..', 'ABCDEF00-0000-0000-0000-000000000000', '']) {
      expect(await errorCode(storage.txn(bad as ClientId))).toBe('INVALID_ID');
    }
    await chain(1);
    expect(await errorCode(inTxn((txn) => txn.getVersion('../client.json' as VersionId)))).toBe('INVALID_ID');
  });

  it('a data directory of a newer format is refused; a foreign non-empty one too', async () => {
    await writeFile(path.join(dir, 'format.json'), JSON.stringify({ format: 'tcsync', version: 99 }));
    expect(await errorCode(FileStorage.open(dir))).toBe('UNSUPPORTED_FORMAT');
    const foreign = await makeTempDir();
    await writeFile(path.join(foreign, 'notes.txt'), 'mine');
    expect(await errorCode(FileStorage.open(foreign))).toBe('UNSUPPORTED_FORMAT');
    await removeDir(foreign);
  });

  it('a missing data directory is created and initialised', async () => {
    const fresh = path.join(dir, 'a', 'b');
    const opened = await FileStorage.open(fresh);
    await opened.close();
    expect(JSON.parse(await readFile(path.join(fresh, 'format.json'), 'utf8'))).toEqual(DATA_FORMAT);
  });

  it('a data directory that cannot be created fails at once instead of hanging', async () => {
    // Node's recursive mkdir spins for ever on /proc/<missing>.
    expect(await errorCode(FileStorage.open('/proc/tcsync-cannot-exist/data'))).toBe('STORAGE_IO');
    await writeFile(path.join(dir, 'a-file'), '');
    expect(await errorCode(FileStorage.open(path.join(dir, 'a-file', 'data')))).toBe('STORAGE_IO');
  });

  it('many openers of one fresh data directory at once all succeed and leave one format file', async () => {
    // Two servers started together on a new directory raced here: one saw the other's
    // half-written format file and refused the directory as foreign.
    for (let round = 0; round < 10; round++) {
      const fresh = path.join(dir, `fresh-${round}`);
      const opened = await Promise.all(Array.from({ length: 8 }, () => FileStorage.open(fresh)));
      await Promise.all(opened.map((s) => s.close()));
      expect((await readdir(fresh)).sort()).toEqual(['format.json', 'locks', 'tombstones', 'trash']);
      expect(JSON.parse(await readFile(path.join(fresh, 'format.json'), 'utf8'))).toEqual(DATA_FORMAT);
    }
  });

  it('a temporary format file left by a crash mid-initialisation does not make the directory foreign', async () => {
    const fresh = await makeTempDir();
    await writeFile(path.join(fresh, 'format.json.1234567'), '{"format":"tc');
    const opened = await FileStorage.open(fresh);
    await opened.close();
    expect(JSON.parse(await readFile(path.join(fresh, 'format.json'), 'utf8'))).toEqual(DATA_FORMAT);
    await removeDir(fresh);
  });

  it('a transaction whose lock was lost fails at commit and commits nothing', async () => {
    await storage.close();
    storage = await FileStorage.open(dir, { staleMs: 2000 });
    const [v1] = await chain(1);
    const txn = await storage.txn(clientId);
    await txn.addVersion(newVersionId(), v1!, bytes(1));
    // Another party removes the lock; the holder notices at its next refresh (every staleMs / 2).
    await rm(path.join(dir, 'locks', `${clientId}.lock`), { recursive: true });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await errorCode(txn.commit())).toBe('LOCK_LOST');
    expect((await inTxn((t) => t.getClient()))?.latestVersionId).toBe(v1);
  });
});
