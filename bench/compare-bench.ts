/**
 * tcsync against the server its users would otherwise run: the SQLite reference server
 * (../shared/bench/sqlite-reference-server.mjs: upstream's protocol and schema on better-sqlite3,
 * WAL, synchronous=FULL), both as separate processes on the same disk, driven by the same load
 * client and interleaved round by round so that noise on this shared machine falls on both.
 * Scenarios: (a) one client adding 1 KiB versions in sequence, (b) 16 clients with 16 requests
 * in flight, (c) a get-child-version walk of (a)'s versions, (d) add-version p50 at a history of
 * 100 and of 5,000, sampled twice: right after the histories are built, and again once the inodes
 * that tcsync's compaction of the 5,000 freed have aged past ext4's minute (RECENT_DELETES_MS).
 * Every process first serves each scenario unmeasured (a server that has run
 * for a while is warm; tcsync's longer request path otherwise pays most of the JIT's warm-up in
 * the first round). Beside them, the floors the figures are read against: the disk's
 * rename-commit limit, and a bare node:http handler (bare-server.ts) running (a) to (c) with
 * tcsync's commit and nothing else; and both servers' RSS. With a PostgreSQL server
 * (bench-postgres.ts) a third process, tcsync serving an empty database of its own, runs
 * (a) to (d) in the same rounds, in rows of its own against the same reference figures, and
 * beside them PostgreSQL's floor on that database (pg-floor.ts): the same SQL with no HTTP, with
 * 1 writer as (a) and 16 as (b).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchDatabase } from './bench-postgres.js';
import { REFERENCE, Replica, addInParallel, inTurn, referenceArgs, repeat, rssMiB, scaled, start, startTcsync, stop, walkHistory, type Server } from './bench-servers.js';
import { fmt, median, percentile, type BenchSection } from './report.js';
import { scratchDir } from './scratch.js';

const ROUNDS = 4;
const SEQUENTIAL_PER_ROUND = scaled(500);
const CLIENTS = 16;
const PARALLEL_PER_ROUND = scaled(50);
const LONG_HISTORY = scaled(5000);
const HISTORY_SAMPLES = scaled(150);
const DISK_SERIAL_PER_ROUND = scaled(250);
/** Unmeasured requests of each kind that every process serves first, as a long-running server is warm. */
const WARM_UP = scaled(300);
const CREATES = 300;
/**
 * How long (d) waits before sampling again. ext4 without a journal (this machine's) does not reuse
 * an inode freed in the last 60 s, and every create in its block group skips such inodes one by
 * one (bench/scratch.ts); tcsync's compaction of the 5,000-version history frees 5,000 at once.
 * Longer than the minute, with the writeback of the inode table (30 s) that ends its longer
 * holding while dirty.
 */
const RECENT_DELETES_MS = 80_000;
const POSTGRES = 'tcsync on PostgreSQL';

interface Figures {
  sequentialRates: number[];
  sequentialLatencies: number[];
  parallelRates: number[];
  walkRates: number[];
  walkLatencies: number[];
  /** (d) right after the histories are built. */
  shortHistory: number[];
  longHistory: number[];
  /** (d) again, RECENT_DELETES_MS later: the figure its target is read against. */
  shortHistoryLater: number[];
  longHistoryLater: number[];
  rssIdle: number;
  rssAfterParallel: number;
  /** After (c): what the file storage's memo of read versions adds shows here. */
  rssAfterWalk: number;
}

/** What a floor program (disk-limit.ts, pg-floor.ts) prints. */
interface Floor {
  readonly rate: number;
  readonly p50: number;
}

/** Runs the floor program `script` (in dist-bench) in a process of its own, with `env`, and reads its figures. */
function runFloor(script: string, args: ReadonlyArray<string | number>, env: NodeJS.ProcessEnv = process.env): Promise<Floor> {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args.map(String)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${script} exited ${code}`)))));
}

/** Runs the disk-limit program in a process of its own, with its own threadpool size. */
function diskLimit(dir: string, writers: number, count: number, threads: number): Promise<Floor> {
  return runFloor('./disk-limit.js', [dir, writers, count], { ...process.env, UV_THREADPOOL_SIZE: String(threads) });
}

/** Warms a server's JIT up with each scenario, on a client of its own. */
async function warmUp(server: Server): Promise<void> {
  const replica = new Replica(server.url);
  const others = Array.from({ length: CLIENTS }, () => new Replica(server.url));
  try {
    await repeat(WARM_UP, () => replica.add());
    await addInParallel(others, Math.ceil(WARM_UP / CLIENTS));
    await walkHistory(replica);
  } finally {
    for (const r of [replica, ...others]) await r.close();
  }
}

/**
 * What creating a file costs in a new directory under `root` right now: p50 ms and kernel CPU µs
 * per create. It moves with what was deleted nearby in the last minutes (see scratch.ts), and
 * only tcsync creates a file per commit, so each run shows it.
 */
function createCost(root: string): { readonly p50: number; readonly systemUs: number } {
  const dir = path.join(root, 'create-cost', randomUUID());
  mkdirSync(dir, { recursive: true });
  const times: number[] = [];
  const before = process.cpuUsage();
  for (let i = 0; i < CREATES; i++) {
    const started = performance.now();
    closeSync(openSync(path.join(dir, String(i)), 'wx'));
    times.push(performance.now() - started);
  }
  return { p50: median(times), systemUs: process.cpuUsage(before).system / CREATES };
}

/** pg-floor.ts's two ways of doing PostgresStorage's database work without HTTP. */
const PG_FLOORS = ['raw', 'storage'] as const;
type PgFloorMode = (typeof PG_FLOORS)[number];
/** Per way, the rounds' figures with 1 writer (as (a)) and with CLIENTS writers (as (b)). */
type PgFloors = Record<PgFloorMode, { serial: Floor[]; parallel: Floor[] }>;

export async function bench(): Promise<BenchSection> {
  if (!existsSync(REFERENCE)) {
    return { title: 'tcsync vs the SQLite reference server', rows: [['comparison', 'skipped', `${REFERENCE} is missing`]] };
  }
  const root = await scratchDir('compare');
  // tcsync on PostgreSQL runs in the same rounds as the other two, when there is a database.
  const database = await benchDatabase();
  // The user's environment decides the threadpool, as it does for serve; unset means tcsync's default.
  const servers = [
    await startTcsync('tcsync', ['--data-dir', path.join(root, 'tcsync')]),
    await start('reference', referenceArgs(path.join(root, 'reference'))),
    ...('skipped' in database ? [] : [await startTcsync(POSTGRES, ['--connection', database.uri])]),
  ];
  const bare = await start('bare node:http', [fileURLToPath(new URL('./bare-server.js', import.meta.url)), path.join(root, 'bare')]);
  // The bare handler runs (a) to (c) in the same rotation as the servers, so that it meets the same noise.
  const measured = [...servers, bare];
  await new Promise((resolve) => setTimeout(resolve, 500));
  const creates = [createCost(root)];
  const figures = new Map<string, Figures>(measured.map((s) => [s.name, {
    sequentialRates: [], sequentialLatencies: [], parallelRates: [], walkRates: [], walkLatencies: [],
    shortHistory: [], longHistory: [], shortHistoryLater: [], longHistoryLater: [], rssIdle: rssMiB(s), rssAfterParallel: NaN, rssAfterWalk: NaN,
  }]));
  const at = (s: Server) => figures.get(s.name) as Figures;
  const sequential = new Map(measured.map((s) => [s.name, new Replica(s.url)]));
  const parallel = new Map(measured.map((s) => [s.name, Array.from({ length: CLIENTS }, () => new Replica(s.url))]));

  const limits = { serial: [] as Floor[], writers4: [] as Floor[], writers16: [] as Floor[] };
  const pgFloors: PgFloors = { raw: { serial: [], parallel: [] }, storage: { serial: [], parallel: [] } };
  const histories = new Map<string, [Replica, Replica]>();
  try {
    for (const s of measured) await warmUp(s);
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of inTurn(round, measured)) {
        const { rate, latencies } = await repeat(SEQUENTIAL_PER_ROUND, () => sequential.get(s.name)!.add());
        at(s).sequentialRates.push(rate);
        at(s).sequentialLatencies.push(...latencies);
      }
      for (const s of inTurn(round, measured)) at(s).parallelRates.push((await addInParallel(parallel.get(s.name)!, PARALLEL_PER_ROUND)).rate);
      // The disk's limits in the same rounds, in the servers' temp directory, so that a "% of the
      // limit" compares figures measured within seconds of each other.
      const disk = path.join(root, 'disk-limit', String(round));
      limits.serial.push(await diskLimit(path.join(disk, 'serial'), 1, DISK_SERIAL_PER_ROUND, 4));
      limits.writers4.push(await diskLimit(path.join(disk, 'w4'), CLIENTS, PARALLEL_PER_ROUND / 2, 4));
      limits.writers16.push(await diskLimit(path.join(disk, 'w16'), CLIENTS, PARALLEL_PER_ROUND / 2, 16));
      // PostgreSQL's floor in the same rounds, on tcsync's database: as (a), and as (b) with as many commits.
      if (!('skipped' in database)) {
        for (const mode of inTurn(round, PG_FLOORS)) {
          pgFloors[mode].serial.push(await runFloor('./pg-floor.js', [database.uri, mode, 1, SEQUENTIAL_PER_ROUND]));
          pgFloors[mode].parallel.push(await runFloor('./pg-floor.js', [database.uri, mode, CLIENTS, PARALLEL_PER_ROUND]));
        }
      }
    }
    for (const s of servers) at(s).rssAfterParallel = rssMiB(s);
    creates.push(createCost(root));

    for (let round = 0; round < ROUNDS - 1; round++) {
      for (const s of inTurn(round, measured)) {
        const { rate, latencies } = await walkHistory(sequential.get(s.name)!);
        at(s).walkRates.push(rate);
        at(s).walkLatencies.push(...latencies);
      }
    }
    for (const s of servers) at(s).rssAfterWalk = rssMiB(s);

    // (d): a client with 100 versions and one with 5,000, then adds on each, interleaved.
    for (const s of servers) {
      const short = new Replica(s.url);
      const long = new Replica(s.url);
      histories.set(s.name, [short, long]);
      for (let i = 0; i < 100; i++) await short.add();
      for (let i = 0; i < LONG_HISTORY; i++) await long.add();
    }
    const sampleHistories = async (short: keyof Figures & `short${string}`, long: keyof Figures & `long${string}`) => {
      for (let i = 0; i < HISTORY_SAMPLES; i++) {
        for (const s of inTurn(i, servers)) {
          const [shortReplica, longReplica] = histories.get(s.name)!;
          at(s)[short].push(await shortReplica.add());
          at(s)[long].push(await longReplica.add());
        }
      }
    };
    await sampleHistories('shortHistory', 'longHistory');
    await new Promise((resolve) => setTimeout(resolve, RECENT_DELETES_MS));
    await sampleHistories('shortHistoryLater', 'longHistoryLater');
  } finally {
    for (const replica of [...sequential.values(), ...[...parallel.values()].flat(), ...[...histories.values()].flat()]) await replica.close();
    for (const s of measured) await stop(s);
    if (!('skipped' in database)) await database.drop();
  }

  const serial = { rate: median(limits.serial.map((l) => l.rate)), p50: median(limits.serial.map((l) => l.p50)) };
  const writers4 = { rate: median(limits.writers4.map((l) => l.rate)) };
  const writers16 = { rate: median(limits.writers16.map((l) => l.rate)) };

  const t = figures.get('tcsync') as Figures;
  const r = figures.get('reference') as Figures;
  const b = figures.get(bare.name) as Figures;
  const ofBare = (pick: (f: Figures) => number) => fmt.pct(pick(t) / pick(b));
  const both = (pick: (f: Figures) => number, show: (v: number) => string) => versus(t, r, pick, show);
  const [aValue, aRatio] = both((f) => median(f.sequentialRates), fmt.perSec);
  const [bValue, bRatio] = both((f) => median(f.parallelRates), fmt.perSec);
  const [cValue, cRatio] = both((f) => median(f.walkRates), fmt.perSec);
  return {
    title: 'tcsync vs the SQLite reference server (tcsync figure vs reference figure, ratio tcsync / reference)',
    rows: [
      ['(a) one client, sequential add-version, 1 KiB', aValue, `${aRatio}; p50 ${fmt.ms(median(t.sequentialLatencies))} vs ${fmt.ms(median(r.sequentialLatencies))}; tcsync = ${fmt.pct(median(t.sequentialRates) / serial.rate)} of the serial rename-commit limit (target >= 0.7x and >= 80%), ${ofBare((f) => median(f.sequentialRates))} of the bare handler's commit`],
      ['(b) 16 clients, 16 in flight', bValue, `${bRatio}; tcsync's threadpool ${process.env.UV_THREADPOOL_SIZE ?? "16 (bin.cjs's default)"}; tcsync = ${fmt.pct(median(t.parallelRates) / Math.max(writers4.rate, writers16.rate))} of the 16-writer rename-commit limit (target >= 1.2x and >= 75%), ${ofBare((f) => median(f.parallelRates))} of the bare handler's commit`],
      ['(c) get-child-version walk of (a)\'s versions', cValue, `${cRatio}; p50 ${fmt.ms(median(t.walkLatencies))} vs ${fmt.ms(median(r.walkLatencies))} (target >= 1.2x); ${ofBare((f) => median(f.walkRates))} of the bare handler`],
      ['(d) add-version p50, history 5,000 / 100', `${fmt.ratio(later(t))} vs ${fmt.ratio(later(r))}`, `p50 at 100: ${fmt.ms(median(t.shortHistoryLater))} vs ${fmt.ms(median(r.shortHistoryLater))} (target <= 1.2x); sampled ${RECENT_DELETES_MS / 1000} s after the histories were built`],
      ['(d) the same, right after the histories were built', `${fmt.ratio(growth(t))} vs ${fmt.ratio(growth(r))}`, `p50 at 100: ${fmt.ms(median(t.shortHistory))} vs ${fmt.ms(median(r.shortHistory))}; tcsync's compaction of the 5,000 has just freed their inodes, which ext4 without a journal skips one by one at every create for a minute (docs/performance.md)`],
      ['RSS idle', `${t.rssIdle.toFixed(0)} MiB vs ${r.rssIdle.toFixed(0)} MiB`, fmt.ratio(t.rssIdle / r.rssIdle)],
      ['RSS after (b)', `${t.rssAfterParallel.toFixed(0)} MiB vs ${r.rssAfterParallel.toFixed(0)} MiB`, `${fmt.ratio(t.rssAfterParallel / r.rssAfterParallel)} (target <= 1.5x)`],
      ['RSS after (c)', `${t.rssAfterWalk.toFixed(0)} MiB vs ${r.rssAfterWalk.toFixed(0)} MiB`, `${fmt.ratio(t.rssAfterWalk / r.rssAfterWalk)}; tcsync's memo of read versions holds at most 8 MiB`],
      ['creating a file in a new directory beside the servers\' (before the rounds; after (b)\'s)', creates.map((c) => `p50 ${fmt.ms(c.p50)}, ${c.systemUs.toFixed(0)} µs kernel CPU`).join('; '), 'a cost only tcsync pays per commit; on this ext4 without a journal it grows with files deleted nearby in the last minutes (see docs/performance.md)'],
      ['rename-commit limit, serial', `${fmt.perSec(serial.rate)}, p50 ${fmt.ms(serial.p50)}`, 'write 1 KiB, fsync, rename, fsync the directory; median of the rounds of (a) and (b)'],
      ['rename-commit limit, 16 writers', `${fmt.perSec(writers4.rate)} (threadpool 4), ${fmt.perSec(writers16.rate)} (threadpool 16)`, ''],
      ["bare node:http handler doing tcsync's commit: (a), (b)", `${fmt.perSec(median(b.sequentialRates))}, p50 ${fmt.ms(median(b.sequentialLatencies))}; ${fmt.perSec(median(b.parallelRates))}`, 'the floor of a commit over HTTP: create, write, fsync, link, fsync the directory, and nothing else; in the rounds of (a) and (b)'],
      ["bare node:http handler, (c)'s walk from memory", `${fmt.perSec(median(b.walkRates))}, p50 ${fmt.ms(median(b.walkLatencies))}`, `the request path's floor; p99 ${fmt.ms(percentile(b.walkLatencies, 99))}`],
      ...postgresRows(figures.get(POSTGRES), r, pgFloors, 'skipped' in database ? database.skipped : ''),
    ],
  };
}

/** `a vs b` shown, and the ratio a / b. */
function versus(a: Figures, b: Figures, pick: (f: Figures) => number, show: (v: number) => string): readonly [string, string] {
  return [`${show(pick(a))} vs ${show(pick(b))}`, fmt.ratio(pick(a) / pick(b))];
}

const growth = (f: Figures) => median(f.longHistory) / median(f.shortHistory);
const later = (f: Figures) => median(f.longHistoryLater) / median(f.shortHistoryLater);

/**
 * tcsync on PostgreSQL (`serve --connection`, its default pool of 10 connections) against the
 * same reference figures, measured in the same rounds: rows of their own, so that the rows above
 * keep comparing the file storage.
 */
function postgresRows(p: Figures | undefined, r: Figures, floors: PgFloors, skipped: string): Array<readonly [string, string, string]> {
  if (p === undefined) return [['PostgreSQL rows (tcsync serve --connection)', 'skipped', skipped]];
  const [aValue, aRatio] = versus(p, r, (f) => median(f.sequentialRates), fmt.perSec);
  const [bValue, bRatio] = versus(p, r, (f) => median(f.parallelRates), fmt.perSec);
  const [cValue, cRatio] = versus(p, r, (f) => median(f.walkRates), fmt.perSec);
  return [
    ['PostgreSQL (a) one client, sequential add-version, 1 KiB', aValue, `${aRatio}; p50 ${fmt.ms(median(p.sequentialLatencies))} vs ${fmt.ms(median(r.sequentialLatencies))}`],
    ['PostgreSQL (b) 16 clients, 16 in flight', bValue, `${bRatio} (target >= 1.00x); the 16 share serve's pool of 10 connections`],
    ["PostgreSQL (c) get-child-version walk of (a)'s versions", cValue, `${cRatio}; p50 ${fmt.ms(median(p.walkLatencies))} vs ${fmt.ms(median(r.walkLatencies))}`],
    ['PostgreSQL (d) add-version p50, history 5,000 / 100', `${fmt.ratio(later(p))} vs ${fmt.ratio(later(r))}`, `p50 at 100: ${fmt.ms(median(p.shortHistoryLater))} vs ${fmt.ms(median(r.shortHistoryLater))}`],
    ['PostgreSQL RSS idle / after (b)', `${p.rssIdle.toFixed(0)} / ${p.rssAfterParallel.toFixed(0)} MiB vs ${r.rssIdle.toFixed(0)} / ${r.rssAfterParallel.toFixed(0)} MiB`, `${fmt.ratio(p.rssIdle / r.rssIdle)} / ${fmt.ratio(p.rssAfterParallel / r.rssAfterParallel)}`],
    ...pgFloorRows(p, r, floors),
  ];
}

/**
 * pg-floor.ts's figures, medians of the rounds, beside tcsync on PostgreSQL's and the reference's
 * in the same rounds: how much of the gap to the reference is the database's on this machine.
 */
function pgFloorRows(p: Figures, r: Figures, floors: PgFloors): Array<readonly [string, string, string]> {
  const row = (scenario: string, writers: string, pick: (f: Figures) => number, which: 'serial' | 'parallel') => {
    const [raw, storage] = PG_FLOORS.map((mode) => ({
      rate: median(floors[mode][which].map((l) => l.rate)),
      p50: median(floors[mode][which].map((l) => l.p50)),
    })) as [Floor, Floor];
    return [
      `PostgreSQL floor: same SQL, no HTTP, ${writers} (${scenario})`,
      `raw pg ${fmt.perSec(raw.rate)}, p50 ${fmt.ms(raw.p50)}; PostgresStorage ${fmt.perSec(storage.rate)}, p50 ${fmt.ms(storage.p50)}`,
      `tcsync on PostgreSQL = ${fmt.pct(pick(p) / raw.rate)} of raw pg, ${fmt.pct(pick(p) / storage.rate)} of PostgresStorage; reference ${fmt.perSec(pick(r))}, reference / raw pg ${fmt.ratio(pick(r) / raw.rate)}`,
    ] as const;
  };
  return [
    row('a', '1 writer', (f) => median(f.sequentialRates), 'serial'),
    row('b', `${CLIENTS} writers`, (f) => median(f.parallelRates), 'parallel'),
  ];
}
