/**
 * Storage figures (issue 2): commits/s and latency of getClient + addVersion + commit with 1 KiB
 * segments, next to the raw durable-commit limit of the same disk measured in the same run
 * (write 1 KiB + fsync + rename + fsync directory), at history lengths 100 and 10,000, and with
 * 8 clients in parallel next to 8 parallel raw loops.
 */
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FileStorage, newVersionId, withTxn, type ClientId } from '../dist/index.js';
import { clientWithHistory } from './fixtures.js';
import { fmt, median, percentile, timeEach, type BenchSection } from './report.js';
import { scratchDir } from './scratch.js';

const SEGMENT = new Uint8Array(1024).fill(42);
const COMMITS = Number(process.env.BENCH_COMMITS ?? 400);
const PARALLEL = 8;

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  await handle.sync();
  await handle.close();
}

/** The raw limit: one durable, atomically named 1 KiB file per iteration. */
async function rawCommit(dir: string, i: number): Promise<void> {
  const tmp = path.join(dir, `tmp-${i}`);
  const handle = await open(tmp, 'wx');
  await handle.write(SEGMENT);
  await handle.sync();
  await handle.close();
  await rename(tmp, path.join(dir, `file-${i}`));
  await fsyncDir(dir);
}

async function addOne(storage: FileStorage, clientId: ClientId): Promise<void> {
  await withTxn(storage, clientId, async (txn) => {
    const client = await txn.getClient();
    await txn.addVersion(newVersionId(), client!.latestVersionId, SEGMENT);
  });
}

/** Runs `loops` sequential loops of `count` operations side by side; returns operations per second. */
async function parallelRate(loops: number, count: number, op: (loop: number, i: number) => Promise<void>): Promise<number> {
  const start = performance.now();
  await Promise.all(Array.from({ length: loops }, async (_, loop) => {
    for (let i = 0; i < count; i++) await op(loop, i);
  }));
  return (loops * count) / ((performance.now() - start) / 1000);
}

export async function bench(): Promise<BenchSection> {
  const root = await scratchDir('storage');
  const rawDir = path.join(root, 'raw');
  await open(root, 'r').then((h) => h.close());
  await import('node:fs/promises').then((fs) => fs.mkdir(rawDir));
  const storage = await FileStorage.open(path.join(root, 'data'));

  const short = await clientWithHistory(storage, 100, SEGMENT);
  const long = await clientWithHistory(storage, 10_000, SEGMENT);

  // Interleave the measured loops in rounds so that disk noise hits all of them alike.
  const raw: number[] = [];
  const atShort: number[] = [];
  const atLong: number[] = [];
  const rounds = 4;
  for (let r = 0; r < rounds; r++) {
    const n = COMMITS / rounds;
    raw.push(...(await timeEach(n, (i) => rawCommit(rawDir, r * n + i))));
    atShort.push(...(await timeEach(n, () => addOne(storage, short))));
    atLong.push(...(await timeEach(n, () => addOne(storage, long))));
  }

  const parallelRawDirs = await Promise.all(Array.from({ length: PARALLEL }, async (_, i) => {
    const d = path.join(root, `raw-${i}`);
    await import('node:fs/promises').then((fs) => fs.mkdir(d));
    return d;
  }));
  const parallelClients = await Promise.all(Array.from({ length: PARALLEL }, () => clientWithHistory(storage, 1, SEGMENT)));
  const perLoop = Math.max(25, Math.floor(COMMITS / PARALLEL));
  const rawParallel = await parallelRate(PARALLEL, perLoop, (loop, i) => rawCommit(parallelRawDirs[loop]!, 100_000 + i));
  const storageParallel = await parallelRate(PARALLEL, perLoop, (loop) => addOne(storage, parallelClients[loop]!));
  await storage.close();

  const rate = (times: number[]) => 1000 / median(times);
  return {
    title: `Storage (FileStorage, 1 KiB segments, ${COMMITS} commits per series, interleaved)`,
    rows: [
      ['raw durable write (write+fsync+rename+fsync dir)', `${fmt.perSec(rate(raw))}`, `p50 ${fmt.ms(median(raw))}, p99 ${fmt.ms(percentile(raw, 99))}`],
      ['one client, history 100: getClient+addVersion+commit', `${fmt.perSec(rate(atShort))}`, `p50 ${fmt.ms(median(atShort))}, p99 ${fmt.ms(percentile(atShort, 99))}`],
      ['one client, history 10,000', `${fmt.perSec(rate(atLong))}`, `p50 ${fmt.ms(median(atLong))}, p99 ${fmt.ms(percentile(atLong, 99))}`],
      ['one client / raw limit (target >= 60%)', fmt.pct(median(raw) / median(atShort)), 'ratio of medians'],
      ['p50 at 10,000 / p50 at 100 (target <= 1.2x)', fmt.ratio(median(atLong) / median(atShort)), ''],
      [`${PARALLEL} raw loops in parallel`, fmt.perSec(rawParallel), 'total'],
      [`${PARALLEL} clients in parallel`, fmt.perSec(storageParallel), 'total'],
      [`${PARALLEL} clients / ${PARALLEL} raw loops (target >= 60%)`, fmt.pct(storageParallel / rawParallel), ''],
    ],
  };
}
