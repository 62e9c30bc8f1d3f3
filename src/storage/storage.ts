/**
 * The storage contract: the reference server's `Storage` / `StorageTxn` trait in TypeScript.
 *
 * Transactions are sequentially consistent: their results are as if each ran alone in some
 * order. Uncommitted changes are never seen by another transaction; committed ones are seen by
 * every later one. Transactions on different clients share no data and may run in parallel.
 * JavaScript has no `Drop`, so a transaction ends exactly once, by `commit()` or `rollback()`;
 * either releases the client's lock, and changes of a rolled-back transaction are never seen.
 * An optimistic transaction (TxnOptions) may hold no lock while it only reads.
 */
import { isTcsyncError } from '../errors.js';
import type { ClientId, VersionId } from '../ids.js';

/** Metadata of a client's latest snapshot (not its bytes). */
export interface Snapshot {
  /** The version at which the snapshot was made. */
  readonly versionId: VersionId;
  /** When the snapshot was stored. */
  readonly timestamp: Date;
  /** How many versions were added since the snapshot was stored. */
  readonly versionsSince: number;
}

/** Stored metadata about a client. */
export interface Client {
  /** The latest version, or the nil id when the client has none. */
  readonly latestVersionId: VersionId;
  /** The latest snapshot, if any. */
  readonly snapshot: Snapshot | null;
}

/** One version in a client's history. */
export interface Version {
  readonly versionId: VersionId;
  readonly parentVersionId: VersionId;
  /** Opaque bytes, encrypted by the client; never parsed. */
  readonly historySegment: Uint8Array;
}

/**
 * What one client takes up in a storage, for an operator: an estimate read without the client's
 * lock, so a commit made meanwhile may or may not be in it, but never fails it.
 */
export interface ClientUsage {
  /** Versions stored now (every stored version, whether or not the latest's chain reaches it). */
  readonly versions: number;
  /** Bytes of those versions' history segments plus the snapshot's bytes (no format overhead). */
  readonly bytes: number;
  /**
   * When the oldest stored version was added; null without versions, or when the storage does
   * not know it for every stored version (PostgreSQL: versions written by upstream's server, or
   * by a tcsync before its schema 2, have no recorded time).
   */
  readonly oldestVersionAddedAt: Date | null;
}

/** A transaction on one client, holding that client's lock until it ends (see TxnOptions.optimistic). */
export interface StorageTxn {
  /** The client, or null when it does not exist. */
  getClient(): Promise<Client | null>;
  /**
   * Creates the client with this latest version (which need not be stored). `CLIENT_EXISTS` if
   * it exists, `CLIENT_DELETED` if its id carries a tombstone.
   */
  newClient(latestVersionId: VersionId): Promise<void>;
  /** Replaces the client's snapshot. The version is not checked. `NO_SUCH_CLIENT` without a client. */
  setSnapshot(snapshot: Snapshot, data: Uint8Array): Promise<void>;
  /**
   * The current snapshot's bytes. `versionId` must be the current snapshot's version
   * (`SNAPSHOT_MISMATCH` otherwise, also when there is no snapshot); null if its bytes are absent.
   */
  getSnapshotData(versionId: VersionId): Promise<Uint8Array | null>;
  /** The version whose parent is `parentVersionId`, or null. */
  getVersionByParent(parentVersionId: VersionId): Promise<Version | null>;
  /** The version with this id, or null. */
  getVersion(versionId: VersionId): Promise<Version | null>;
  /**
   * Adds a version (`VERSION_EXISTS` if its id is stored), makes it the latest and increments
   * the snapshot's versionsSince. While the latest is nil any parent is accepted; otherwise the
   * parent must be the latest (`WRONG_PARENT`).
   */
  addVersion(versionId: VersionId, parentVersionId: VersionId, historySegment: Uint8Array): Promise<void>;
  /** Makes the changes durable and visible, and ends the transaction. */
  commit(): Promise<void>;
  /** Discards the changes and ends the transaction. Never throws. */
  rollback(): Promise<void>;
}

/** How a transaction may be run; a storage may ignore any of it. */
export interface TxnOptions {
  /**
   * The caller runs the transaction again when any call of it, commit included, fails with
   * `TXN_STALE` (withTxn does): the storage may then answer reads from what it remembers of the
   * client and check them only when the transaction needs the database, or at commit. Such a
   * transaction may read stale data, but never commits on it, and its commit succeeds only
   * when everything it read was still true. So its reads count only once commit() has
   * succeeded, read-only work included: one that ends in rollback() has checked nothing (an
   * error thrown from what it read may come from stale data). @default false
   */
  readonly optimistic?: boolean;
  /**
   * The caller passes the client once, as a listing does: the storage need not remember it
   * beyond the transaction. @default false
   */
  readonly passing?: boolean;
}

/** Something that stores clients. */
export interface Storage {
  /** Begins a transaction on one client, waiting for its lock. */
  txn(clientId: ClientId, options?: TxnOptions): Promise<StorageTxn>;
  /**
   * Deletes a client and all its data at once, under its lock, and leaves a tombstone: until it
   * is lifted, newClient on that id fails with `CLIENT_DELETED`, so a replica still holding the
   * id cannot silently re-create the client with a partial history. False when it did not exist.
   */
  deleteClient(clientId: ClientId): Promise<boolean>;
  /** Lifts a deleted client's tombstone so the id may be created again. False when there was none. */
  liftTombstone(clientId: ClientId): Promise<boolean>;
  /** True when the id carries a tombstone. */
  isTombstoned(clientId: ClientId): Promise<boolean>;
  /** Ids of existing clients greater than `after`, ascending, at most `limit` of them. */
  listClients(after: ClientId | null, limit: number): Promise<ClientId[]>;
  /** What the client takes up (an estimate, see ClientUsage), or null when it does not exist. Takes no lock. */
  clientUsage(clientId: ClientId): Promise<ClientUsage | null>;
  /**
   * Retention: deletes the versions that the client's latest snapshot covers and that were added
   * before `addedBefore`, and returns how many it deleted. The rule, the same as TaskChampion's
   * own cloud storage applies: let S be the snapshot's version; walk S and its ancestors (parent
   * links), newest first; V is the first of them added before `addedBefore`. V and every ancestor
   * of V are deleted, nothing else: never a version newer than S, nothing of a client without a
   * snapshot (0), and the snapshot itself (bytes and metadata) stays, even when S is deleted. A
   * version whose added time the storage does not know is never V, but the walk goes on past it.
   * An unknown or deleted client is 0, and so is a second call with the same `addedBefore`.
   *
   * Afterwards getVersion of a deleted version is null and getVersionByParent(V) still finds V's
   * child (the sync layer then answers a pruned parent with "gone"). Deletion runs oldest first,
   * so a crash midway leaves the newer part of the history, never a gap; concurrent
   * transactions on the client see each step whole. `UNSUPPORTED` where a storage cannot prune.
   */
  pruneVersions(clientId: ClientId, addedBefore: Date): Promise<number>;
  /** Waits for open transactions to end, then releases resources. */
  close(): Promise<void>;
}

/** Runs of a `work` whose optimistic transaction turned out stale, before withTxn gives up (the next is not optimistic). */
const STALE_RETRIES = 5;

/**
 * Runs `work` in a transaction on `clientId` and always ends it: commits when `work` returns,
 * rolls back when it throws. A read-only `work` commits nothing, which is cheap. The transaction
 * is optimistic (TxnOptions): when it turns out stale, nothing was committed and `work` runs
 * again in a new transaction, so `work` must have no effect outside it. The last run is not
 * optimistic, so `TXN_STALE` never comes out of withTxn. With `optimistic: false` every run holds
 * the lock throughout (an export that must see one state from start to end).
 */
export async function withTxn<T>(
  storage: Storage,
  clientId: ClientId,
  work: (txn: StorageTxn) => Promise<T>,
  options: TxnOptions = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const optimistic = options.optimistic !== false && attempt < STALE_RETRIES;
    const runAgain = (err: unknown) => optimistic && isTcsyncError(err, 'TXN_STALE');
    const txn = await storage.txn(clientId, { ...options, optimistic });
    let result: T;
    try {
      result = await work(txn);
    } catch (err) {
      await txn.rollback();
      if (runAgain(err)) continue;
      throw err;
    }
    try {
      await txn.commit();
    } catch (err) {
      if (runAgain(err)) continue;
      throw err;
    }
    return result;
  }
}
