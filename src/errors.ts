/**
 * Typed faults. Expected outcomes (a conflict, a gone version, an ignored snapshot) are values,
 * not errors; only faults throw, and each carries a code that a transport maps to its own answer
 * in exactly one place.
 */

export type ErrorCode =
  /** A transaction named a client that does not exist. */
  | 'NO_SUCH_CLIENT'
  /** newClient on a client that exists. */
  | 'CLIENT_EXISTS'
  /** addVersion whose parent is not the latest version. */
  | 'WRONG_PARENT'
  /** addVersion with a version id that is already stored. */
  | 'VERSION_EXISTS'
  /** getSnapshotData for a version that is not the current snapshot's. */
  | 'SNAPSHOT_MISMATCH'
  /** A call on a transaction that was already committed or rolled back. */
  | 'TXN_ENDED'
  /** A string that is not a UUID where an id was expected. */
  | 'INVALID_ID'
  /** The transaction's lock was lost while held; nothing was committed. */
  | 'LOCK_LOST'
  /**
   * An optimistic transaction (StorageTxn options) read a client that another process changed
   * meanwhile; nothing was committed. withTxn runs the work again; it never reaches a caller of withTxn.
   */
  | 'TXN_STALE'
  /** The client's lock could not be taken in time (another process holds it). */
  | 'LOCK_TIMEOUT'
  /** The client was deleted and may not be used again until an admin lifts its tombstone. */
  | 'CLIENT_DELETED'
  /** Stored files are damaged or of an unknown format. */
  | 'CORRUPT'
  /** The data directory or database has a format (schema) newer than this version knows. */
  | 'UNSUPPORTED_FORMAT'
  /**
   * The database cannot be reached (refused, lost or restarting connection). Nothing was
   * committed, unless the connection was lost while the commit itself was under way.
   */
  | 'STORAGE_UNAVAILABLE'
  /** The process ran out of file descriptors (EMFILE, ENFILE): the same call may work shortly. */
  | 'OUT_OF_FILES'
  /** The storage's file system is full or over quota (ENOSPC, EDQUOT); nothing was committed. */
  | 'DISK_FULL'
  /** The storage's file system is mounted read-only (EROFS); nothing was committed. */
  | 'READ_ONLY'
  /** Reading or writing storage failed. */
  | 'STORAGE_IO';

/** An error that carries a code from a closed set, so callers branch on codes, never on messages. */
export class CodedError<C extends string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A fault of the storage, sync or id layers. */
export class TcsyncError extends CodedError<ErrorCode> {}

export function isTcsyncError(err: unknown, code?: ErrorCode): err is TcsyncError {
  return err instanceof TcsyncError && (code === undefined || err.code === code);
}
