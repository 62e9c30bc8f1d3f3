/**
 * How a FileStorage's common commits wait for the disk (durable-fs.ts `Wait`). A commit made while
 * its transaction is the only one open keeps nobody waiting, so it makes its calls inline and
 * saves the threadpool's hand-offs. With other transactions open it uses the pool, where their
 * fsyncs run side by side while the event loop goes on serving. When the disk turns slow (an
 * inline commit took longer than SLOW_MS), commits use the pool for a while, so that one slow
 * fsync cannot hold up /healthz, other requests or a lock's lease refresh for long.
 */
import type { Wait } from './durable-fs.js';

const SLOW_MS = 5;
const POOLED_AFTER_SLOW_MS = 10_000;

export class CommitPacing {
  #open = 0;
  #pooledUntil = 0;

  /** A transaction began; it counts from before it waits for its lock. */
  opened(): void {
    this.#open += 1;
  }

  closed(): void {
    this.#open -= 1;
  }

  /** Runs an open transaction's `commit` with the wait that suits the moment. */
  async run<T>(commit: (wait: Wait) => Promise<T>): Promise<T> {
    if (this.#open !== 1 || performance.now() < this.#pooledUntil) return commit('pooled');
    const started = performance.now();
    try {
      return await commit('inline');
    } finally {
      const ended = performance.now();
      if (ended - started > SLOW_MS) this.#pooledUntil = ended + POOLED_AFTER_SLOW_MS;
    }
  }
}
