/**
 * kill -9 at every step of a compaction and of a pruning, not at random: another process runs one
 * FileStorage.compact or pruneVersions on a prepared client (test/support/pack-history.ts) under
 * strace, which kills it (SIGKILL, injected) as it enters its K-th call of one kind of those that
 * change names (renames, unlinks, links), for every K that kind has in the run. Not fsyncs: a
 * kill -9 keeps the page cache, so one before an fsync leaves what one before the next rename or
 * unlink leaves; their order is commit-syscalls.test.ts's business.
 * After each kill verify finds nothing but harmless leftovers, and the data directory, reopened,
 * holds every committed version, by id and by parent; no pruned one (a pruning is all or
 * nothing: its commit point is client.json's rename); the same latest; and a compaction, a
 * pruning and a new version go through after it. (A pruning that must pack first runs a
 * compaction's steps before its own; the random kills of crash.test.ts cover that one.)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId } from '../../src/ids.js';
import { verifyDataDir } from '../../src/ops/verify.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { expectPrunedHistory, prepareCompaction, preparePruning, segmentOf, type PackHistory } from '../support/pack-history.js';
import { fdPath, hasStrace, parseTrace, quoted, TRACEABLE_ENV, type Call } from '../support/strace.js';
import { WRITER_SCRIPT } from '../support/storage-writer.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

/** The kinds of calls killed at, each with the names the kernel may know it by. */
const KINDS = {
  rename: ['rename', 'renameat', 'renameat2'],
  unlink: ['unlink', 'unlinkat'],
  link: ['link', 'linkat'],
} as const;
type Kind = keyof typeof KINDS;
const kindOf = (name: string) => (Object.keys(KINDS) as Kind[]).find((kind) => (KINDS[kind] as readonly string[]).includes(name)) ?? null;

let dir = '';
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(() => removeDir(dir));

type Mode = 'compact' | 'prune';

interface Run {
  readonly killed: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** The calls of the kinds above, in the order they were made. */
  readonly calls: Call[];
}

/**
 * Runs the writer's `mode` on `dataDir` under strace, killed as it enters its `k`-th call of
 * `kind` when given. strace counts calls per thread: one threadpool thread (and the main thread)
 * make each kind's calls in the program's order, which the reference run checks.
 */
function runWriter(dataDir: string, mode: Mode, history: PackHistory, kill: { kind: Kind; k: number } | null): Run {
  const log = `${dataDir}.trace`;
  const traced = Object.values(KINDS).flat().join(',');
  const inject = kill === null ? [] : ['-e', `inject=${KINDS[kill.kind].join(',')}:signal=KILL:when=${kill.k}`];
  const arg = mode === 'prune' ? String(history.cut.getTime()) : '0';
  const run = spawnSync(
    'strace',
    ['-f', '-qq', '-y', '-o', log, '-e', `trace=${traced}`, ...inject, process.execPath, WRITER_SCRIPT, mode, dataDir, history.clientId, arg],
    { env: { ...TRACEABLE_ENV, UV_THREADPOOL_SIZE: '1' }, encoding: 'utf8' },
  );
  const calls = parseTrace(readFileSync(log, 'utf8')).filter((call) => kindOf(call.name) !== null);
  return { killed: run.signal === 'SIGKILL', stdout: run.stdout, stderr: run.stderr, calls };
}

/** A call with the run's own names left out: `rename U/pack-U.pack.N U/pack-U.pack`, `unlink U/versions/U.child`. */
function describeCall(call: Call, dataDir: string): string {
  const paths = fdPath(call.args) !== null ? [fdPath(call.args)!] : quoted(call.args);
  const names = paths.map((p) =>
    (path.relative(dataDir, p) || '.')
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'U')
      .replace(/\.\d+$/, '.N'),
  );
  return `${kindOf(call.name)} ${names.join(' ')}`;
}

/** Whether the run renamed client.json: its commit. */
const committedIn = (run: Run) => run.calls.some((call) => call.ok && kindOf(call.name) === 'rename' && quoted(call.args)[1]?.endsWith('/client.json'));

/**
 * Reopens the data directory of a killed (or finished) run and checks it, then compacts, prunes
 * and adds a version. The run's change is committed when it renamed client.json.
 */
async function checkAfter(dataDir: string, mode: Mode, history: PackHistory, committed: boolean): Promise<void> {
  // The killed writer's lock lease: waiting for it to go stale is crash.test.ts's business, and
  // would cost seconds at every step here.
  await rm(path.join(dataDir, 'locks'), { recursive: true, force: true });
  const pruned = mode === 'prune' && committed ? history.pruned : 0;
  // What a kill leaves (unnamed packs, pack temporaries, loose copies of packed versions) is harmless.
  const report = await verifyDataDir(dataDir);
  expect(report.findings.filter((f) => f.severity !== 'harmless'), 'verify').toEqual([]);
  expect(report.versions, 'versions verify counts').toBe(history.ids.length - pruned);
  const storage = await FileStorage.open(dataDir, { compactAfter: 0 });
  try {
    await expectPrunedHistory(storage, dataDir, history, pruned);
    // A compaction packs what the run left loose: all loose versions unless it was a committed compaction.
    const compaction = await storage.compact(history.clientId);
    expect(compaction?.packed ?? 0, 'versions a compaction packs after the run').toBe(mode === 'compact' && committed ? 0 : history.loose);
    await expectPrunedHistory(storage, dataDir, history, pruned);
    expect(await storage.pruneVersions(history.clientId, history.cut)).toBe(history.pruned - pruned);
    await expectPrunedHistory(storage, dataDir, history, history.pruned);
    const next = newVersionId();
    await withTxn(storage, history.clientId, (txn) => txn.addVersion(next, history.ids.at(-1) ?? NIL_VERSION_ID, segmentOf(history.ids.length)));
    await expectPrunedHistory(storage, dataDir, { ...history, ids: [...history.ids, next] }, history.pruned);
  } finally {
    await storage.close();
  }
}

/**
 * Prepares the history once, runs the writer to its end for reference, then once per step,
 * killed there, each time on a fresh copy; the steps killed at, described.
 */
async function killAtEveryStep(mode: Mode, prepare: (dataDir: string) => Promise<PackHistory>): Promise<string[]> {
  const template = path.join(dir, `${mode}-template`);
  const history = await prepare(template);
  let runs = 0;
  const fresh = async () => {
    const dataDir = path.join(dir, `${mode}-${++runs}`);
    await cp(template, dataDir, { recursive: true, preserveTimestamps: true });
    return dataDir;
  };

  const referenceDir = await fresh();
  const reference = runWriter(referenceDir, mode, history, null);
  expect(reference.killed, reference.stderr).toBe(false);
  expect(reference.stdout).toBe(mode === 'prune' ? `pruned ${history.pruned}\n` : `compacted ${history.loose}\n`);
  expect(committedIn(reference)).toBe(true);
  await checkAfter(referenceDir, mode, history, true);

  const killedAt: string[] = [];
  for (const kind of Object.keys(KINDS) as Kind[]) {
    const expected = reference.calls.filter((call) => kindOf(call.name) === kind);
    // strace's count is per thread: each kind's calls must come from one thread to be met in order.
    expect(new Set(expected.map((call) => call.tid)).size, `threads making ${kind} calls`).toBeLessThanOrEqual(1);
    for (let k = 1; k <= expected.length; k++) {
      const dataDir = await fresh();
      const run = runWriter(dataDir, mode, history, { kind, k });
      expect(run.killed, `${kind} ${k}: ${run.stdout} ${run.stderr}`).toBe(true);
      const last = run.calls.at(-1)!;
      expect(last.result, `${kind} ${k}: the run ends in the call killed in`).toBeNull();
      const step = describeCall(last, dataDir);
      expect(step, `${kind} ${k}`).toBe(describeCall(expected[k - 1]!, referenceDir));
      killedAt.push(step);
      await checkAfter(dataDir, mode, history, committedIn(run));
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  return killedAt;
}

const TEMP_PACK = 'rename U/pack-U.pack.N U/pack-U.pack';
const META = 'rename U/client.json.N U/client.json';

describe.skipIf(!hasStrace)('kill -9 at every step', () => {
  it('of a compaction: committed versions stay readable by id and by parent, and the next compaction, pruning and version go through', async () => {
    const steps = await killAtEveryStep('compact', prepareCompaction);
    // Before the pack's rename, between it and client.json's, and while removing the loose
    // files and the merged pack.
    expect(steps).toEqual(expect.arrayContaining([TEMP_PACK, META, 'unlink U/versions/U.child', 'unlink U/versions/U.version', 'unlink U/pack-U.pack']));
    expect(steps.indexOf(TEMP_PACK)).toBeLessThan(steps.indexOf(META));
  }, 120_000);

  it('of a pruning: nothing pruned comes back, or all of it is still there, and the next compaction, pruning and version go through', async () => {
    const steps = await killAtEveryStep('prune', preparePruning);
    // Before the rewritten pack's rename, while removing the loose copies before client.json's
    // rename, and while removing the replaced pack after it.
    expect(steps).toEqual(expect.arrayContaining([TEMP_PACK, META, 'unlink U/versions/U.child', 'unlink U/versions/U.version', 'unlink U/pack-U.pack']));
    expect(steps.indexOf(TEMP_PACK)).toBeLessThan(steps.indexOf(META));
  }, 120_000);
});
