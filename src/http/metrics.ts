/**
 * The server's Prometheus metrics, in a registry of its own (never prom-client's global one, so
 * that two servers in one process do not mix their figures). Labels carry route templates and
 * operation names only: client ids are credentials and never appear. What is counted per request
 * or transaction is a series of metric-series.ts, picked by its label values.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { PoolStats } from '../storage/postgres/database.js';
import type { Storage } from '../storage/storage.js';
import type { BodyBudget } from './body-budget.js';
import { freeBytes } from './health-probe.js';
import { CounterFamily, HistogramFamily } from './metric-series.js';
import { UsageTotals, type UsageTotalsOptions } from './usage-totals.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface ServerMetricsOptions {
  /** Also export the process's CPU, memory, event-loop and GC figures. @default true */
  readonly processMetrics?: boolean;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new CounterFamily({
    name: 'tcsync_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  readonly requestSeconds = new HistogramFamily({
    name: 'tcsync_http_request_duration_seconds',
    help: 'Time from receiving a request to finishing its answer, by method and route template',
    labelNames: ['method', 'route'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly lockWaitSeconds = new HistogramFamily({
    name: 'tcsync_storage_lock_wait_seconds',
    help: 'Time spent waiting for a client lock before a storage transaction could begin',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly commitSeconds = new HistogramFamily({
    name: 'tcsync_storage_commit_duration_seconds',
    help: 'Time to commit a storage transaction that changed something (durable writes included), by outcome',
    labelNames: ['outcome'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  #bodyBudget: BodyBudget | null = null;
  readonly bodyBytesHeld: Gauge = new Gauge({
    name: 'tcsync_http_request_body_bytes_held',
    help: 'Bytes of request and answer bodies held in memory now (weighted), against the budget whose 503s it explains',
    registers: [this.registry],
    collect: (): void => this.bodyBytesHeld.set(this.#bodyBudget?.held ?? 0),
  });

  #dataDir: string | null = null;
  /** Registered by watchDataDir only: a server on a database would otherwise show 0 bytes free. */
  readonly dataDirFreeBytes: Gauge = new Gauge({
    name: 'tcsync_data_dir_free_bytes',
    help: 'Bytes free for tcsync on the data directory\'s file system (commits fail with 503 near 0; /healthz is 503 below its reserve)',
    registers: [],
    collect: async (): Promise<void> => {
      const free = this.#dataDir === null ? null : await freeBytes(this.#dataDir);
      if (free !== null) this.dataDirFreeBytes.set(free);
    },
  });

  /** Time waited for a database connection; shown only by a server on a database. */
  readonly poolWaitSeconds = new HistogramFamily({
    name: 'tcsync_storage_pool_wait_seconds',
    help: 'Time a storage transaction waited for a database connection from the pool (connecting included)',
    buckets: LATENCY_BUCKETS,
    registers: [],
  });
  readonly databaseErrors = new CounterFamily({
    name: 'tcsync_storage_database_errors_total',
    help: 'Failed database queries and connection attempts, by the error code they became (STORAGE_UNAVAILABLE: unreachable)',
    labelNames: ['code'],
    registers: [],
  });

  /** Versions deleted by retention; shown only by a server that prunes (watchRetention). */
  readonly prunedVersions = new CounterFamily({
    name: 'tcsync_retention_pruned_versions_total',
    help: 'Versions deleted by retention (--prune-days): those a client\'s snapshot covers, added before the cut',
    registers: [],
  });

  #usage: UsageTotals | null = null;

  constructor(options: ServerMetricsOptions = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Reports the free space of `dir`'s file system in tcsync_data_dir_free_bytes. */
  watchDataDir(dir: string): void {
    this.#dataDir = dir;
    this.registry.registerMetric(this.dataDirFreeBytes);
  }

  /**
   * Shows what a file storage remembers of its clients (client-cache.ts): how many, and the bytes
   * counted against its bound. A bound far below the clients that sync shows as a count pinned
   * at the bound, and then every poll reads client.json again.
   */
  watchClientCache(cache: () => { readonly clients: number; readonly bytes: number }): void {
    const gauge = (name: string, help: string, value: (c: { readonly clients: number; readonly bytes: number }) => number) =>
      new Gauge({ name, help, registers: [this.registry], collect(): void { this.set(value(cache())); } });
    gauge('tcsync_storage_cached_clients', 'Clients whose state the file storage remembers, so that a poll of one costs two stats', (c) => c.clients);
    gauge('tcsync_storage_cached_client_bytes', "Bytes those clients count against the cache's bound (16 MiB by default)", (c) => c.bytes);
  }

  /**
   * Shows the database pool: its gauges read `stats` when scraped, and poolWaitSeconds and
   * databaseErrors join the registry (a server on files has neither).
   */
  watchPool(stats: () => PoolStats): void {
    const gauge = (name: string, help: string, value: (s: PoolStats) => number) =>
      new Gauge({ name, help, registers: [this.registry], collect(): void { this.set(value(stats())); } });
    gauge('tcsync_storage_pool_size', 'Database connections open in the pool, idle or in use', (s) => s.size);
    gauge('tcsync_storage_pool_idle', 'Database connections open and idle in the pool', (s) => s.idle);
    gauge('tcsync_storage_pool_waiting', 'Storage transactions waiting for a database connection', (s) => s.waiting);
    this.registry.registerMetric(this.poolWaitSeconds.asMetric());
    this.registry.registerMetric(this.databaseErrors.asMetric());
  }

  /**
   * Reports what every client of `storage` together stores (usage-totals.ts): each scrape reads
   * the totals of the last walk over the clients and may start the next one in the background.
   * tcsync_storage_usage_timestamp_seconds says when the totals were taken (0: not yet); the
   * totals themselves appear once the first walk has ended, so that no one reads a 0 that means
   * "not counted yet". Call {@link stop} before closing the storage.
   */
  watchUsage(storage: Storage, options: UsageTotalsOptions = {}): void {
    const total = (name: string, help: string, value: (t: { clients: number; versions: number; bytes: number }) => number) =>
      new Gauge({ name, help, registers: [], collect(): void { if (usage.latest !== null) this.set(value(usage.latest)); } });
    const totals = [
      total('tcsync_storage_clients', 'Clients stored, as of tcsync_storage_usage_timestamp_seconds', (t) => t.clients),
      total('tcsync_storage_versions', 'Versions stored over all clients, as of tcsync_storage_usage_timestamp_seconds', (t) => t.versions),
      total('tcsync_storage_bytes', 'Bytes of history segments and snapshots stored over all clients, as of tcsync_storage_usage_timestamp_seconds', (t) => t.bytes),
    ];
    let shown = false;
    const usage = new UsageTotals(storage, () => {
      if (!shown) for (const gauge of totals) this.registry.registerMetric(gauge);
      shown = true;
    }, options);
    this.#usage = usage;
    new Gauge({
      name: 'tcsync_storage_usage_timestamp_seconds',
      help: 'When the stored clients, versions and bytes were last added up (0: not yet; a scrape starts it, at most every few minutes)',
      registers: [this.registry],
      collect(): void {
        usage.refresh();
        this.set((usage.latest?.at.getTime() ?? 0) / 1000);
      },
    });
  }

  /** Shows prunedVersions: the server prunes (serve --prune-days). */
  watchRetention(): void {
    this.registry.registerMetric(this.prunedVersions.asMetric());
  }

  /** Stops what runs in the background (the usage walk), before the storage it reads closes. */
  async stop(): Promise<void> {
    await this.#usage?.stop();
  }

  /** Reports `budget` in tcsync_http_request_body_bytes_held. */
  watchBodyBudget(budget: BodyBudget): void {
    this.#bodyBudget = budget;
  }
}
