/**
 * `tcsync serve`: opens the data directory or the database, listens, and on SIGTERM or SIGINT
 * stops accepting, lets requests in flight finish, and closes the storage (releasing every
 * client lock).
 */
import type { Logger } from 'pino';
import { AccessPolicy } from '../access-policy.js';
import { BodyBudget, ConditionLog, createRequestHandler, DEFAULT_BODY_BUDGET_BYTES, HttpServer, instrumentStorage, ServerMetrics } from '../http/index.js';
import type { Storage } from '../storage/storage.js';
import { RetentionRunner } from '../sync/retention.js';
import { SyncService } from '../sync/sync-service.js';
import { lazyGraphql } from './lazy-graphql.js';
import { openFilesLimit } from './open-files-limit.js';
import { parseServeArgs, SERVE_USAGE, type ServeConfig } from './serve-args.js';
import { serverLogger } from './server-logger.js';
import { openServedStorage, type ServedStorage } from './serve-storage.js';
import { reportUsage, UsageError } from './usage-error.js';

export async function main(argv: string[]): Promise<number> {
  let config: ServeConfig;
  try {
    const args = parseServeArgs(argv, process.env);
    if (args.kind === 'help') {
      process.stdout.write(`${SERVE_USAGE}\n`);
      return 0;
    }
    config = args.config;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return reportUsage('serve', err.message);
  }

  // stdout carries only the "listening on" lines, for whoever started us; logs go to stderr.
  const logger = serverLogger(config.logLevel);
  // Listened for from the start, so that a signal during startup is a clean stop once serving.
  const stopSignal = nextSignal(logger);
  const metrics = new ServerMetrics();
  const conditions = new ConditionLog(logger);
  let served: ServedStorage;
  try {
    served = await openServedStorage(config, metrics, conditions, logger);
  } catch (err) {
    process.stderr.write(`tcsync serve: ${(err as Error).message}\n`);
    return 1;
  }
  const { storage, health } = served;
  // Totals of what the clients store, for /metrics: added up in the background, never per scrape.
  metrics.watchUsage(storage);
  const measured = instrumentStorage(storage, metrics, conditions);
  const retention = pruning(config, storage, metrics, logger);
  const sync = new SyncService(measured, {
    createClients: config.createClients,
    snapshotVersions: config.snapshotVersions,
    snapshotDays: config.snapshotDays,
    ...(retention === null ? {} : { onSnapshotAccepted: (clientId) => retention.snapshotAccepted(clientId) }),
  });
  const access = new AccessPolicy({
    allowClientIds: config.allowClientIds,
    createClients: config.createClients,
    adminToken: config.adminToken,
  });
  // One budget for request bodies in memory, whichever transport they came by.
  const bodyBudget = new BodyBudget(DEFAULT_BODY_BUDGET_BYTES);
  const graphql = lazyGraphql(async () => {
    const { createGraphqlHandler } = await import('../graphql/index.js');
    return createGraphqlHandler({ storage: measured, sync, access, logger, bodyBudget });
  });
  const handler = createRequestHandler({
    sync,
    access,
    logger,
    metrics,
    health,
    conditions,
    graphql,
    bodyBudget,
    trustedProxies: config.trustedProxies,
  });

  let server: HttpServer;
  try {
    server = await HttpServer.listen(handler, config.listen, connectionLimit());
  } catch (err) {
    process.stderr.write(`tcsync serve: cannot listen: ${(err as Error).message}\n`);
    await retention?.close();
    await metrics.stop();
    await storage.close();
    return 1;
  }
  logger.info(
    { ...served.where, urls: server.urls, createClients: config.createClients, allowList: config.allowClientIds?.size ?? null },
    'serving',
  );
  for (const url of server.urls) process.stdout.write(`listening on ${url}\n`);
  retention?.start();

  const signal = await stopSignal;
  logger.info({ signal }, 'shutting down: finishing requests in flight');
  await server.close();
  // Before the storage closes: a pruning under way finishes its batch first.
  await retention?.close();
  await metrics.stop();
  await storage.close();
  logger.info('stopped');
  return 0;
}

/** The retention runner of --prune-days, or null without it. */
function pruning(config: ServeConfig, storage: Storage, metrics: ServerMetrics, logger: Logger): RetentionRunner | null {
  if (config.pruneDays === null) return null;
  metrics.watchRetention();
  logger.info({ pruneDays: config.pruneDays }, 'retention: pruning versions that snapshots cover');
  return new RetentionRunner(storage, {
    days: config.pruneDays,
    log: logger,
    onPruned: (versions) => metrics.prunedVersions.series().inc(versions),
  });
}

/** Resolves on the first SIGTERM or SIGINT; a second one means "now", and exits at once. */
function nextSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
      process.once('SIGTERM', hurry).once('SIGINT', hurry);
      resolve(signal);
    };
    const hurry = (signal: NodeJS.Signals) => {
      logger.warn({ signal }, 'second signal: exiting without waiting for requests in flight');
      process.exit(1);
    };
    process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  });
}

/**
 * Connections may take three quarters of the file descriptors; the rest stay for the storage, so
 * that a flood of connections makes new connections wait their turn instead of making commits
 * fail for want of a descriptor.
 */
function connectionLimit(): { maxConnections?: number } {
  const files = openFilesLimit();
  return files === null ? {} : { maxConnections: Math.max(16, Math.floor((files * 3) / 4)) };
}
