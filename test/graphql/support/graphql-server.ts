/**
 * A real node:http server on a loopback port that mounts the GraphQL handler the way tcsync's
 * HTTP server does (Cache-Control set first, /graphql delegated), over the storage and options
 * a test chooses.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AccessPolicy } from '../../../src/access-policy.js';
import { createGraphqlHandler, type GraphqlLogger } from '../../../src/graphql/index.js';
import type { BodyBudget } from '../../../src/http/body-budget.js';
import { parseClientId } from '../../../src/ids.js';
import { InMemoryStorage } from '../../../src/storage/memory-storage.js';
import type { Storage } from '../../../src/storage/storage.js';
import { SyncService } from '../../../src/sync/sync-service.js';

export const ADMIN_TOKEN = 'test-admin-token';

export interface ServerOptions {
  storage?: Storage;
  allowClientIds?: string[];
  createClients?: boolean;
  adminToken?: string | null;
  snapshotVersions?: number;
  snapshotDays?: number;
  now?: () => Date;
  logger?: GraphqlLogger;
  bodyBudget?: BodyBudget;
}

export interface GraphqlResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface TestServer {
  readonly url: string;
  readonly storage: Storage;
  readonly sync: SyncService;
  /** POSTs one operation as JSON; `token` goes in `Authorization: Bearer`. */
  gql(query: string, variables?: Record<string, unknown>, options?: { token?: string; headers?: Record<string, string> }): Promise<GraphqlResponse>;
  close(): Promise<void>;
}

/** Records what the handler logs, so tests can check what it does and does not say. */
export function recordingLogger(): GraphqlLogger & { lines: Array<{ details: object; message: string }> } {
  const lines: Array<{ details: object; message: string }> = [];
  return { lines, error: (details, message) => lines.push({ details, message }) };
}

export async function startGraphqlServer(options: ServerOptions = {}): Promise<TestServer> {
  const storage = options.storage ?? new InMemoryStorage();
  const createClients = options.createClients ?? true;
  const sync = new SyncService(storage, {
    createClients,
    snapshotVersions: options.snapshotVersions ?? 100,
    snapshotDays: options.snapshotDays ?? 14,
    ...(options.now ? { now: options.now } : {}),
  });
  const access = new AccessPolicy({
    allowClientIds: options.allowClientIds ? new Set(options.allowClientIds.map(parseClientId)) : null,
    createClients,
    adminToken: options.adminToken === undefined ? ADMIN_TOKEN : options.adminToken,
  });
  const handler = createGraphqlHandler({
    storage,
    sync,
    access,
    logger: options.logger ?? recordingLogger(),
    ...(options.bodyBudget ? { bodyBudget: options.bodyBudget } : {}),
  });
  const server: Server = createServer((req, res) => {
    res.setHeader('Cache-Control', 'no-store, max-age=0');
    if (new URL(req.url ?? '/', 'http://x').pathname === '/graphql') {
      void handler(req, res);
    } else {
      res.statusCode = 404;
      res.end('not found\n');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/graphql`;
  return {
    url,
    storage,
    sync,
    async gql(query, variables, opts = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
      if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
      const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await storage.close();
    },
  };
}
