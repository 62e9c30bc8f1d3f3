/**
 * Processes killed with SIGKILL at random moments while committing: the storage must reopen to a
 * committed prefix holding every acknowledged commit, show nothing staged, and take over the
 * dead process's lock by itself. And while compacting and pruning: a committed suffix instead,
 * cut where a pruning cut it, holding every acknowledged version no acknowledged pruning deleted.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { NIL_VERSION_ID, parseClientId, parseVersionId, type ClientId, type VersionId } from '../../src/ids.js';
import { verifyDataDir } from '../../src/ops/verify.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { readChain } from '../support/storage-chain.js';
import { spawnWriter, type Writer } from '../support/storage-writer.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir = '';
afterEach(() => removeDir(dir));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function killAfterAcks(writer: Writer, minAcks: number, extraMs: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (writer.acks.length < minAcks && writer.child.exitCode === null && Date.now() < deadline) await sleep(5);
  await sleep(extraMs);
  writer.child.kill('SIGKILL');
  await writer.exited;
}

/** Opens the storage and checks the client against everything the killed writers acknowledged. */
async function checkRecovered(clientId: ClientId, acked: string[], staleMs: number): Promise<number> {
  const storage = await FileStorage.open(dir, { staleMs });
  try {
    const started = Date.now();
    const { chain, latest } = await readChain(storage, clientId);
    const lockWait = Date.now() - started;
    const position = new Map(chain.map((id, i) => [id as string, i]));
    for (const id of acked) expect(position.has(id), `acknowledged version ${id} lost`).toBe(true);
    const ackPositions = acked.map((id) => position.get(id)!);
    expect([...ackPositions].sort((a, b) => a - b)).toEqual(ackPositions);
    if (chain.length > 0) expect(latest).toBe(chain.at(-1));
    // Nothing staged is visible: every version file on disk that is not in the chain reads as absent.
    const versionsDir = path.join(dir, clientId, 'versions');
    const files = await readdir(versionsDir).catch(() => [] as string[]);
    await withTxn(storage, clientId, async (txn) => {
      if (latest !== null) expect(await txn.getVersionByParent(latest)).toBeNull();
      for (const file of files.filter((f) => f.endsWith('.version'))) {
        const id = parseVersionId(file.slice(0, -'.version'.length));
        const version = await txn.getVersion(id);
        expect(version === null).toBe(!position.has(id));
      }
      const client = await txn.getClient();
      if (client?.snapshot) await txn.getSnapshotData(client.snapshot.versionId);
    });
    return lockWait;
  } finally {
    await storage.close();
  }
}

it('SIGKILL at random moments, 20 times: every acknowledged commit survives, nothing staged is visible', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const staleMs = 2000;
  const acked: string[] = [];
  for (let round = 0; round < 20; round++) {
    const writer = spawnWriter('crash', dir, clientId, 100_000, staleMs);
    await killAfterAcks(writer, 1, Math.floor(Math.random() * 60));
    acked.push(...writer.acks);
    const lockWait = await checkRecovered(clientId, acked, staleMs);
    // The dead writer's lock is taken over by itself once stale: well within 10 s.
    expect(lockWait).toBeLessThan(10_000);
  }
  expect(acked.length).toBeGreaterThan(20);
}, 240_000);

it('with the default lease, a killed holder\'s lock is taken over within 10 s', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const writer = spawnWriter('append', dir, clientId, 100_000);
  await killAfterAcks(writer, 3, 0);
  const storage = await FileStorage.open(dir);
  const killedAt = Date.now();
  const { chain } = await readChain(storage, clientId);
  const waited = Date.now() - killedAt;
  await storage.close();
  expect(chain.length).toBeGreaterThanOrEqual(writer.acks.length);
  expect(waited).toBeLessThan(10_000);
}, 30_000);

/**
 * Verifies the data directory after a `maintain` writer was killed (nothing but harmless
 * leftovers), reopens it and checks its client against what every writer so far acknowledged:
 * `acked` in order, `pruned` the snapshot versions whose pruning was acknowledged, `cutBefore`
 * where the history began last time (an index into `acked`; -1 from the start). A pruning the
 * writer was killed in may be committed or not, so the history now begins after one of its
 * snapshots' versions, at or after the last one it acknowledged as pruned and never before
 * where it began before. Returns where it begins now.
 */
async function checkMaintained(clientId: ClientId, acked: readonly string[], pruned: readonly string[], cutBefore: number): Promise<number> {
  // The killed writer's lock: crash.test.ts's first test waits for its takeover; here that wait
  // would only slow every round down.
  await rm(path.join(dir, 'locks'), { recursive: true, force: true });
  const report = await verifyDataDir(dir);
  expect(report.findings.filter((f) => f.severity !== 'harmless'), 'verify').toEqual([]);
  const storage = await FileStorage.open(dir, { compactAfter: 0 });
  const position = new Map(acked.map((id, i) => [id, i]));
  try {
    const cut = await withTxn(storage, clientId, async (txn) => {
      const client = await txn.getClient();
      expect(client).not.toBeNull();
      // The history, walked back by id from the latest to the first version that is gone.
      const chain: VersionId[] = [];
      let at = client!.latestVersionId;
      for (;;) {
        const version = at === NIL_VERSION_ID ? null : await txn.getVersion(at);
        if (version === null) break;
        chain.unshift(at);
        at = version.parentVersionId;
      }
      const cutAt = at === NIL_VERSION_ID ? -1 : (position.get(at) ?? -2);
      expect(cutAt, `the history begins after ${at}, which no writer acknowledged`).not.toBe(-2);
      expect(cutAt, 'the history begins before a pruning that was acknowledged').toBeGreaterThanOrEqual(Math.max(-1, ...pruned.map((id) => position.get(id)!)));
      expect(cutAt, 'a pruned version came back').toBeGreaterThanOrEqual(cutBefore);
      const snapshotAt = client!.snapshot === null ? undefined : position.get(client!.snapshot.versionId);
      if (snapshotAt !== undefined) expect(cutAt, 'pruned past the snapshot').toBeLessThanOrEqual(snapshotAt);
      // Every acknowledged version after the cut, in order; none before it, by id or by parent.
      const inChain = new Map(chain.map((id, i) => [id as string, i]));
      const after = acked.slice(cutAt + 1).map((id) => inChain.get(id) ?? -1);
      expect(after, 'an acknowledged version was lost').not.toContain(-1);
      expect([...after].sort((a, b) => a - b)).toEqual(after);
      for (let i = 0; i <= cutAt; i++) {
        const id = parseVersionId(acked[i]!);
        expect(await txn.getVersion(id), `pruned ${id} by id`).toBeNull();
        if (i < cutAt) expect(await txn.getVersionByParent(id), `the child of pruned ${id}`).toBeNull();
      }
      // The history by parent, from the newest pruned version (or nil) on.
      let parent = at;
      for (const id of chain) {
        expect((await txn.getVersionByParent(parent))?.versionId, `the child of ${parent}`).toBe(id);
        parent = id;
      }
      expect(await txn.getVersionByParent(parent)).toBeNull();
      if (cutAt >= 0) expect(await txn.getVersionByParent(NIL_VERSION_ID), 'the first version, pruned').toBeNull();
      // Leftovers (uncommitted versions, loose copies of pruned ones) read as nothing.
      const files = await readdir(path.join(dir, clientId, 'versions'));
      const kept = new Set<string>(chain);
      for (const file of files.filter((f) => f.endsWith('.version'))) {
        const id = parseVersionId(file.slice(0, -'.version'.length));
        if (!kept.has(id)) expect(await txn.getVersion(id), `leftover ${id}`).toBeNull();
      }
      return cutAt;
    });
    return cut;
  } finally {
    await storage.close();
  }
}

it('SIGKILL at random moments of compactions and prunings, 15 times: nothing acknowledged and unpruned is lost, nothing pruned comes back', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const acked: string[] = [];
  const pruned: string[] = [];
  let cut = -1;
  let packed = false;
  for (let round = 0; round < 15; round++) {
    const writer = spawnWriter('maintain', dir, clientId, 100_000, 2000);
    // A pruning comes after the 10th commit of each writer, a compaction after every 8 versions.
    await killAfterAcks(writer, 5 + Math.floor(Math.random() * 30), Math.floor(Math.random() * 30));
    acked.push(...writer.acks);
    pruned.push(...writer.pruned);
    packed ||= (await readdir(path.join(dir, clientId))).some((name) => name.endsWith('.pack'));
    cut = await checkMaintained(clientId, acked, pruned, cut);
  }
  // The rounds compacted and pruned, and acknowledged both.
  expect(packed).toBe(true);
  expect(pruned.length).toBeGreaterThan(3);
  expect(cut).toBeGreaterThan(0);
}, 120_000);
