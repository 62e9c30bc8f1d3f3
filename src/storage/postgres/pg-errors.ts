/**
 * What a PostgreSQL failure means to tcsync: the one place where node-postgres errors become
 * TcsyncErrors. A database that cannot be reached is STORAGE_UNAVAILABLE (503, retried by
 * clients), never a 500; only failures of the database's own work are STORAGE_IO.
 */
import pg from 'pg';
import { TcsyncError, type ErrorCode } from '../../errors.js';

/**
 * SQLSTATEs after which the same transaction, run again from its start, may well succeed:
 * serialization failure and deadlock (the database rolled the transaction back).
 */
const RETRYABLE = new Set(['40001', '40P01']);

/** SQLSTATEs, or their two-character classes, that mean "the database is away or refusing us". */
const UNAVAILABLE = new Set([
  // connection exception
  '08',
  // invalid authorization (a password changed under a running server): an operator's condition
  '28',
  // admin_shutdown, crash_shutdown, cannot_connect_now (starting up or in recovery)
  '57P01',
  '57P02',
  '57P03',
  // too_many_connections
  '53300',
]);

const BY_SQLSTATE: Readonly<Record<string, ErrorCode>> = {
  // disk_full: the same condition as a full data directory, and the same answer.
  '53100': 'DISK_FULL',
  // read_only_sql_transaction: connected to a standby (after a failover, say).
  '25006': 'READ_ONLY',
  // lock_not_available: lock_timeout ran out waiting for a client's lock.
  '55P03': 'LOCK_TIMEOUT',
};

/**
 * True when `err` (a TcsyncError made by {@link storageError}) says the database rolled the
 * transaction back and it may simply be run again.
 */
export function isRetryable(err: unknown): boolean {
  const cause = err instanceof TcsyncError ? err.cause : undefined;
  return cause instanceof pg.DatabaseError && cause.code !== undefined && RETRYABLE.has(cause.code);
}

/** True when `err` says the connection itself failed, so that it is not worth a ROLLBACK. */
export function isConnectionLost(err: unknown): boolean {
  return err instanceof TcsyncError && err.code === 'STORAGE_UNAVAILABLE';
}

/**
 * The TcsyncError for a failure of node-postgres while doing `what`. Errors that are not the
 * database's answers (refused or reset sockets, timeouts, "Connection terminated unexpectedly")
 * are the database being away.
 * Messages name the SQLSTATE, never a query's values: those carry client ids.
 */
export function storageError(err: unknown, what: string): TcsyncError {
  if (err instanceof TcsyncError) return err;
  if (!(err instanceof pg.DatabaseError)) {
    return new TcsyncError('STORAGE_UNAVAILABLE', `${what}: database unreachable: ${(err as Error).message}`, { cause: err });
  }
  const state = err.code ?? '';
  const code: ErrorCode = UNAVAILABLE.has(state) || UNAVAILABLE.has(state.slice(0, 2)) ? 'STORAGE_UNAVAILABLE' : (BY_SQLSTATE[state] ?? 'STORAGE_IO');
  return new TcsyncError(code, `${what}: ${err.message} (SQLSTATE ${state})`, { cause: err });
}
