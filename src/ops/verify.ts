/**
 * verify: checks every client of a data directory (check-client.ts says what "sound" means),
 * each under its lock so that a live server's data directory can be checked, and with
 * `repair` fixes the harmless findings (finding.ts) while still holding that lock.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ClientId } from '../ids.js';
import type { LockOptions } from '../storage/file/client-lock.js';
import { isErrno, readFileOrNull } from '../storage/file/durable-fs.js';
import type { FileStorage } from '../storage/file/file-storage.js';
import { tombstonePath } from '../storage/file/layout.js';
import { indexClient } from './client-index.js';
import { checkClient, type ClientCheck } from './check-client.js';
import { exists, openDataDir, scanDataDir, type IdEntries } from './data-dir.js';
import { Findings, type Finding, type Repair } from './finding.js';
import { forEachLimit } from './pool.js';
import { applyRepairs } from './repair.js';

export interface VerifyOptions {
  /**
   * Remove harmless leftovers, re-create pending links and re-link copied `.child` files, each client's under its lock.
   * @default false
   */
  readonly repair?: boolean;
  /**
   * How many clients are checked at once.
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * Called after each client is checked, e.g. to draw a progress bar.
   * @default undefined (no reports)
   */
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * How client locks are taken (see FileStorage).
   * @default FileStorage's defaults
   */
  readonly lock?: LockOptions;
}

/** A finding as reported: what `--repair` did about it instead of how. */
export interface ReportedFinding extends Omit<Finding, 'repair'> {
  /** True when `--repair` removed, completed or re-linked it. */
  readonly repaired: boolean;
}

export interface VerifyReport {
  /** The data directory, absolute. */
  readonly dataDir: string;
  /** No problems: harmless findings and warnings do not count. */
  readonly sound: boolean;
  readonly clients: number;
  /** Versions on the clients' chains. */
  readonly versions: number;
  /** Bytes of committed files (metadata, versions, snapshots). */
  readonly bytes: number;
  /** Problems, harmless findings and warnings, the data directory's first, then by client. */
  readonly findings: readonly ReportedFinding[];
  readonly durationMs: number;
}

interface IdResult {
  readonly findings: readonly ReportedFinding[];
  readonly check: ClientCheck | null;
}

export async function verifyDataDir(dataDir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const storage = await openDataDir(dataDir, options.lock);
  try {
    const scan = await scanDataDir(storage.dataDir);
    const results: IdResult[] = [];
    let done = 0;
    await forEachLimit(scan.ids, options.concurrency ?? 8, async (id, i) => {
      results[i] = await verifyId(storage, id, scan.entries.get(id) as IdEntries, options.repair ?? false);
      options.onProgress?.(++done, scan.ids.length);
    });
    const top = await settle(scan.findings.list, options.repair ?? false);
    const findings = [...top, ...results.flatMap((r) => r.findings)];
    const checks = results.flatMap((r) => (r.check?.exists ? [r.check] : []));
    return {
      dataDir: storage.dataDir,
      sound: !findings.some((f) => f.severity === 'problem'),
      clients: checks.length,
      versions: checks.reduce((n, c) => n + c.versions, 0),
      bytes: checks.reduce((n, c) => n + c.bytes, 0),
      findings,
      durationMs: performance.now() - started,
    };
  } finally {
    await storage.close();
  }
}

/** Checks everything of one client id under its lock, and repairs it there when asked. */
function verifyId(storage: FileStorage, id: ClientId, entries: IdEntries, repair: boolean): Promise<IdResult> {
  const { dataDir } = storage;
  return storage.withClientLock(id, async (_dir, assertHeld) => {
    let check: ClientCheck | null = null;
    if (entries.hasDir) {
      try {
        check = await checkClient(dataDir, await indexClient(dataDir, id));
      } catch (err) {
        // Deleted between the scan and taking its lock: nothing left to check.
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    // A check made while the lock was lost may have seen a transaction half done: fail instead.
    assertHeld();
    const f = new Findings(id, (file) => path.relative(dataDir, file));
    if (entries.hasTombstone) await checkTombstone(tombstonePath(dataDir, id), check?.exists ?? false, f);
    for (const temp of entries.tombstoneTemps) {
      f.harmless(temp, 'a temporary file of an interrupted tombstone write', { kind: 'remove', path: temp });
    }
    for (const trashed of entries.trash) {
      // A live server's deleteClient removes its trash under this lock: what is left now is a leftover.
      if (!(await exists(trashed))) continue;
      f.harmless(trashed, 'trash: a deleted client whose removal was interrupted', { kind: 'remove', path: trashed });
    }
    return { check, findings: await settle([...(check?.findings ?? []), ...f.list], repair, assertHeld) };
  });
}

async function checkTombstone(file: string, clientExists: boolean, f: Findings): Promise<void> {
  // liftTombstone takes no lock, so the tombstone may be gone by now.
  const bytes = await readFileOrNull(file);
  if (bytes === null) return;
  let deletedAt: unknown;
  try {
    deletedAt = (JSON.parse(bytes.toString('utf8')) as { deletedAt?: unknown } | null)?.deletedAt;
  } catch {
    deletedAt = undefined;
  }
  if (typeof deletedAt !== 'string' || Number.isNaN(Date.parse(deletedAt))) f.problem(file, 'not a tombstone: expected JSON {"deletedAt": "<ISO date>"}');
  if (clientExists) f.warning(file, 'the client is tombstoned but its directory still exists (an interrupted deletion?)');
}

/** Applies the repairs of harmless findings when asked, and reports what was done. */
async function settle(findings: readonly Finding[], repair: boolean, assertHeld?: () => void): Promise<ReportedFinding[]> {
  const repairs = repair ? findings.flatMap((f) => (f.repair ? [f.repair] : [])) : [];
  await applyRepairs(repairs, assertHeld);
  return findings.map(({ repair: how, ...rest }: Finding & { repair?: Repair }) => ({ ...rest, repaired: how !== undefined && repair }));
}
