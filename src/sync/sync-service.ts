/**
 * The TaskChampion sync protocol's four transactions, each in one storage transaction. Knows no
 * transport: HTTP and GraphQL both call this, so they cannot disagree. Expected outcomes are
 * values; only faults throw (typed TcsyncErrors).
 */
import { TcsyncError } from '../errors.js';
import { NIL_VERSION_ID, newVersionId, type ClientId, type VersionId } from '../ids.js';
import { withTxn, type Client, type Storage, type StorageTxn, type Version } from '../storage/storage.js';
import { snapshotUrgency, type SnapshotPolicy, type SnapshotUrgency } from './urgency.js';

/** Versions walked back from the latest when looking for a new snapshot's version (the reference's SNAPSHOT_SEARCH_LEN). */
export const SNAPSHOT_SEARCH_LEN = 5;

/** A client as newClient(NIL_VERSION_ID) makes it: no version yet, no snapshot. */
const NEW_CLIENT: Client = Object.freeze({ latestVersionId: NIL_VERSION_ID, snapshot: null });

export interface SyncOptions extends SnapshotPolicy {
  /** Create unknown clients on their first addVersion. @default true */
  readonly createClients: boolean;
  /** The clock; tests replace it. @default () => new Date() */
  readonly now?: () => Date;
  /** Hears of every snapshot accepted, once committed (retention prunes the client then). @default none */
  readonly onSnapshotAccepted?: (clientId: ClientId) => void;
}

export type AddVersionResult =
  | { readonly kind: 'ok'; readonly version: Version; readonly snapshotUrgency: SnapshotUrgency }
  | { readonly kind: 'conflict'; readonly expectedParentVersionId: VersionId };

export type GetChildVersionResult =
  | { readonly kind: 'ok'; readonly version: Version }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'gone' };

export type SnapshotIgnoredReason = 'already-stored' | 'older-than-current' | 'version-not-found' | 'too-old' | 'no-such-client';

export type AddSnapshotResult =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'ignored'; readonly reason: SnapshotIgnoredReason };

export interface StoredSnapshot {
  readonly versionId: VersionId;
  readonly data: Uint8Array;
}

export class SyncService {
  readonly #storage: Storage;
  readonly #options: Readonly<SyncOptions>;
  readonly #now: () => Date;

  constructor(storage: Storage, options: SyncOptions) {
    this.#storage = storage;
    this.#options = Object.freeze({ ...options });
    this.#now = options.now ?? (() => new Date());
  }

  get options(): Readonly<SyncOptions> {
    return this.#options;
  }

  /**
   * AddVersion. An unknown client is created first when the service creates clients
   * (`NO_SUCH_CLIENT` otherwise). The urgency is computed from the client as it was before the add.
   */
  async addVersion(clientId: ClientId, parentVersionId: VersionId, historySegment: Uint8Array): Promise<AddVersionResult> {
    return withTxn(this.#storage, clientId, async (txn) => {
      let client = await txn.getClient();
      if (client === null) {
        if (!this.#options.createClients) throw new TcsyncError('NO_SUCH_CLIENT', 'no such client');
        await txn.newClient(NIL_VERSION_ID);
        // What newClient made (the StorageTxn contract): asking the transaction again costs a turn.
        client = NEW_CLIENT;
      }
      if (client.latestVersionId !== NIL_VERSION_ID && parentVersionId !== client.latestVersionId) {
        return { kind: 'conflict', expectedParentVersionId: client.latestVersionId };
      }
      const version: Version = { versionId: newVersionId(), parentVersionId, historySegment };
      await txn.addVersion(version.versionId, parentVersionId, historySegment);
      return { kind: 'ok', version, snapshotUrgency: snapshotUrgency(client, this.#options, this.#now()) };
    });
  }

  /** GetChildVersion. `NO_SUCH_CLIENT` for an unknown client. */
  getChildVersion(clientId: ClientId, parentVersionId: VersionId): Promise<GetChildVersionResult> {
    // Not async: withTxn's promise is the answer, and wrapping it in another costs a poll two turns.
    return withTxn(this.#storage, clientId, async (txn) => {
      // Not existing(): its async frame costs every poll a turn.
      const client = await txn.getClient();
      if (client === null) throw noSuchClient();
      const version = await txn.getVersionByParent(parentVersionId);
      if (version !== null) return { kind: 'ok', version };
      // NotFound when an AddVersion with this parent would succeed; otherwise the history is gone.
      const wouldAdd = client.latestVersionId === parentVersionId || client.latestVersionId === NIL_VERSION_ID;
      return wouldAdd ? { kind: 'not-found' } : { kind: 'gone' };
    });
  }

  /** AddSnapshot. An ignored snapshot is a normal result, with the reason. */
  async addSnapshot(clientId: ClientId, versionId: VersionId, data: Uint8Array): Promise<AddSnapshotResult> {
    const result = await withTxn(this.#storage, clientId, async (txn): Promise<AddSnapshotResult> => {
      const client = await txn.getClient();
      if (client === null) return { kind: 'ignored', reason: 'no-such-client' };
      const lastSnapshot = client.snapshot?.versionId ?? null;
      if (versionId === lastSnapshot) return { kind: 'ignored', reason: 'already-stored' };

      // Walk back from the latest version, at most SNAPSHOT_SEARCH_LEN steps counting the latest.
      let searchLen = SNAPSHOT_SEARCH_LEN;
      let vid = client.latestVersionId;
      for (;;) {
        if (vid === versionId && versionId !== NIL_VERSION_ID) break;
        if (vid === lastSnapshot) return { kind: 'ignored', reason: 'older-than-current' };
        searchLen -= 1;
        if (searchLen <= 0 || vid === NIL_VERSION_ID) {
          return { kind: 'ignored', reason: vid === NIL_VERSION_ID ? 'version-not-found' : 'too-old' };
        }
        const version = await txn.getVersion(vid);
        if (version === null) return { kind: 'ignored', reason: 'version-not-found' };
        vid = version.parentVersionId;
      }
      await txn.setSnapshot({ versionId, timestamp: this.#now(), versionsSince: 0 }, data);
      return { kind: 'accepted' };
    });
    if (result.kind === 'accepted') this.#options.onSnapshotAccepted?.(clientId);
    return result;
  }

  /** GetSnapshot: the latest snapshot, or null. `NO_SUCH_CLIENT` for an unknown client. */
  async getSnapshot(clientId: ClientId): Promise<StoredSnapshot | null> {
    return withTxn(this.#storage, clientId, async (txn) => {
      const client = await existing(txn);
      if (client.snapshot === null) return null;
      const data = await txn.getSnapshotData(client.snapshot.versionId);
      return data === null ? null : { versionId: client.snapshot.versionId, data };
    });
  }

  /** The client's urgency now, or null for an unknown client (for GraphQL's Client.snapshotUrgency). */
  async currentUrgency(clientId: ClientId): Promise<SnapshotUrgency | null> {
    return withTxn(this.#storage, clientId, async (txn) => {
      const client = await txn.getClient();
      return client === null ? null : snapshotUrgency(client, this.#options, this.#now());
    });
  }
}

async function existing(txn: StorageTxn) {
  const client = await txn.getClient();
  if (client === null) throw noSuchClient();
  return client;
}

function noSuchClient(): TcsyncError {
  return new TcsyncError('NO_SUCH_CLIENT', 'no such client');
}
