/**
 * GraphQL figures (issue 4): addVersion through POST /graphql next to the same work through the
 * sync protocol's add-version and through SyncService directly, in one server process (the way
 * `tcsync serve` mounts GraphQL), on FileStorage and on InMemoryStorage (where no fsync hides
 * what GraphQL itself costs); then versions(first: 100) latency on a 2,000-version client.
 * Target: GraphQL addVersion at least 70% of HTTP add-version's rate.
 */
import path from 'node:path';
import { AccessPolicy } from '../dist/access-policy.js';
import { createGraphqlHandler } from '../dist/graphql/index.js';
import { createRequestHandler, HttpServer } from '../dist/http/index.js';
import {
  FileStorage,
  InMemoryStorage,
  NIL_VERSION_ID,
  parseClientId,
  SyncService,
  withTxn,
  type ClientId,
  type Storage,
  type VersionId,
} from '../dist/index.js';
import { clientWithHistory } from './fixtures.js';
import { benchLogger, LoadClient } from './load-client.js';
import { fmt, median, percentile, timeEach, type BenchSection } from './report.js';
import { scratchDir } from './scratch.js';

const SEGMENT = new Uint8Array(1024).fill(42);
const SEGMENT_BASE64 = Buffer.from(SEGMENT).toString('base64');
const REQUESTS = Number(process.env.BENCH_GRAPHQL_REQUESTS ?? 400);
const ROUNDS = 8;
const CHAIN = 2000;
const PAGE_READS = 200;

const ADD_VERSION = `mutation($c: UUID!, $p: UUID!, $s: Base64!) {
  addVersion(clientId: $c, parentVersionId: $p, historySegment: $s) {
    ... on VersionAdded { version { id } snapshotUrgency }
    ... on VersionConflict { expectedParentVersionId }
  }
}`;
const VERSIONS = `query($c: UUID!) {
  client(id: $c) { versions(first: 100) { edges { node { id parentVersionId historySegment size } } pageInfo { hasNextPage endCursor } } }
}`;

/** One server process with both transports, as `tcsync serve` builds it. */
async function startServer(storage: Storage) {
  const sync = new SyncService(storage, { createClients: true, snapshotVersions: 100, snapshotDays: 14 });
  const access = new AccessPolicy({ allowClientIds: null, createClients: true, adminToken: null });
  const logger = benchLogger();
  const graphql = createGraphqlHandler({ storage, sync, access, logger });
  const server = await HttpServer.listen(createRequestHandler({ sync, access, logger, graphql }), [{ host: '127.0.0.1', port: 0 }]);
  const connection = new LoadClient(server.urls[0] as string);
  return { sync, server, connection };
}

type Server = Awaited<ReturnType<typeof startServer>>;

/** Adds one version on top of the last one this writer added; returns the new id. */
type AddStep = (clientId: ClientId, parent: string) => Promise<string>;

const direct =
  ({ sync }: Server): AddStep =>
  async (clientId, parent) => {
    const result = await sync.addVersion(clientId, parent as VersionId, SEGMENT);
    if (result.kind !== 'ok') throw new Error('direct addVersion conflicted');
    return result.version.versionId;
  };

const viaHttp =
  ({ connection }: Server): AddStep =>
  async (clientId, parent) => {
    const answer = await connection.request('POST', `/v1/client/add-version/${parent}`, { 'content-type': 'application/vnd.taskchampion.history-segment', 'x-client-id': clientId }, SEGMENT);
    const id = answer.headers['x-version-id'];
    if (answer.status !== 200 || typeof id !== 'string') throw new Error(`add-version answered ${answer.status}`);
    return id;
  };

const viaGraphql =
  ({ connection }: Server): AddStep =>
  async (clientId, parent) => {
    const body = JSON.stringify({ query: ADD_VERSION, variables: { c: clientId, p: parent, s: SEGMENT_BASE64 } });
    const answer = await connection.request('POST', '/graphql', { 'content-type': 'application/json' }, body);
    const text = answer.body.toString('utf8');
    const id = JSON.parse(text)?.data?.addVersion?.version?.id;
    if (answer.status !== 200 || typeof id !== 'string') throw new Error(`graphql addVersion answered ${answer.status} ${text.slice(0, 200)}`);
    return id;
  };

/**
 * Sequential adds on one fresh client per way, in interleaved rounds so disk noise falls on all
 * alike; req/s per way, from the median request time. A quarter as many adds first, uncounted, so that every way is measured
 * with its code already optimised by the JIT (GraphQL's path has far more code to warm up).
 */
async function addRates(ways: readonly AddStep[], requests: number): Promise<number[]> {
  const writers = ways.map((add) => {
    const clientId = parseClientId(crypto.randomUUID());
    let latest: string = NIL_VERSION_ID;
    return async () => {
      latest = await add(clientId, latest);
    };
  });
  for (const write of writers) await timeEach(requests / 4, write);
  const times: number[][] = ways.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, write] of writers.entries()) times[i]?.push(...(await timeEach(requests / ROUNDS, write)));
  }
  // From the median request: other work on the machine lands in bursts, and a burst that falls
  // on one way's round would otherwise decide the ratio.
  return times.map((t) => 1000 / median(t));
}

/** The reads a versions(first: 100) page makes, straight on storage: the latest, 100 versions, one more for hasNextPage. */
async function storageWalkLatencies(storage: Storage, clientId: ClientId): Promise<number[]> {
  return timeEach(PAGE_READS, () =>
    withTxn(storage, clientId, async (txn) => {
      let next = (await txn.getClient())?.latestVersionId ?? NIL_VERSION_ID;
      for (let i = 0; i <= 100; i++) next = (await txn.getVersion(next))?.parentVersionId ?? NIL_VERSION_ID;
    }),
  );
}

async function pageLatencies(server: Server, clientId: ClientId): Promise<number[]> {
  const body = JSON.stringify({ query: VERSIONS, variables: { c: clientId } });
  return timeEach(PAGE_READS, async () => {
    const answer = await server.connection.request('POST', '/graphql', { 'content-type': 'application/json' }, body);
    const text = answer.body.toString('utf8');
    const edges = JSON.parse(text)?.data?.client?.versions?.edges;
    if (!Array.isArray(edges) || edges.length !== 100) throw new Error(`versions answered ${answer.status} ${text.slice(0, 200)}`);
  });
}

export async function bench(): Promise<BenchSection> {
  const root = await scratchDir('graphql');
  const rows: Array<[string, string, string?]> = [];
  const kinds: Array<[string, Storage, number]> = [
    ['FileStorage', await FileStorage.open(path.join(root, 'data')), REQUESTS],
    // No fsync: GraphQL's own cost is all that separates the transports here.
    ['InMemoryStorage', new InMemoryStorage(), REQUESTS * 5],
  ];
  for (const [name, storage, requests] of kinds) {
    const server = await startServer(storage);
    try {
      const [directRate, httpRate, graphqlRate] = (await addRates([direct(server), viaHttp(server), viaGraphql(server)], requests)) as [number, number, number];
      const ratio = graphqlRate / httpRate;
      rows.push(
        [`${name}: addVersion via SyncService (1 client, sequential, 1 KiB)`, fmt.perSec(directRate), `1 / median of ${requests} adds`],
        [`${name}: add-version via HTTP`, fmt.perSec(httpRate), fmt.pct(httpRate / directRate) + ' of direct'],
        [
          `${name}: addVersion via GraphQL`,
          fmt.perSec(graphqlRate),
          // The target is for the product, on files; in memory the row shows GraphQL's own cost.
          storage instanceof FileStorage ? `${fmt.pct(ratio)} of HTTP (target >= 70%) ${ratio >= 0.7 ? 'met' : 'MISSED'}` : `${fmt.pct(ratio)} of HTTP (no fsync: GraphQL's own cost)`,
        ],
      );
      if (storage instanceof FileStorage) {
        const clientId = await clientWithHistory(storage, CHAIN, SEGMENT);
        const times = await pageLatencies(server, clientId);
        const walk = await storageWalkLatencies(storage, clientId);
        rows.push(
          [`${name}: versions(first: 100) via GraphQL on a ${CHAIN}-version client, 1 KiB each`, fmt.ms(median(times)), `median of ${PAGE_READS}; p95 ${fmt.ms(percentile(times, 95))}`],
          [`${name}: the same 102 reads straight on storage`, fmt.ms(median(walk)), `median of ${PAGE_READS}; p95 ${fmt.ms(percentile(walk, 95))}`],
        );
      }
    } finally {
      await server.connection.close();
      await server.server.close();
      await storage.close();
    }
  }
  return { title: 'GraphQL: addVersion next to HTTP add-version and SyncService; versions() latency', rows };
}
