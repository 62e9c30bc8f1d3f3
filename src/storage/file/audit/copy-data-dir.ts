/**
 * A copy of a data directory's committed files (see copy-client.ts) into `tmp`, each client's
 * under its lock, made durable: every file and directory fsync'd. backup builds on it.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, isErrno } from '../durable-fs.js';
import type { FileStorage } from '../file-storage.js';
import { FORMAT_FILE, LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR, tombstonePath } from '../layout.js';
import { forEachLimit } from '../../../pool.js';
import { copyClient, type CopiedFiles } from './copy-client.js';
import { indexClient } from './client-index.js';
import { scanDataDir, type IdEntries } from './scan-data-dir.js';

export interface CopyOptions {
  /**
   * How many clients are copied at once.
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * Called after each client is copied.
   * @default undefined (no reports)
   */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface CopiedDataDir {
  readonly clients: number;
  /** Bytes copied (hard links counted once). */
  readonly bytes: number;
  readonly files: number;
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * fsyncs issued side by side: the file system commits its journal for several at once, which
 * made the copy about twice as fast as one fsync after another.
 */
const FSYNCS_AT_ONCE = 16;

/** Copies every client (and tombstone) into `tmp`, each under its lock, and makes the copy durable. */
export async function copyDataDir(storage: FileStorage, tmp: string, options: CopyOptions = {}): Promise<CopiedDataDir> {
  const source = storage.dataDir;
  await copyFile(path.join(source, FORMAT_FILE), path.join(tmp, FORMAT_FILE), constants.COPYFILE_EXCL);
  await fsyncFile(path.join(tmp, FORMAT_FILE));
  for (const sub of [LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR]) await mkdir(path.join(tmp, sub));

  const scan = await scanDataDir(source);
  let clients = 0;
  let bytes = 0;
  let files = 0;
  let done = 0;
  await forEachLimit(scan.ids, options.concurrency ?? 8, async (id) => {
    const entries = scan.entries.get(id) as IdEntries;
    const copied = await storage.withClientLock(id, async (_dir, assertHeld): Promise<CopiedFiles> => {
      let client: CopiedFiles = { files: [], dirs: [], bytes: 0 };
      if (entries.hasDir) {
        try {
          client = await copyClient(await indexClient(source, id), tmp);
        } catch (err) {
          // Deleted between the scan and taking its lock: nothing to copy.
          if (!isErrno(err, 'ENOENT')) throw err;
        }
      }
      if (entries.hasTombstone) {
        try {
          await copyFile(tombstonePath(source, id), tombstonePath(tmp, id), constants.COPYFILE_EXCL);
          client.files.push(tombstonePath(tmp, id));
        } catch (err) {
          // Lifted meanwhile (liftTombstone takes no lock).
          if (!isErrno(err, 'ENOENT')) throw err;
        }
      }
      // A copy made while the lock was lost may hold a transaction half done: fail instead.
      assertHeld();
      return client;
    });
    // The copy is ours alone: make it durable after releasing the lock, so writers wait less.
    await forEachLimit(copied.files, FSYNCS_AT_ONCE, fsyncFile);
    for (const dir of [...copied.dirs].reverse()) await fsyncDir(dir);
    if (copied.dirs.length > 0) clients++;
    bytes += copied.bytes;
    files += copied.files.length;
    options.onProgress?.(++done, scan.ids.length);
  });
  // Files first, then the directories naming them, up to the copy's root.
  for (const sub of [LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR]) await fsyncDir(path.join(tmp, sub));
  await fsyncDir(tmp);
  return { clients, bytes, files };
}
