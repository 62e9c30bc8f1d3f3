/**
 * The statements more than one kind of transaction sends (a StorageTxn's commit, an import, an
 * admin operation), each written once. All run on the caller's Query, in its transaction.
 */
import pg from 'pg';
import { TcsyncError } from '../../errors.js';
import { NIL_VERSION_ID, type ClientId } from '../../ids.js';
import type { TxnChanges } from '../staged-txn.js';
import type { ExportedVersion } from '../client-export.js';
import type { Client, Snapshot } from '../storage.js';
import { prepared, type Query, type Statement } from './database.js';
import { clientFromRow, clientRowOf, snapshotColumns, type ClientRow } from './rows.js';

/** True when the client's row exists. */
export async function clientExists(query: Query, clientId: ClientId): Promise<boolean> {
  return (await query('SELECT 1 FROM clients WHERE client_id = $1', [clientId])).rows.length > 0;
}

/**
 * A client's stored versions and their segments' bytes plus the snapshot's ($1 the client), as
 * bigints (text), and how many of those versions have a recorded time and the oldest such time;
 * no row when the client does not exist. octet_length of a TOASTed bytea reads its stored
 * length, not the value. `times` is the subquery for the times (a database opened without
 * creating tables may lack tcsync_version_added).
 */
const usageQuery = (times: string) =>
  `SELECT v.versions, v.segment_bytes + COALESCE(octet_length(c.snapshot), 0) AS bytes, t.timed, t.oldest
   FROM clients c, LATERAL (
     SELECT count(*) AS versions, COALESCE(sum(octet_length(history_segment)), 0) AS segment_bytes
     FROM versions WHERE client_id = c.client_id) v, LATERAL (${times}) t
   WHERE c.client_id = $1`;

export const CLIENT_USAGE = {
  withTimes: prepared(usageQuery('SELECT count(*) AS timed, min(added_at) AS oldest FROM tcsync_version_added WHERE client_id = c.client_id')),
  withoutTimes: usageQuery('SELECT 0::bigint AS timed, NULL::timestamptz AS oldest'),
};

const HAS_TOMBSTONE = prepared('SELECT 1 FROM tcsync_tombstones WHERE client_id = $1');

/** True when the id carries a tombstone. */
export async function hasTombstone(query: Query, clientId: ClientId): Promise<boolean> {
  return (await query(HAS_TOMBSTONE, [clientId])).rows.length > 0;
}

/** Leaves a tombstone on the id (none twice). */
export async function addTombstone(query: Query, clientId: ClientId): Promise<void> {
  await query('INSERT INTO tcsync_tombstones (client_id) VALUES ($1) ON CONFLICT (client_id) DO NOTHING', [clientId]);
}

/** The client in the result of CLIENT_QUERY (or its variant without the milliseconds), or null. */
export function clientOf(result: pg.QueryResult | undefined): Client | null {
  const row = clientRowOf(result);
  return row === null ? null : clientFromRow(row);
}

const INSERT_CLIENT = prepared(
  `INSERT INTO clients (client_id, latest_version_id, snapshot_version_id, versions_since_snapshot, snapshot_timestamp, snapshot)
   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id) DO NOTHING`,
);

/** $7: the latest version `before` read, $8: the nil version (an upstream row may hold NULL). */
const UPDATE_CLIENT = prepared(
  `UPDATE clients SET latest_version_id = $2, snapshot_version_id = $3, versions_since_snapshot = $4,
     snapshot_timestamp = $5, snapshot = COALESCE($6::bytea, snapshot)
   WHERE client_id = $1 AND COALESCE(latest_version_id, $8) = $7`,
);

/**
 * The end of both add-version statements: the version inserted only when the CTE `client`
 * returned the row it wrote, and its time in tcsync_version_added in the same statement (so in
 * the same round trip); the statement's rowCount is that of the last insert, 1 or 0.
 */
const INSERT_ADDED_VERSION = (id: string, parent: string, segment: string) => `,
   version AS (
     INSERT INTO versions (client_id, version_id, parent_version_id, history_segment)
     SELECT client_id, ${id}::uuid, ${parent}::uuid, ${segment}::bytea FROM client
     RETURNING client_id, version_id)
   INSERT INTO tcsync_version_added (client_id, version_id) SELECT client_id, version_id FROM version`;

/**
 * The commit of one add-version in one statement: the client row as UPDATE_CLIENT writes it
 * (without snapshot bytes; $6 the latest version read, $7 nil), and the version ($8, parent $9,
 * segment $10) only when that row was written, so that no row inserted means the re-check failed.
 */
const ADD_VERSION = prepared(
  `WITH client AS (
     UPDATE clients SET latest_version_id = $2, snapshot_version_id = $3, versions_since_snapshot = $4, snapshot_timestamp = $5
     WHERE client_id = $1 AND COALESCE(latest_version_id, $7::uuid) = $6::uuid
     RETURNING client_id)${INSERT_ADDED_VERSION('$8', '$9', '$10')}`,
);

/**
 * ADD_VERSION for a transaction that read the client from the cache, not under the lock: the row
 * is written only if every column it read is still as read, IS NOT DISTINCT FROM (its latest
 * version $6 raw, the snapshot's $7 to $9, the snapshot's milliseconds $10 and $11), and the
 * version ($12, parent $13, segment $14) only when the row was.
 */
const ADD_VERSION_IF_UNCHANGED = prepared(
  `WITH client AS (
     UPDATE clients SET latest_version_id = $2, snapshot_version_id = $3, versions_since_snapshot = $4, snapshot_timestamp = $5
     WHERE client_id = $1 AND latest_version_id IS NOT DISTINCT FROM $6::uuid
       AND snapshot_version_id IS NOT DISTINCT FROM $7::uuid AND versions_since_snapshot IS NOT DISTINCT FROM $8::integer
       AND snapshot_timestamp IS NOT DISTINCT FROM $9::bigint
       AND (SELECT m.snapshot_version_id FROM tcsync_snapshot_millis m WHERE m.client_id = $1) IS NOT DISTINCT FROM $10::uuid
       AND (SELECT m.timestamp_ms FROM tcsync_snapshot_millis m WHERE m.client_id = $1) IS NOT DISTINCT FROM $11::bigint
     RETURNING client_id)${INSERT_ADDED_VERSION('$12', '$13', '$14')}`,
);

/** True when `changes` are the common commit: one version on a client that exists, no snapshot. */
export function isSingleAdd({ before, versions, snapshotData }: TxnChanges): boolean {
  return before !== null && versions.length === 1 && snapshotData === null;
}

/**
 * The one statement of an optimistic add-version (isSingleAdd `changes` on the client whose row
 * was `read`), for Database.once. Its result's rowCount is 1 when it was written, 0 when the row
 * is no longer `read`; a stored version id fails it (commitError makes that VERSION_EXISTS).
 */
export function addVersionIfUnchanged(clientId: ClientId, read: ClientRow, { after, versions }: TxnChanges): Statement {
  const [snapshotVersion, versionsSince, seconds] = snapshotColumns(after.snapshot);
  const only = versions[0]!;
  return {
    text: ADD_VERSION_IF_UNCHANGED,
    values: [
      clientId, after.latestVersionId, snapshotVersion, versionsSince, seconds,
      read.latest_version_id, read.snapshot_version_id, read.versions_since_snapshot, read.snapshot_timestamp,
      read.millis_version_id, read.timestamp_ms,
      only.versionId, only.parentVersionId, only.historySegment,
    ],
  };
}

/** The error a failed commit is reported as: VERSION_EXISTS for a version id already stored, else `err`. */
export function commitError(err: unknown): unknown {
  return storedVersion(err) ? new TcsyncError('VERSION_EXISTS', 'a version with this id already exists', { cause: err }) : err;
}

/**
 * Writes one transaction's staged changes, checking first that the client's latest version is
 * still `before`'s. A version id already stored fails as VERSION_EXISTS, leaving nothing (the
 * caller's transaction is then aborted). `last`, when given, runs the last statement and commits
 * with it (Session.queryAndCommit); a single add-version is then all in one round trip.
 */
export async function writeChanges(query: Query, clientId: ClientId, changes: TxnChanges, last?: Query): Promise<void> {
  try {
    await writeStaged(query, clientId, changes, last);
  } catch (err) {
    throw commitError(err);
  }
}

async function writeStaged(query: Query, clientId: ClientId, { before, after, versions, snapshotData }: TxnChanges, last = query): Promise<void> {
  const [snapshotVersion, versionsSince, seconds] = snapshotColumns(after.snapshot);
  const [only] = versions;
  if (before !== null && only !== undefined && isSingleAdd({ before, after, versions, snapshotData })) {
    const added = await last(ADD_VERSION, [
      clientId, after.latestVersionId, snapshotVersion, versionsSince, seconds,
      before.latestVersionId, NIL_VERSION_ID, only.versionId, only.parentVersionId, only.historySegment,
    ]);
    if (added.rowCount !== 1) throw lockLost();
    return;
  }
  const clientValues = [clientId, after.latestVersionId, snapshotVersion, versionsSince, seconds, snapshotData];
  // The client row first: versions reference it.
  const written =
    before === null
      ? await query(INSERT_CLIENT, clientValues)
      : await query(UPDATE_CLIENT, [...clientValues, before.latestVersionId, NIL_VERSION_ID]);
  if (written.rowCount !== 1) throw lockLost();
  await insertVersions(query, clientId, versions);
  if (snapshotData !== null && after.snapshot !== null) await writeSnapshotMillis(query, clientId, after.snapshot);
}

function lockLost(): TcsyncError {
  return new TcsyncError('LOCK_LOST', 'the client changed although this transaction held its lock: another program writes to the database without taking it');
}

/** True when `err` is the database refusing a second row of one version id (versions' primary key). */
function storedVersion(err: unknown): boolean {
  const cause = err instanceof TcsyncError ? err.cause : undefined;
  return cause instanceof pg.DatabaseError && cause.code === '23505' && cause.table === 'versions';
}

const WRITE_SNAPSHOT_MILLIS = prepared(
  `INSERT INTO tcsync_snapshot_millis (client_id, snapshot_version_id, timestamp_ms) VALUES ($1, $2, $3)
   ON CONFLICT (client_id) DO UPDATE SET snapshot_version_id = EXCLUDED.snapshot_version_id, timestamp_ms = EXCLUDED.timestamp_ms`,
);

/** Records the snapshot's milliseconds next to the whole seconds upstream's column holds. */
export async function writeSnapshotMillis(query: Query, clientId: ClientId, snapshot: Snapshot): Promise<void> {
  await query(WRITE_SNAPSHOT_MILLIS, [clientId, snapshot.versionId, snapshot.timestamp.getTime()]);
}

/**
 * Inserts `versions` of the client, with their added times, in one statement: an import's
 * `addedAt` where its source knew it, else now (the transaction's start).
 */
export async function insertVersions(query: Query, clientId: ClientId, versions: readonly ExportedVersion[]): Promise<void> {
  if (versions.length === 0) return;
  // The first row's casts give the VALUES list its column types.
  const rows = versions.map((_, i) => (i === 0 ? '($2::uuid, $3::uuid, $4::bytea, $5::timestamptz)' : `($${4 * i + 2}, $${4 * i + 3}, $${4 * i + 4}, $${4 * i + 5})`));
  const values = versions.flatMap((v) => [v.versionId, v.parentVersionId, v.historySegment, v.addedAt ?? null]);
  const text = `WITH input (version_id, parent_version_id, history_segment, added_at) AS (VALUES ${rows.join(', ')}),
    inserted AS (
      INSERT INTO versions (client_id, version_id, parent_version_id, history_segment)
      SELECT $1::uuid, version_id, parent_version_id, history_segment FROM input)
    INSERT INTO tcsync_version_added (client_id, version_id, added_at) SELECT $1::uuid, version_id, COALESCE(added_at, now()) FROM input`;
  // A client's first version comes alone; imports send many at once, in varying numbers.
  await query(versions.length === 1 ? prepared(text) : text, [clientId, ...values]);
}
