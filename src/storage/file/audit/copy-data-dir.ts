/**
 * A copy of a data directory's committed files (see copy-client.ts) into `tmp`, each client's
 * as committed at one instant and checked as written. Nothing is fsync'd: the caller makes the
 * whole copy durable at once (sync-file-system.ts). backup builds on it.
 *
 * A client nobody is committing to is copied without its lock: taking and dropping a lock costs
 * a mkdir and an rmdir in the data directory, and on a stopped server's 10,000 clients that was
 * seconds, as long as `cp -a` of the whole directory. Such a copy counts when, after it, the
 * client is still quiet (no commit under way, FileStorage.isQuiet) and every file it copied is
 * still the one it copied: a commit that was under way while it read has then either become
 * durable or been taken back, and one taken back would have removed or replaced a file it read
 * (its `.child`, or client.json, which a rewrite replaces). Otherwise (a live server committed
 * meanwhile, the client was deleted, or the copy does not check as sound), the client's copy is
 * removed and made again under its lock, which decides.
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ClientId } from '../../../ids.js';
import { isErrno, readFileOrNull } from '../durable-fs.js';
import type { FileStorage } from '../file-storage.js';
import { ClientPaths, FORMAT_FILE, LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR, tombstonePath } from '../layout.js';
import { forEachLimit } from '../../../pool.js';
import { auditCopiedClient, type ClientAudit } from './audit-client.js';
import { checkClient, type ClientCheck } from './check-client.js';
import { copyClient, writeCopy, type CopiedClient } from './copy-client.js';
import { indexClient, stillIndexed } from './client-index.js';
import { scanDataDir, type IdEntries } from './scan-data-dir.js';

export interface CopyOptions {
  /**
   * How many clients are copied at once.
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * Called after each client is copied and checked.
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

export interface CheckedCopy extends CopiedDataDir {
  /** Each client id's audit of its copy, as verify would report it. */
  readonly audits: readonly ClientAudit[];
  /** Client ids copied under their lock: busy, or met a commit when copied without it. */
  readonly locked: number;
}

/** One client id's copy: its files (null without any) and whether its tombstone was copied. */
interface IdCopy {
  readonly client: CopiedClient | null;
  readonly tombstone: boolean;
}

/** A copy made without the lock that met something it cannot vouch for. */
class NotQuiet extends Error {}

/** Copies every client (and tombstone) into `tmp` and checks each copy. */
export async function copyDataDir(storage: FileStorage, tmp: string, options: CopyOptions = {}): Promise<CheckedCopy> {
  const source = storage.dataDir;
  writeCopy(path.join(tmp, FORMAT_FILE), readFileSync(path.join(source, FORMAT_FILE)));
  for (const sub of [LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR]) await mkdir(path.join(tmp, sub));

  const scan = await scanDataDir(source);
  const audits: ClientAudit[] = [];
  let clients = 0;
  let bytes = 0;
  let files = 0;
  let locked = 0;
  let done = 0;
  await forEachLimit(scan.ids, options.concurrency ?? 8, async (id, i) => {
    const entries = scan.entries.get(id) as IdEntries;
    const { copy, check, underLock } = await copyQuietOrLocked(storage, id, entries, tmp);
    if (underLock) locked++;
    audits[i] = await auditCopiedClient(tmp, id, check, copy.tombstone);
    if (copy.client !== null) {
      clients++;
      bytes += copy.client.bytes;
      files += copy.client.files;
    }
    if (copy.tombstone) files++;
    options.onProgress?.(++done, scan.ids.length);
  });
  return { clients, bytes, files, audits, locked };
}

/** The client's copy, made without its lock if it is quiet throughout, under it otherwise. */
async function copyQuietOrLocked(
  storage: FileStorage,
  id: ClientId,
  entries: IdEntries,
  tmp: string,
): Promise<{ copy: IdCopy; check: ClientCheck | null; underLock: boolean }> {
  if (storage.isQuiet(id)) {
    try {
      const copy = await copyId(storage.dataDir, id, entries, tmp, false);
      if (!storage.isQuiet(id) || (copy.client !== null && !stillIndexed(copy.client.commitPoints))) throw new NotQuiet();
      const check = await checkCopy(tmp, copy);
      // Damage is reported as the lock shows it, never as a race may have made it look.
      if (check?.findings.some((f) => f.severity === 'problem')) throw new NotQuiet();
      return { copy, check, underLock: false };
    } catch (err) {
      // A file gone meanwhile: a commit or a deletion ran. The lock tells which state is committed.
      if (!(err instanceof NotQuiet) && !isErrno(err, 'ENOENT', 'ENOTDIR')) throw err;
      removeCopy(tmp, id);
    }
  }
  const copy = await storage.withClientLock(id, async (_dir, assertHeld) => {
    const copied = await copyId(storage.dataDir, id, entries, tmp, true);
    // A copy made while the lock was lost may hold a transaction half done: fail instead.
    assertHeld();
    return copied;
  });
  // The copy is ours alone: it is checked after the lock is released, so writers wait less.
  return { copy, check: await checkCopy(tmp, copy), underLock: true };
}

/**
 * Copies the client's committed files and its tombstone, as they are now. Under the lock, a
 * client directory gone since the scan was deleted: nothing to copy.
 */
async function copyId(source: string, id: ClientId, entries: IdEntries, tmp: string, locked: boolean): Promise<IdCopy> {
  let client: CopiedClient | null = null;
  if (entries.hasDir) {
    let index;
    try {
      index = await indexClient(source, id);
    } catch (err) {
      if (!locked || !isErrno(err, 'ENOENT')) throw err;
    }
    if (index !== undefined) client = await copyClient(index, tmp);
  }
  let tombstone = false;
  if (entries.hasTombstone) {
    // liftTombstone takes no lock: it may be gone by now.
    const bytes = await readFileOrNull(tombstonePath(source, id));
    if (bytes !== null) writeCopy(tombstonePath(tmp, id), bytes);
    tombstone = bytes !== null;
  }
  return { client, tombstone };
}

async function checkCopy(tmp: string, copy: IdCopy): Promise<ClientCheck | null> {
  return copy.client === null ? null : checkClient(tmp, copy.client.index);
}

/** Removes what a copy of the client wrote into `tmp`. */
function removeCopy(tmp: string, id: ClientId): void {
  rmSync(new ClientPaths(tmp, id).dir, { recursive: true, force: true });
  rmSync(tombstonePath(tmp, id), { force: true });
}
