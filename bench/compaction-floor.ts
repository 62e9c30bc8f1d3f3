/**
 * The floor beside (f)'s add-version latency with compaction against without: a raw program that
 * makes a commit's system calls (a 1 KiB version file created, written and fsync'd, linked as
 * its parent's `.child`, the directory fsync'd) in turns of N / 10 adds, in two directories side
 * by side. In one, a worker thread packs what the other thread added as serve's compaction does
 * (compaction-schedule.ts): in the pause after each turn, and during a turn once 16,384 versions
 * are loose (never, in (f)'s turns of 5,000); a pack is written, fsync'd, renamed and its directory fsync'd, a client.json the
 * same, and then the loose files are removed, 16 versions (32 names) at a time. Packs merge as
 * serve's do (compaction.ts packsToMerge). No HTTP, no JSON, no checks: what is left is the file
 * system's own price for files removed beside files being created, which tcsync cannot beat.
 */
import { appendFileSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { packsToMerge } from '../dist/storage/file/compaction.js';

const BUSY_AFTER = 16384;
const REMOVE_BATCH = 16;
const SEGMENT = Buffer.alloc(1024, 7);

export interface FloorLatencies {
  readonly compacting: number[];
  readonly loose: number[];
}

/** Shared with the worker: [versions added, versions packed, stop, pause asked]. */
type Counters = Int32Array;
const ADDED = 0;
const PACKED = 1;
const STOP = 2;
const PAUSE = 3;

interface RawDir {
  readonly dir: string;
  readonly dirFd: number;
  parent: string;
  added: number;
  readonly latencies: number[];
}

function rawDir(dir: string): RawDir {
  mkdirSync(path.join(dir, 'versions'), { recursive: true });
  return { dir, dirFd: openSync(path.join(dir, 'versions'), 'r'), parent: 'nil', added: 0, latencies: [] };
}

/** One raw commit; its id is appended to `ids` for the worker, unflushed, after the commit is timed. */
function rawAdd(raw: RawDir): void {
  const started = performance.now();
  const id = randomUUID();
  const file = path.join(raw.dir, 'versions', `${id}.version`);
  const fd = openSync(file, 'wx');
  writeSync(fd, SEGMENT);
  fsyncSync(fd);
  closeSync(fd);
  linkSync(file, path.join(raw.dir, 'versions', `${raw.parent}.child`));
  fsyncSync(raw.dirFd);
  raw.latencies.push(performance.now() - started);
  appendFileSync(path.join(raw.dir, 'ids'), `${raw.parent} ${id}\n`);
  raw.parent = id;
  raw.added++;
}

/** Adds `versions` in CHUNKS turns to a compacting and a loose directory under `root`: each add's latency. */
export async function compactionFloor(root: string, versions: number, chunks: number): Promise<FloorLatencies> {
  const compacting = rawDir(path.join(root, 'compacting'));
  const loose = rawDir(path.join(root, 'loose'));
  const counters: Counters = new Int32Array(new SharedArrayBuffer(16));
  const worker = new Worker(new URL(import.meta.url), { workerData: { dir: compacting.dir, counters } });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  try {
    for (let chunk = 0; chunk < chunks; chunk++) {
      const count = Math.floor((versions * (chunk + 1)) / chunks) - Math.floor((versions * chunk) / chunks);
      for (const raw of chunk % 2 === 0 ? [compacting, loose] : [loose, compacting]) {
        for (let i = 0; i < count; i++) {
          rawAdd(raw);
          if (raw === compacting) Atomics.store(counters, ADDED, raw.added);
          // A request's turn of the event loop, where the worker's completions would run in serve.
          await nextTurn();
        }
        if (raw === compacting) await pauseAndPack(counters, raw.added);
      }
    }
  } finally {
    Atomics.store(counters, STOP, 1);
    Atomics.notify(counters, ADDED);
    await exited;
    closeSync(compacting.dirFd);
    closeSync(loose.dirFd);
  }
  return { compacting: compacting.latencies, loose: loose.latencies };
}

/** The pause after a turn: the worker packs everything loose, and the next turn waits for it. */
async function pauseAndPack(counters: Counters, added: number): Promise<void> {
  Atomics.store(counters, PAUSE, 1);
  Atomics.notify(counters, ADDED);
  while (Atomics.load(counters, PACKED) < added) await new Promise((resolve) => setTimeout(resolve, 10));
  Atomics.store(counters, PAUSE, 0);
}

interface RawPack {
  readonly file: string;
  readonly versions: number;
}

function fsyncPath(file: string): void {
  const fd = openSync(file, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

/** The worker: packs what is loose when a pause is asked for or BUSY_AFTER versions are loose. */
async function compactor(dir: string, counters: Counters): Promise<void> {
  const packs: RawPack[] = [];
  let packed = 0;
  for (;;) {
    const added = Atomics.load(counters, ADDED);
    const due = added - packed >= BUSY_AFTER || (Atomics.load(counters, PAUSE) === 1 && added > packed);
    if (Atomics.load(counters, STOP) === 1) return;
    if (!due) {
      Atomics.wait(counters, ADDED, added, 50);
      continue;
    }
    const lines = readFileSync(path.join(dir, 'ids'), 'utf8').split('\n').slice(packed, added);
    const merged = packs.splice(packs.length - packsToMerge(packs, lines.length));
    const file = path.join(dir, `pack-${randomUUID()}.pack`);
    const fd = openSync(`${file}.1`, 'wx');
    for (const pack of merged) writeSync(fd, readFileSync(pack.file));
    for (const line of lines) writeSync(fd, readFileSync(path.join(dir, 'versions', `${line.split(' ')[1]}.version`)));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(`${file}.1`, file);
    fsyncPath(dir);
    packs.push({ file, versions: merged.reduce((sum, pack) => sum + pack.versions, lines.length) });
    writeFileSync(path.join(dir, 'client.json.1'), JSON.stringify(packs));
    fsyncPath(path.join(dir, 'client.json.1'));
    renameSync(path.join(dir, 'client.json.1'), path.join(dir, 'client.json'));
    fsyncPath(dir);
    for (let i = 0; i < lines.length; i += REMOVE_BATCH) {
      await Promise.all(lines.slice(i, i + REMOVE_BATCH).flatMap((line) => {
        const [parent, id] = line.split(' ') as [string, string];
        return [unlink(path.join(dir, 'versions', `${parent}.child`)), unlink(path.join(dir, 'versions', `${id}.version`))];
      }));
    }
    for (const pack of merged) unlinkSync(pack.file);
    packed = added;
    Atomics.store(counters, PACKED, packed);
  }
}

if (!isMainThread && workerData !== null && typeof workerData === 'object' && 'counters' in workerData) {
  const { dir, counters } = workerData as { dir: string; counters: Counters };
  await compactor(dir, counters);
}
