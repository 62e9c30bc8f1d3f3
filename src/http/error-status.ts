/**
 * The one place where faults become HTTP answers. Only short fixed texts leave the server; the
 * details (and stacks) go to the log.
 */
import { TcsyncError, type ErrorCode } from '../errors.js';
import { ClientGoneError, HttpError } from './http-error.js';

export interface ErrorAnswer {
  readonly status: number;
  readonly message: string;
  /** Server-side faults are logged as errors; refusals of a request are normal traffic. */
  readonly fault: boolean;
  readonly headers?: Readonly<Record<string, string>>;
  readonly closeConnection?: boolean;
}

const STORAGE_FAULT: ErrorAnswer = { status: 500, message: 'storage error', fault: true };
const BUG: ErrorAnswer = { status: 500, message: 'internal server error', fault: true };
// Nothing was committed and the same request succeeds when sent again in a moment.
const RETRY_SOON: ErrorAnswer = { status: 503, message: 'client busy, retry later', fault: true, headers: { 'Retry-After': '1' } };

// A Record over every code, so that a new code cannot be added without deciding its answer.
const BY_CODE: Record<ErrorCode, ErrorAnswer> = {
  NO_SUCH_CLIENT: { status: 404, message: 'no such client', fault: false },
  CLIENT_DELETED: { status: 403, message: 'client deleted', fault: false },
  INVALID_ID: { status: 400, message: 'bad id', fault: false },
  // Another process holds the client's lock for too long: worth retrying, unlike a fault.
  LOCK_TIMEOUT: RETRY_SOON,
  // Out of file descriptors (a flood of connections): an overload that passes, not a fault.
  OUT_OF_FILES: { status: 503, message: 'server busy, retry later', fault: true, headers: { 'Retry-After': '1' } },
  // An operator's condition, not a fault of the request: clients retry and succeed once it is
  // fixed, with no restart. Logged once per change of condition (storage-condition.ts), not per request.
  DISK_FULL: { status: 503, message: 'disk full, retry later', fault: false, headers: { 'Retry-After': '30' } },
  READ_ONLY: { status: 503, message: 'storage is read-only, retry later', fault: false, headers: { 'Retry-After': '30' } },
  // The database is away (restart, failover, network): clients retry and succeed once it is
  // back, and the pool reconnects by itself. Logged by the storage when the condition changes.
  STORAGE_UNAVAILABLE: { status: 503, message: 'storage unavailable, retry later', fault: false, headers: { 'Retry-After': '5' } },
  // The lock was lost before the commit point (a stalled event loop outlived the lease, or a
  // writer that takes no lock changed the client's row): the commit was refused, so a resend works.
  LOCK_LOST: RETRY_SOON,
  // withTxn runs a stale optimistic transaction again; should it ever come this far, the same holds.
  TXN_STALE: RETRY_SOON,
  STORAGE_IO: STORAGE_FAULT,
  CORRUPT: STORAGE_FAULT,
  UNSUPPORTED_FORMAT: STORAGE_FAULT,
  // The sync layer checks everything these guard against, so reaching them is a bug.
  CLIENT_EXISTS: BUG,
  WRONG_PARENT: BUG,
  VERSION_EXISTS: BUG,
  SNAPSHOT_MISMATCH: BUG,
  TXN_ENDED: BUG,
};

export function answerFor(err: unknown): ErrorAnswer {
  if (err instanceof HttpError) {
    return { status: err.status, message: err.message, fault: false, headers: err.headers, closeConnection: err.closeConnection };
  }
  if (err instanceof TcsyncError) return BY_CODE[err.code];
  if (err instanceof ClientGoneError) return { status: 400, message: err.message, fault: false, closeConnection: true };
  return BUG;
}
