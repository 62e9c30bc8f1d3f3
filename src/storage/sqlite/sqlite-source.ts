/**
 * Upstream taskchampion-sync-server's SQLite database (`taskchampion-sync-server.sqlite3` in its
 * data dir), read as a ClientSource so that `tcsync migrate --from sqlite:PATH` can copy it.
 * Opened read-only: tcsync never writes to upstream's file.
 *
 * Upstream's sqlite crate keeps ids as text (`Uuid::to_string`, canonical already, but parsed
 * anyway), bytes as BLOB, and the snapshot in the client's row:
 *
 *   clients (client_id STRING PRIMARY KEY, latest_version_id STRING, snapshot_version_id STRING,
 *            versions_since_snapshot INTEGER, snapshot_timestamp INTEGER, snapshot BLOB)
 *   versions (version_id STRING PRIMARY KEY, client_id STRING, parent_version_id STRING,
 *             history_segment BLOB)
 *
 * A client has a snapshot only when snapshot_version_id, snapshot_timestamp (Unix seconds) and
 * versions_since_snapshot are all set, as upstream reads it. Upstream has no tombstones.
 */
import Database from 'better-sqlite3';
import { CodedError, TcsyncError } from '../../errors.js';
import { parseClientId, parseVersionId, type ClientId } from '../../ids.js';
import type { ClientSource, ExportedClient } from '../client-export.js';
import { KeyedMutex } from '../keyed-mutex.js';
import type { Snapshot, Version } from '../storage.js';

/** Versions read from the database at once: a page, not the whole history. */
const PAGE = 64;

export type SqliteSourceErrorCode =
  /** The file is missing, not a SQLite database, or has no upstream tables. */
  'NOT_AN_UPSTREAM_DATABASE';

export class SqliteSourceError extends CodedError<SqliteSourceErrorCode> {}

interface ClientRow {
  latest_version_id: string | null;
  snapshot_version_id: string | null;
  versions_since_snapshot: number | null;
  snapshot_timestamp: number | null;
}

interface VersionRow {
  rowid: number;
  version_id: string;
  parent_version_id: string;
  history_segment: Buffer | null;
}

function corrupt(clientId: ClientId, what: string, cause?: unknown): TcsyncError {
  return new TcsyncError('CORRUPT', `client ${clientId} in the SQLite database: ${what}`, { cause });
}

export class SqliteSource implements ClientSource {
  readonly #db: Database.Database;
  /** One connection holds one transaction at a time: exports take turns. */
  readonly #turns = new KeyedMutex<'db'>();

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Opens upstream's database file read-only; refuses a file without upstream's tables. */
  static open(file: string): SqliteSource {
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('clients', 'versions')").all();
      if (tables.length !== 2) {
        db.close();
        throw new SqliteSourceError('NOT_AN_UPSTREAM_DATABASE', `${file} has no clients and versions tables of taskchampion-sync-server`);
      }
    } catch (err) {
      if (err instanceof SqliteSourceError) throw err;
      throw new SqliteSourceError('NOT_AN_UPSTREAM_DATABASE', `cannot open ${file} as a SQLite database: ${(err as Error).message}`, { cause: err });
    }
    return new SqliteSource(db);
  }

  async listClients(after: ClientId | null, limit: number): Promise<ClientId[]> {
    const rows = this.#db
      .prepare('SELECT client_id FROM clients WHERE client_id > ? ORDER BY client_id LIMIT ?')
      .pluck()
      .all(after ?? '', limit) as string[];
    return rows.map((id) => parseClientId(id));
  }

  async listTombstones(): Promise<ClientId[]> {
    return [];
  }

  /**
   * Reads the client in one read transaction: in WAL mode (upstream's) it sees one committed
   * state however long the work takes, while upstream goes on writing.
   */
  async exportClient<T>(clientId: ClientId, work: (client: ExportedClient) => Promise<T>): Promise<T | null> {
    const db = this.#db;
    const release = await this.#turns.acquire('db');
    db.exec('BEGIN DEFERRED');
    try {
      const row = db
        .prepare('SELECT latest_version_id, snapshot_version_id, versions_since_snapshot, snapshot_timestamp FROM clients WHERE client_id = ?')
        .get(clientId) as ClientRow | undefined;
      if (row === undefined) return null;
      let latestVersionId;
      let snapshot: Snapshot | null = null;
      try {
        latestVersionId = parseVersionId(row.latest_version_id);
        if (row.snapshot_version_id !== null && row.snapshot_timestamp !== null && row.versions_since_snapshot !== null) {
          snapshot = {
            versionId: parseVersionId(row.snapshot_version_id),
            timestamp: new Date(Number(row.snapshot_timestamp) * 1000),
            versionsSince: Number(row.versions_since_snapshot),
          };
        }
      } catch (err) {
        throw corrupt(clientId, (err as Error).message, err);
      }
      const page = db.prepare(
        'SELECT rowid, version_id, parent_version_id, history_segment FROM versions WHERE client_id = ? AND rowid > ? ORDER BY rowid LIMIT ?',
      );
      return await work({
        clientId,
        latestVersionId,
        snapshot,
        async readSnapshot() {
          if (snapshot === null) throw new TcsyncError('SNAPSHOT_MISMATCH', 'the client has no snapshot');
          const data = db.prepare('SELECT snapshot FROM clients WHERE client_id = ?').pluck().get(clientId) as Buffer | null;
          if (data === null) throw corrupt(clientId, 'a snapshot without its bytes');
          return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        },
        async *versions(): AsyncIterable<Version> {
          for (let after = 0; ; ) {
            const rows = page.all(clientId, after, PAGE) as VersionRow[];
            for (const r of rows) {
              let version: Version;
              try {
                version = {
                  versionId: parseVersionId(r.version_id),
                  parentVersionId: parseVersionId(r.parent_version_id),
                  historySegment: r.history_segment ?? new Uint8Array(0),
                };
              } catch (err) {
                throw corrupt(clientId, (err as Error).message, err);
              }
              yield version;
            }
            if (rows.length < PAGE) return;
            after = (rows[rows.length - 1] as VersionRow).rowid;
          }
        },
      });
    } finally {
      db.exec('COMMIT');
      release();
    }
  }

  async close(): Promise<void> {
    await this.#turns.drain();
    this.#db.close();
  }
}
