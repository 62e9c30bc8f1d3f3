/**
 * A Storage decorator that times lock waits and commits, and tells the condition log when
 * commits start or stop failing for an operator's reason (a full disk), so the storage layer
 * stays free of metrics and logging and any Storage can be watched.
 */
import { performance } from 'node:perf_hooks';
import type { ClientId, VersionId } from '../ids.js';
import type { Client, ClientUsage, Snapshot, Storage, StorageTxn, TxnOptions, Version } from '../storage/storage.js';
import { conditionOfError, type ConditionLog } from './condition-log.js';
import type { ServerMetrics } from './metrics.js';

/** Watches `storage`; `conditions` (when given) hears of commits refused for an operator's reason. */
export function instrumentStorage(storage: Storage, metrics: ServerMetrics, conditions: ConditionLog | null = null): Storage {
  return new InstrumentedStorage(storage, new Watch(metrics, conditions));
}

/** Where the outcomes go. */
class Watch {
  constructor(
    readonly metrics: ServerMetrics,
    readonly conditions: ConditionLog | null,
  ) {}

  /** Runs a write and reports how it went. */
  async write<T>(work: () => Promise<T>): Promise<T> {
    try {
      const result = await work();
      this.conditions?.set('commits', null);
      return result;
    } catch (err) {
      const condition = conditionOfError(err);
      if (condition !== null) this.conditions?.set('commits', condition, { code: (err as { code?: string }).code });
      throw err;
    }
  }
}

class InstrumentedStorage implements Storage {
  readonly #inner: Storage;
  readonly #watch: Watch;

  constructor(inner: Storage, watch: Watch) {
    this.#inner = inner;
    this.#watch = watch;
  }

  async txn(clientId: ClientId, options?: TxnOptions): Promise<StorageTxn> {
    // Beginning a transaction is taking the client's lock; everything else is reading.
    const started = performance.now();
    const txn = await this.#inner.txn(clientId, options);
    this.#watch.metrics.lockWaitSeconds.series().observe((performance.now() - started) / 1000);
    return new InstrumentedTxn(txn, this.#watch);
  }

  deleteClient(clientId: ClientId): Promise<boolean> {
    return this.#watch.write(() => this.#inner.deleteClient(clientId));
  }

  liftTombstone(clientId: ClientId): Promise<boolean> {
    return this.#watch.write(() => this.#inner.liftTombstone(clientId));
  }

  isTombstoned(clientId: ClientId): Promise<boolean> {
    return this.#inner.isTombstoned(clientId);
  }

  listClients(after: ClientId | null, limit: number): Promise<ClientId[]> {
    return this.#inner.listClients(after, limit);
  }

  clientUsage(clientId: ClientId): Promise<ClientUsage | null> {
    return this.#inner.clientUsage(clientId);
  }

  // Not watched as a commit: retention runs in the background, and its success says nothing of
  // whether commits fail (a full disk, say).
  pruneVersions(clientId: ClientId, addedBefore: Date): Promise<number> {
    return this.#inner.pruneVersions(clientId, addedBefore);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

class InstrumentedTxn implements StorageTxn {
  readonly #inner: StorageTxn;
  readonly #watch: Watch;
  /** Read-only transactions commit nothing; timing them would drown the real commits. */
  #writes = false;

  constructor(inner: StorageTxn, watch: Watch) {
    this.#inner = inner;
    this.#watch = watch;
  }

  getClient(): Promise<Client | null> {
    return this.#inner.getClient();
  }

  newClient(latestVersionId: VersionId): Promise<void> {
    this.#writes = true;
    return this.#inner.newClient(latestVersionId);
  }

  setSnapshot(snapshot: Snapshot, data: Uint8Array): Promise<void> {
    this.#writes = true;
    return this.#inner.setSnapshot(snapshot, data);
  }

  getSnapshotData(versionId: VersionId): Promise<Uint8Array | null> {
    return this.#inner.getSnapshotData(versionId);
  }

  getVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    return this.#inner.getVersionByParent(parentVersionId);
  }

  getVersion(versionId: VersionId): Promise<Version | null> {
    return this.#inner.getVersion(versionId);
  }

  addVersion(versionId: VersionId, parentVersionId: VersionId, historySegment: Uint8Array): Promise<void> {
    this.#writes = true;
    return this.#inner.addVersion(versionId, parentVersionId, historySegment);
  }

  /** Not async: a read's commit is passed on as it is, without a frame's two turns. */
  commit(): Promise<void> {
    return this.#writes ? this.#timedCommit() : this.#inner.commit();
  }

  async #timedCommit(): Promise<void> {
    const started = performance.now();
    let outcome = 'error';
    try {
      await this.#watch.write(() => this.#inner.commit());
      outcome = 'ok';
    } finally {
      this.#watch.metrics.commitSeconds.series(outcome).observe((performance.now() - started) / 1000);
    }
  }

  rollback(): Promise<void> {
    return this.#inner.rollback();
  }
}
