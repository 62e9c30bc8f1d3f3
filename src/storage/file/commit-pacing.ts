/**
 * How a FileStorage's common commits wait for the disk (durable-fs.ts `Wait`). A commit made while
 * its transaction is the only one open keeps nobody waiting, so it makes its calls inline and
 * saves the threadpool's hand-offs. With other transactions open it uses the pool, where their
 * fsyncs run side by side while the event loop goes on serving. On a slow disk (commits take
 * SLOW_MS or more, as a moving average) every commit uses the pool, so that fsyncs cannot hold up
 * /healthz, other requests or a lock's lease refresh for long; a single slow commit, which a busy
 * shared disk makes now and then, does not count for much.
 *
 * "Only one open" must count the requests that arrived while the event loop was busy, too. They
 * sit unread in their sockets until the loop polls again, and an inline commit keeps it from
 * polling; so without a look, every commit of 16 busy clients would find itself alone, one after
 * the other, each blocking the rest. Before it decides, a commit lets the loop poll once (two
 * turns of setImmediate, a few microseconds when idle), and requests that were waiting open their
 * transactions meanwhile.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Wait } from './durable-fs.js';

const SLOW_MS = 4;
/** The weight of the latest commit in the moving average: about the last ten count. */
const WEIGHT = 0.1;

export interface CommitPacingOptions {
  /**
   * The clock commits are timed with, in ms. Only tests pass one: timing real commits (or
   * sleeps) would make a test of the moving average depend on how loaded the machine is.
   * @default performance.now()
   */
  readonly now?: () => number;
}

export class CommitPacing {
  #open = 0;
  /** Moving average of how long commits took, inline or pooled, in ms. */
  #typicalMs = 0;
  readonly #now: () => number;

  constructor(options: CommitPacingOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
  }

  /** A transaction began; it counts from before it waits for its lock. */
  opened(): void {
    this.#open += 1;
  }

  closed(): void {
    this.#open -= 1;
  }

  /** Runs an open transaction's `commit` with the wait that suits the moment. */
  async run<T>(commit: (wait: Wait) => Promise<T>): Promise<T> {
    let wait: Wait = 'pooled';
    if (this.#mayWaitInline()) {
      // The first turn ends the current poll phase, the second comes after the next poll.
      await nextTurn();
      await nextTurn();
      if (this.#mayWaitInline()) wait = 'inline';
    }
    const started = this.#now();
    try {
      return await commit(wait);
    } finally {
      this.#typicalMs += WEIGHT * (this.#now() - started - this.#typicalMs);
    }
  }

  #mayWaitInline(): boolean {
    return this.#open === 1 && this.#typicalMs < SLOW_MS;
  }
}
