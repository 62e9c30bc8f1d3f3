/** The routes around the protocol: the banner, health, metrics, and the GraphQL mount. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SERVER_NAME, SERVER_VERSION } from '../version.js';
import type { RequestContext } from './context.js';
import type { ConditionLog } from './condition-log.js';
import type { HealthCheck } from './health-probe.js';
import type { ServerMetrics } from './metrics.js';
import { CACHE_CONTROL, send, sendText } from './respond.js';
import { ANY_METHOD, type Route } from './router.js';

/** Serves `/graphql` and everything below it; provided by the GraphQL module. */
export type GraphqlHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface ServiceRouteOptions {
  /** Served at /metrics. */
  readonly metrics: ServerMetrics;
  /** What /healthz asks; null when there is nothing to ask (in-memory storage). */
  readonly health: HealthCheck | null;
  /** Told when health checks start and stop failing. */
  readonly conditions: ConditionLog;
  /** Serves /graphql and below; null leaves those paths unrouted (404). */
  readonly graphql: GraphqlHandler | null;
}

export function serviceRoutes(options: ServiceRouteOptions): Route<RequestContext>[] {
  const { metrics, health, conditions, graphql } = options;
  const routes: Route<RequestContext>[] = [
    {
      template: '/',
      methods: { GET: async ({ res }) => sendText(res, 200, `${SERVER_NAME} v${SERVER_VERSION}, a TaskChampion sync server`) },
    },
    {
      template: '/healthz',
      methods: {
        GET: async ({ res }) => {
          const result = health === null ? { ok: true } : await health();
          const condition = result.ok ? null : (result.condition ?? 'failing');
          conditions.set('health check', condition, result.reason === undefined ? {} : { reason: result.reason });
          if (condition === null) return sendText(res, 200, 'ok');
          // Monitoring and load balancers read the status; a person reads why.
          sendText(res, 503, condition, { 'Retry-After': '30' });
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
    // The GraphQL handler writes its own answers: Cache-Control is set before, as respond.ts
    // sends it with every other answer.
    const answerGraphql = async ({ req, res }: RequestContext) => {
      res.setHeader('Cache-Control', CACHE_CONTROL);
      return graphql(req, res);
    };
    routes.push({ template: '/graphql', prefix: true, methods: { [ANY_METHOD]: answerGraphql } });
  }
  return routes;
}
