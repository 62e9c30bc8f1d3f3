/**
 * Versions a FileStorage remembers having read (version-memo.ts): answered from memory while the
 * client's history is the one they were read in, and never after a deletion made it another one,
 * in this process or in another. Whether an answer came from memory is seen by taking the `.child`
 * links away behind the storage's back: from disk, the chain then ends.
 */
import { readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
import { FileStorage, type FileStorageOptions } from '../../src/storage/file/file-storage.js';
import { withTxn, type Storage } from '../../src/storage/storage.js';
import { readChain } from '../support/storage-chain.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir: string;
let clientId: ClientId;
const opened: FileStorage[] = [];

async function open(options: FileStorageOptions = {}): Promise<FileStorage> {
  const storage = await FileStorage.open(dir, options);
  opened.push(storage);
  return storage;
}

/**
 * Adds versions one transaction each (the common commit), creating the client first when missing,
 * in a transaction of its own: client.json then lists none of them (it would keep listing the
 * versions of the commit that created it, and they would stay readable without their links).
 */
async function append(storage: Storage, count: number, size = 16): Promise<VersionId[]> {
  await withTxn(storage, clientId, async (txn) => {
    if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
  });
  const ids: VersionId[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(
      await withTxn(storage, clientId, async (txn) => {
        const id = newVersionId();
        await txn.addVersion(id, (await txn.getClient())!.latestVersionId, new Uint8Array(size).fill(i));
        return id;
      }),
    );
  }
  return ids;
}

async function removeChildLinks(): Promise<void> {
  const versions = path.join(dir, clientId, 'versions');
  for (const name of await readdir(versions)) if (name.endsWith('.child')) await unlink(path.join(versions, name));
}

/** Deletes the client and creates it again without versions: nil has no child now. */
async function deleteAndCreateAgain(storage: FileStorage): Promise<void> {
  expect(await storage.deleteClient(clientId)).toBe(true);
  expect(await storage.liftTombstone(clientId)).toBe(true);
  await append(storage, 0);
}

beforeEach(async () => {
  dir = await makeTempDir();
  clientId = parseClientId(crypto.randomUUID());
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await removeDir(dir);
});

it('answers the versions it read from memory, and only in its own process', async () => {
  const ids = await append(await open(), 3);
  const reader = await open();
  expect((await readChain(reader, clientId)).chain).toEqual(ids);
  await removeChildLinks();
  expect((await readChain(reader, clientId)).chain).toEqual(ids);
  expect((await readChain(await open(), clientId)).chain).toEqual([]);
});

it('does not remember what it committed', async () => {
  const storage = await open();
  await append(storage, 2);
  await removeChildLinks();
  expect((await readChain(storage, clientId)).chain).toEqual([]);
});

it('keeps at most versionMemoBytes, forgetting the least recently used first', async () => {
  // Room for about two versions of 1 KiB with their bookkeeping.
  const storage = await open({ versionMemoBytes: 4500 });
  const ids = await append(storage, 4, 1024);
  await readChain(storage, clientId);
  await removeChildLinks();
  await withTxn(storage, clientId, async (txn) => {
    expect((await txn.getVersionByParent(ids[2]!))?.versionId).toBe(ids[3]);
    expect((await txn.getVersionByParent(ids[1]!))?.versionId).toBe(ids[2]);
    expect(await txn.getVersionByParent(ids[0]!)).toBeNull();
  });
});

it('does not remember packed versions: a walk through a packed history keeps the loose versions it remembers', async () => {
  // Room for about four versions of 1 KiB with their bookkeeping.
  const storage = await open({ versionMemoBytes: 9000, compactAfter: 0 });
  const packed = await append(storage, 20, 1024);
  expect(await storage.compact(clientId)).toEqual({ packed: 20, merged: 0 });
  const loose = await append(storage, 3, 1024);
  // The walk reads the packed versions after the loose ones were remembered (they are the newest).
  await withTxn(storage, clientId, async (txn) => {
    for (const [i, id] of loose.entries()) expect((await txn.getVersionByParent(i === 0 ? packed.at(-1)! : loose[i - 1]!))?.versionId).toBe(id);
  });
  expect((await readChain(storage, clientId)).chain).toEqual([...packed, ...loose]);
  await removeChildLinks();
  // The loose versions are still answered from memory, the packed ones from their pack.
  expect((await readChain(storage, clientId)).chain).toEqual([...packed, ...loose]);
});

it('a client deleted and created again under its id shows its new history, not the remembered one', async () => {
  const storage = await open();
  await append(storage, 2);
  await readChain(storage, clientId);
  await deleteAndCreateAgain(storage);
  expect(await readChain(storage, clientId)).toEqual({ chain: [], latest: NIL_VERSION_ID });
});

it('... also when another process deleted it and created it again', async () => {
  const ours = await open();
  const other = await open();
  await append(ours, 2);
  await readChain(ours, clientId);
  await deleteAndCreateAgain(other);
  expect(await readChain(ours, clientId)).toEqual({ chain: [], latest: NIL_VERSION_ID });
});

it('remembers nothing with versionMemoBytes 0', async () => {
  const storage = await open({ versionMemoBytes: 0 });
  await append(storage, 2);
  await readChain(storage, clientId);
  await removeChildLinks();
  expect((await readChain(storage, clientId)).chain).toEqual([]);
});

it('keeps its own copy of a version\'s bytes, not a view into a buffer shared with other data', async () => {
  const storage = await open();
  const [first] = await append(storage, 1);
  await readChain(storage, clientId);
  await removeChildLinks();
  const remembered = await withTxn(storage, clientId, (txn) => txn.getVersionByParent(NIL_VERSION_ID));
  expect(remembered?.versionId).toBe(first);
  // A small file's bytes come in a view into one of Node's 8 KiB pool blocks, which would stay alive whole.
  expect(remembered!.historySegment.buffer.byteLength).toBe(remembered!.historySegment.byteLength);
});
