/**
 * The storage `serve` was told to use (a data directory or a PostgreSQL database), with what
 * only that kind of storage knows: its /healthz check, its figures for /metrics, its entry in
 * the log. Everything past this point sees a Storage only.
 */
import { dataDirHealth, type ConditionLog, type HealthCheck, type ServerMetrics } from '../http/index.js';
import { FileStorage } from '../storage/file/file-storage.js';
import type { Storage } from '../storage/storage.js';
import type { Logger } from 'pino';
import type { ServeConfig } from './serve-args.js';

/** How long /healthz waits for the database to answer SELECT 1. */
const DATABASE_HEALTH_TIMEOUT_MS = 2000;

export interface ServedStorage {
  readonly storage: Storage;
  readonly health: HealthCheck;
  /** Where clients live, for the log: never a password. */
  readonly where: Readonly<Record<string, string>>;
}

/** Opens the storage of `config`; throws (with a message for the operator) when it cannot. */
export async function openServedStorage(config: ServeConfig, metrics: ServerMetrics, conditions: ConditionLog, logger: Logger): Promise<ServedStorage> {
  if (config.connection === null) {
    const storage = await FileStorage.open(config.dataDir, {
      ...(config.compact ? {} : { compactAfter: 0 }),
      // The client stays as it was, and is compacted again after its next commits.
      onCompactionError: (clientId, err) => logger.warn({ clientId, err }, 'compaction failed'),
    });
    metrics.watchDataDir(storage.dataDir);
    metrics.watchClientCache(() => storage.clientCache);
    return { storage, health: dataDirHealth(storage.dataDir, { reserveBytes: config.diskReserveBytes }), where: { dataDir: storage.dataDir } };
  }
  // Loaded only for a database: a server on files never needs node-postgres in memory.
  const { PostgresStorage } = await import('../storage/postgres/postgres-storage.js');
  const storage = await PostgresStorage.open(config.connection, {
    observer: {
      connectionWait: (seconds) => metrics.poolWaitSeconds.series().observe(seconds),
      error: (code) => metrics.databaseErrors.series(code).inc(),
      // Once when the database goes and once when it is back, not once per refused request.
      availability: (available, reason) => conditions.set('database', available ? null : 'database unreachable', { reason }),
    },
  });
  metrics.watchPool(() => storage.poolStats);
  const health: HealthCheck = () =>
    storage.ping(DATABASE_HEALTH_TIMEOUT_MS).then(
      () => ({ ok: true }),
      (err: Error) => ({ ok: false, condition: 'database unreachable', reason: err.message }),
    );
  return { storage, health, where: { database: databaseName(config.connection) } };
}

/** host:port/database of a connection URI, without user or password. */
function databaseName(uri: string): string {
  try {
    const url = new URL(uri);
    return `${url.host}${url.pathname}`;
  } catch {
    return '(unparsed URI)';
  }
}
