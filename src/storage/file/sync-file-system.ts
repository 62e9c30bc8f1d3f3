/**
 * Making a whole new tree of files durable at once, for a writer of thousands of files that
 * become visible by one rename at the end (backup). One syncfs(2) of the file system writes them
 * all back together and flushes the disk's cache once, where an fsync per file flushes it once a
 * file: a backup of 10,000 small clients (60,000 files and directories) spent most of its time in
 * those fsyncs, and `cp -a` followed by `sync` is what it is held against.
 *
 * Node has no syncfs, so `sync -f DIR` (coreutils since 8.24, busybox) makes the call. Linux
 * reports a write-back error to syncfs since 5.8, and `sync` exits non-zero then. Where `sync`
 * is missing or knows no `-f`, every file and directory under DIR is fsync'd instead, each
 * directory after what it names.
 */
import { execFile } from 'node:child_process';
import { closeSync, fsync, openSync, type Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { TcsyncError } from '../../errors.js';
import { forEachLimit } from '../../pool.js';
import { fsyncDir } from './durable-fs.js';

const run = promisify(execFile);
const fsyncFd = promisify(fsync);

/** fsyncs in flight in the fallback: the file system commits several together. */
const FSYNCS_AT_ONCE = 16;

/** How the tree under `dir` was made durable: by one syncfs, or by an fsync of every file. */
export type SyncedBy = 'syncfs' | 'fsync';

/** Makes every file and directory under `dir` durable (and everything else on its file system). */
export async function syncFileSystem(dir: string): Promise<SyncedBy> {
  if (await syncfs(dir)) return 'syncfs';
  await fsyncTree(dir);
  return 'fsync';
}

/**
 * syncfs(2) of `dir`'s file system; false when `sync -f` is not available. A failed syncfs
 * throws, and is not to be retried another way: after a write-back error the kernel may report
 * the next attempt clean while the data is lost (see durable-fs.ts).
 */
async function syncfs(dir: string): Promise<boolean> {
  try {
    await run('sync', ['-f', path.resolve(dir)]);
    return true;
  } catch (err) {
    const { code, stderr } = err as { code?: unknown; stderr?: string };
    if (code === 'ENOENT' || /(invalid|unrecognized|unknown) option/i.test(stderr ?? '')) return false;
    throw new TcsyncError('STORAGE_IO', `sync -f ${dir} failed: ${(stderr ?? String(err)).trim()}`, { cause: err });
  }
}

/** fsyncs every file under `dir`, then each directory after its contents, `dir` last. */
async function fsyncTree(dir: string): Promise<void> {
  const entries: Dirent[] = await readdir(dir, { withFileTypes: true });
  const files = entries.filter((entry) => !entry.isDirectory()).map((entry) => path.join(dir, entry.name));
  await forEachLimit(files, FSYNCS_AT_ONCE, fsyncFile);
  for (const entry of entries) if (entry.isDirectory()) await fsyncTree(path.join(dir, entry.name));
  await fsyncDir(dir);
}

async function fsyncFile(file: string): Promise<void> {
  // Opened for reading, as fsyncDir opens a directory: fsync needs no write access.
  const fd = openSync(file, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}
