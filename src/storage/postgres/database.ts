/**
 * The connection pool and the one way tcsync runs a database transaction: take a connection,
 * BEGIN, take the client's advisory lock, work, COMMIT; run again from the start when the
 * database rolled it back for a serialization failure or a deadlock. Every query goes through a
 * {@link Query}, which turns node-postgres's failures into TcsyncErrors; knows nothing of
 * clients' rows (see postgres-txn.ts).
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { ErrorCode, TcsyncError } from '../../errors.js';
import type { ClientId } from '../../ids.js';
import { isConnectionLost, isRetryable, storageError } from './pg-errors.js';

/** Hooks for whoever watches the storage (serve's metrics and log); the storage has neither. */
export interface PostgresObserver {
  /** Seconds a transaction waited for a pool connection (connecting included). */
  connectionWait?(seconds: number): void;
  /** Called when the database stops or starts answering, with why, once per change. */
  availability?(available: boolean, reason: string): void;
  /** Called for every failed query or connection attempt, with the code it became. */
  error?(code: ErrorCode): void;
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
  /**
   * How long a transaction waits for a client's lock (held by another process's transaction, or
   * a live export) before it fails with LOCK_TIMEOUT (503, "client busy"). @default 20000
   */
  readonly lockTimeoutMs?: number;
  /**
   * How long one statement may go unanswered before its connection counts as lost
   * (STORAGE_UNAVAILABLE, 503): a database host that vanished answers nothing, and TCP would
   * notice only after hours. Longer than lockTimeoutMs, so that a long wait for a lock is told
   * apart from a lost database. @default 30000
   */
  readonly queryTimeoutMs?: number;
  /** How many times a transaction rolled back by a serialization failure or deadlock is run again. @default 5 */
  readonly retries?: number;
  /** @default none */
  readonly observer?: PostgresObserver;
  /**
   * Whether open creates the tables that are missing. With false the database is left as it is,
   * for a caller that only reads it or may have to refuse it (migrate, verify): a missing
   * tcsync_* table reads as empty, a missing `clients` table as no clients, and a write that
   * needs a missing table fails. @default true
   */
  readonly create?: boolean;
}

/** The pool's figures for /metrics. */
export interface PoolStats {
  /** Connections open, idle or in use. */
  readonly size: number;
  readonly idle: number;
  /** Transactions waiting for a connection. */
  readonly waiting: number;
}

/** A parameterised query on one connection; its failures are TcsyncErrors (see pg-errors.ts). */
export type Query = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;

/**
 * Takes the lock of the client $1 (its id). Advisory locks are per database, so the key is a
 * 64-bit hash of the schema the tables live in and the id: two tcsyncs on two schemas of one
 * database (a migration between them) never wait for each other, and a hash collision would
 * only make two clients wait for each other, never mix their data.
 */
const LOCK_CLIENT = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || $1, 0))";

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
      query_timeout: options.queryTimeoutMs ?? 30_000,
      // Idle connections to a vanished host are noticed by TCP too, instead of at their next use.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'tcsync',
    };
    this.#pool = new pg.Pool(this.#config);
    this.#retries = options.retries ?? 5;
    this.#observer = options.observer ?? {};
    // A connection that breaks while idle in the pool, or between a transaction's queries, emits
    // 'error'; unheard, that would end the process. The pool drops broken connections itself and
    // the next query that needs the database reports the outage.
    this.#pool.on('error', () => undefined);
    // Queued before any other query of the new connection, so it holds for all of them; a
    // failure shows in the query that follows.
    const lockTimeout = options.lockTimeoutMs ?? 20_000;
    this.#pool.on('connect', (conn) => {
      conn.on('error', () => undefined);
      conn.query("SELECT set_config('lock_timeout', $1, false)", [String(lockTimeout)]).catch(() => undefined);
    });
  }

  get stats(): PoolStats {
    return { size: this.#pool.totalCount, idle: this.#pool.idleCount, waiting: this.#pool.waitingCount };
  }

  /**
   * A connection in a transaction that holds the lock of `client` (none when null), for a caller
   * that runs its queries, commits with {@link Session.run} and always calls {@link Session.end}.
   */
  async open(client: ClientId | null, what: string): Promise<Session> {
    const conn = await this.#connect(what);
    const session = new Session(conn, client, this.#retries, {
      fail: (err) => this.#fail(err, what),
      answered: () => this.#setAvailable(true, 'the database answers again'),
    });
    try {
      await session.begin();
    } catch (err) {
      await session.end();
      throw err;
    }
    return session;
  }

  /** Runs `work` in a transaction of its own under the lock of `client` (none when null); see {@link Session.run}. */
  async transaction<T>(client: ClientId | null, what: string, work: (query: Query) => Promise<T>): Promise<T> {
    const session = await this.open(client, what);
    try {
      return await session.run(() => work(session.query));
    } finally {
      await session.end();
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

  async end(): Promise<void> {
    await this.#pool.end();
  }

  async #connect(what: string): Promise<pg.PoolClient> {
    const started = performance.now();
    try {
      const conn = await this.#pool.connect();
      this.#observer.connectionWait?.((performance.now() - started) / 1000);
      return conn;
    } catch (err) {
      throw this.#fail(err, what);
    }
  }

  /** The TcsyncError for `err`, noting an outage for the observer. */
  #fail(err: unknown, what: string) {
    const error = storageError(err, what);
    this.#observer.error?.(error.code);
    if (isConnectionLost(error)) this.#setAvailable(false, error.message);
    return error;
  }

  #setAvailable(available: boolean, reason: string): void {
    if (this.#available === available) return;
    this.#available = available;
    this.#observer.availability?.(available, reason);
  }
}

/** What a Session reports to its Database. */
interface SessionWatch {
  /** The TcsyncError for a failed query. */
  fail(err: unknown): TcsyncError;
  /**
   * A query was answered: the database is reachable. Said by a query, not by taking a
   * connection, because an idle connection in the pool may be a dead one.
   */
  answered(): void;
}

/**
 * One pooled connection in one transaction, from BEGIN (and the lock) to COMMIT or ROLLBACK.
 * The connection goes back to the pool at {@link end}, or is dropped from it when it failed.
 */
export class Session {
  readonly #conn: pg.PoolClient;
  readonly #client: ClientId | null;
  readonly #retries: number;
  readonly #watch: SessionWatch;
  /** BEGIN sent, neither COMMIT nor ROLLBACK yet. */
  #open = false;
  /** Why the connection is unfit for reuse; ROLLBACK is then not even tried, as it could wait as long as a dead socket does. */
  #lost: Error | undefined;
  #ended = false;

  constructor(conn: pg.PoolClient, client: ClientId | null, retries: number, watch: SessionWatch) {
    this.#conn = conn;
    this.#client = client;
    this.#retries = retries;
    this.#watch = watch;
  }

  readonly query: Query = async (text, values) => {
    try {
      const result = await this.#conn.query(text, values);
      this.#watch.answered();
      return result;
    } catch (err) {
      const error = this.#watch.fail(err);
      if (isConnectionLost(error)) this.#lost = error;
      throw error;
    }
  };

  /** BEGIN, then the client's lock (when given): it is held until COMMIT or ROLLBACK, or the connection's end. */
  async begin(): Promise<void> {
    await this.query('BEGIN');
    this.#open = true;
    // A statement of its own: in READ COMMITTED every later statement sees what the lock's
    // previous holder committed, which a statement that took the lock and read at once would not.
    if (this.#client !== null) await this.query(LOCK_CLIENT, [this.#client]);
  }

  /**
   * Runs `work` (the transaction's writes) and commits. When the database rolls the transaction
   * back as a serialization failure or deadlock, begins again and runs `work` again, up to the
   * retry budget: `work` must therefore re-check under the lock whatever it relies on. An error
   * of `work`'s own (a source of imported data failing) is passed on as it is.
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await work();
        await this.query('COMMIT');
        this.#open = false;
        return result;
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.#retries) throw err;
        await this.query('ROLLBACK');
        this.#open = false;
        await this.begin();
      }
    }
  }

  /** Ends the transaction without committing (when still open) and gives the connection back. Never throws. */
  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#open && this.#lost === undefined) {
      await this.#conn.query('ROLLBACK').catch((err: Error) => {
        this.#lost = err;
      });
    }
    this.#conn.release(this.#lost);
  }
}
