/**
 * Rows of upstream's `clients` and `versions` tables to tcsync's values and back. Ids come out of
 * PostgreSQL's uuid type in canonical form (lower case, hyphenated), so they are branded as read.
 */
import type pg from 'pg';
import { NIL_VERSION_ID, type VersionId } from '../../ids.js';
import type { Client, Snapshot, Version } from '../storage.js';
import { prepared } from './database.js';

/** Selected by {@link CLIENT_QUERY}. BIGINTs arrive as strings. */
export interface ClientRow {
  readonly latest_version_id: string | null;
  readonly snapshot_version_id: string | null;
  readonly versions_since_snapshot: number | null;
  readonly snapshot_timestamp: string | null;
  readonly millis_version_id: string | null;
  readonly timestamp_ms: string | null;
}

export interface VersionRow {
  readonly version_id: string;
  readonly parent_version_id: string | null;
  readonly history_segment: Buffer | null;
}

const CLIENT_COLUMNS = 'c.latest_version_id, c.snapshot_version_id, c.versions_since_snapshot, c.snapshot_timestamp';

/** One client's row with its snapshot's milliseconds; $1 is the client id. */
export const CLIENT_QUERY = prepared(`SELECT ${CLIENT_COLUMNS}, m.snapshot_version_id AS millis_version_id, m.timestamp_ms
  FROM clients c LEFT JOIN tcsync_snapshot_millis m ON m.client_id = c.client_id
  WHERE c.client_id = $1`);

/**
 * {@link CLIENT_QUERY} for a database without tcsync_snapshot_millis (opened without creating
 * it): the snapshot reads at its whole seconds, as upstream reads it.
 */
export const CLIENT_QUERY_WITHOUT_MILLIS = `SELECT ${CLIENT_COLUMNS}, NULL AS millis_version_id, NULL AS timestamp_ms
  FROM clients c WHERE c.client_id = $1`;

export const VERSION_COLUMNS = 'version_id, parent_version_id, history_segment';

export function clientFromRow(row: ClientRow): Client {
  return { latestVersionId: (row.latest_version_id ?? NIL_VERSION_ID) as VersionId, snapshot: snapshotFromRow(row) };
}

/** A snapshot only when all three of its columns are set, as upstream reads them. */
function snapshotFromRow(row: ClientRow): Snapshot | null {
  if (row.snapshot_version_id === null || row.versions_since_snapshot === null || row.snapshot_timestamp === null) return null;
  const seconds = Number(row.snapshot_timestamp);
  const millis = row.timestamp_ms === null ? null : Number(row.timestamp_ms);
  const sameSnapshot = millis !== null && row.millis_version_id === row.snapshot_version_id && Math.floor(millis / 1000) === seconds;
  return {
    versionId: row.snapshot_version_id as VersionId,
    timestamp: new Date(sameSnapshot ? millis : seconds * 1000),
    versionsSince: row.versions_since_snapshot,
  };
}

/** A NULL parent or segment (possible in upstream's columns, never written by either server) reads as nil or empty. */
export function versionFromRow(row: VersionRow): Version {
  return {
    versionId: row.version_id as VersionId,
    parentVersionId: (row.parent_version_id ?? NIL_VERSION_ID) as VersionId,
    historySegment: bytesOf(row.history_segment) ?? new Uint8Array(0),
  };
}

/** A plain view of a BYTEA value, without copying it. */
export function bytesOf(buffer: Buffer | null): Uint8Array | null {
  return buffer === null ? null : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** The clients row's snapshot columns (version, versions since, whole seconds), all null without one. */
export function snapshotColumns(snapshot: Snapshot | null): [string | null, number | null, number | null] {
  if (snapshot === null) return [null, null, null];
  return [snapshot.versionId, snapshot.versionsSince, Math.floor(snapshot.timestamp.getTime() / 1000)];
}

/** The client's row in the result of CLIENT_QUERY (or its variant), or null when there is none. */
export function clientRowOf(result: pg.QueryResult | undefined): ClientRow | null {
  return (result?.rows[0] as ClientRow | undefined) ?? null;
}

/** True when two reads of a client's row found the same values in every column a transaction reads. */
export function sameRow(a: ClientRow, b: ClientRow): boolean {
  return (
    a.latest_version_id === b.latest_version_id &&
    a.snapshot_version_id === b.snapshot_version_id &&
    a.versions_since_snapshot === b.versions_since_snapshot &&
    a.snapshot_timestamp === b.snapshot_timestamp &&
    a.millis_version_id === b.millis_version_id &&
    a.timestamp_ms === b.timestamp_ms
  );
}

/**
 * The row as an add-version (ADD_VERSION or its optimistic variant) leaves `read`, when `after`
 * is the client it wrote: the latest version and the snapshot columns, not the milliseconds.
 */
export function rowAfterAdd(read: ClientRow, after: Client): ClientRow {
  const [snapshotVersion, versionsSince, seconds] = snapshotColumns(after.snapshot);
  return {
    latest_version_id: after.latestVersionId,
    snapshot_version_id: snapshotVersion,
    versions_since_snapshot: versionsSince,
    snapshot_timestamp: seconds === null ? null : String(seconds),
    millis_version_id: read.millis_version_id,
    timestamp_ms: read.timestamp_ms,
  };
}
