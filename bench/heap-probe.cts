/**
 * Preloaded into a server by the bench (`node --expose-gc --require dist-bench/heap-probe.cjs
 * dist/bin.cjs serve ...`), so that its heap can be read without changing the server: on SIGUSR2
 * it runs a full garbage collection and writes `{"heapUsed": bytes}` to the file named by
 * TCSYNC_BENCH_HEAP_FILE (to a temporary name first, then renamed, so a reader never sees half).
 * CommonJS on purpose: preloading it reads it synchronously, which is not a threadpool job, so
 * bin.cjs still sizes the threadpool after it, as it does when serve runs alone.
 */
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env.TCSYNC_BENCH_HEAP_FILE;
const gc = (globalThis as { gc?: () => void }).gc;

if (file !== undefined && gc !== undefined) {
  process.on('SIGUSR2', () => {
    // Twice: the first may leave what only a finalizer it ran set free.
    gc();
    gc();
    writeFileSync(`${file}.tmp`, JSON.stringify({ heapUsed: process.memoryUsage().heapUsed }));
    renameSync(`${file}.tmp`, file);
  });
}
