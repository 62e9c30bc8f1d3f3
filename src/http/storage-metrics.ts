/**
 * A Storage decorator that times lock waits and commits, so the storage layer stays free of
 * metrics and any Storage can be measured.
 */
import { performance } from 'node:perf_hooks';
import type { ClientId, VersionId } from '../ids.js';
import type { Client, Snapshot, Storage, StorageTxn, Version } from '../storage/storage.js';
import type { ServerMetrics } from './metrics.js';

export function instrumentStorage(storage: Storage, metrics: ServerMetrics): Storage {
  return new InstrumentedStorage(storage, metrics);
}

class InstrumentedStorage implements Storage {
  readonly #inner: Storage;
  readonly #metrics: ServerMetrics;

  constructor(inner: Storage, metrics: ServerMetrics) {
    this.#inner = inner;
    this.#metrics = metrics;
  }

  async txn(clientId: ClientId): Promise<StorageTxn> {
    // Beginning a transaction is taking the client's lock; everything else is reading.
    const started = performance.now();
    const txn = await this.#inner.txn(clientId);
    this.#metrics.lockWaitSeconds.observe((performance.now() - started) / 1000);
    return new InstrumentedTxn(txn, this.#metrics);
  }

  deleteClient(clientId: ClientId): Promise<boolean> {
    return this.#inner.deleteClient(clientId);
  }

  liftTombstone(clientId: ClientId): Promise<boolean> {
    return this.#inner.liftTombstone(clientId);
  }

  isTombstoned(clientId: ClientId): Promise<boolean> {
    return this.#inner.isTombstoned(clientId);
  }

  listClients(after: ClientId | null, limit: number): Promise<ClientId[]> {
    return this.#inner.listClients(after, limit);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

class InstrumentedTxn implements StorageTxn {
  readonly #inner: StorageTxn;
  readonly #metrics: ServerMetrics;
  /** Read-only transactions commit nothing; timing them would drown the real commits. */
  #writes = false;

  constructor(inner: StorageTxn, metrics: ServerMetrics) {
    this.#inner = inner;
    this.#metrics = metrics;
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

  async commit(): Promise<void> {
    if (!this.#writes) return this.#inner.commit();
    const started = performance.now();
    let outcome = 'error';
    try {
      await this.#inner.commit();
      outcome = 'ok';
    } finally {
      this.#metrics.commitSeconds.observe({ outcome }, (performance.now() - started) / 1000);
    }
  }

  rollback(): Promise<void> {
    return this.#inner.rollback();
  }
}
