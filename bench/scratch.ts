/**
 * The bench's temporary directories, removed when the whole run ends rather than when their
 * section does. ext4 without a journal (this machine's root file system) will not reuse an inode
 * freed in the last minute (five, while its inode table block is dirty): allocating one, it
 * checks the freed inodes one by one and skips them. After a section removes thousands of files,
 * each file the next section creates nearby cost up to 1.5 ms of kernel CPU here (`perf`:
 * `recently_deleted` and `find_get_block_common` under `ext4_create`, against about 25 µs
 * otherwise). A server does not delete thousands of files a minute, so no section should measure
 * the one before it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const made: string[] = [];

/** A new empty directory under the system's temp dir, named `tcsync-bench-<name>-...`. */
export async function scratchDir(name: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `tcsync-bench-${name}-`));
  made.push(dir);
  return dir;
}

/** Removes every directory scratchDir made. */
export async function removeScratch(): Promise<void> {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
}
