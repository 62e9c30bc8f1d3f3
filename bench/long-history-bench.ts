/**
 * (f) Long history (issue 21): one client's history of N versions of 1 KiB (TCSYNC_BENCH_LONG_VERSIONS,
 * default 50,000 times TCSYNC_BENCH_SCALE), added over HTTP in sequence, each on top of the last
 * (one replica's pushes), through `tcsync serve` with its automatic compaction (the default),
 * through `tcsync serve --no-compact` (loose files, today's format) and through the SQLite
 * reference server, each a process of its own on the same disk, interleaved in CHUNKS with the
 * order turned each time so that noise on this shared machine falls on all three.
 *
 * Figures: add-version latency p50 and p99 over the whole history (compaction runs while the
 * history grows, so its cost to the adds shows here: serve compacts a client in its pauses, and
 * a client that adds 16,384 versions without one while it adds; after each of its turns the
 * compacting server settles before the next server's turn, so that no server's adds meet
 * another's background work); disk once compaction has settled (the
 * client's directory, allocated blocks and names as du and find count them, against the
 * reference's database files, -wal and -shm included, while both run); then each server is
 * stopped and started again on the same data, and the whole history is walked by
 * get-child-version from nil, one request at a time, as scenario (c) walks (walkHistory): a
 * packed history against the loose one and the reference's, in the same rounds, each walk taken
 * in CHUNKS turns as the adds are.
 *
 * Until `serve` has `--no-compact`, its rows say n/a and only tcsync and the reference run.
 * Deleting thousands of loose files slows creating files nearby for a while on this ext4 (see
 * scratch.ts): the --no-compact process may still meet what the compacting one deleted, which
 * can only make compaction's latency ratio look better than it is; the chunks keep the two in
 * step.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { REFERENCE, REPO, Replica, inTurn, referenceArgs, scaled, start, stop, tcsyncArgs, walkHistory, type Server } from './bench-servers.js';
import { compactionFloor, type FloorLatencies } from './compaction-floor.js';
import { diskUse, type DiskUse } from './disk-use.js';
import { fmt, median, percentile, type BenchSection } from './report.js';
import { scratchDir } from './scratch.js';

const TITLE = '(f) long history: one client adds N versions of 1 KiB in sequence, then walks them after a restart (tcsync figure vs reference figure, ratio tcsync / reference)';
/** TCSYNC_BENCH_LONG_VERSIONS, when set, is N as it is; otherwise 50,000 scaled as every process benchmark is. */
const VERSIONS = process.env.TCSYNC_BENCH_LONG_VERSIONS === undefined ? scaled(50_000) : Math.max(2, Math.round(Number(process.env.TCSYNC_BENCH_LONG_VERSIONS)) || 2);
/** The history is added in this many turns per server, the order turned each time. */
const CHUNKS = 10;
const WALK_ROUNDS = 3;
/** Compaction has settled when the client's directory holds as many names for this long... */
const SETTLED_AFTER_MS = 2000;
/** ...looked at this often... */
const SETTLE_POLL_MS = 250;
/** ...or when this long has passed since the last add, whichever comes first. */
const SETTLE_CAP_MS = 120_000;
/** The reference's database and its companions (sqlite-reference-server.mjs DB_FILE). */
const REFERENCE_FILES = ['taskchampion-sync-server.sqlite3', 'taskchampion-sync-server.sqlite3-wal', 'taskchampion-sync-server.sqlite3-shm'];
const MiB = 1024 * 1024;
const TCSYNC = 'tcsync';
const LOOSE = 'tcsync --no-compact';
const REFERENCE_NAME = 'reference';

interface Run {
  readonly name: string;
  /** `node`'s arguments, the same at the restart. */
  readonly args: readonly string[];
  readonly dataDir: string;
  server: Server;
  readonly replica: Replica;
  readonly addLatencies: number[];
  disk: DiskUse;
  readonly walkRates: number[];
  readonly walkLatencies: number[];
}

interface Settling {
  readonly seconds: number;
  readonly settled: boolean;
}

/** Whether `tcsync serve` as built lists `--no-compact` (added alongside this scenario). */
function serveHasNoCompact(): boolean {
  const help = spawnSync(process.execPath, ['dist/bin.cjs', 'serve', '--help'], { cwd: REPO, encoding: 'utf8' });
  return /--no-compact\b/.test(`${help.stdout}${help.stderr}`);
}

/** How many names are under `dir`; NaN while a compaction removes what is being listed. */
function namesUnder(dir: string): number {
  try {
    return readdirSync(dir, { recursive: true }).length;
  } catch {
    return NaN;
  }
}

/** Waits until the names under `dir` stop changing for SETTLED_AFTER_MS, at most SETTLE_CAP_MS. */
async function settle(dir: string): Promise<Settling> {
  const started = performance.now();
  let names = namesUnder(dir);
  let sameSince = started;
  while (performance.now() - started < SETTLE_CAP_MS) {
    await sleep(SETTLE_POLL_MS);
    const now = namesUnder(dir);
    if (now !== names) {
      names = now;
      sameSince = performance.now();
    } else if (performance.now() - sameSince >= SETTLED_AFTER_MS) {
      return { seconds: (performance.now() - started) / 1000, settled: true };
    }
  }
  return { seconds: (performance.now() - started) / 1000, settled: false };
}

/** What the history costs each server on disk: tcsync's client directory, the reference's database files. */
function historyDisk(run: Run): DiskUse {
  if (run.name === REFERENCE_NAME) return diskUse(...REFERENCE_FILES.map((name) => path.join(run.dataDir, name)).filter((file) => existsSync(file)));
  return diskUse(clientDir(run));
}

function clientDir(run: Run): string {
  return path.join(run.dataDir, run.replica.id);
}

export async function bench(): Promise<BenchSection> {
  if (!existsSync(REFERENCE)) return { title: TITLE, rows: [['(f) long history', 'skipped', `${REFERENCE} is missing`]] };
  const root = await scratchDir('long');
  const dataDir = (name: string) => path.join(root, name.replace(/\W+/g, '-'));
  const noCompact = serveHasNoCompact();
  const specs = [
    { name: TCSYNC, args: tcsyncArgs(['--data-dir', dataDir(TCSYNC)]), dataDir: dataDir(TCSYNC) },
    ...(noCompact ? [{ name: LOOSE, args: [...tcsyncArgs(['--data-dir', dataDir(LOOSE)]), '--no-compact'], dataDir: dataDir(LOOSE) }] : []),
    { name: REFERENCE_NAME, args: referenceArgs(dataDir(REFERENCE_NAME)), dataDir: dataDir(REFERENCE_NAME) },
  ];
  const runs: Run[] = [];
  let settling: Settling = { seconds: NaN, settled: false };
  try {
    for (const spec of specs) {
      const server = await start(spec.name, spec.args);
      runs.push({ ...spec, server, replica: new Replica(server.url), addLatencies: [], disk: { bytes: NaN, names: NaN }, walkRates: [], walkLatencies: [] });
    }
    await sleep(500);
    const compacting = runs[0] as Run;
    for (let chunk = 0; chunk < CHUNKS; chunk++) {
      const count = Math.floor((VERSIONS * (chunk + 1)) / CHUNKS) - Math.floor((VERSIONS * chunk) / CHUNKS);
      for (const run of inTurn(chunk, runs)) {
        for (let i = 0; i < count; i++) run.addLatencies.push(await run.replica.add());
        // Its compaction in the pause after its turn, before the next server's: the journal is
        // shared, and one server's background work would otherwise slow another's adds.
        if (run === compacting) settling = await settle(clientDir(run));
      }
    }
    for (const run of runs) run.disk = historyDisk(run);

    // A restart: what the walk reads is what is on disk, not what the adds left in memory.
    for (const run of runs) await stop(run.server);
    for (const run of runs) {
      run.server = await start(run.name, run.args);
      await run.replica.reconnect(run.server.url);
    }
    await sleep(500);
    // Each walk in CHUNKS turns too: a walk of a short history takes under a second, and noise
    // that long would otherwise fall on one server's walk only.
    for (let round = 0; round < WALK_ROUNDS; round++) {
      const seconds = new Map(runs.map((run) => [run, 0]));
      for (let chunk = 0; chunk < CHUNKS; chunk++) {
        const [from, to] = [chunk, chunk + 1].map((c) => Math.floor((VERSIONS * c) / CHUNKS)) as [number, number];
        for (const run of inTurn(round * CHUNKS + chunk, runs)) {
          const { rate, latencies } = await walkHistory(run.replica, from, to);
          seconds.set(run, (seconds.get(run) as number) + (to - from) / rate);
          run.walkLatencies.push(...latencies);
        }
      }
      for (const run of runs) run.walkRates.push(VERSIONS / (seconds.get(run) as number));
    }
  } finally {
    for (const run of runs) await run.replica.close();
    for (const run of runs) await stop(run.server);
  }
  const floor = await compactionFloor(await scratchDir('long-floor'), VERSIONS, CHUNKS);
  return { title: TITLE, rows: [...rows(runs, settling), floorRow(floor)] };
}

function floorRow(floor: FloorLatencies): readonly [string, string, string] {
  const ratio = (pick: (ms: number[]) => number) => fmt.ratio(pick(floor.compacting) / pick(floor.loose));
  const p99 = (ms: number[]) => percentile(ms, 99);
  return [
    '(f) floor: a raw program\'s commits with a raw compaction beside them vs without (compaction-floor.ts), p50 / p99',
    `${fmt.ms(median(floor.compacting))} / ${fmt.ms(p99(floor.compacting))} vs ${fmt.ms(median(floor.loose))} / ${fmt.ms(p99(floor.loose))}`,
    `${ratio(median)} / ${ratio(p99)}: the same system calls as a commit and as serve's compaction, in the same turns and pauses, without HTTP or checks`,
  ];
}

function rows(runs: readonly Run[], settling: Settling): Array<readonly [string, string, string]> {
  const byName = (name: string) => runs.find((run) => run.name === name);
  const t = byName(TCSYNC) as Run;
  const r = byName(REFERENCE_NAME) as Run;
  const l = byName(LOOSE);
  const goal = (met: boolean, text: string) => `${met ? 'pass' : 'MISS'}: ${text}`;
  const noLoose = 'n/a (`tcsync serve --help` does not list --no-compact)';
  const p50 = (run: Run) => median(run.addLatencies);
  const p99 = (run: Run) => percentile(run.addLatencies, 99);
  const addRate = (run: Run) => run.addLatencies.length / (run.addLatencies.reduce((sum, ms) => sum + ms, 0) / 1000);
  const walk = (run: Run) => median(run.walkRates);
  const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
  const diskOf = (run: Run) => `${mib(run.disk.bytes)} in ${run.disk.names.toLocaleString('en')} names`;
  const latencyRow = (label: string, pick: (run: Run) => number): readonly [string, string, string] => [
    `(f) add-version ${label}, compaction on`,
    `${fmt.ms(pick(t))} vs ${fmt.ms(pick(r))}`,
    `${fmt.ratio(pick(t) / pick(r))}; --no-compact ${l === undefined ? noLoose : `${fmt.ms(pick(l))}, compaction on / off ${fmt.ratio(pick(t) / pick(l))}; ${goal(pick(t) <= 1.2 * pick(l), 'goal <= 1.20x')}`}`,
  ];
  return [
    ['(f) history', `${VERSIONS.toLocaleString('en')} versions`,
      `of 1 KiB, one client, sequential add-version over HTTP each on top of the last, in ${CHUNKS} turns per server; servers: ${runs.map((run) => run.name).join(', ')}; set TCSYNC_BENCH_LONG_VERSIONS for fewer`],
    latencyRow('p50', p50),
    latencyRow('p99', p99),
    ['(f) add-version rate, sequential', `${fmt.perSec(addRate(t))} vs ${fmt.perSec(addRate(r))}`, `${fmt.ratio(addRate(t) / addRate(r))}; --no-compact ${l === undefined ? 'n/a' : fmt.perSec(addRate(l))}`],
    ['(f) compaction settled before disk was measured', settling.settled ? `after ${settling.seconds.toFixed(1)} s` : `NOT settled after ${settling.seconds.toFixed(0)} s`,
      `names under the client's directory listed every ${SETTLE_POLL_MS} ms until unchanged for ${SETTLED_AFTER_MS / 1000} s (cap ${SETTLE_CAP_MS / 1000} s)`],
    ['(f) disk: client directory (du, find) vs the reference\'s database, -wal and -shm', `${diskOf(t)} vs ${diskOf(r)}`,
      `${fmt.ratio(t.disk.bytes / r.disk.bytes)}; ${goal(t.disk.bytes <= 1.2 * r.disk.bytes, 'goal <= 1.20x')}; --no-compact ${l === undefined ? 'n/a' : `${diskOf(l)}, ${fmt.ratio(l.disk.bytes / r.disk.bytes)}`}; the segments alone ${mib(VERSIONS * 1024)}; while the servers run`],
    ['(f) names in the client\'s directory (find, itself included)', t.disk.names.toLocaleString('en'),
      `${goal(t.disk.names <= 300, 'goal <= 300')}; --no-compact ${l === undefined ? 'n/a' : l.disk.names.toLocaleString('en')}; reference ${r.disk.names} files`],
    ['(f) walk after a restart: get-child-version from nil to the end, one at a time, /s', `${fmt.perSec(walk(t))} vs ${fmt.perSec(walk(r))}`,
      `${fmt.ratio(walk(t) / walk(r))}; median of ${WALK_ROUNDS} walks each; p50 ${fmt.ms(median(t.walkLatencies))} vs ${fmt.ms(median(r.walkLatencies))}, p99 ${fmt.ms(percentile(t.walkLatencies, 99))} vs ${fmt.ms(percentile(r.walkLatencies, 99))}`],
    ['(f) walk after a restart, compacted vs loose files ((c) on --no-compact, same history)', l === undefined ? `${fmt.perSec(walk(t))} vs n/a` : `${fmt.perSec(walk(t))} vs ${fmt.perSec(walk(l))}`,
      l === undefined ? noLoose : `${fmt.ratio(walk(t) / walk(l))}; ${goal(walk(t) >= walk(l), 'goal >= 1.00x')}; p50 ${fmt.ms(median(t.walkLatencies))} vs ${fmt.ms(median(l.walkLatencies))}; first walk after the restart ${fmt.perSec(t.walkRates[0] as number)} vs ${fmt.perSec(l.walkRates[0] as number)}`],
  ];
}
