/**
 * The request pipeline shared by every listening socket: routing, faults turned into short
 * answers, one log line and the metrics per request, and a polite end for requests answered
 * before their body was read. Cache-Control goes with every answer (respond.ts, and the GraphQL
 * route for the answers it writes itself).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { AccessPolicy } from '../access-policy.js';
import { shortId } from '../ids.js';
import type { SyncService } from '../sync/sync-service.js';
import { BodyBudget, DEFAULT_BODY_BUDGET_BYTES } from './body-budget.js';
import type { RequestContext } from './context.js';
import { clientAddress } from './client-address.js';
import { ConditionLog } from './condition-log.js';
import { answerFor } from './error-status.js';
import type { HealthCheck } from './health-probe.js';
import { HttpError } from './http-error.js';
import { ServerMetrics } from './metrics.js';
import { requestLineWriter, type RequestLine } from './request-log.js';
import { sendText } from './respond.js';
import { Router, type RouteMatch } from './router.js';
import { serviceRoutes, type GraphqlHandler } from './service-routes.js';
import { syncRoutes } from './sync-routes.js';

const UNMATCHED_ROUTE = '(unmatched)';

export interface RequestHandlerOptions {
  /** The protocol's transactions. */
  readonly sync: SyncService;
  /** Which clients may sync. */
  readonly access: AccessPolicy;
  /** Receives one line per request, and the faults. */
  readonly logger: Logger;
  /** Where request and storage figures are counted; /metrics serves its registry. @default new ServerMetrics() */
  readonly metrics?: ServerMetrics;
  /** What /healthz asks (see health-probe.ts); null makes /healthz always healthy. @default null */
  readonly health?: HealthCheck | null;
  /**
   * Logs an operator's conditions (disk full, ...) once as they begin and end; share it with
   * instrumentStorage. @default a new one on `logger`
   */
  readonly conditions?: ConditionLog;
  /** Serves `/graphql` and below; without one those paths are 404. @default null */
  readonly graphql?: GraphqlHandler | null;
  /** Largest history segment or snapshot accepted, in bytes (the reference's limit). @default 104857600 */
  readonly maxBodyBytes?: number;
  /**
   * What the bodies of all requests in flight may hold in memory together; past it, 503. Share one
   * with the GraphQL handler. @default a budget of 512 MiB
   */
  readonly bodyBudget?: BodyBudget;
  /** A request body that receives nothing for this long is abandoned with 408 and its connection closed. @default 30000 */
  readonly bodyIdleTimeoutMs?: number;
  /**
   * After answering a request whose body was not read (a refusal, such as a body over the cap),
   * the rest of the body is read and dropped for at most this long before the connection is cut,
   * as nginx's lingering close does: closing at once would reset the connection, and a client
   * that sends its whole body before reading (Taskwarrior's does) would see the reset instead of
   * the answer.
   * @default 30000
   */
  readonly lingerMs?: number;
  /** ... and for at most this many bytes. @default 1073741824 (1 GiB) */
  readonly lingerBytes?: number;
  /**
   * Reverse proxies whose X-Forwarded-For gives the address logged for a request; null logs the
   * direct peer whatever the request says. @default null
   */
  readonly trustedProxies?: BlockList | null;
}

export function createRequestHandler(options: RequestHandlerOptions): RequestListener {
  const { logger } = options;
  const logRequest = requestLineWriter(logger);
  const metrics = options.metrics ?? new ServerMetrics();
  const linger = { ms: options.lingerMs ?? 30_000, bytes: options.lingerBytes ?? 1024 * 1024 * 1024 };
  const bodyBudget = options.bodyBudget ?? new BodyBudget(DEFAULT_BODY_BUDGET_BYTES);
  const trustedProxies = options.trustedProxies ?? null;
  metrics.watchBodyBudget(bodyBudget);
  const router = new Router<RequestContext>([
    ...serviceRoutes({
      metrics,
      health: options.health ?? null,
      conditions: options.conditions ?? new ConditionLog(logger),
      graphql: options.graphql ?? null,
    }),
    ...syncRoutes({
      sync: options.sync,
      access: options.access,
      body: { maxBytes: options.maxBodyBytes ?? 100 * 1024 * 1024, idleTimeoutMs: options.bodyIdleTimeoutMs ?? 30_000 },
      bodyBudget,
    }),
  ]);

  return (req, res) => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const match = router.match(method, pathnameOf(req.url));
    const route = match.kind === 'not-found' ? UNMATCHED_ROUTE : match.template;
    const ctx: RequestContext = { req, res, param: match.kind === 'found' ? match.param : null, clientId: null, note: null };
    let failure: unknown = null;

    // `on`, not `once`: a response finishes and closes once, and once's wrapper costs per request.
    // 'prefinish', not 'finish': Node's own 'finish' listener, added before ours, closes a
    // connection that is not kept alive, and lingerOverRestOfBody must be in place before it does.
    res.on('prefinish', () => {
      if (!req.complete) lingerOverRestOfBody(req, linger);
    });
    res.on('close', () => {
      const seconds = (performance.now() - started) / 1000;
      const status = res.writableFinished ? res.statusCode : 0;
      metrics.requests.series(method, route, String(status)).inc();
      metrics.requestSeconds.series(method, route).observe(seconds);
      // Built field by field, not by spreading optional parts: spreads cost every request.
      const line: { -readonly [K in keyof RequestLine]: RequestLine[K] } = {
        method,
        route,
        status,
        ms: Math.round(seconds * 10_000) / 10,
        addr: clientAddress(req, trustedProxies),
      };
      if (ctx.clientId !== null) line.client = shortId(ctx.clientId);
      if (ctx.note !== null) line.note = ctx.note;
      if (failure !== null && answerFor(failure).fault) logger.error({ ...line, err: failure }, 'request failed');
      else if (status === 0) logRequest(line, 'client went away before the answer was sent');
      else logRequest(line, 'request');
    });

    handle(match, ctx).catch((err: unknown) => {
      failure = err;
      answerError(res, err);
    });
  };
}

/**
 * The route's handler, or the refusal when there is none. Not async: a frame awaiting the
 * handler would cost every request two turns; a handler that throws at once still rejects.
 */
function handle(match: RouteMatch<RequestContext>, ctx: RequestContext): Promise<void> {
  try {
    if (match.kind === 'not-found') throw new HttpError(404, 'not found');
    if (match.kind === 'method-not-allowed') throw new HttpError(405, 'method not allowed', { headers: { Allow: match.allow.join(', ') } });
    return match.handler(ctx);
  } catch (err) {
    return Promise.reject(err);
  }
}

function answerError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    // Too late for a status: cutting the connection is the only honest signal left.
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  const answer = answerFor(err);
  sendText(res, answer.status, answer.message, {
    ...answer.headers,
    ...(answer.closeConnection ? { Connection: 'close' } : {}),
  });
}

/**
 * Reads and drops what is left of a refused request's body so that the client, still sending,
 * gets to read the answer; a client that keeps sending past either bound is cut off. When the
 * answer closes the connection (the client asked for it, or the server is stopping), Node would
 * destroy the socket as soon as the answer is out, and the kernel would then reset the connection
 * over the unread body: a client that writes its whole body before reading sees EPIPE instead of
 * the answer. So the close becomes nginx's lingering close: the write side is shut (the client
 * sees the end of the answer), reading goes on until the client has sent its body or a bound is hit.
 */
function lingerOverRestOfBody(req: IncomingMessage, bounds: { readonly ms: number; readonly bytes: number }): void {
  const socket = req.socket;
  let dropped = 0;
  const cut = () => {
    clearTimeout(timer);
    req.off('data', onData);
    socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    dropped += chunk.byteLength;
    if (dropped > bounds.bytes) cut();
  };
  const timer = setTimeout(cut, bounds.ms);
  timer.unref();
  req.once('end', () => {
    clearTimeout(timer);
    req.off('data', onData);
  });
  req.on('data', onData);
  req.resume();
  // Called by Node's 'finish' listener in place of destroySoon (end, then destroy once written):
  // ending alone half-closes; the socket is destroyed when the client ends its side
  // (allowHalfOpen is off), by cut(), or by the server's idle timeout.
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
  };
}

function pathnameOf(url = '/'): string {
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  if (path.startsWith('/')) return path;
  try {
    // An absolute-form request target (`GET http://host/path`), which HTTP/1.1 servers must accept.
    return new URL(path).pathname;
  } catch {
    return '';
  }
}
