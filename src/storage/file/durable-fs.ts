/**
 * The few file operations a crash-safe commit is made of. Each fsync failure is thrown, never
 * retried: after a failed fsync the kernel may report the next one clean while the data is lost
 * (Rebello et al., USENIX ATC 2020), so the commit fails instead.
 */
import {
  closeSync,
  fstatSync,
  fsync,
  fsyncSync,
  openSync,
  readFile as readFileFd,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writev,
  writevSync,
  type BigIntStats,
} from 'node:fs';
import { link, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TcsyncError, type ErrorCode } from '../../errors.js';
import { tempPathOf } from './layout.js';

/**
 * Wraps an unexpected file-system error as a TcsyncError, keeping the cause for logs. Conditions
 * an operator fixes and that pass without a restart get codes of their own: a full disk or
 * quota (`DISK_FULL`), a read-only mount (`READ_ONLY`), running out of file descriptors
 * (`OUT_OF_FILES`); everything else is `STORAGE_IO`.
 */
export function ioError(what: string, err: unknown): TcsyncError {
  if (err instanceof TcsyncError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? 'unknown';
  return new TcsyncError(codeOfErrno(code), `${what}: ${code}`, { cause: err });
}

function codeOfErrno(errno: string): ErrorCode {
  switch (errno) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'DISK_FULL';
    case 'EROFS':
      return 'READ_ONLY';
    case 'EMFILE':
    case 'ENFILE':
      return 'OUT_OF_FILES';
    default:
      return 'STORAGE_IO';
  }
}

/** True when the file system refuses new data: full, over quota, or mounted read-only. */
export function refusesWrites(err: unknown): boolean {
  return isErrno(err, 'ENOSPC', 'EDQUOT', 'EROFS');
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as NodeJS.ErrnoException)?.code ?? '');
}

/**
 * Files up to this size are read and written with synchronous system calls. An asynchronous call
 * is a round trip through libuv's threadpool (a hand-off and a wake-up each), and reading one small
 * file takes four of them (open, stat, read, close) where the calls themselves cost microseconds
 * on a page-cached file; the SQLite reference server does all its I/O synchronously. Only fsync,
 * which waits for the disk, may go to the threadpool (see Wait), so the event loop serves other
 * requests meanwhile. Larger files stay asynchronous: copying 100 MiB would stall every request.
 */
const SYNC_IO_MAX = 256 * 1024;

const writevFd = promisify(writev);
const readFd = promisify(readFileFd);

/**
 * How a write waits for its fsync. `pooled`: on libuv's threadpool, so the event loop serves other
 * requests meanwhile. `inline`: blocking the event loop, as the SQLite reference server does every
 * time, which saves handing the call to a pool thread and the wake-ups there and back (about 60 µs
 * a call here, most of it paid by the event loop's thread to wake a sleeping pool thread). Only
 * worth it, and only fair to other requests, when nothing else is waiting (see CommitPacing).
 */
export type Wait = 'pooled' | 'inline';

const pooledFsync = promisify(fsync);

export function fsyncFd(fd: number, wait: Wait): void | Promise<void> {
  return wait === 'inline' ? fsyncSync(fd) : pooledFsync(fd);
}

/**
 * Makes a directory's entries (new, renamed or removed names) durable. Renames and links are
 * durable only once their directory is fsync'd.
 */
export async function fsyncDir(dir: string, wait: Wait = 'pooled'): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    await fsyncFd(fd, wait);
  } finally {
    closeSync(fd);
  }
}

/**
 * Directories one commit fsyncs, each opened at its first fsync and kept open until `close()`: a
 * new client's commit fsyncs its directory and its versions directory twice each, and an open
 * and a close of a directory cost more than the fsync's hand-off. An fsync on a descriptor opened
 * earlier makes the directory's entries durable as they are at the fsync, and reports any
 * writeback error since the open, which a descriptor opened later may not.
 */
export class OpenDirs {
  readonly #fds = new Map<string, number>();

  async fsync(dir: string, wait: Wait = 'pooled'): Promise<void> {
    let fd = this.#fds.get(dir);
    if (fd === undefined) {
      fd = openSync(dir, 'r');
      this.#fds.set(dir, fd);
    }
    await fsyncFd(fd, wait);
  }

  /** Closes every directory; never throws. */
  close(): void {
    for (const fd of this.#fds.values()) {
      try {
        closeSync(fd);
      } catch {
        // Nothing to do: the descriptor is gone either way.
      }
    }
    this.#fds.clear();
  }
}

/**
 * Creates `file`, which must not exist, with `chunks` as content, and fsyncs it; on any failure
 * the file is removed again. Every byte is written or the call fails: a file system short of
 * space writes part of a request and reports the shorter count without an error (ext4 does), so
 * the rest is written in a loop until it is refused, and the size is checked after the fsync.
 * The name is not durable until the directory is fsync'd.
 */
export async function writeNewFile(file: string, chunks: readonly Uint8Array[], wait: Wait = 'pooled'): Promise<void> {
  // Created inline even beside other commits: handing the open to the pool costs more than the
  // create itself. With 16 writers on a journaled ext4 here, an inline create took p50 27 µs and
  // p99 1.0 ms (when it waits for the journal), and the writers made 3,401-3,460 commits/s
  // against 3,024-3,256 with the create pooled.
  const fd = openSync(file, 'wx');
  try {
    const expected = await writeAll(fd, chunks);
    await fsyncFd(fd, wait);
    const { size } = fstatSync(fd);
    if (size !== expected) throw new TcsyncError('STORAGE_IO', `${file}: ${size} bytes on disk, ${expected} written`);
  } catch (err) {
    closeSync(fd);
    rmSync(file, { force: true });
    throw err;
  }
  closeSync(fd);
}

/** Writes every byte of `chunks` at the file's position, looping over short writes; the count written. */
export async function writeAll(fd: number, chunks: readonly Uint8Array[]): Promise<number> {
  let rest = chunks.filter((chunk) => chunk.byteLength > 0);
  const total = rest.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const sync = total <= SYNC_IO_MAX;
  let written = 0;
  while (rest.length > 0) {
    const bytes = sync ? writevSync(fd, rest) : await writevFd(fd, rest as Uint8Array[]).then((r) => r.bytesWritten);
    // A write of nothing would loop for ever; the kernel says ENOSPC for it on the next call anyway.
    if (bytes === 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    written += bytes;
    rest = skipBytes(rest, bytes);
  }
  return written;
}

/** `chunks` without their first `n` bytes, without copying. */
function skipBytes(chunks: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const chunk of chunks) {
    if (skip >= chunk.byteLength) {
      skip -= chunk.byteLength;
      continue;
    }
    out.push(skip === 0 ? chunk : chunk.subarray(skip));
    skip = 0;
  }
  return out;
}

/**
 * Replaces `file` atomically: a temporary file in the same directory (see tempPathOf) is written
 * whole and fsync'd, then renamed over `file` (the rename is the commit point). `beforeRename`
 * runs right before it, after the fsync's wait, and may refuse by throwing (a lock's assertHeld).
 * The caller fsyncs the directory. Not write-file-atomic: it ignores short writes, which a full
 * disk makes.
 */
export async function replaceFile(file: string, content: string, beforeRename: () => void = () => undefined): Promise<void> {
  const temp = tempPathOf(file);
  await writeNewFile(temp, [Buffer.from(content)]);
  try {
    beforeRename();
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/**
 * Creates `file` with `content` unless it already exists, and says whether it did. The content is
 * written and fsync'd under a temporary name first and then linked (link(2) never replaces a
 * name), so a concurrent reader sees either no file or all of it. The caller fsyncs the directory.
 */
export async function createFileOnce(file: string, content: string): Promise<boolean> {
  const temp = tempPathOf(file);
  await writeNewFile(temp, [Buffer.from(content)]);
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  } finally {
    await rm(temp, { force: true });
  }
}

/** A file's bytes and its number of hard links. */
export interface FileRead {
  readonly bytes: Buffer;
  readonly nlink: number;
}

/** The file's bytes and link count, or null when it does not exist (synchronous when small). */
export async function readFileStatOrNull(file: string): Promise<FileRead | null> {
  const fd = openOrNull(file);
  if (fd === null) return null;
  try {
    const { nlink } = fstatSync(fd);
    return { bytes: await readOpenFile(fd), nlink };
  } finally {
    closeSync(fd);
  }
}

/**
 * Where a small file is read whole in one call, so that a version (about a kilobyte) costs an
 * open, one read and a close, without a stat for its size. Only synchronous code uses it, and
 * what it holds is copied out before anything else can run.
 */
const smallRead = Buffer.allocUnsafe(64 * 1024);

/** The file's bytes, or null when it does not exist. */
export async function readFileOrNull(file: string): Promise<Buffer | null> {
  const fd = openOrNull(file);
  if (fd === null) return null;
  try {
    // A regular file's read comes back short only at its end.
    const n = readSync(fd, smallRead, 0, smallRead.length, 0);
    return n < smallRead.length ? Buffer.from(smallRead.subarray(0, n)) : await readOpenFile(fd);
  } finally {
    closeSync(fd);
  }
}

function openOrNull(file: string): number | null {
  try {
    return openSync(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

async function readOpenFile(fd: number): Promise<Buffer> {
  const { size } = fstatSync(fd);
  if (size > SYNC_IO_MAX) return readFd(fd);
  const bytes = Buffer.allocUnsafe(size);
  let at = 0;
  // A file that grows or shrinks meanwhile is read as far as it goes; its checks tell the rest.
  for (let n = -1; at < size && n !== 0; at += n) n = readSync(fd, bytes, at, size - at, at);
  return at === size ? bytes : bytes.subarray(0, at);
}

/** Up to `length` bytes from the start of the file, or null when it does not exist. */
export function readHeadOrNull(file: string, length: number): Buffer | null {
  const fd = openOrNull(file);
  if (fd === null) return null;
  try {
    const head = Buffer.allocUnsafe(length);
    return head.subarray(0, readSync(fd, head, 0, length, 0));
  } finally {
    closeSync(fd);
  }
}

/** The file's stats (with nanosecond times), or null when it does not exist. */
export async function statOrNull(file: string): Promise<BigIntStats | null> {
  return statNowOrNull(file);
}

/**
 * statOrNull without the promise, for a read that stays on the event loop from start to end (a
 * poll answered from what is remembered): each await there costs more than the stat itself.
 */
export function statNowOrNull(file: string): BigIntStats | null {
  try {
    // Without an Error built for the common miss (a tombstone that is not there).
    return statSync(file, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

/**
 * Renames the directory `built` to `target`, which the caller's lock makes its own to replace: a
 * directory left there (an interrupted creation's) goes first, as a rename replaces only an
 * empty directory. `assertHeld` is checked right before the rename that follows a removal; the
 * caller checks it before calling. The caller fsyncs the parent.
 */
export async function renameDirOver(built: string, target: string, assertHeld: () => void): Promise<void> {
  try {
    renameSync(built, target);
  } catch (err) {
    if (!isErrno(err, 'ENOTEMPTY', 'EEXIST')) throw err;
    await rm(target, { recursive: true, force: true });
    assertHeld();
    renameSync(built, target);
  }
}
