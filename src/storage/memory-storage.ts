/**
 * In-memory storage: the reference implementation the file storage is tested against, and a
 * storage for tests of the layers above. Nothing survives the process.
 */
import { TcsyncError } from '../errors.js';
import { assertCanonicalId, type ClientId, type VersionId } from '../ids.js';
import type { ClientSink, ClientSource, ExportedClient, ExportedVersion } from './client-export.js';
import { KeyedMutex } from './keyed-mutex.js';
import { versionsToPrune } from './prune-rule.js';
import { StagedTxn, type TxnChanges } from './staged-txn.js';
import type { Client, ClientUsage, Snapshot, Storage, StorageTxn, Version } from './storage.js';

interface StoredClient {
  client: Client;
  snapshotData: Uint8Array | null;
  readonly versions: Map<VersionId, Version>;
  /** Version id by parent version id. */
  readonly children: Map<VersionId, VersionId>;
  /** When each version was added, in milliseconds: stored here, or as an import's source says (else imported). */
  readonly addedAt: Map<VersionId, number>;
}

export class InMemoryStorage implements Storage, ClientSource, ClientSink {
  readonly #clients = new Map<ClientId, StoredClient>();
  readonly #tombstones = new Set<ClientId>();
  readonly #locks = new KeyedMutex<ClientId>();

  async txn(clientId: ClientId): Promise<StorageTxn> {
    assertCanonicalId(clientId, 'client id');
    const release = await this.#locks.acquire(clientId);
    return new MemoryTxn(this.#clients, this.#tombstones, clientId, release);
  }

  async deleteClient(clientId: ClientId): Promise<boolean> {
    assertCanonicalId(clientId, 'client id');
    const release = await this.#locks.acquire(clientId);
    try {
      if (!this.#clients.delete(clientId)) return false;
      this.#tombstones.add(clientId);
      return true;
    } finally {
      release();
    }
  }

  async liftTombstone(clientId: ClientId): Promise<boolean> {
    assertCanonicalId(clientId, 'client id');
    return this.#tombstones.delete(clientId);
  }

  async isTombstoned(clientId: ClientId): Promise<boolean> {
    assertCanonicalId(clientId, 'client id');
    return this.#tombstones.has(clientId);
  }

  async listClients(after: ClientId | null, limit: number): Promise<ClientId[]> {
    if (after !== null) assertCanonicalId(after, 'client id');
    return [...this.#clients.keys()]
      .filter((id) => after === null || id > after)
      .sort()
      .slice(0, limit);
  }

  async clientUsage(clientId: ClientId): Promise<ClientUsage | null> {
    assertCanonicalId(clientId, 'client id');
    const stored = this.#clients.get(clientId);
    if (stored === undefined) return null;
    let bytes = stored.snapshotData?.byteLength ?? 0;
    for (const version of stored.versions.values()) bytes += version.historySegment.byteLength;
    let oldest = Infinity;
    for (const at of stored.addedAt.values()) oldest = Math.min(oldest, at);
    return { versions: stored.versions.size, bytes, oldestVersionAddedAt: Number.isFinite(oldest) ? new Date(oldest) : null };
  }

  async pruneVersions(clientId: ClientId, addedBefore: Date): Promise<number> {
    assertCanonicalId(clientId, 'client id');
    // Under the client's lock, like a commit: a transaction sees the history before or after, whole.
    const release = await this.#locks.acquire(clientId);
    try {
      const stored = this.#clients.get(clientId);
      const snapshot = stored?.client.snapshot;
      if (stored === undefined || snapshot == null) return 0;
      const doomed = versionsToPrune(snapshot.versionId, addedBefore, (id) => {
        const version = stored.versions.get(id);
        return version && { parentVersionId: version.parentVersionId, addedAt: stored.addedAt.get(id) ?? null };
      });
      for (const id of doomed) {
        const { parentVersionId } = stored.versions.get(id)!;
        stored.versions.delete(id);
        stored.addedAt.delete(id);
        // The pruned version's own entry (its child) stays: the oldest kept version is still found by its parent.
        if (stored.children.get(parentVersionId) === id) stored.children.delete(parentVersionId);
      }
      return doomed.length;
    } finally {
      release();
    }
  }

  async exportClient<T>(clientId: ClientId, work: (client: ExportedClient) => Promise<T>): Promise<T | null> {
    const release = await this.#locks.acquire(clientId);
    try {
      const stored = this.#clients.get(clientId);
      if (stored === undefined) return null;
      const { latestVersionId, snapshot } = stored.client;
      return await work({
        clientId,
        latestVersionId,
        snapshot,
        readSnapshot: async () => {
          if (snapshot === null) throw new TcsyncError('SNAPSHOT_MISMATCH', 'the client has no snapshot');
          if (stored.snapshotData === null) throw new TcsyncError('CORRUPT', 'the snapshot has no bytes');
          return stored.snapshotData.slice();
        },
        versions: async function* (): AsyncIterable<ExportedVersion> {
          for (const version of stored.versions.values()) {
            const addedAt = stored.addedAt.get(version.versionId);
            yield { ...(copy(version) as Version), addedAt: addedAt === undefined ? null : new Date(addedAt) };
          }
        },
      });
    } finally {
      release();
    }
  }

  async importClient(client: ExportedClient): Promise<void> {
    const { clientId, latestVersionId, snapshot } = client;
    const release = await this.#locks.acquire(clientId);
    try {
      if (this.#clients.has(clientId)) throw new TcsyncError('CLIENT_EXISTS', 'client already exists');
      if (this.#tombstones.has(clientId)) throw new TcsyncError('CLIENT_DELETED', 'this client was deleted');
      const versions = new Map<VersionId, Version>();
      const children = new Map<VersionId, VersionId>();
      const addedAt = new Map<VersionId, number>();
      for await (const version of client.versions()) {
        if (versions.has(version.versionId) || children.has(version.parentVersionId)) {
          throw new TcsyncError('CORRUPT', `version ${version.versionId} repeats a version id or a parent`);
        }
        const { versionId, parentVersionId, historySegment } = version;
        versions.set(versionId, { versionId, parentVersionId, historySegment: historySegment.slice() });
        children.set(parentVersionId, versionId);
        addedAt.set(versionId, version.addedAt?.getTime() ?? Date.now());
      }
      const snapshotData = snapshot === null ? null : (await client.readSnapshot()).slice();
      this.#clients.set(clientId, { client: { latestVersionId, snapshot: snapshot && { ...snapshot } }, snapshotData, versions, children, addedAt });
    } finally {
      release();
    }
  }

  async listTombstones(after: ClientId | null, limit: number): Promise<ClientId[]> {
    return [...this.#tombstones].filter((id) => after === null || id > after).sort().slice(0, limit);
  }

  async importTombstone(clientId: ClientId): Promise<void> {
    if (this.#clients.has(clientId)) throw new TcsyncError('CLIENT_EXISTS', 'client exists; only an absent client can carry a tombstone');
    this.#tombstones.add(clientId);
  }

  async close(): Promise<void> {
    await this.#locks.drain();
  }
}

function copy(version: Version | undefined): Version | null {
  return version ? { ...version, historySegment: version.historySegment.slice() } : null;
}

class MemoryTxn extends StagedTxn {
  readonly #clients: Map<ClientId, StoredClient>;
  readonly #tombstones: ReadonlySet<ClientId>;
  readonly #clientId: ClientId;
  readonly #release: () => void;

  constructor(clients: Map<ClientId, StoredClient>, tombstones: ReadonlySet<ClientId>, clientId: ClientId, release: () => void) {
    super();
    this.#clients = clients;
    this.#tombstones = tombstones;
    this.#clientId = clientId;
    this.#release = release;
  }

  get #stored(): StoredClient | undefined {
    return this.#clients.get(this.#clientId);
  }

  protected async loadClient(): Promise<Client | null> {
    return this.#stored?.client ?? null;
  }

  protected async isTombstoned(): Promise<boolean> {
    return this.#tombstones.has(this.#clientId);
  }

  protected async loadVersion(versionId: VersionId): Promise<Version | null> {
    return copy(this.#stored?.versions.get(versionId));
  }

  protected async loadVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    const stored = this.#stored;
    const childId = stored?.children.get(parentVersionId);
    return childId === undefined ? null : copy(stored?.versions.get(childId));
  }

  protected async loadSnapshotData(_snapshot: Snapshot): Promise<Uint8Array | null> {
    return this.#stored?.snapshotData?.slice() ?? null;
  }

  protected async persist(changes: TxnChanges): Promise<void> {
    let stored = this.#stored;
    if (stored === undefined) {
      stored = { client: changes.after, snapshotData: null, versions: new Map(), children: new Map(), addedAt: new Map() };
      this.#clients.set(this.#clientId, stored);
    }
    stored.client = changes.after;
    if (changes.snapshotData !== null) stored.snapshotData = changes.snapshotData;
    for (const version of changes.versions) {
      stored.versions.set(version.versionId, version);
      stored.children.set(version.parentVersionId, version.versionId);
      stored.addedAt.set(version.versionId, Date.now());
    }
  }

  protected async release(): Promise<void> {
    this.#release();
  }
}
