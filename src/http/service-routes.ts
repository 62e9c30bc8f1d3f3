/** The routes around the protocol: the banner, health, metrics, and the GraphQL mount. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { SERVER_NAME, SERVER_VERSION } from '../version.js';
import type { RequestContext } from './context.js';
import { probeWritable } from './health-probe.js';
import type { ServerMetrics } from './metrics.js';
import { send, sendText } from './respond.js';
import { ANY_METHOD, type Route } from './router.js';

/** Serves `/graphql` and everything below it; provided by the GraphQL module. */
export type GraphqlHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface ServiceRouteOptions {
  /** Served at /metrics. */
  readonly metrics: ServerMetrics;
  /** Told why a health check failed. */
  readonly logger: Logger;
  /** The directory /healthz proves writable; null when there is none (in-memory storage). */
  readonly dataDir: string | null;
  /** How long the write probe may take before /healthz answers 503. */
  readonly healthTimeoutMs: number;
  /** Serves /graphql and below; null leaves those paths unrouted (404). */
  readonly graphql: GraphqlHandler | null;
}

export function serviceRoutes(options: ServiceRouteOptions): Route<RequestContext>[] {
  const { metrics, logger, dataDir, healthTimeoutMs, graphql } = options;
  const routes: Route<RequestContext>[] = [
    {
      template: '/',
      methods: { GET: async ({ res }) => sendText(res, 200, `${SERVER_NAME} v${SERVER_VERSION}, a TaskChampion sync server`) },
    },
    {
      template: '/healthz',
      methods: {
        GET: async ({ res }) => {
          const probe = dataDir === null ? { ok: true } : await probeWritable(dataDir, healthTimeoutMs);
          if (probe.ok) return sendText(res, 200, 'ok');
          logger.warn({ reason: probe.reason }, 'health check failed: data directory not writable');
          sendText(res, 503, 'data directory not writable');
        },
      },
    },
    {
      template: '/metrics',
      methods: {
        GET: async ({ res }) => send(res, 200, { 'Content-Type': metrics.registry.contentType }, await metrics.registry.metrics()),
      },
    },
  ];
  if (graphql !== null) {
    routes.push({ template: '/graphql', prefix: true, methods: { [ANY_METHOD]: async ({ req, res }) => graphql(req, res) } });
  }
  return routes;
}
