/**
 * A transaction on one client in PostgreSQL. It holds one pool connection, in one database
 * transaction under the client's advisory lock, from its start to its end, and waits on that
 * connection for nothing but the database: reads are queries, writes are staged (StagedTxn) and
 * sent at commit, so the lock is held for a few round trips. Reads and the commit share the
 * database transaction and the lock, so what the transaction read is still true when its writes
 * land. Dropping it (rollback, a lost connection, a killed process) ends the database
 * transaction and leaves nothing.
 */
import { TcsyncError } from '../../errors.js';
import { NIL_VERSION_ID, type ClientId, type VersionId } from '../../ids.js';
import { StagedTxn, type TxnChanges } from '../staged-txn.js';
import type { Client, Snapshot, Version } from '../storage.js';
import type { Query, Session } from './database.js';
import { bytesOf, CLIENT_QUERY, clientFromRow, type ClientRow, snapshotColumns, VERSION_COLUMNS, versionFromRow, type VersionRow } from './rows.js';

export class PostgresTxn extends StagedTxn {
  readonly #session: Session;
  readonly #clientId: ClientId;
  readonly #unlock: () => void;

  /** The transaction on a session that holds the client's lock; `unlock` releases this process's queue. */
  constructor(session: Session, clientId: ClientId, unlock: () => void) {
    super();
    this.#session = session;
    this.#clientId = clientId;
    this.#unlock = unlock;
  }

  protected async loadClient(): Promise<Client | null> {
    return readClient(this.#session.query, this.#clientId);
  }

  protected async isTombstoned(): Promise<boolean> {
    return (await this.#session.query('SELECT 1 FROM tcsync_tombstones WHERE client_id = $1', [this.#clientId])).rows.length > 0;
  }

  protected async loadVersion(versionId: VersionId): Promise<Version | null> {
    return this.#version('version_id', versionId);
  }

  protected async loadVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    return this.#version('parent_version_id', parentVersionId);
  }

  protected async loadSnapshotData(snapshot: Snapshot): Promise<Uint8Array | null> {
    const { rows } = await this.#session.query<{ snapshot: Buffer | null }>(
      'SELECT snapshot FROM clients WHERE client_id = $1 AND snapshot_version_id = $2',
      [this.#clientId, snapshot.versionId],
    );
    return bytesOf(rows[0]?.snapshot ?? null);
  }

  /**
   * Sends the staged changes and commits. The client row is written only if its latest version
   * is still the one this transaction read: a writer that does not take tcsync's lock (an
   * upstream server on the same database) must not fork the chain. That re-check also makes the
   * changes safe to send again when the database rolls the transaction back (Session.run).
   */
  protected async persist(changes: TxnChanges): Promise<void> {
    await this.#session.run(() => writeChanges(this.#session.query, this.#clientId, changes));
  }

  protected async release(): Promise<void> {
    await this.#session.end();
    this.#unlock();
  }

  async #version(column: 'version_id' | 'parent_version_id', id: VersionId): Promise<Version | null> {
    const { rows } = await this.#session.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM versions WHERE client_id = $1 AND ${column} = $2 LIMIT 1`,
      [this.#clientId, id],
    );
    return rows[0] === undefined ? null : versionFromRow(rows[0]);
  }
}

/** The client as committed, or null. */
export async function readClient(query: Query, clientId: ClientId): Promise<Client | null> {
  const row = (await query<ClientRow>(CLIENT_QUERY, [clientId])).rows[0];
  return row === undefined ? null : clientFromRow(row);
}

async function writeChanges(query: Query, clientId: ClientId, { before, after, versions, snapshotData }: TxnChanges): Promise<void> {
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
