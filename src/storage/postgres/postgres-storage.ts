/**
 * PostgresStorage: clients in a PostgreSQL database, in upstream taskchampion-sync-server's
 * tables, shared by any number of tcsync processes.
 *
 * Serialization per client is PostgreSQL's transaction-scoped advisory lock on a key derived
 * from the client id (docs/postgresql.md, "One lock per client", argues it against a row lock): it exists before
 * the client's row does, so two processes creating one client wait for each other as two
 * writers do, and the database drops it with the transaction, whether that commits, rolls back
 * or loses its connection. Within one process a KeyedMutex queues a client's transactions first,
 * so a busy client holds at most one pool connection per process, never the whole pool.
 */
import { TcsyncError } from '../../errors.js';
import { assertCanonicalId, type ClientId } from '../../ids.js';
import type { ClientSink, ClientSource, ExportedClient } from '../client-export.js';
import { KeyedMutex } from '../keyed-mutex.js';
import { LruMap } from '../lru-map.js';
import type { ClientUsage, Storage, StorageTxn, TxnOptions } from '../storage.js';
import type { ClientCache } from './client-cache.js';
import { Database, type PoolStats, type PostgresStorageOptions, type Query } from './database.js';
import { exportedClient, importClient } from './postgres-export.js';
import { deleteVersions, findPrunable, PRUNE_BATCH } from './postgres-prune.js';
import { PostgresTxn } from './postgres-txn.js';
import { addTombstone, clientExists, clientOf, CLIENT_USAGE, hasTombstone } from './queries.js';
import { CLIENT_QUERY, CLIENT_QUERY_WITHOUT_MILLIS, clientRowOf } from './rows.js';
import { ensureSchema, FULL_LAYOUT, inspectSchema, type SchemaLayout } from './schema.js';

export class PostgresStorage implements Storage, ClientSource, ClientSink {
  readonly #db: Database;
  /** The tables there are; all of them unless opened with `create: false`. */
  readonly #layout: SchemaLayout;
  readonly #locks = new KeyedMutex<ClientId>();
  /** Clients' rows for optimistic transactions; read and written only under #locks' key. */
  readonly #cache: ClientCache;
  #closed = false;

  private constructor(db: Database, layout: SchemaLayout, cacheSize: number) {
    this.#db = db;
    this.#layout = layout;
    this.#cache = new LruMap(cacheSize);
  }

  /**
   * Connects to the database named by the libpq connection URI `uri` and creates the tables
   * that are missing, unless `options.create` is false. Fails with STORAGE_UNAVAILABLE when the
   * database cannot be reached within `connectTimeoutMs`, UNSUPPORTED_FORMAT when a newer
   * tcsync laid it out.
   */
  static async open(uri: string, options: PostgresStorageOptions = {}): Promise<PostgresStorage> {
    const db = new Database(uri, options);
    try {
      const layout =
        options.create === false
          ? await db.transaction(null, 'reading the schema', inspectSchema)
          : await db.transaction(null, 'setting up the schema', async (query) => {
              await ensureSchema(query);
              return FULL_LAYOUT;
            });
      return new PostgresStorage(db, layout, options.clientCache ?? 10_000);
    } catch (err) {
      await db.end();
      throw err;
    }
  }

  /** The pool's figures now, for /metrics. */
  get poolStats(): PoolStats {
    return this.#db.stats;
  }

  /**
   * A pessimistic transaction, or with `optimistic` and the client's row in the cache, an
   * optimistic one that starts with no round trip (postgres-txn.ts).
   */
  async txn(clientId: ClientId, options: TxnOptions = {}): Promise<StorageTxn> {
    assertCanonicalId(clientId, 'client id');
    const unlock = await this.#locks.acquire(clientId);
    const ctx = { db: this.#db, cache: this.#cache, clientId, unlock };
    try {
      const cached = options.optimistic === true ? this.#cache.get(clientId) : undefined;
      if (cached !== undefined) return new PostgresTxn(ctx, null, cached);
      // Every transaction reads the client first: that read comes with BEGIN and the lock.
      const { session, first } = await this.#db.open(clientId, 'beginning a transaction', { text: CLIENT_QUERY, values: [clientId] });
      const row = clientRowOf(first);
      // Only clients that exist are remembered.
      if (row === null) this.#cache.delete(clientId);
      else this.#cache.set(clientId, row);
      return new PostgresTxn(ctx, session, row);
    } catch (err) {
      this.#cache.delete(clientId);
      unlock();
      throw err;
    }
  }

  async deleteClient(clientId: ClientId): Promise<boolean> {
    assertCanonicalId(clientId, 'client id');
    return this.#underLock(clientId, 'deleting a client', async (query) => {
      this.#cache.delete(clientId);
      // ON DELETE CASCADE takes the versions and the snapshot's milliseconds with the row.
      if ((await query('DELETE FROM clients WHERE client_id = $1', [clientId])).rowCount === 0) return false;
      await addTombstone(query, clientId);
      return true;
    });
  }

  async liftTombstone(clientId: ClientId): Promise<boolean> {
    assertCanonicalId(clientId, 'client id');
    return this.#db.transaction(null, 'lifting a tombstone', async (query) => {
      return ((await query('DELETE FROM tcsync_tombstones WHERE client_id = $1', [clientId])).rowCount ?? 0) > 0;
    });
  }

  async isTombstoned(clientId: ClientId): Promise<boolean> {
    assertCanonicalId(clientId, 'client id');
    if (!this.#layout.tombstones) return false;
    return this.#db.transaction(null, 'reading tombstones', (query) => hasTombstone(query, clientId));
  }

  async listClients(after: ClientId | null, limit: number): Promise<ClientId[]> {
    if (after !== null) assertCanonicalId(after, 'client id');
    return this.#layout.clients ? this.#listIds('clients', after, limit) : [];
  }

  /**
   * See Storage.clientUsage: one statement, outside any transaction and without the client's
   * lock. oldestVersionAddedAt comes from tcsync_version_added, and is null while any stored
   * version has no time there (written by upstream, or before tcsync's schema 2): the oldest
   * would then be a guess.
   */
  async clientUsage(clientId: ClientId): Promise<ClientUsage | null> {
    assertCanonicalId(clientId, 'client id');
    if (!this.#layout.clients) return null;
    const text = this.#layout.versionAdded ? CLIENT_USAGE.withTimes : CLIENT_USAGE.withoutTimes;
    const { rows } = await this.#db.read('reading usage', { text, values: [clientId] });
    const row = rows[0] as { versions: string; bytes: string; timed: string; oldest: Date | null } | undefined;
    if (row === undefined) return null;
    const oldestVersionAddedAt = row.timed === row.versions ? row.oldest : null;
    return { versions: Number(row.versions), bytes: Number(row.bytes), oldestVersionAddedAt };
  }

  /**
   * See Storage.pruneVersions: the walk in one statement without the lock, then the deletion
   * oldest first in batches, each a short transaction under the client's lock
   * (postgres-prune.ts). Without tcsync_version_added no version has a known time: 0.
   */
  async pruneVersions(clientId: ClientId, addedBefore: Date): Promise<number> {
    assertCanonicalId(clientId, 'client id');
    if (!this.#layout.clients || !this.#layout.versionAdded) return 0;
    const doomed = await findPrunable((text, values) => this.#db.read('finding versions to prune', { text, values }), clientId, addedBefore);
    let deleted = 0;
    for (let start = 0; start < doomed.length; start += PRUNE_BATCH) {
      const batch = doomed.slice(start, start + PRUNE_BATCH);
      deleted += await this.#underLock(clientId, 'pruning versions', (query) => deleteVersions(query, clientId, batch));
    }
    return deleted;
  }

  async listTombstones(after: ClientId | null, limit: number): Promise<ClientId[]> {
    return this.#layout.tombstones ? this.#listIds('tcsync_tombstones', after, limit) : [];
  }

  /**
   * Runs `work` on the client as committed, in one database transaction under the client's lock
   * that holds a pool connection until `work` settles (migrate and verify, not serving, do this).
   */
  async exportClient<T>(clientId: ClientId, work: (client: ExportedClient) => Promise<T>): Promise<T | null> {
    if (!this.#layout.clients) return null;
    const unlock = await this.#locks.acquire(clientId);
    try {
      const text = this.#layout.snapshotMillis ? CLIENT_QUERY : CLIENT_QUERY_WITHOUT_MILLIS;
      const { session, first } = await this.#db.open(clientId, 'exporting a client', { text, values: [clientId] });
      try {
        const client = clientOf(first);
        return client === null ? null : await work(exportedClient(session.query, clientId, client, this.#layout.versionAdded));
      } finally {
        await session.end();
      }
    } finally {
      unlock();
    }
  }

  async importClient(client: ExportedClient): Promise<void> {
    this.#cache.delete(client.clientId);
    await this.#underLock(client.clientId, 'importing a client', (query) => importClient(query, client));
  }

  async importTombstone(clientId: ClientId): Promise<void> {
    await this.#underLock(clientId, 'importing a tombstone', async (query) => {
      if (await clientExists(query, clientId)) throw new TcsyncError('CLIENT_EXISTS', 'client exists; only an absent client can carry a tombstone');
      await addTombstone(query, clientId);
    });
  }

  /**
   * Whether the database answers within `timeoutMs` (for /healthz); STORAGE_UNAVAILABLE when it
   * does not. Uses a connection of its own, so a pool busy with transactions is not "down".
   */
  async ping(timeoutMs: number): Promise<void> {
    await this.#db.ping(timeoutMs);
  }

  /** Waits for open transactions to end, then ends the pool. A second call does nothing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#locks.drain();
    await this.#db.end();
  }

  /** A transaction of its own under the client's lock, queued behind this process's transactions on it. */
  async #underLock<T>(clientId: ClientId, what: string, work: (query: Query) => Promise<T>): Promise<T> {
    const unlock = await this.#locks.acquire(clientId);
    try {
      return await this.#db.transaction(clientId, what, work);
    } finally {
      unlock();
    }
  }

  /** Ids in `table` greater than `after`, ascending; uuid orders by its bytes, as the canonical strings do. */
  async #listIds(table: 'clients' | 'tcsync_tombstones', after: ClientId | null, limit: number): Promise<ClientId[]> {
    return this.#db.transaction(null, `listing ${table}`, async (query) => {
      const { rows } = await query<{ client_id: ClientId }>(
        `SELECT client_id FROM ${table} WHERE $1::uuid IS NULL OR client_id > $1::uuid ORDER BY client_id LIMIT $2`,
        [after, limit],
      );
      return rows.map((row) => row.client_id);
    });
  }
}
