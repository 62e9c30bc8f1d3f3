/**
 * The file system proper-lockfile uses for tcsync's lock directories (its `fs` option). Through
 * graceful-fs, taking a lock was two round trips through libuv's threadpool (a hand-off and a
 * wake-up each, about 60 µs here): the mkdir, then a stat of the new directory for its mtime.
 * The stat is a lookup in a cached directory, so it is made synchronously on the event loop, as
 * proper-lockfile's own lockSync makes it; so is a refresh's stat.
 *
 * The mkdir, the rmdir that drops a lock and a refresh's utimes stay on the threadpool. Lock
 * directories are made and removed all the time in one directory, and there their creation is
 * not cheap: inline, with 16 clients creating and adding on this machine's ext4 (no journal),
 * the lock's mkdir held the event loop 116 µs on average, p50 43 µs, p99 1.4 ms, max 13 ms,
 * against 45 / 24 / 0.24 ms / 11 ms for the version files created in the same run and 40 µs on
 * average for the client's directories (measured in the process). ext4 skips inodes freed in
 * the last minute one by one when it allocates (bench/scratch.ts), and the lock directories are
 * such inodes. The rmdir was worse inline: p50 0.16 ms, p99 5.5 ms (strace -T), and the clients
 * were served at a lower rate than with both pooled.
 *
 * An inline call calls back before it returns. proper-lockfile only continues its own work in
 * its callbacks, so this changes no order it relies on.
 */
import { mkdir, rmdir, rmdirSync, statSync, utimes, type BigIntStats } from 'node:fs';

type Callback<T = void> = (err: NodeJS.ErrnoException | null, value?: T) => void;

export class LockFs {
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
    mkdir(dir, (err) => callback(err));
  }

  stat(file: string, callback: Callback<BigIntStats>): void {
    inline(() => {
      const st = statSync(file, { bigint: true });
      if (this.#kept.has(file)) this.#kept.set(file, st);
      return st;
    }, callback);
  }

  utimes(file: string, atime: Date, mtime: Date, callback: Callback): void {
    utimes(file, atime, mtime, callback);
  }

  rmdir(dir: string, callback: Callback): void {
    rmdir(dir, callback);
  }

  /** proper-lockfile's exit handler removes the locks still held with this. */
  rmdirSync(dir: string): void {
    rmdirSync(dir);
  }
}

/** Calls `callback` with what `call` returned or threw; an error the callback throws is not caught here. */
function inline<T>(call: () => T, callback: Callback<T>): void {
  let value: T;
  try {
    value = call();
  } catch (err) {
    callback(err as NodeJS.ErrnoException);
    return;
  }
  callback(null, value);
}
