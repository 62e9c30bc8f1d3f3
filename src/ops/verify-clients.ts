/**
 * verify over the export interface: checks every client of any storage with the chain checks
 * (chain-checks.ts), each client exported under its lock or in one transaction, so a live
 * storage can be checked. `verify --connection` runs this; a data directory gets these checks
 * and the file format's own ones (verify.ts).
 */
import { performance } from 'node:perf_hooks';
import type { ClientId } from '../ids.js';
import { allIds, type ClientSource } from '../storage/client-export.js';
import { PostgresStorage } from '../storage/postgres/postgres-storage.js';
import { checkExportedClient, type ChainCheck } from './chain-checks.js';
import { describeEndpoint } from './endpoint.js';
import { forEachLimit } from '../pool.js';
import type { VerifyOptions, VerifyReport } from './verify.js';

/** Checks every client of `source`; `label` names it in the report (the report's `dataDir`). */
export async function verifyClients(source: ClientSource, label: string, options: Pick<VerifyOptions, 'concurrency' | 'onProgress'> = {}): Promise<VerifyReport> {
  const started = performance.now();
  const ids: ClientId[] = [];
  for await (const id of allIds((after, limit) => source.listClients(after, limit))) ids.push(id);
  const checks: ChainCheck[] = [];
  let done = 0;
  await forEachLimit(ids, options.concurrency ?? 4, async (id, i) => {
    // Deleted since it was listed: nothing to check.
    const check = await source.exportClient(id, checkExportedClient);
    if (check !== null) checks[i] = check;
    options.onProgress?.(++done, ids.length);
  });
  const present = checks.filter((c) => c !== undefined);
  // Nothing here is repairable: a database's transactions leave no leftovers.
  const findings = present.flatMap((c) => c.findings.list.map((finding) => ({ ...finding, repaired: false })));
  return {
    dataDir: label,
    sound: !findings.some((f) => f.severity === 'problem'),
    clients: present.length,
    versions: present.reduce((n, c) => n + c.versions, 0),
    bytes: present.reduce((n, c) => n + c.bytes, 0),
    findings,
    durationMs: performance.now() - started,
  };
}

/** Checks every client of the PostgreSQL database at `uri`, creating nothing in it: a check does not write. */
export async function verifyDatabase(uri: string, options: Pick<VerifyOptions, 'concurrency' | 'onProgress'> = {}): Promise<VerifyReport> {
  const storage = await PostgresStorage.open(uri, { create: false });
  try {
    return await verifyClients(storage, describeEndpoint({ kind: 'postgres', uri }), options);
  } finally {
    await storage.close();
  }
}
