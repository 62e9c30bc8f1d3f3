/**
 * The statements more than one kind of transaction sends (a StorageTxn's commit, an import, an
 * admin operation), each written once. All run on the caller's Query, in its transaction.
 */
import { TcsyncError } from '../../errors.js';
import { NIL_VERSION_ID, type ClientId } from '../../ids.js';
import type { TxnChanges } from '../staged-txn.js';
import type { Client, Snapshot, Version } from '../storage.js';
import type { Query } from './database.js';
import { CLIENT_QUERY, clientFromRow, snapshotColumns, type ClientRow } from './rows.js';

/** True when the client's row exists. */
export async function clientExists(query: Query, clientId: ClientId): Promise<boolean> {
  return (await query('SELECT 1 FROM clients WHERE client_id = $1', [clientId])).rows.length > 0;
}

/** True when the id carries a tombstone. */
export async function hasTombstone(query: Query, clientId: ClientId): Promise<boolean> {
  return (await query('SELECT 1 FROM tcsync_tombstones WHERE client_id = $1', [clientId])).rows.length > 0;
}

/** Leaves a tombstone on the id (none twice). */
export async function addTombstone(query: Query, clientId: ClientId): Promise<void> {
  await query('INSERT INTO tcsync_tombstones (client_id) VALUES ($1) ON CONFLICT (client_id) DO NOTHING', [clientId]);
}

/** The client as committed, or null; `text` is CLIENT_QUERY or, without tcsync_snapshot_millis, its variant. */
export async function readClient(query: Query, clientId: ClientId, text = CLIENT_QUERY): Promise<Client | null> {
  const row = (await query<ClientRow>(text, [clientId])).rows[0];
  return row === undefined ? null : clientFromRow(row);
}

/** Writes one transaction's staged changes, checking first that the client's latest version is still `before`'s. */
export async function writeChanges(query: Query, clientId: ClientId, { before, after, versions, snapshotData }: TxnChanges): Promise<void> {
  const [snapshotVersion, versionsSince, seconds] = snapshotColumns(after.snapshot);
  const clientValues = [clientId, after.latestVersionId, snapshotVersion, versionsSince, seconds, snapshotData];
  // The client row first: versions reference it.
  const written =
    before === null
      ? await query(
          `INSERT INTO clients (client_id, latest_version_id, snapshot_version_id, versions_since_snapshot, snapshot_timestamp, snapshot)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id) DO NOTHING`,
          clientValues,
        )
      : await query(
          `UPDATE clients SET latest_version_id = $2, snapshot_version_id = $3, versions_since_snapshot = $4,
             snapshot_timestamp = $5, snapshot = COALESCE($6::bytea, snapshot)
           WHERE client_id = $1 AND COALESCE(latest_version_id, $8) = $7`,
          [...clientValues, before.latestVersionId, NIL_VERSION_ID],
        );
  if (written.rowCount !== 1) {
    throw new TcsyncError('LOCK_LOST', 'the client changed although this transaction held its lock: another program writes to the database without taking it');
  }
  await insertVersions(query, clientId, versions);
  if (snapshotData !== null && after.snapshot !== null) await writeSnapshotMillis(query, clientId, after.snapshot);
}

/** Records the snapshot's milliseconds next to the whole seconds upstream's column holds. */
export async function writeSnapshotMillis(query: Query, clientId: ClientId, snapshot: Snapshot): Promise<void> {
  await query(
    `INSERT INTO tcsync_snapshot_millis (client_id, snapshot_version_id, timestamp_ms) VALUES ($1, $2, $3)
     ON CONFLICT (client_id) DO UPDATE SET snapshot_version_id = EXCLUDED.snapshot_version_id, timestamp_ms = EXCLUDED.timestamp_ms`,
    [clientId, snapshot.versionId, snapshot.timestamp.getTime()],
  );
}

/** Inserts `versions` of the client in one statement. */
export async function insertVersions(query: Query, clientId: ClientId, versions: readonly Version[]): Promise<void> {
  if (versions.length === 0) return;
  const rows = versions.map((_, i) => `($1, $${3 * i + 2}, $${3 * i + 3}, $${3 * i + 4})`);
  const values = versions.flatMap((v) => [v.versionId, v.parentVersionId, v.historySegment]);
  await query(`INSERT INTO versions (client_id, version_id, parent_version_id, history_segment) VALUES ${rows.join(', ')}`, [clientId, ...values]);
}
