/**
 * The few file operations a crash-safe commit is made of. Each fsync failure is thrown, never
 * retried: after a failed fsync the kernel may report the next one clean while the data is lost
 * (Rebello et al., USENIX ATC 2020), so the commit fails instead.
 */
import { link, open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import writeFileAtomic from 'write-file-atomic';
import { TcsyncError } from '../../errors.js';
import { tempPathOf } from './layout.js';

/**
 * Wraps an unexpected file-system error as `STORAGE_IO`, keeping the cause for logs; running out
 * of file descriptors is `OUT_OF_FILES`, a passing overload rather than a fault of the storage.
 */
export function ioError(what: string, err: unknown): TcsyncError {
  if (err instanceof TcsyncError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? 'unknown';
  return new TcsyncError(isErrno(err, 'EMFILE', 'ENFILE') ? 'OUT_OF_FILES' : 'STORAGE_IO', `${what}: ${code}`, { cause: err });
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
 * Creates `file`, which must not exist, with `chunks` as content, and fsyncs it. The name is
 * not durable until the directory is fsync'd.
 */
export async function writeNewFile(file: string, chunks: readonly Uint8Array[]): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await handle.writev(chunks as Uint8Array[]);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` atomically: a temporary file in the same directory is written and fsync'd,
 * then renamed over `file` (the rename is the commit point). The caller fsyncs the directory.
 */
export async function replaceFile(file: string, content: string): Promise<void> {
  await writeFileAtomic(file, content, { fsync: true });
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
