/**
 * A commit whose fsync fails is answered as not stored, so it must not be visible afterwards
 * either, nor leave its files. EIO is injected with strace into the fsyncs of one directory
 * only (`-P`), which no real file system lets a test choose.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, type VersionId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { readChain } from '../support/storage-chain.js';
import { WRITER_SCRIPT } from '../support/storage-writer.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const hasStrace = spawnSync('strace', ['-V']).status === 0;
if (!hasStrace) {
  if (process.env.CI === 'true') throw new Error('strace is missing on CI: apt-get install strace');
  console.warn('\n*** SKIPPING the fsync-error tests: strace is missing (apt-get install strace) ***\n');
}
const execFileAsync = promisify(execFile);
const clientId = parseClientId('f5f5f5f5-0000-4000-8000-000000000001');
let dir = '';
let dataDir = '';
let chain: VersionId[];

beforeEach(async () => {
  dir = await makeTempDir();
  dataDir = path.join(dir, 'data');
  // A checkpoint after every version, so that client.json lists no pending links to complete.
  const storage = await FileStorage.open(dataDir, { checkpointEvery: 1 });
  const ids = [newVersionId(), newVersionId()] as const;
  await withTxn(storage, clientId, async (txn) => {
    await txn.newClient(NIL_VERSION_ID);
    await txn.addVersion(ids[0], NIL_VERSION_ID, new Uint8Array([1]));
  });
  await withTxn(storage, clientId, (txn) => txn.addVersion(ids[1], ids[0], new Uint8Array([2])));
  await storage.close();
  chain = [...ids];
});
afterEach(() => removeDir(dir));

/** Runs one commit in another process whose fsyncs of `failingDir` all fail with EIO. */
async function commitWithFailingFsync(failingDir: string, versions: 1 | 2): Promise<string> {
  const { stdout } = await execFileAsync(
    'strace',
    ['-f', '-qq', '-o', '/dev/null', '-P', failingDir, '-e', 'trace=fsync', '-e', 'inject=fsync:error=EIO',
      process.execPath, WRITER_SCRIPT, 'once', dataDir, clientId, String(versions)],
    // libuv may route file operations through io_uring, which strace cannot see.
    { env: { ...process.env, UV_USE_IO_URING: '0' } },
  );
  return stdout.trim();
}

const files = async () => [...(await readdir(path.join(dataDir, clientId))), ...(await readdir(path.join(dataDir, clientId, 'versions')))].sort();

async function visibleChain() {
  const storage = await FileStorage.open(dataDir);
  try {
    return await readChain(storage, clientId);
  } finally {
    await storage.close();
  }
}

it.skipIf(!hasStrace)('a version whose directory fsync fails after its link is taken back: not visible, no files left', async () => {
  const before = await files();
  expect(await commitWithFailingFsync(path.join(dataDir, clientId, 'versions'), 1)).toBe('fail STORAGE_IO');
  expect(await visibleChain()).toEqual({ chain, latest: chain[1] });
  expect(await files()).toEqual(before);
});

it.skipIf(!hasStrace)('a commit whose client.json rename cannot be made durable puts the old client.json back and removes its versions', async () => {
  const meta = path.join(dataDir, clientId, 'client.json');
  const [before, metaBefore] = [await files(), await readFile(meta, 'utf8')];
  expect(await commitWithFailingFsync(path.join(dataDir, clientId), 2)).toBe('fail STORAGE_IO');
  expect(await visibleChain()).toEqual({ chain, latest: chain[1] });
  expect(JSON.parse(await readFile(meta, 'utf8'))).toEqual(JSON.parse(metaBefore));
  expect(await files()).toEqual(before);
});
