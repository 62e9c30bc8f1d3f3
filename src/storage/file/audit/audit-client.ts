/**
 * Everything verify checks of one client id in a data directory, under the client's lock (see
 * check-client.ts for what "sound" means), and with `repair` the fixing of harmless findings
 * while still holding that lock.
 */
import path from 'node:path';
import type { ClientId } from '../../../ids.js';
import { Findings, type Finding, type Repair, type ReportedFinding } from '../../finding.js';
import { isErrno, readFileOrNull, statOrNull } from '../durable-fs.js';
import type { FileStorage } from '../file-storage.js';
import { tombstonePath } from '../layout.js';
import { checkClient, type ClientCheck } from './check-client.js';
import { indexClient } from './client-index.js';
import { applyRepairs } from './repair.js';
import type { IdEntries } from './scan-data-dir.js';

export interface ClientAudit {
  readonly findings: readonly ReportedFinding[];
  /** Null when the id has no client directory (only a tombstone or trash). */
  readonly check: ClientCheck | null;
}

/** Checks everything of one client id under its lock, and repairs it there when asked. */
export function auditFileClient(storage: FileStorage, id: ClientId, entries: IdEntries, repair: boolean): Promise<ClientAudit> {
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
      if ((await statOrNull(trashed)) === null) continue;
      f.harmless(trashed, 'trash: a deleted client whose removal, or a new client whose creation, was interrupted', { kind: 'remove', path: trashed });
    }
    return { check, findings: await settleFindings([...(check?.findings ?? []), ...f.list], repair, assertHeld) };
  });
}

/**
 * The audit of a client id's copy just written by a backup: the copy's check (null without a
 * client directory) and its tombstone's, if it has one. A copy holds no leftovers to repair.
 */
export async function auditCopiedClient(dataDir: string, id: ClientId, check: ClientCheck | null, hasTombstone: boolean): Promise<ClientAudit> {
  const f = new Findings(id, (file) => path.relative(dataDir, file));
  if (hasTombstone) await checkTombstone(tombstonePath(dataDir, id), check?.exists ?? false, f);
  return { check, findings: await settleFindings([...(check?.findings ?? []), ...f.list], false) };
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
export async function settleFindings(findings: readonly Finding[], repair: boolean, assertHeld?: () => void): Promise<ReportedFinding[]> {
  const repairs = repair ? findings.flatMap((f) => (f.repair ? [f.repair] : [])) : [];
  await applyRepairs(repairs, assertHeld);
  return findings.map(({ repair: how, ...rest }: Finding & { repair?: Repair }) => ({ ...rest, repaired: how !== undefined && repair }));
}
