/**
 * Whole clients in and out of a storage, the same way for every backend: what backup, verify
 * and migrate build on, so that none of them knows how a storage lays out its data.
 *
 * Reading: `exportClient` hands a consistent, committed state of one client to a callback and
 * holds it (the client's lock, or one database transaction) until the callback settles; versions
 * are streamed from it, so a client with many large versions is never all in memory.
 * Writing: `importClient` writes one such client into a storage that does not hold it, durably
 * and atomically. A migration is `source.exportClient(id, (client) => dest.importClient(client))`.
 *
 * Tombstones (see Storage.deleteClient) travel too, so that a deleted client stays deleted.
 */
import type { ClientId, VersionId } from '../ids.js';
import type { Snapshot, Storage, Version } from './storage.js';

/** A version as exported, with when it was added where the source knows it. */
export interface ExportedVersion extends Version {
  /**
   * When the version was added to the source. An import keeps it, so that retention
   * (Storage.pruneVersions) counts from the original time, not from the copy's; absent or null
   * when the source does not know, and the import then counts from itself.
   */
  readonly addedAt?: Date | null;
}

/**
 * One client's committed state, valid only inside the `exportClient` callback that received it
 * (the storage stops holding the state when the callback settles).
 */
export interface ExportedClient {
  readonly clientId: ClientId;
  /** The latest version, or the nil id; it need not be among the stored versions (see Storage). */
  readonly latestVersionId: VersionId;
  /** The snapshot's metadata, with `versionsSince` as it stands now; null without a snapshot. */
  readonly snapshot: Snapshot | null;
  /**
   * The snapshot's bytes, read only when called (a check that does not need them does not pay
   * for them). `SNAPSHOT_MISMATCH` when there is no snapshot, `CORRUPT` when the storage has its
   * metadata but not its bytes.
   */
  readSnapshot(): Promise<Uint8Array>;
  /**
   * Every stored version of the client exactly once, in an order of the storage's choosing
   * (not necessarily the chain's). Versions are read as they are consumed: an implementation
   * pages or streams rather than loading all of them. May be iterated more than once (each
   * iteration reads again); `CORRUPT` when a stored version is damaged.
   */
  versions(): AsyncIterable<ExportedVersion>;
}

/** The read side: a storage, or a read-only source such as upstream's SQLite file. */
export interface ClientSource {
  /**
   * Runs `work` on a consistent committed state of `clientId` and returns its result, or null
   * (without calling `work`) when the client does not exist. The state is held while `work`
   * runs: under the client's lock (files) or in one transaction (databases), so writers of that
   * client wait, and nothing `work` sees changes under it.
   */
  exportClient<T>(clientId: ClientId, work: (client: ExportedClient) => Promise<T>): Promise<T | null>;
  /** Ids of existing clients greater than `after`, ascending, at most `limit` (as Storage.listClients). */
  listClients(after: ClientId | null, limit: number): Promise<ClientId[]>;
  /** Tombstoned ids greater than `after`, ascending, at most `limit`. A source without tombstones returns []. */
  listTombstones(after: ClientId | null, limit: number): Promise<ClientId[]>;
  /** Releases the source's resources. */
  close(): Promise<void>;
}

/** The write side, for restoring or migrating into a storage. */
export interface ClientSink {
  /**
   * Writes `client` (its versions with their ids, parents and bytes, its latest version, its
   * snapshot with version id, timestamp, versionsSince and bytes) into this storage. Atomic: the
   * client appears whole or not at all, also across a crash; durable when the promise resolves.
   * `CLIENT_EXISTS` when the client exists here, `CLIENT_DELETED` when its id is tombstoned
   * here. The versions are stored as given, without checking that they form a chain; two
   * versions with one id or one parent may be refused with `CORRUPT`. Storage faults as for a
   * transaction's commit (`DISK_FULL`, `STORAGE_IO`, ...), leaving nothing of the client.
   */
  importClient(client: ExportedClient): Promise<void>;
  /**
   * Tombstones `clientId` durably, as deleteClient leaves it, for a client that does not exist
   * here (`CLIENT_EXISTS` otherwise). A no-op when the id is tombstoned already.
   */
  importTombstone(clientId: ClientId): Promise<void>;
  /** Ids of existing clients, as Storage.listClients: migrate checks that DEST holds none. */
  listClients(after: ClientId | null, limit: number): Promise<ClientId[]>;
  close(): Promise<void>;
}

/**
 * A storage that exports and imports whole clients: FileStorage, InMemoryStorage and
 * PostgresStorage. test/storage/client-export-conformance.ts is the suite each one passes.
 */
export type ExportableStorage = Storage & ClientSource & ClientSink;

/** How many ids one listClients / listTombstones page asks for when walking a whole storage. */
export const LIST_PAGE = 1000;

/** Every id a paged lister returns, ascending, one page at a time. */
export async function* allIds(list: (after: ClientId | null, limit: number) => Promise<ClientId[]>): AsyncIterable<ClientId> {
  let after: ClientId | null = null;
  for (;;) {
    const page = await list(after, LIST_PAGE);
    yield* page;
    if (page.length < LIST_PAGE) return;
    after = page[page.length - 1] as ClientId;
  }
}
