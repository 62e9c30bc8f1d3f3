/**
 * The connection pool and the one way tcsync runs a database transaction: take a connection,
 * BEGIN, take the client's advisory lock, work, COMMIT; run again from the start when the
 * database rolled it back for a serialization failure or a deadlock. Knows nothing of clients'
 * rows (see postgres-txn.ts).
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { TcsyncError } from '../../errors.js';
import type { ClientId } from '../../ids.js';
import { isRetryable, storageError } from './pg-errors.js';

/** Hooks for whoever watches the storage (serve's metrics and log); the storage has neither. */
export interface PostgresObserver {
  /** Seconds a transaction waited for a pool connection (connecting included). */
  connectionWait?(seconds: number): void;
  /** Called when the database stops or starts answering, with why, once per change. */
  availability?(available: boolean, reason: string): void;
}

export interface PostgresStorageOptions {
  /** Connections in the pool at most; transactions beyond wait for one. @default 10 */
  readonly maxConnections?: number;
  /**
   * How long connecting, or waiting for a free connection, may take before the transaction
   * fails with STORAGE_UNAVAILABLE (503). Also bounds the wait for the database at open.
   * @default 10000
   */
  readonly connectTimeoutMs?: number;
  /** How many times a transaction rolled back by a serialization failure or deadlock is run again. @default 5 */
  readonly retries?: number;
  /** @default none */
  readonly observer?: PostgresObserver;
}

/** The pool's figures for /metrics. */
export interface PoolStats {
  /** Connections open, idle or in use. */
  readonly size: number;
  readonly idle: number;
  /** Transactions waiting for a connection. */
  readonly waiting: number;
}

/**
 * The client's advisory lock key: the UUID's first 64 bits (60 of them random in a v4 id). Two
 * ids sharing them would only wait for each other, never mix data.
 */
export function clientLockKey(clientId: ClientId): string {
  return BigInt.asIntN(64, BigInt(`0x${clientId.replaceAll('-', '').slice(0, 16)}`)).toString();
}

export class Database {
  readonly #pool: pg.Pool;
  readonly #config: pg.PoolConfig;
  readonly #retries: number;
  readonly #observer: PostgresObserver;
  #available = true;

  constructor(uri: string, options: PostgresStorageOptions) {
    this.#config = {
      connectionString: uri,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      // Dead peers (a database host that vanished) are noticed by TCP instead of never.
      keepAlive: true,
      application_name: 'tcsync',
    };
    this.#pool = new pg.Pool(this.#config);
    this.#retries = options.retries ?? 5;
    this.#observer = options.observer ?? {};
    // A connection that breaks while idle in the pool, or between a transaction's queries, emits
    // 'error'; unheard, that would end the process. The pool drops broken connections itself and
    // the next query that needs the database reports the outage.
    this.#pool.on('error', () => undefined);
    this.#pool.on('connect', (conn) => conn.on('error', () => undefined));
  }

  /** How many times a transaction rolled back by the database may be run again. */
  get retries(): number {
    return this.#retries;
  }

  get stats(): PoolStats {
    return { size: this.#pool.totalCount, idle: this.#pool.idleCount, waiting: this.#pool.waitingCount };
  }

  /** A pooled connection, or STORAGE_UNAVAILABLE. */
  async connect(): Promise<pg.PoolClient> {
    const started = performance.now();
    try {
      const conn = await this.#pool.connect();
      this.#observer.connectionWait?.((performance.now() - started) / 1000);
      this.#markAvailable();
      return conn;
    } catch (err) {
      throw this.fail(err, 'connecting to the database');
    }
  }

  /**
   * A connection in a transaction that holds the lock `lockKey`, for a caller that runs its
   * queries and ends it (with {@link rollback} unless it commits).
   */
  async open(lockKey: string, what: string): Promise<pg.PoolClient> {
    const conn = await this.connect();
    try {
      await this.begin(conn, lockKey);
      return conn;
    } catch (err) {
      conn.release((await rollback(conn, err)) as Error | undefined);
      throw this.fail(err, what);
    }
  }

  /** BEGIN, then the client's lock (when given): it is held until COMMIT or ROLLBACK, or the session's end. */
  async begin(conn: pg.PoolClient, lockKey: string | null): Promise<void> {
    await conn.query('BEGIN');
    // A statement of its own: in READ COMMITTED every later statement sees what the lock's
    // previous holder committed, which a statement that took the lock and read at once would not.
    if (lockKey !== null) await conn.query('SELECT pg_advisory_xact_lock($1)', [lockKey]);
  }

  /**
   * Runs `work` in a transaction of its own under the lock `lockKey` (none when null), and
   * commits; runs it again, up to the retry budget, when the database rolled it back as a
   * serialization failure or deadlock. `work` must therefore depend only on what it reads.
   */
  async transaction<T>(lockKey: string | null, what: string, work: (conn: pg.PoolClient) => Promise<T>): Promise<T> {
    const conn = await this.connect();
    let broken: unknown;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.begin(conn, lockKey);
          const result = await work(conn);
          await conn.query('COMMIT');
          return result;
        } catch (err) {
          broken = await rollback(conn, err);
          if (broken !== undefined || !isRetryable(err) || attempt >= this.#retries) throw this.fail(err, what);
        }
      }
    } finally {
      conn.release(broken as Error | undefined);
    }
  }

  /**
   * Whether the database answers `SELECT 1` within `timeoutMs`, on a connection of its own: a
   * pool full of busy transactions is not an unreachable database.
   */
  async ping(timeoutMs: number): Promise<void> {
    const conn = new pg.Client({ ...this.#config, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
    conn.on('error', () => undefined);
    try {
      await conn.connect();
      await conn.query('SELECT 1');
    } catch (err) {
      throw storageError(err, 'health check');
    } finally {
      await conn.end().catch(() => undefined);
    }
  }

  /** The TcsyncError for `err`, noting an outage for the observer. */
  fail(err: unknown, what: string): Error {
    const error = storageError(err, what);
    if (error.code === 'STORAGE_UNAVAILABLE' && this.#available) {
      this.#available = false;
      this.#observer.availability?.(false, error.message);
    }
    return error;
  }

  async end(): Promise<void> {
    await this.#pool.end();
  }

  #markAvailable(): void {
    if (this.#available) return;
    this.#available = true;
    this.#observer.availability?.(true, 'connected');
  }
}

/**
 * Ends a transaction that will not commit. `cause` is the raw error that stopped it (null when
 * none did). Returns undefined when the connection is fit for reuse, else the error that proves
 * it is not, for the pool to drop it: after a socket error ROLLBACK is not even tried, as it
 * could wait as long as the dead socket does.
 */
export async function rollback(conn: pg.PoolClient, cause: unknown): Promise<unknown> {
  if (cause !== null && !(cause instanceof pg.DatabaseError) && !(cause instanceof TcsyncError)) return cause;
  try {
    await conn.query('ROLLBACK');
    return undefined;
  } catch (err) {
    return err;
  }
}
