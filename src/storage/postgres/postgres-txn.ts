/**
 * A transaction on one client in PostgreSQL. It holds one pool connection, in one database
 * transaction under the client's advisory lock, from its start to its end, and waits on that
 * connection for nothing but the database: reads are queries, writes are staged (StagedTxn) and
 * sent at commit, so the lock is held for a few round trips. Reads and the commit share the
 * database transaction and the lock, so what the transaction read is still true when its writes
 * land. Dropping it (rollback, a lost connection, a killed process) ends the database
 * transaction and leaves nothing.
 */
import type { ClientId, VersionId } from '../../ids.js';
import { StagedTxn, type TxnChanges } from '../staged-txn.js';
import type { Client, Snapshot, Version } from '../storage.js';
import { prepared, type Session } from './database.js';
import { hasTombstone, writeChanges } from './queries.js';
import { bytesOf, VERSION_COLUMNS, versionFromRow, type VersionRow } from './rows.js';

const SNAPSHOT_DATA = prepared('SELECT snapshot FROM clients WHERE client_id = $1 AND snapshot_version_id = $2');
const VERSION_BY = {
  version_id: prepared(`SELECT ${VERSION_COLUMNS} FROM versions WHERE client_id = $1 AND version_id = $2 LIMIT 1`),
  parent_version_id: prepared(`SELECT ${VERSION_COLUMNS} FROM versions WHERE client_id = $1 AND parent_version_id = $2 LIMIT 1`),
};

export class PostgresTxn extends StagedTxn {
  readonly #session: Session;
  readonly #clientId: ClientId;
  readonly #client: Client | null;
  readonly #unlock: () => void;

  /**
   * The transaction on a session that holds the client's lock, where `client` was read after the
   * lock was taken; `unlock` releases this process's queue.
   */
  constructor(session: Session, clientId: ClientId, client: Client | null, unlock: () => void) {
    super();
    this.#session = session;
    this.#clientId = clientId;
    this.#client = client;
    this.#unlock = unlock;
  }

  protected async loadClient(): Promise<Client | null> {
    return this.#client;
  }

  protected async isTombstoned(): Promise<boolean> {
    return hasTombstone(this.#session.query, this.#clientId);
  }

  protected async loadVersion(versionId: VersionId): Promise<Version | null> {
    return this.#version('version_id', versionId);
  }

  protected async loadVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    return this.#version('parent_version_id', parentVersionId);
  }

  protected async loadSnapshotData(snapshot: Snapshot): Promise<Uint8Array | null> {
    const { rows } = await this.#session.query<{ snapshot: Buffer | null }>(SNAPSHOT_DATA, [this.#clientId, snapshot.versionId]);
    return bytesOf(rows[0]?.snapshot ?? null);
  }

  /** The versions' primary key refuses a stored id at commit (writeChanges makes it VERSION_EXISTS). */
  protected override get persistRejectsStoredVersions(): boolean {
    return true;
  }

  /**
   * Sends the staged changes and commits. The client row is written only if its latest version
   * is still the one this transaction read: a writer that does not take tcsync's lock (an
   * upstream server on the same database) must not fork the chain. That re-check also makes the
   * changes safe to send again when the database rolls the transaction back (Session.run).
   */
  protected async persist(changes: TxnChanges): Promise<void> {
    await this.#session.run(() => writeChanges(this.#session.query, this.#clientId, changes, this.#session.queryAndCommit));
  }

  protected async release(): Promise<void> {
    await this.#session.end();
    this.#unlock();
  }

  async #version(column: 'version_id' | 'parent_version_id', id: VersionId): Promise<Version | null> {
    const { rows } = await this.#session.query<VersionRow>(VERSION_BY[column], [this.#clientId, id]);
    return rows[0] === undefined ? null : versionFromRow(rows[0]);
  }
}
