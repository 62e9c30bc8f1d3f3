/**
 * The file system proper-lockfile uses for tcsync's lock directories (its `fs` option): the same
 * calls as graceful-fs makes, made synchronously on the event loop. Taking a lock is a mkdir and
 * a stat of a name in the locks directory, dropping it a rmdir, refreshing it a stat and a utimes:
 * metadata calls the page cache and the journal serve in microseconds, where a round trip through
 * libuv's threadpool costs a hand-off and a wake-up each (about 60 µs here). Taking and dropping an
 * uncontended lock made three such round trips per transaction. Inline, a refresh is also no
 * longer queued behind the fsyncs of busy commits in the pool, which delayed the lease's renewal.
 *
 * Callbacks are called before the call returns. proper-lockfile only continues its own work in
 * them (and resolves the promise of `lock` or of the release), so this changes no order it relies on.
 */
import { mkdirSync, rmdirSync, statSync, utimesSync, type BigIntStats } from 'node:fs';

type Callback<T = void> = (err: NodeJS.ErrnoException | null, value?: T) => void;

export class InlineLockFs {
  /** Lock directories whose latest stat is kept for `takeStat` (see `keepStats`). */
  readonly #kept = new Map<string, BigIntStats | null>();

  /**
   * Keeps the latest stat that proper-lockfile takes of `dir`. Its last call before a lock is
   * taken is a stat of the directory its mkdir just made, for the mtime; that stat also tells
   * which directory was made. (Earlier ones, of a stale lock it then took over, were of another.)
   */
  keepStats(dir: string): void {
    this.#kept.set(dir, null);
  }

  /** The latest stat kept of `dir` (null when none was taken), and stops keeping them. */
  takeStat(dir: string): BigIntStats | null {
    const st = this.#kept.get(dir) ?? null;
    this.#kept.delete(dir);
    return st;
  }

  mkdir(dir: string, callback: Callback): void {
    run(() => mkdirSync(dir), callback);
  }

  stat(file: string, callback: Callback<BigIntStats>): void {
    run(() => {
      const st = statSync(file, { bigint: true });
      if (this.#kept.has(file)) this.#kept.set(file, st);
      return st;
    }, callback);
  }

  utimes(file: string, atime: Date, mtime: Date, callback: Callback): void {
    run(() => utimesSync(file, atime, mtime), callback);
  }

  rmdir(dir: string, callback: Callback): void {
    run(() => rmdirSync(dir), callback);
  }

  /** proper-lockfile's exit handler removes the locks still held with this. */
  rmdirSync(dir: string): void {
    rmdirSync(dir);
  }
}

/** Calls `callback` with what `call` returned or threw; an error the callback throws is not caught here. */
function run<T>(call: () => T, callback: Callback<T>): void {
  let value: T;
  try {
    value = call();
  } catch (err) {
    callback(err as NodeJS.ErrnoException);
    return;
  }
  callback(null, value);
}
