/**
 * verify: checks every client of a data directory, each under its lock so that a live server's
 * data directory can be checked, and with `repair` fixes the harmless findings while still
 * holding that lock. What is checked is the file format's business (storage/file/audit/);
 * this is the walk over the data directory and the report.
 */
import { performance } from 'node:perf_hooks';
import type { ReportedFinding } from '../storage/finding.js';
import { auditFileClient, settleFindings, type ClientAudit } from '../storage/file/audit/audit-client.js';
import { scanDataDir, type IdEntries } from '../storage/file/audit/scan-data-dir.js';
import type { LockOptions } from '../storage/file/client-lock.js';
import { openDataDir } from './data-dir.js';
import { forEachLimit } from '../pool.js';

export interface VerifyOptions {
  /**
   * Remove harmless leftovers, re-create pending links and re-link copied `.child` files, each
   * client's under its lock; also re-create a lost `.child` of a committed version where the
   * chain leaves no choice (still a problem in the report). Never removes a committed version.
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

export async function verifyDataDir(dataDir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const storage = await openDataDir(dataDir, options.lock);
  try {
    const scan = await scanDataDir(storage.dataDir);
    const results: ClientAudit[] = [];
    let done = 0;
    await forEachLimit(scan.ids, options.concurrency ?? 8, async (id, i) => {
      results[i] = await auditFileClient(storage, id, scan.entries.get(id) as IdEntries, options.repair ?? false);
      options.onProgress?.(++done, scan.ids.length);
    });
    const top = await settleFindings(scan.findings.list, options.repair ?? false);
    return verifyReport(storage.dataDir, top, results, performance.now() - started);
  } finally {
    await storage.close();
  }
}

/** The report of a data directory's findings of its own (`top`) and its clients' audits. */
export function verifyReport(dataDir: string, top: readonly ReportedFinding[], audits: readonly ClientAudit[], durationMs: number): VerifyReport {
  const findings = [...top, ...audits.flatMap((r) => r.findings)];
  const checks = audits.flatMap((r) => (r.check?.exists ? [r.check] : []));
  return {
    dataDir,
    sound: !findings.some((f) => f.severity === 'problem'),
    clients: checks.length,
    versions: checks.reduce((n, c) => n + c.versions, 0),
    bytes: checks.reduce((n, c) => n + c.bytes, 0),
    findings,
    durationMs,
  };
}
