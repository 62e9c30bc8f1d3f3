/**
 * A tcsync HTTP server inside the test process, on 127.0.0.1 port 0: real sockets, but options
 * (timeouts, caps, a storage double) that the command line does not offer.
 */
import { pino } from 'pino';
import { AccessPolicy } from '../../src/access-policy.js';
import type { ClientId } from '../../src/ids.js';
import { createRequestHandler, HttpServer, instrumentStorage, ServerMetrics, type HttpServerOptions, type RequestHandlerOptions } from '../../src/http/index.js';
import { InMemoryStorage } from '../../src/storage/memory-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { SyncService } from '../../src/sync/sync-service.js';

export interface InProcessOptions extends Partial<Omit<RequestHandlerOptions, 'sync' | 'access'>> {
  /** @default a new InMemoryStorage */
  readonly storage?: Storage;
  /** @default true */
  readonly createClients?: boolean;
  /** @default null (every client) */
  readonly allowClientIds?: readonly ClientId[] | null;
  /** @default 100 */
  readonly snapshotVersions?: number;
  /** @default 14 */
  readonly snapshotDays?: number;
  /** The sync clock. @default the real one */
  readonly now?: () => Date;
  /** Options of the listening server. @default a shutdown grace of 1 s */
  readonly http?: HttpServerOptions;
}

export interface InProcessServer {
  readonly url: string;
  readonly storage: Storage;
  readonly metrics: ServerMetrics;
  readonly server: HttpServer;
  close(): Promise<void>;
}

export async function startInProcessServer(options: InProcessOptions = {}): Promise<InProcessServer> {
  const storage = options.storage ?? new InMemoryStorage();
  const metrics = options.metrics ?? new ServerMetrics({ processMetrics: false });
  const createClients = options.createClients ?? true;
  const sync = new SyncService(instrumentStorage(storage, metrics), {
    createClients,
    snapshotVersions: options.snapshotVersions ?? 100,
    snapshotDays: options.snapshotDays ?? 14,
    ...(options.now ? { now: options.now } : {}),
  });
  const access = new AccessPolicy({
    allowClientIds: options.allowClientIds ? new Set(options.allowClientIds) : null,
    createClients,
    adminToken: null,
  });
  const logger = options.logger ?? pino({ level: 'silent' });
  const handler = createRequestHandler({ ...options, sync, access, metrics, logger });
  const server = await HttpServer.listen(handler, [{ host: '127.0.0.1', port: 0 }], { shutdownGraceMs: 1000, ...options.http });
  return {
    url: server.urls[0] as string,
    storage,
    metrics,
    server,
    close: async () => {
      await server.close();
      await storage.close();
    },
  };
}
