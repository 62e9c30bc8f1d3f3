/**
 * `tcsync usage`: what every client of a storage takes up, largest first, for an operator
 * deciding where space goes. Built on Storage.clientUsage, which takes no lock: on a live server
 * each client is read as it is at that moment, an estimate that commits never make fail.
 */
import type { ClientId } from '../ids.js';
import { forEachLimit } from '../pool.js';
import { allIds } from '../storage/client-export.js';
import type { ClientUsage, Storage } from '../storage/storage.js';
import { formatBytes } from './verify-report.js';

export interface ClientUsageRow extends ClientUsage {
  readonly clientId: ClientId;
}

export interface UsageReport {
  /** The clients, by bytes, largest first (ties by id). */
  readonly clients: readonly ClientUsageRow[];
  readonly versions: number;
  readonly bytes: number;
}

export interface UsageOptions {
  /** Clients read at once. @default 4 */
  readonly concurrency?: number;
  /** Called after each client with how many are done of how many. */
  readonly onProgress?: (done: number, total: number) => void;
}

export async function usageReport(storage: Storage, options: UsageOptions = {}): Promise<UsageReport> {
  const ids: ClientId[] = [];
  for await (const id of allIds((after, limit) => storage.listClients(after, limit))) ids.push(id);
  const rows: ClientUsageRow[] = [];
  let done = 0;
  await forEachLimit(ids, options.concurrency ?? 4, async (clientId) => {
    // Null: deleted since it was listed.
    const usage = await storage.clientUsage(clientId);
    if (usage !== null) rows.push({ clientId, ...usage });
    options.onProgress?.(++done, ids.length);
  });
  rows.sort((a, b) => b.bytes - a.bytes || (a.clientId < b.clientId ? -1 : 1));
  return {
    clients: rows,
    versions: rows.reduce((n, row) => n + row.versions, 0),
    bytes: rows.reduce((n, row) => n + row.bytes, 0),
  };
}

const HEADINGS = ['CLIENT', 'VERSIONS', 'BYTES', 'OLDEST VERSION ADDED'] as const;

/** A table, one client a line, with a header line and a totals line; exact byte counts, sizes in the totals. */
export function usageLines(report: UsageReport): string[] {
  const cells = report.clients.map((row) => [row.clientId, String(row.versions), String(row.bytes), row.oldestVersionAddedAt?.toISOString() ?? '-']);
  const widths = HEADINGS.map((heading, i) => Math.max(heading.length, ...cells.map((line) => line[i]!.length)));
  // Numbers right-aligned, text left-aligned; no trailing spaces.
  const line = (values: readonly string[]) =>
    values.map((value, i) => (i === 1 || i === 2 ? value.padStart(widths[i]!) : i === values.length - 1 ? value : value.padEnd(widths[i]!))).join('  ');
  const clients = report.clients.length === 1 ? '1 client' : `${report.clients.length} clients`;
  const versions = report.versions === 1 ? '1 version' : `${report.versions} versions`;
  return [line(HEADINGS), ...cells.map(line), `total: ${clients}, ${versions}, ${formatBytes(report.bytes)} (${report.bytes} bytes)`];
}

/** The report for `--json`: the clients in the table's order, times as RFC 3339 or null. */
export function usageJson(report: UsageReport): string {
  const clients = report.clients.map((row) => ({
    clientId: row.clientId,
    versions: row.versions,
    bytes: row.bytes,
    oldestVersionAddedAt: row.oldestVersionAddedAt?.toISOString() ?? null,
  }));
  return JSON.stringify({ clients, versions: report.versions, bytes: report.bytes }, null, 2);
}
