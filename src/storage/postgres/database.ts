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
  /**
   * How many clients' rows a storage remembers for optimistic transactions (withTxn's), which
   * then read their client with no round trip and commit an add-version in one; 0 remembers
   * none. @default 10000
   */
  readonly clientCache?: number;
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

/** One statement and its values, for {@link Session.begin}. */
export interface Statement {
  readonly text: string;
  readonly values?: unknown[];
}

/** The names of the statements sent as named prepared statements, by their text. */
const PREPARED = new Map<string, string>();

/**
 * Marks `text` as a statement that every connection parses and plans once, at its first use,
 * and then only binds and runs (node-postgres's named statements): for the statements of the
 * transactions that serving sends over and over. Returns `text`, for a constant's definition.
 * Only for fixed texts; a statement whose text varies with its values would leave one prepared
 * statement per variant on every connection.
 */
export function prepared(text: string): string {
  if (!PREPARED.has(text)) PREPARED.set(text, `tcsync_${PREPARED.size + 1}`);
  return text;
}

/**
 * Takes the lock of the client $1 (its id). Advisory locks are per database, so the key is a
 * 64-bit hash of the schema the tables live in and the id: two tcsyncs on two schemas of one
 * database (a migration between them) never wait for each other, and a hash collision would
 * only make two clients wait for each other, never mix their data.
 */
export const LOCK_CLIENT = prepared("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || $1, 0))");

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
      // A connection costs ~12 ms of CPU to open (a backend started, SCRAM on both sides) and then
      // prepares its statements again; node-postgres's default of 10 s idle closes and reopens
      // the pool of a server whose load merely pauses. Idle connections hold no lock.
      idleTimeoutMillis: 120_000,
      application_name: 'tcsync',
      // Statements that a transaction sends together (BEGIN, the lock and the first read; the
      // last write and COMMIT) go out at once and cost one round trip (Session.begin, queryAndCommit).
      pipeline: true,
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
   * `first`, when given, is run right after the lock is taken, in the same round trip; its
   * result comes with the session.
   */
  async open(client: ClientId | null, what: string, first?: Statement): Promise<{ session: Session; first: pg.QueryResult | undefined }> {
    const session = await this.#session(client, what);
    try {
      return { session, first: await session.begin(first) };
    } catch (err) {
      await session.end();
      throw err;
    }
  }

  /**
   * A whole transaction of one statement under the lock of `client`, in one round trip (BEGIN,
   * the lock, `statement`, COMMIT, sent together; Session.once). Sent again when the database
   * rolled it back for a serialization failure or a deadlock: `statement` must re-check what it
   * relies on. Returns the statement's result.
   */
  async once(client: ClientId, what: string, statement: Statement): Promise<pg.QueryResult> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.#session(client, what);
      try {
        return await session.once(statement);
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.#retries) throw err;
      } finally {
        await session.end();
      }
    }
  }

  /** One statement on its own, outside any transaction (it sees what was committed when it runs), and no lock. */
  async read(what: string, statement: Statement): Promise<pg.QueryResult> {
    const session = await this.#session(null, what);
    try {
      return await session.query(statement.text, statement.values);
    } finally {
      await session.end();
    }
  }

  /** Runs `work` in a transaction of its own under the lock of `client` (none when null); see {@link Session.run}. */
  async transaction<T>(client: ClientId | null, what: string, work: (query: Query) => Promise<T>): Promise<T> {
    const { session } = await this.open(client, what);
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

  async #session(client: ClientId | null, what: string): Promise<Session> {
    const conn = await this.#connect(what);
    return new Session(conn, client, this.#retries, {
      fail: (err) => this.#fail(err, what),
      answered: () => this.#setAvailable(true, 'the database answers again'),
    });
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

  readonly query: Query = async (text, values) => (await this.#send([{ text, values }]))[0]!;

  /**
   * Runs one statement and COMMIT, sent together: the transaction ends with it, committed when
   * the statement succeeded (the database answers a COMMIT after a failed statement with a
   * rollback). For the last write of a {@link run}'s `work`, which then sends no COMMIT of its own.
   */
  readonly queryAndCommit: Query = async (text, values) => {
    try {
      return (await this.#send([{ text, values }, { text: 'COMMIT' }]))[0]!;
    } finally {
      this.#open = false;
    }
  };

  /**
   * BEGIN, then the client's lock (when given), then `first` (when given), in one round trip;
   * the lock is held until COMMIT or ROLLBACK, or the connection's end. Returns `first`'s result.
   */
  async begin(first?: Statement): Promise<pg.QueryResult | undefined> {
    const statements: Statement[] = [{ text: 'BEGIN' }];
    // Statements of their own: in READ COMMITTED every statement after the lock's sees what the
    // lock's previous holder committed, which a statement that took the lock and read at once
    // would not. The database runs them one after the other even when they arrive together.
    if (this.#client !== null) statements.push({ text: LOCK_CLIENT, values: [this.#client] });
    if (first !== undefined) statements.push(first);
    // Open from here on: should BEGIN succeed and the lock fail, end() must still roll back.
    this.#open = true;
    const results = await this.#send(statements);
    return first === undefined ? undefined : results.at(-1);
  }

  /**
   * BEGIN, the client's lock, `statement` and COMMIT in one round trip: a transaction of one
   * statement, which in READ COMMITTED starts after the lock was granted and so sees what the
   * lock's previous holder committed. When a statement fails, the database answers the COMMIT
   * with a rollback: nothing stays open either way. Returns `statement`'s result.
   */
  async once(statement: Statement): Promise<pg.QueryResult> {
    const statements: Statement[] = [{ text: 'BEGIN' }];
    if (this.#client !== null) statements.push({ text: LOCK_CLIENT, values: [this.#client] });
    statements.push(statement, { text: 'COMMIT' });
    this.#open = true;
    try {
      return (await this.#send(statements)).at(-2)!;
    } finally {
      this.#open = false;
    }
  }

  /**
   * Runs `work` (the transaction's writes) and commits, unless `work` committed with
   * {@link queryAndCommit}. When the database rolls the transaction back as a serialization
   * failure or deadlock, begins again and runs `work` again, up to the retry budget: `work` must
   * therefore re-check under the lock whatever it relies on. An error of `work`'s own (a source
   * of imported data failing) is passed on as it is.
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await work();
        if (this.#open) {
          await this.query('COMMIT');
          this.#open = false;
        }
        return result;
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.#retries) throw err;
        if (this.#open) await this.query('ROLLBACK');
        this.#open = false;
        await this.begin();
      }
    }
  }

  /**
   * Sends `statements` at once (node-postgres's pipeline mode) and waits for all their answers;
   * fails as the first of them that failed (the ones after it in a transaction fail only because
   * it did).
   */
  async #send(statements: readonly Statement[]): Promise<pg.QueryResult[]> {
    // Corked, their messages leave in one write (a system call each is most of a statement's cost).
    const stream = (this.#conn as Partial<pg.Client>).connection?.stream;
    stream?.cork();
    let sent: Promise<pg.QueryResult>[];
    try {
      sent = statements.map(({ text, values }) => {
        const name = PREPARED.get(text);
        return this.#conn.query(name === undefined ? { text, values } : { name, text, values });
      });
    } finally {
      stream?.uncork();
    }
    const settled = await Promise.allSettled(sent);
    const results: pg.QueryResult[] = [];
    for (const outcome of settled) {
      if (outcome.status === 'rejected') {
        const error = this.#watch.fail(outcome.reason);
        if (isConnectionLost(error)) this.#lost = error;
        throw error;
      }
      results.push(outcome.value);
    }
    this.#watch.answered();
    return results;
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
