/**
 * The rules of a storage transaction, written once for every storage: changes are staged in
 * memory, reads see the transaction's own writes, and a storage only supplies how to load
 * committed state and how to persist a set of changes atomically.
 */
import { TcsyncError } from '../errors.js';
import { assertCanonicalId, NIL_VERSION_ID, type VersionId } from '../ids.js';
import type { Client, Snapshot, StorageTxn, Version } from './storage.js';

/** Everything one transaction changed, handed to the storage at commit. */
export interface TxnChanges {
  /** The client as committed state has it when the transaction began (null: did not exist). */
  readonly before: Client | null;
  /** The client as the transaction leaves it. */
  readonly after: Client;
  /** Versions added, in order; each one's parent is the previous one's id (or the old latest). */
  readonly versions: readonly Version[];
  /** A new snapshot's bytes, when setSnapshot was called (its metadata is in `after.snapshot`). */
  readonly snapshotData: Uint8Array | null;
}

interface AddedVersions {
  readonly inOrder: Version[];
  readonly byId: Map<VersionId, Version>;
  readonly byParent: Map<VersionId, Version>;
}

export abstract class StagedTxn implements StorageTxn {
  #ended = false;
  #loaded = false;
  #before: Client | null = null;
  #client: Client | null = null;
  #dirty = false;
  /** Versions added, made at the first: most transactions are reads, which need none. */
  #added: AddedVersions | null = null;
  #snapshotData: Uint8Array | null = null;

  /** Committed state of the client, or null. Called once, first thing in every transaction that reads. */
  protected abstract loadClient(): Promise<Client | null>;
  /**
   * What loadClient would give, when it is at hand without waiting (a storage that remembers
   * the client), or undefined when loadClient must be waited for; throws what it would reject
   * with. Tried before loadClient: a poll answered from memory then waits for no promise of it.
   */
  protected loadClientAtHand(): Client | null | undefined {
    return undefined;
  }
  /** True when the client's id carries a tombstone (see Storage.deleteClient). */
  protected abstract isTombstoned(): Promise<boolean>;
  protected abstract loadVersion(versionId: VersionId): Promise<Version | null>;
  protected abstract loadVersionByParent(parentVersionId: VersionId): Promise<Version | null>;
  protected abstract loadSnapshotData(snapshot: Snapshot): Promise<Uint8Array | null>;
  /** Makes `changes` durable and visible at once, or not at all (then throws). */
  protected abstract persist(changes: TxnChanges): Promise<void>;
  /** Releases the client's lock. Must not throw. */
  protected abstract release(): Promise<void>;
  /**
   * True when persist itself fails with VERSION_EXISTS (leaving nothing) for a version whose id
   * is already stored, so that addVersion need not load it first; the error then comes at commit.
   */
  protected get persistRejectsStoredVersions(): boolean {
    return false;
  }

  getClient(): Promise<Client | null> {
    return this.#current();
  }

  async newClient(latestVersionId: VersionId): Promise<void> {
    assertCanonicalId(latestVersionId, 'latest version id');
    if ((await this.#current()) !== null) throw new TcsyncError('CLIENT_EXISTS', 'client already exists');
    if (await this.isTombstoned()) throw new TcsyncError('CLIENT_DELETED', 'this client was deleted; an admin must lift its tombstone first');
    this.#stage({ latestVersionId, snapshot: null });
  }

  async setSnapshot(snapshot: Snapshot, data: Uint8Array): Promise<void> {
    assertCanonicalId(snapshot.versionId, 'snapshot version id');
    const client = await this.#existing();
    this.#stage({ ...client, snapshot: { ...snapshot } });
    this.#snapshotData = Uint8Array.prototype.slice.call(data);
  }

  async getSnapshotData(versionId: VersionId): Promise<Uint8Array | null> {
    assertCanonicalId(versionId, 'snapshot version id');
    const client = await this.#existing();
    if (client.snapshot === null || client.snapshot.versionId !== versionId) {
      throw new TcsyncError('SNAPSHOT_MISMATCH', `the current snapshot is not of version ${versionId}`);
    }
    return this.#snapshotData ?? this.loadSnapshotData(client.snapshot);
  }

  /**
   * Not async: mostly called once the client is loaded, when the storage's own promise is the
   * answer, and an async frame around it would cost the poll a turn.
   */
  getVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    try {
      assertCanonicalId(parentVersionId, 'parent version id');
      if (!this.#loaded || this.#ended) return this.#current().then(() => this.#versionByParent(parentVersionId));
      return this.#versionByParent(parentVersionId);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #versionByParent(parentVersionId: VersionId): Promise<Version | null> {
    const added = this.#added?.byParent.get(parentVersionId);
    return added !== undefined ? Promise.resolve(added) : this.loadVersionByParent(parentVersionId);
  }

  async getVersion(versionId: VersionId): Promise<Version | null> {
    assertCanonicalId(versionId, 'version id');
    await this.#current();
    return this.#added?.byId.get(versionId) ?? this.loadVersion(versionId);
  }

  async addVersion(versionId: VersionId, parentVersionId: VersionId, historySegment: Uint8Array): Promise<void> {
    assertCanonicalId(versionId, 'version id');
    assertCanonicalId(parentVersionId, 'parent version id');
    const client = await this.#existing();
    if (client.latestVersionId !== NIL_VERSION_ID && parentVersionId !== client.latestVersionId) {
      throw new TcsyncError('WRONG_PARENT', `parent ${parentVersionId} is not the latest version ${client.latestVersionId}`);
    }
    if (this.#added?.byId.has(versionId) || (!this.persistRejectsStoredVersions && (await this.loadVersion(versionId)) !== null)) {
      throw new TcsyncError('VERSION_EXISTS', `version ${versionId} already exists`);
    }
    const version: Version = {
      versionId,
      parentVersionId,
      historySegment: Uint8Array.prototype.slice.call(historySegment),
    };
    this.#added ??= { inOrder: [], byId: new Map(), byParent: new Map() };
    this.#added.inOrder.push(version);
    this.#added.byId.set(versionId, version);
    this.#added.byParent.set(parentVersionId, version);
    const snapshot = client.snapshot && { ...client.snapshot, versionsSince: client.snapshot.versionsSince + 1 };
    this.#stage({ latestVersionId: versionId, snapshot });
  }

  /**
   * Not async: most transactions are reads, whose commit is only the release, and an async
   * frame around it costs each of them two more turns.
   */
  commit(): Promise<void> {
    if (this.#ended) return Promise.reject(new TcsyncError('TXN_ENDED', 'the transaction has already ended'));
    this.#ended = true;
    const client = this.#client;
    if (!this.#dirty || client === null) return this.release();
    return this.#persistAndRelease({
      before: this.#before,
      after: client,
      versions: this.#added?.inOrder ?? [],
      snapshotData: this.#snapshotData,
    });
  }

  async #persistAndRelease(changes: TxnChanges): Promise<void> {
    try {
      await this.persist(changes);
    } finally {
      await this.release();
    }
  }

  async rollback(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.release();
  }

  /** Not async: most calls find the client loaded or at hand, and an async function's promise costs each of them. */
  #current(): Promise<Client | null> {
    if (this.#ended) return Promise.reject(new TcsyncError('TXN_ENDED', 'the transaction has already ended'));
    if (this.#loaded) return Promise.resolve(this.#client);
    let atHand: Client | null | undefined;
    try {
      atHand = this.loadClientAtHand();
    } catch (err) {
      return Promise.reject(err);
    }
    return atHand === undefined ? this.#load() : Promise.resolve(this.#loadedAs(atHand));
  }

  async #load(): Promise<Client | null> {
    return this.#loadedAs(await this.loadClient());
  }

  #loadedAs(client: Client | null): Client | null {
    this.#before = client;
    this.#client = client;
    this.#loaded = true;
    return client;
  }

  async #existing(): Promise<Client> {
    const client = await this.#current();
    if (client === null) throw new TcsyncError('NO_SUCH_CLIENT', 'no such client');
    return client;
  }

  #stage(client: Client): void {
    this.#client = client;
    this.#dirty = true;
  }
}
