/**
 * Copies one client's committed files (client-index.ts) into another data directory. Files are
 * copied, never linked to the source: a backup must not share inodes with the live data. Hard
 * links between the copied files (each `.child` and its `.version`) are re-created with link().
 * Synchronous calls, for the reason client-index.ts gives.
 */
import { constants, copyFileSync, linkSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ClientPaths } from '../storage/file/layout.js';
import { committedFiles, yieldSometimes, type ClientIndex } from './client-index.js';

export interface CopiedFiles {
  /** New files, each to be fsync'd before the backup counts. */
  readonly files: string[];
  /** Directories that got new entries, to be fsync'd after the files. */
  readonly dirs: string[];
  readonly bytes: number;
}

/** Copies what the client has committed; nothing for a directory without client.json. */
export async function copyClient(index: ClientIndex, destDataDir: string): Promise<CopiedFiles> {
  const files = committedFiles(index);
  const copied: CopiedFiles = { files: [], dirs: [], bytes: 0 };
  if (files.length === 0) return copied;
  const dest = new ClientPaths(destDataDir, index.clientId);
  mkdirSync(dest.dir);
  copied.dirs.push(dest.dir);
  if (index.hasVersionsDir) {
    mkdirSync(dest.versionsDir);
    copied.dirs.push(dest.versionsDir);
  }
  const copyByInode = new Map<bigint, string>();
  let bytes = 0;
  let count = 0;
  for (const file of files) {
    await yieldSometimes(++count);
    const target = path.join(dest.dir, path.relative(index.paths.dir, file.path));
    const copy = copyByInode.get(file.ino);
    if (copy !== undefined) {
      linkSync(copy, target);
      continue;
    }
    // No COPYFILE_FICLONE: a shared extent would tie the backup to the live disk's blocks.
    copyFileSync(file.path, target, constants.COPYFILE_EXCL);
    copyByInode.set(file.ino, target);
    copied.files.push(target);
    bytes += file.size;
  }
  return { ...copied, bytes };
}
