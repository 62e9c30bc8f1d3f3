/**
 * The few file operations a crash-safe commit is made of. Each fsync failure is thrown, never
 * retried: after a failed fsync the kernel may report the next one clean while the data is lost
 * (Rebello et al., USENIX ATC 2020), so the commit fails instead.
 */
import { link, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
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
 * Makes a directory's entries (new, renamed or removed names) durable. Renames and links are
 * durable only once their directory is fsync'd; write-file-atomic does not do this.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates `file`, which must not exist, with `chunks` as content, and fsyncs it; on any failure
 * the file is removed again. Every byte is written or the call fails: a file system short of
 * space writes part of a request and reports the shorter count without an error (ext4 does), so
 * the rest is written in a loop until it is refused, and the size is checked after the fsync.
 * The name is not durable until the directory is fsync'd.
 */
export async function writeNewFile(file: string, chunks: readonly Uint8Array[]): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    const expected = await writeAll(handle, chunks);
    await handle.sync();
    const { size } = await handle.stat();
    if (size !== expected) throw new TcsyncError('STORAGE_IO', `${file}: ${size} bytes on disk, ${expected} written`);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(file, { force: true }).catch(() => undefined);
    throw err;
  }
  await handle.close();
}

async function writeAll(handle: FileHandle, chunks: readonly Uint8Array[]): Promise<number> {
  let rest = chunks.filter((chunk) => chunk.byteLength > 0);
  let total = 0;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest as Uint8Array[]);
    // A write of nothing would loop for ever; the kernel says ENOSPC for it on the next call anyway.
    if (bytesWritten === 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    total += bytesWritten;
    rest = skipBytes(rest, bytesWritten);
  }
  return total;
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
 * whole and fsync'd, then renamed over `file` (the rename is the commit point). The caller fsyncs
 * the directory. Not write-file-atomic: it ignores short writes, which a full disk makes.
 */
export async function replaceFile(file: string, content: string): Promise<void> {
  const temp = tempPathOf(file);
  await writeNewFile(temp, [Buffer.from(content)]);
  try {
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
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

/** The file opened for reading, or null when it does not exist. */
export async function openOrNull(file: string): Promise<FileHandle | null> {
  try {
    return await open(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

/** The file's bytes, or null when it does not exist. */
export async function readFileOrNull(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

/** The file's stats (with nanosecond times), or null when it does not exist. */
export async function statOrNull(file: string): Promise<BigIntStats | null> {
  try {
    return await stat(file, { bigint: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}
