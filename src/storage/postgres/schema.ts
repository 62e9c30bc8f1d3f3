/**
 * The database layout. `clients` and `versions` are upstream taskchampion-sync-server's tables
 * (its postgres/schema.sql, column for column), so a database upstream set up is served as it is
 * and upstream can read what tcsync wrote. What upstream has no place for lives in tables of
 * tcsync's own, named tcsync_*, which upstream never reads.
 */
import { TcsyncError } from '../../errors.js';
import type { Query } from './database.js';

/**
 * The tcsync_* layout this version writes; a database with a higher one is refused.
 * 2: tcsync_version_added, so that an older tcsync, which would add versions without their
 * times, no longer serves a database that retention (pruning) relies on.
 */
export const SCHEMA_VERSION = 2;

/**
 * The advisory lock (two-key form, a key space apart from the clients' one-key locks) under which
 * processes lay out a fresh database one at a time: two CREATE TABLE IF NOT EXISTS at once can
 * still collide in the catalog. 0x74637379 is "tcsy".
 */
const SETUP_LOCK: readonly [number, number] = [0x74637379, 1];

const UPSTREAM_TABLES = [
  `CREATE TABLE IF NOT EXISTS clients (
    client_id UUID PRIMARY KEY,
    latest_version_id UUID default '00000000-0000-0000-0000-000000000000',
    snapshot_version_id UUID,
    versions_since_snapshot INTEGER,
    snapshot_timestamp BIGINT,
    snapshot BYTEA)`,
  `CREATE TABLE IF NOT EXISTS versions (
    client_id UUID NOT NULL,
    FOREIGN KEY(client_id) REFERENCES clients (client_id) ON DELETE CASCADE,
    version_id UUID NOT NULL,
    parent_version_id UUID,
    history_segment BYTEA,
    CONSTRAINT versions_pkey PRIMARY KEY (client_id, version_id))`,
  'CREATE INDEX IF NOT EXISTS versions_by_parent ON versions (parent_version_id)',
];

const TCSYNC_TABLES = [
  // Deleted client ids that may not be created again until an admin lifts the tombstone. No
  // foreign key: the client row is gone by then.
  `CREATE TABLE IF NOT EXISTS tcsync_tombstones (
    client_id UUID PRIMARY KEY,
    deleted_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
  // clients.snapshot_timestamp holds whole seconds (upstream reads it so); the milliseconds of
  // the same snapshot are kept here, and trusted only while they agree with the clients row, so
  // a snapshot that upstream stored later is read at its seconds.
  `CREATE TABLE IF NOT EXISTS tcsync_snapshot_millis (
    client_id UUID PRIMARY KEY REFERENCES clients (client_id) ON DELETE CASCADE,
    snapshot_version_id UUID NOT NULL,
    timestamp_ms BIGINT NOT NULL)`,
  // When each version was added, for retention (Storage.pruneVersions) and usage: upstream's
  // versions table may not gain a column. Written in the statement that inserts the version; a
  // version without a row (written by upstream, or by a tcsync before schema 2) has no known
  // time. The foreign key makes the rows a subset of the versions: deleting a version (pruning)
  // or a client takes its row along.
  `CREATE TABLE IF NOT EXISTS tcsync_version_added (
    client_id UUID NOT NULL,
    version_id UUID NOT NULL,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, version_id),
    FOREIGN KEY (client_id, version_id) REFERENCES versions (client_id, version_id) ON DELETE CASCADE)`,
];

/**
 * Creates whatever is missing, in the first schema of the connection's search_path, and records
 * the layout's version. `UNSUPPORTED_FORMAT` when the database was laid out by a newer tcsync.
 * Runs in the caller's transaction, so a failure leaves nothing half made.
 */
export async function ensureSchema(query: Query): Promise<void> {
  await query('SELECT pg_advisory_xact_lock($1, $2)', [...SETUP_LOCK]);
  await query('CREATE TABLE IF NOT EXISTS tcsync_schema (version INTEGER NOT NULL)');
  const found = await recordedVersion(query);
  // Run even when the version is current: a table dropped by hand is made again, not failed on later.
  for (const ddl of [...UPSTREAM_TABLES, ...TCSYNC_TABLES]) await query(ddl);
  if (found === SCHEMA_VERSION) return;
  await query('DELETE FROM tcsync_schema');
  await query('INSERT INTO tcsync_schema (version) VALUES ($1)', [SCHEMA_VERSION]);
}

/** The tables a reader needs, each true when it exists; a missing one reads as empty. */
export interface SchemaLayout {
  readonly clients: boolean;
  readonly tombstones: boolean;
  readonly snapshotMillis: boolean;
  /** tcsync_version_added; without it no version has a known time (nothing is pruned). */
  readonly versionAdded: boolean;
}

/** What {@link ensureSchema} leaves. */
export const FULL_LAYOUT: SchemaLayout = Object.freeze({ clients: true, tombstones: true, snapshotMillis: true, versionAdded: true });

/**
 * Which of the tables exist, found without creating or changing anything, for what must leave
 * the database as it is (migrate's look at a DEST, a SOURCE, verify): a database upstream set up
 * has no tcsync_* tables, and one never served has none at all. `UNSUPPORTED_FORMAT` as for
 * {@link ensureSchema}, since a newer layout could be misread.
 */
export async function inspectSchema(query: Query): Promise<SchemaLayout> {
  // In the first schema of the search_path only, where ensureSchema would create them.
  const { rows } = await query<{ relname: string }>(
    `SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p') AND relname = ANY($1)`,
    [['clients', 'tcsync_tombstones', 'tcsync_snapshot_millis', 'tcsync_version_added', 'tcsync_schema']],
  );
  const present = new Set(rows.map((row) => row.relname));
  if (present.has('tcsync_schema')) await recordedVersion(query);
  return {
    clients: present.has('clients'),
    tombstones: present.has('tcsync_tombstones'),
    snapshotMillis: present.has('tcsync_snapshot_millis'),
    versionAdded: present.has('tcsync_version_added'),
  };
}

/** The layout version tcsync_schema records (null when none), refused when newer than this tcsync's. */
async function recordedVersion(query: Query): Promise<number | null> {
  const { rows } = await query<{ version: number | null }>('SELECT max(version) AS version FROM tcsync_schema');
  const found = rows[0]?.version ?? null;
  if (found !== null && found > SCHEMA_VERSION) {
    throw new TcsyncError('UNSUPPORTED_FORMAT', `the database has tcsync schema version ${found}; this tcsync knows up to ${SCHEMA_VERSION}`);
  }
  return found;
}
