/**
 * A transaction on one client in PostgreSQL, pessimistic or optimistic.
 *
 * Pessimistic: it holds one pool connection, in one database transaction under the client's
 * advisory lock, from its start to its end, and waits on that connection for nothing but the
 * database: reads are queries, writes are staged (StagedTxn) and sent at commit, so the lock is
 * held for a few round trips. Reads and the commit share the database transaction and the lock,
 * so what the transaction read is still true when its writes land. Dropping it (rollback, a lost
 * connection, a killed process) ends the database transaction and leaves nothing.
 *
 * Optimistic (TxnOptions, for withTxn, which runs the work again on TXN_STALE): the client's row
 * comes from the storage's ClientCache, with no connection and no round trip. The common
 * add-version then commits in one round trip: BEGIN, the lock, one statement that writes the
 * row and the version only if every column read is still as cached, COMMIT. Anything else that
 * needs the database (a version, the snapshot's bytes, the tombstone, any other change, and
 * every call whose answer would be an error drawn from the cached row) first confirms: begins
 * as a pessimistic transaction does and compares the row read under the lock with the cached
 * one; it then goes on pessimistically, or fails with TXN_STALE. A commit without changes
 * compares the row once, so that no answer (a conflict, say) comes from a stale row. Whatever
 * fails as TXN_STALE committed nothing and drops the cached row.
 */
import { TcsyncError } from '../../errors.js';
import { NIL_VERSION_ID, type ClientId, type VersionId } from '../../ids.js';
import { StagedTxn, type TxnChanges } from '../staged-txn.js';
import type { Client, Snapshot, Version } from '../storage.js';
import type { ClientCache } from './client-cache.js';
import { prepared, type Database, type Session } from './database.js';
import { addVersionIfUnchanged, commitError, hasTombstone, isSingleAdd, writeChanges } from './queries.js';
import { bytesOf, CLIENT_QUERY, clientFromRow, clientRowOf, rowAfterAdd, sameRow, VERSION_COLUMNS, versionFromRow, type ClientRow, type VersionRow } from './rows.js';

const SNAPSHOT_DATA = prepared('SELECT snapshot FROM clients WHERE client_id = $1 AND snapshot_version_id = $2');
const VERSION_BY = {
  version_id: prepared(`SELECT ${VERSION_COLUMNS} FROM versions WHERE client_id = $1 AND version_id = $2 LIMIT 1`),
  parent_version_id: prepared(`SELECT ${VERSION_COLUMNS} FROM versions WHERE client_id = $1 AND parent_version_id = $2 LIMIT 1`),
};

/** What a transaction shares with its storage. */
export interface TxnContext {
  readonly db: Database;
  readonly cache: ClientCache;
  readonly clientId: ClientId;
  /** Releases this process's queue for the client. */
  readonly unlock: () => void;
}

function stale(): TcsyncError {
  return new TcsyncError('TXN_STALE', 'the client changed since this process last read it; nothing was committed');
}

export class PostgresTxn extends StagedTxn {
  readonly #ctx: TxnContext;
  /** The database transaction under the client's lock; null while optimistic. */
  #session: Session | null;
  /** The client's row as read under the lock, or (optimistic) as cached; null: no client. */
  readonly #row: ClientRow | null;
  /** Changes were staged (a call that stages confirms first, except the common add-version). */
  #staged = false;
  #released = false;

  /**
   * Pessimistic on `session`, which holds the client's lock and read `row` after taking it; or,
   * with a null session, optimistic on the cached `row`.
   */
  constructor(ctx: TxnContext, session: Session | null, row: ClientRow | null) {
    super();
    this.#ctx = ctx;
    this.#session = session;
    this.#row = row;
  }

  /** True while the row read came from the cache and nothing has confirmed it. */
  get optimistic(): boolean {
    return this.#session === null;
  }

  override async newClient(latestVersionId: VersionId): Promise<void> {
    await this.#confirm();
    await super.newClient(latestVersionId);
    this.#staged = true;
  }

  override async setSnapshot(snapshot: Snapshot, data: Uint8Array): Promise<void> {
    await this.#confirm();
    await super.setSnapshot(snapshot, data);
    this.#staged = true;
  }

  override async getSnapshotData(versionId: VersionId): Promise<Uint8Array | null> {
    await this.#confirm();
    return super.getSnapshotData(versionId);
  }

  override async getVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    await this.#confirm();
    return super.getVersionByParent(parentVersionId);
  }

  override async getVersion(versionId: VersionId): Promise<Version | null> {
    await this.#confirm();
    return super.getVersion(versionId);
  }

  override async addVersion(versionId: VersionId, parentVersionId: VersionId, historySegment: Uint8Array): Promise<void> {
    if (this.optimistic) {
      // Only the first version, on top of the cached latest, stays optimistic: a refusal
      // (WRONG_PARENT) must come from a confirmed row.
      const client = await this.getClient();
      if (this.#staged || client === null || (client.latestVersionId !== NIL_VERSION_ID && parentVersionId !== client.latestVersionId)) {
        await this.#confirm();
      }
    }
    await super.addVersion(versionId, parentVersionId, historySegment);
    this.#staged = true;
  }

  override async commit(): Promise<void> {
    if (this.optimistic && !this.#staged && !this.#released) {
      // Nothing to write, but what the work answered came from the cached row: compare it.
      let current: ClientRow | null;
      try {
        current = clientRowOf(await this.#ctx.db.read('checking a client', { text: CLIENT_QUERY, values: [this.#ctx.clientId] }));
      } catch (err) {
        await this.rollback();
        throw err;
      }
      if (!this.#isAsCached(current)) {
        await this.rollback();
        throw stale();
      }
    }
    await super.commit();
  }

  override async rollback(): Promise<void> {
    // The work may have failed on what the cached row said; the next transaction reads it again.
    if (this.optimistic && !this.#released) this.#ctx.cache.delete(this.#ctx.clientId);
    await super.rollback();
  }

  protected async loadClient(): Promise<Client | null> {
    return this.#row === null ? null : clientFromRow(this.#row);
  }

  protected async isTombstoned(): Promise<boolean> {
    return hasTombstone((await this.#confirmed()).query, this.#ctx.clientId);
  }

  protected async loadVersion(versionId: VersionId): Promise<Version | null> {
    return this.#version('version_id', versionId);
  }

  protected async loadVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    return this.#version('parent_version_id', parentVersionId);
  }

  protected async loadSnapshotData(snapshot: Snapshot): Promise<Uint8Array | null> {
    const session = await this.#confirmed();
    const { rows } = await session.query<{ snapshot: Buffer | null }>(SNAPSHOT_DATA, [this.#ctx.clientId, snapshot.versionId]);
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
   * Optimistic, the common add-version is one statement that checks every column read.
   */
  protected async persist(changes: TxnChanges): Promise<void> {
    const { cache, clientId, db } = this.#ctx;
    const single = isSingleAdd(changes);
    try {
      if (this.optimistic && single) {
        let written: number | null;
        try {
          written = (await db.once(clientId, 'committing a version', addVersionIfUnchanged(clientId, this.#row!, changes))).rowCount;
        } catch (err) {
          throw commitError(err);
        }
        if (written !== 1) throw stale();
      } else {
        const session = await this.#confirmed();
        await session.run(() => writeChanges(session.query, clientId, changes, session.queryAndCommit));
      }
    } catch (err) {
      cache.delete(clientId);
      throw err;
    }
    // Other changes than an add-version leave a row that the next transaction reads again.
    if (single) cache.set(clientId, rowAfterAdd(this.#row!, changes.after));
    else cache.delete(clientId);
  }

  protected async release(): Promise<void> {
    this.#released = true;
    await this.#session?.end();
    this.#ctx.unlock();
  }

  /** The pessimistic transaction's session, confirming an optimistic one first. */
  async #confirmed(): Promise<Session> {
    await this.#confirm();
    return this.#session!;
  }

  /**
   * Turns an optimistic transaction into a pessimistic one: begins under the lock, reads the row
   * again and goes on when it is as cached; TXN_STALE (and the entry dropped) when not.
   */
  async #confirm(): Promise<void> {
    if (this.#session !== null) return;
    if (this.#released) throw new TcsyncError('TXN_ENDED', 'the transaction has already ended');
    const { cache, clientId, db } = this.#ctx;
    let opened: Awaited<ReturnType<Database['open']>>;
    try {
      opened = await db.open(clientId, 'beginning a transaction', { text: CLIENT_QUERY, values: [clientId] });
    } catch (err) {
      cache.delete(clientId);
      throw err;
    }
    if (!this.#isAsCached(clientRowOf(opened.first))) {
      cache.delete(clientId);
      await opened.session.end();
      throw stale();
    }
    this.#session = opened.session;
  }

  /** True when `current`, the row just read, is the row this optimistic transaction began on. */
  #isAsCached(current: ClientRow | null): boolean {
    return current !== null && this.#row !== null && sameRow(current, this.#row);
  }

  async #version(column: 'version_id' | 'parent_version_id', id: VersionId): Promise<Version | null> {
    const session = await this.#confirmed();
    const { rows } = await session.query<VersionRow>(VERSION_BY[column], [this.#ctx.clientId, id]);
    return rows[0] === undefined ? null : versionFromRow(rows[0]);
  }
}
