/**
 * A commit that waits for its fsync inline (CommitPacing) stops its event loop, and with it the
 * lock's lease refresh and the takeover detection that assertHeld() reads. So a holder whose
 * inline fsync stalls past the stale time loses its lock without knowing, and another process may
 * commit meanwhile. The stalled commit must then fail (LOCK_LOST) before its link, and skip its
 * checkpoint, which would otherwise write back the client.json it read before the stall. The
 * stall is made with strace, which delays the fsync of the one version file it names (`-P`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId } from '../../src/ids.js';
import { verifyDataDir } from '../../src/ops/verify.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { readChain } from '../support/storage-chain.js';
import { WRITER_SCRIPT } from '../support/storage-writer.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const hasStrace = spawnSync('strace', ['-V']).status === 0;
if (!hasStrace) {
  if (process.env.CI === 'true') throw new Error('strace is missing on CI: apt-get install strace');
  console.warn('\n*** SKIPPING the inline-stall test: strace is missing (apt-get install strace) ***\n');
}
const clientId = parseClientId('a5a5a5a5-0000-4000-8000-000000000001');
/** proper-lockfile's minimum: the lock of a stalled holder is taken over after about 2 s. */
const STALE_MS = 2000;
/** How long the holder's fsync takes: long enough for the other process to take over and commit. */
const STALL_MS = 6000;
let dir = '';
afterEach(() => removeDir(dir));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const exists = (file: string) => stat(file).then(() => true, () => false);

it.skipIf(!hasStrace)('a commit whose inline fsync stalled past the lease fails, and what the process that took over committed survives', async () => {
  dir = await realpath(await makeTempDir());
  const dataDir = path.join(dir, 'data');
  const options = { staleMs: STALE_MS, checkpointEvery: 1 };
  const setup = await FileStorage.open(dataDir, options);
  const chain = [newVersionId(), newVersionId()] as const;
  await withTxn(setup, clientId, async (txn) => {
    await txn.newClient(NIL_VERSION_ID);
    await txn.addVersion(chain[0], NIL_VERSION_ID, new Uint8Array([1]));
  });
  await withTxn(setup, clientId, (txn) => txn.addVersion(chain[1], chain[0], new Uint8Array([2])));
  await setup.close();

  // A: alone on the client, so its one-version commit waits inline; the fsync of its new version
  // file takes STALL_MS, during which its event loop runs nothing.
  const aVersion = newVersionId();
  const aFile = path.join(dataDir, clientId, 'versions', `${aVersion}.version`);
  const a = spawn(
    'strace',
    ['-f', '-qq', '-o', '/dev/null', '-P', aFile, '-e', 'trace=fsync', '-e', `inject=fsync:delay_exit=${STALL_MS}ms`,
      process.execPath, WRITER_SCRIPT, 'version', dataDir, clientId, aVersion, String(STALE_MS)],
    // libuv may route file operations through io_uring, which strace cannot see.
    { env: { ...process.env, UV_USE_IO_URING: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let aOut = '';
  let aErr = '';
  a.stdout.setEncoding('utf8').on('data', (chunk: string) => (aOut += chunk));
  a.stderr.setEncoding('utf8').on('data', (chunk: string) => (aErr += chunk));
  const aExited = new Promise<number | null>((resolve) => a.on('exit', resolve));
  const deadline = Date.now() + 10_000;
  while (!(await exists(aFile))) {
    if (a.exitCode !== null || Date.now() > deadline) throw new Error(`A never wrote its version: ${aOut} ${aErr}`);
    await sleep(10);
  }

  // B: waits for the lock, takes it over once A's lease is stale, and stores a snapshot, which
  // rewrites client.json. A version would make A's link fail by itself (EEXIST); a snapshot
  // leaves only the stall guard between A and a checkpoint that drops it.
  const b = await FileStorage.open(dataDir, options);
  const snapshotData = new Uint8Array([5, 6, 7]);
  await withTxn(b, clientId, (txn) => txn.setSnapshot({ versionId: chain[1], timestamp: new Date(), versionsSince: 0 }, snapshotData));
  // The premise: B's snapshot was acknowledged while A was still stalled.
  expect(a.exitCode, aOut).toBeNull();
  expect(aOut).toBe('');

  expect(await aExited, aErr).toBe(0);
  // And a version of B's after A has given up, on top of whatever is latest then.
  const bVersion = newVersionId();
  await withTxn(b, clientId, async (txn) => txn.addVersion(bVersion, (await txn.getClient())!.latestVersionId, new Uint8Array([3])));
  await b.close();

  const fresh = await FileStorage.open(dataDir, options);
  const seen = await withTxn(fresh, clientId, async (txn) => {
    const client = await txn.getClient();
    return {
      snapshot: client?.snapshot?.versionId,
      snapshotData: client?.snapshot ? await txn.getSnapshotData(client.snapshot.versionId) : null,
      aVersion: (await txn.getVersion(aVersion))?.versionId ?? null,
    };
  });
  const { chain: readBack, latest } = await readChain(fresh, clientId);
  await fresh.close();
  expect({ a: aOut.trim(), chain: readBack, latest, ...seen, aFileLeft: await exists(aFile) }).toEqual({
    a: 'fail LOCK_LOST',
    chain: [...chain, bVersion],
    latest: bVersion,
    snapshot: chain[1],
    snapshotData,
    aVersion: null,
    // A's lock is B's now: A leaves its uncommitted file alone, which no reader counts.
    aFileLeft: true,
  });
  const report = await verifyDataDir(dataDir);
  expect(report.findings.map((f) => [f.severity, f.file])).toEqual([['harmless', path.relative(dataDir, aFile)]]);
  expect(report.sound).toBe(true);
}, 30_000);
