/**
 * backup: a consistent, durable copy of a (possibly live) data directory.
 *
 * Each client is copied as committed at one instant (under its lock, or without it while nobody
 * commits to it: see copy-data-dir.ts), so the copy holds a committed state of it that includes
 * every version acknowledged before the backup began. The copy is built in a sibling temporary
 * directory and checked as verify checks a data directory, each client's files as they were
 * written; then the file system is synced once, and only then the directory is renamed to DEST
 * (the rename is the commit point, the parent fsync'd after it): DEST appears complete, verified
 * and durable, or not at all.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { copyDataDir, type CopiedDataDir } from '../storage/file/audit/copy-data-dir.js';
import { syncFileSystem, type SyncedBy } from '../storage/file/sync-file-system.js';
import type { LockOptions } from '../storage/file/client-lock.js';
import { fsyncDir, isErrno } from '../storage/file/durable-fs.js';
import { exists, openDataDir } from './data-dir.js';
import { OpsError } from './ops-error.js';
import { verifyReport, type VerifyReport } from './verify.js';

export interface BackupOptions {
  /**
   * How many clients are copied at once.
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * Called after each client is copied and verified.
   * @default undefined (no reports)
   */
  readonly onProgress?: (phase: 'copy', done: number, total: number) => void;
  /**
   * How client locks are taken (see FileStorage).
   * @default FileStorage's defaults
   */
  readonly lock?: LockOptions;
}

export interface BackupReport extends CopiedDataDir {
  /** DEST, absolute. */
  readonly dest: string;
  /** The verification of the copy (its dataDir is DEST; its duration the copy's, which checks each client as written). */
  readonly verify: VerifyReport;
  /** How the copy was made durable: one syncfs, or an fsync of every file where `sync -f` is missing. */
  readonly syncedBy: SyncedBy;
  /**
   * Client ids copied under their lock: a live server was committing to them. The others were
   * copied without it, seen quiet before and after (see copy-data-dir.ts).
   */
  readonly lockedClients: number;
  readonly durationMs: number;
}

export async function backupDataDir(dataDir: string, dest: string, options: BackupOptions = {}): Promise<BackupReport> {
  const started = performance.now();
  const target = path.resolve(dest);
  if (await exists(target)) throw new OpsError('DEST_EXISTS', `${target} already exists; a backup needs a new directory`);
  const storage = await openDataDir(dataDir, options.lock);
  try {
    const inside = path.relative(storage.dataDir, target);
    if (!inside.startsWith('..') && !path.isAbsolute(inside)) {
      throw new OpsError('BAD_DEST', `${target} is inside the data directory ${storage.dataDir}`);
    }
    // A sibling of DEST, so that the final rename stays on one file system.
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomUUID().slice(0, 8)}`);
    try {
      await mkdir(tmp);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new OpsError('BAD_DEST', `${path.dirname(target)} does not exist or is not a directory`);
      throw err;
    }
    try {
      const copyStarted = performance.now();
      const { audits, locked, ...copied } = await copyDataDir(storage, tmp, {
        concurrency: options.concurrency,
        onProgress: (n, total) => options.onProgress?.('copy', n, total),
      });
      // Each client is checked as it is copied: the verification took as long as the copy.
      const verify = verifyReport(target, [], audits, performance.now() - copyStarted);
      if (!verify.sound) {
        const problems = verify.findings.filter((f) => f.severity === 'problem');
        const list = problems.slice(0, 20).map((f) => `\n  ${f.file}: ${f.message}`).join('');
        throw new OpsError('BACKUP_UNSOUND', `the copy did not verify (${problems.length} problems; is the data directory sound?):${list}`);
      }
      // Data before the name that makes it a backup: the whole copy durable, then the rename.
      const syncedBy = await syncFileSystem(tmp);
      // Checked again: rename(2) would silently replace an empty directory created at DEST meanwhile.
      if (await exists(target)) throw new OpsError('DEST_EXISTS', `${target} appeared while the backup ran`);
      await rename(tmp, target);
      await fsyncDir(path.dirname(target));
      return { dest: target, ...copied, lockedClients: locked, verify, syncedBy, durationMs: performance.now() - started };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  } finally {
    await storage.close();
  }
}
