/**
 * A transaction on one client in PostgreSQL. It holds one pool connection, in one database
 * transaction under the client's advisory lock, from its start to its end, and waits on that
 * connection for nothing but the database: reads are queries, writes are staged (StagedTxn) and
 * sent at commit, so the lock is held for a few round trips. Dropping it (rollback, a lost
 * connection, a killed process) ends the database transaction and leaves nothing.
 */
import type pg from 'pg';
import { TcsyncError } from '../../errors.js';
import { NIL_VERSION_ID, type ClientId, type VersionId } from '../../ids.js';
import { StagedTxn, type TxnChanges } from '../staged-txn.js';
import type { Client, Snapshot, Version } from '../storage.js';
import { rollback, type Database } from './database.js';
import { isRetryable } from './pg-errors.js';
import { bytesOf, CLIENT_QUERY, clientFromRow, type ClientRow, snapshotColumns, VERSION_COLUMNS, versionFromRow, type VersionRow } from './rows.js';

export class PostgresTxn extends StagedTxn {
  readonly #db: Database;
  readonly #conn: pg.PoolClient;
  readonly #clientId: ClientId;
  readonly #lockKey: string;
  readonly #unlock: () => void;
  /** The database transaction is open (BEGIN sent, neither COMMIT nor ROLLBACK done). */
  #open = true;
  /** The raw error of the last failed query, which tells release whether the connection is still fit. */
  #fault: unknown = null;

  /** The transaction on a connection on which `db.begin` has taken the client's lock. */
  constructor(db: Database, conn: pg.PoolClient, clientId: ClientId, lockKey: string, unlock: () => void) {
    super();
    this.#db = db;
    this.#conn = conn;
    this.#clientId = clientId;
    this.#lockKey = lockKey;
    this.#unlock = unlock;
  }

  protected async loadClient(): Promise<Client | null> {
    const row = (await this.#query<ClientRow>(CLIENT_QUERY, [this.#clientId], 'reading the client'))[0];
    return row === undefined ? null : clientFromRow(row);
  }

  protected async isTombstoned(): Promise<boolean> {
    return (await this.#query('SELECT 1 FROM tcsync_tombstones WHERE client_id = $1', [this.#clientId], 'reading tombstones')).length > 0;
  }

  protected async loadVersion(versionId: VersionId): Promise<Version | null> {
    return this.#version('version_id', versionId);
  }

  protected async loadVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    return this.#version('parent_version_id', parentVersionId);
  }

  protected async loadSnapshotData(snapshot: Snapshot): Promise<Uint8Array | null> {
    const rows = await this.#query<{ snapshot: Buffer | null }>(
      'SELECT snapshot FROM clients WHERE client_id = $1 AND snapshot_version_id = $2',
      [this.#clientId, snapshot.versionId],
      'reading the snapshot',
    );
    return bytesOf(rows[0]?.snapshot ?? null);
  }

  /**
   * Sends the staged changes and commits. Each try re-checks, under the lock, that the client's
   * latest version is still the one this transaction read: a writer that does not take tcsync's
   * lock (an upstream server on the same database) must not fork the chain. When the database
   * rolls the transaction back (serialization failure, deadlock), it is begun again and the same
   * changes sent: they depend only on that re-checked state.
   */
  protected async persist(changes: TxnChanges): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#apply(changes);
        await this.#conn.query('COMMIT');
        this.#open = false;
        return;
      } catch (err) {
        if (err instanceof TcsyncError || !isRetryable(err) || attempt >= this.#db.retries) throw this.#failed(err, 'committing');
        try {
          await this.#conn.query('ROLLBACK');
          await this.#db.begin(this.#conn, this.#lockKey);
        } catch (again) {
          throw this.#failed(again, 'beginning the transaction again');
        }
      }
    }
  }

  protected async release(): Promise<void> {
    const broken = this.#open ? await rollback(this.#conn, this.#fault) : undefined;
    this.#open = false;
    this.#conn.release(broken as Error | undefined);
    this.#unlock();
  }

  async #apply({ before, after, versions, snapshotData }: TxnChanges): Promise<void> {
    const id = this.#clientId;
    const [snapshotVersion, versionsSince, seconds] = snapshotColumns(after.snapshot);
    const clientValues = [id, after.latestVersionId, snapshotVersion, versionsSince, seconds, snapshotData];
    // The client row first: versions reference it.
    const written =
      before === null
        ? await this.#conn.query(
            `INSERT INTO clients (client_id, latest_version_id, snapshot_version_id, versions_since_snapshot, snapshot_timestamp, snapshot)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id) DO NOTHING`,
            clientValues,
          )
        : await this.#conn.query(
            `UPDATE clients SET latest_version_id = $2, snapshot_version_id = $3, versions_since_snapshot = $4,
               snapshot_timestamp = $5, snapshot = COALESCE($6::bytea, snapshot)
             WHERE client_id = $1 AND COALESCE(latest_version_id, $8) = $7`,
            [...clientValues, before.latestVersionId, NIL_VERSION_ID],
          );
    if (written.rowCount !== 1) {
      throw new TcsyncError('LOCK_LOST', 'the client changed although this transaction held its lock: another program writes to the database without taking it');
    }
    for (const version of versions) {
      await this.#conn.query('INSERT INTO versions (client_id, version_id, parent_version_id, history_segment) VALUES ($1, $2, $3, $4)', [
        id,
        version.versionId,
        version.parentVersionId,
        version.historySegment,
      ]);
    }
    if (snapshotData !== null && after.snapshot !== null) {
      await this.#conn.query(
        `INSERT INTO tcsync_snapshot_millis (client_id, snapshot_version_id, timestamp_ms) VALUES ($1, $2, $3)
         ON CONFLICT (client_id) DO UPDATE SET snapshot_version_id = EXCLUDED.snapshot_version_id, timestamp_ms = EXCLUDED.timestamp_ms`,
        [id, after.snapshot.versionId, after.snapshot.timestamp.getTime()],
      );
    }
  }

  async #version(column: 'version_id' | 'parent_version_id', id: VersionId): Promise<Version | null> {
    const rows = await this.#query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM versions WHERE client_id = $1 AND ${column} = $2 LIMIT 1`,
      [this.#clientId, id],
      'reading a version',
    );
    return rows[0] === undefined ? null : versionFromRow(rows[0]);
  }

  async #query<R extends pg.QueryResultRow>(text: string, values: unknown[], what: string): Promise<R[]> {
    try {
      return (await this.#conn.query<R>(text, values)).rows;
    } catch (err) {
      throw this.#failed(err, what);
    }
  }

  #failed(err: unknown, what: string): Error {
    this.#fault = err;
    return this.#db.fail(err, what);
  }
}
