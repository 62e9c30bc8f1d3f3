/** tcsync's public API. */
export { TcsyncError, isTcsyncError, type ErrorCode } from './errors.js';
export {
  NIL_VERSION_ID,
  canonicalUuid,
  newVersionId,
  parseClientId,
  parseVersionId,
  type ClientId,
  type VersionId,
} from './ids.js';
export { withTxn, type Client, type ClientUsage, type Snapshot, type Storage, type StorageTxn, type Version } from './storage/storage.js';
export { InMemoryStorage } from './storage/memory-storage.js';
export { allIds, type ClientSink, type ClientSource, type ExportableStorage, type ExportedClient } from './storage/client-export.js';
export { SqliteSource } from './storage/sqlite/sqlite-source.js';
export { FileStorage, DATA_FORMAT, type FileStorageOptions } from './storage/file/file-storage.js';
export { PostgresStorage } from './storage/postgres/postgres-storage.js';
export type { PoolStats, PostgresObserver, PostgresStorageOptions } from './storage/postgres/database.js';
export {
  SyncService,
  SNAPSHOT_SEARCH_LEN,
  type AddSnapshotResult,
  type AddVersionResult,
  type GetChildVersionResult,
  type SnapshotIgnoredReason,
  type StoredSnapshot,
  type SyncOptions,
} from './sync/sync-service.js';
export { snapshotUrgency, DEFAULT_SNAPSHOT_POLICY, type SnapshotPolicy, type SnapshotUrgency } from './sync/urgency.js';
