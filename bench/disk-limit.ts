/**
 * The rename-commit limit of the disk under the data directory, run as its own process so that
 * its UV_THREADPOOL_SIZE is its own: each of WRITERS loops COUNT times over "write 1 KiB to a new
 * file, fsync it, rename it into place, fsync the directory" in a directory of its own, with the
 * same calls tcsync's commit makes and waiting as it does (commit-pacing.ts): a lone writer's
 * fsyncs inline on the event loop, several writers' on the threadpool.
 * Usage: node disk-limit.js DIR WRITERS COUNT; prints `{"rate": commits per second, "p50": ms}`.
 */
import { closeSync, fsync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

const pooledFsync = promisify(fsync);
const [dir = '.', writers = '1', count = '500'] = process.argv.slice(2);
const fsyncFd = async (fd: number) => (Number(writers) === 1 ? fsyncSync(fd) : pooledFsync(fd));
const block = Buffer.alloc(1024, 7);
const latencies: number[] = [];

async function writer(index: number): Promise<void> {
  const own = path.join(dir, `writer-${index}`);
  mkdirSync(own, { recursive: true });
  for (let i = 0; i < Number(count); i++) {
    const started = performance.now();
    const temp = path.join(own, `${i}.tmp`);
    const fd = openSync(temp, 'wx');
    writeSync(fd, block);
    await fsyncFd(fd);
    closeSync(fd);
    renameSync(temp, path.join(own, `${i}.done`));
    const dirFd = openSync(own, 'r');
    await fsyncFd(dirFd);
    closeSync(dirFd);
    latencies.push(performance.now() - started);
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: Number(writers) }, (_, i) => writer(i)));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
console.log(JSON.stringify({ rate: latencies.length / seconds, p50: latencies[Math.floor(latencies.length / 2)] }));
