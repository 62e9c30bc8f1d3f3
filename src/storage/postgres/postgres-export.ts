/**
 * Whole clients out of and into PostgreSQL (src/storage/client-export.ts): an export reads one
 * client in one database transaction under its lock; an import writes one in one transaction,
 * so it appears whole or not at all.
 */
import { TcsyncError } from '../../errors.js';
import type { ClientId } from '../../ids.js';
import type { ExportedClient, ExportedVersion } from '../client-export.js';
import type { Client } from '../storage.js';
import type { Query } from './database.js';
import { clientExists, hasTombstone, insertVersions, writeSnapshotMillis } from './queries.js';
import { bytesOf, snapshotColumns, VERSION_COLUMNS, versionFromRow, type VersionRow } from './rows.js';

/** Versions read, or written, per statement: a bound on what one round trip holds in memory. */
const VERSION_PAGE = 64;
/** Bytes of history segments per insert, so that a client of large versions is sent in bounded pieces. */
const INSERT_BYTES = 8 * 1024 * 1024;

interface TimedRow extends VersionRow {
  readonly added_at: Date | null;
}

/**
 * The versions of client $1 after id $2 (none: from the first), $3 of them, by id; with their
 * added times when the database has tcsync_version_added (null for a version without a row).
 */
const VERSIONS_PAGE = {
  withTimes: `SELECT v.version_id, v.parent_version_id, v.history_segment, a.added_at
    FROM versions v LEFT JOIN tcsync_version_added a ON a.client_id = v.client_id AND a.version_id = v.version_id
    WHERE v.client_id = $1 AND ($2::uuid IS NULL OR v.version_id > $2::uuid) ORDER BY v.version_id LIMIT $3`,
  withoutTimes: `SELECT ${VERSION_COLUMNS}, NULL::timestamptz AS added_at FROM versions
    WHERE client_id = $1 AND ($2::uuid IS NULL OR version_id > $2::uuid) ORDER BY version_id LIMIT $3`,
};

/**
 * `client` as read on `query`, whose transaction must stay open while the result is used;
 * `withTimes` when the database has tcsync_version_added.
 */
export function exportedClient(query: Query, clientId: ClientId, client: Client, withTimes: boolean): ExportedClient {
  return {
    clientId,
    latestVersionId: client.latestVersionId,
    snapshot: client.snapshot,
    async readSnapshot() {
      if (client.snapshot === null) throw new TcsyncError('SNAPSHOT_MISMATCH', 'the client has no snapshot');
      const { rows } = await query<{ snapshot: Buffer | null }>('SELECT snapshot FROM clients WHERE client_id = $1', [clientId]);
      const bytes = bytesOf(rows[0]?.snapshot ?? null);
      if (bytes === null) throw new TcsyncError('CORRUPT', 'the snapshot has no bytes');
      return bytes;
    },
    // Pages in primary-key order, each after the last id seen: no cursor to keep, no offset to skip.
    async *versions(): AsyncIterable<ExportedVersion> {
      let after: string | null = null;
      for (;;) {
        const text = withTimes ? VERSIONS_PAGE.withTimes : VERSIONS_PAGE.withoutTimes;
        const { rows }: { rows: TimedRow[] } = await query<TimedRow>(text, [clientId, after, VERSION_PAGE]);
        for (const row of rows) yield { ...versionFromRow(row), addedAt: row.added_at };
        if (rows.length < VERSION_PAGE) return;
        after = rows[rows.length - 1]!.version_id;
      }
    },
  };
}

/**
 * Writes `client` on `query`, in the caller's transaction (under the client's lock); see
 * ClientSink.importClient. Runs again in full when the database retries the transaction.
 */
export async function importClient(query: Query, client: ExportedClient): Promise<void> {
  const { clientId, latestVersionId, snapshot } = client;
  if (await clientExists(query, clientId)) throw new TcsyncError('CLIENT_EXISTS', 'client already exists');
  if (await hasTombstone(query, clientId)) throw new TcsyncError('CLIENT_DELETED', 'this client was deleted');
  const [snapshotVersion, versionsSince, seconds] = snapshotColumns(snapshot);
  await query(
    `INSERT INTO clients (client_id, latest_version_id, snapshot_version_id, versions_since_snapshot, snapshot_timestamp, snapshot)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [clientId, latestVersionId, snapshotVersion, versionsSince, seconds, snapshot === null ? null : await client.readSnapshot()],
  );
  if (snapshot !== null) await writeSnapshotMillis(query, clientId, snapshot);

  // Upstream's tables do not make a parent unique, so repeats are caught here, before they land.
  const ids = new Set<string>();
  const parents = new Set<string>();
  let batch: ExportedVersion[] = [];
  let batchBytes = 0;
  for await (const version of client.versions()) {
    if (ids.has(version.versionId) || parents.has(version.parentVersionId)) {
      throw new TcsyncError('CORRUPT', `version ${version.versionId} repeats a version id or a parent`);
    }
    ids.add(version.versionId);
    parents.add(version.parentVersionId);
    batch.push(version);
    batchBytes += version.historySegment.byteLength;
    if (batch.length >= VERSION_PAGE || batchBytes >= INSERT_BYTES) {
      await insertVersions(query, clientId, batch);
      batch = [];
      batchBytes = 0;
    }
  }
  await insertVersions(query, clientId, batch);
}
