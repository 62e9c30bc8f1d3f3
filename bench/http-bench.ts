/**
 * HTTP figures (issue 3): add-version over HTTP for one client (sequential, 1 KiB) and for 16
 * clients (16 in flight), and a get-child-version walk of a 2,000-version chain, each next to the
 * same work done on SyncService + FileStorage directly in the same run, so the ratios show what
 * HTTP adds and how far per-client locks let clients commit in parallel.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AccessPolicy } from '../dist/access-policy.js';
import { createRequestHandler, dataDirHealth, HttpServer, instrumentStorage, ServerMetrics } from '../dist/http/index.js';
import { FileStorage, NIL_VERSION_ID, parseClientId, SyncService, type ClientId, type VersionId } from '../dist/index.js';
import { clientWithHistory } from './fixtures.js';
import { benchLogger, LoadClient } from './load-client.js';
import { fmt, median, percentile, timeEach, type BenchSection } from './report.js';
import { scratchDir } from './scratch.js';

const SEGMENT = new Uint8Array(1024).fill(42);
const HISTORY_SEGMENT = 'application/vnd.taskchampion.history-segment';
const SEQUENTIAL = Number(process.env.BENCH_HTTP_REQUESTS ?? 400);
const CLIENTS = 16;
const PER_CLIENT = Math.max(10, Math.floor(SEQUENTIAL / 8));
const CHAIN = 2000;
const ROUNDS = 4;

/** One client's add-versions in sequence, each on the one before; the latest stays in `state`. */
function chainWriter(add: (parent: string) => Promise<string>) {
  let latest: string = NIL_VERSION_ID;
  return async () => {
    latest = await add(latest);
  };
}

async function rateOf(loops: readonly (() => Promise<void>)[], count: number): Promise<number> {
  const start = performance.now();
  await Promise.all(loops.map(async (step) => {
    for (let i = 0; i < count; i++) await step();
  }));
  return (loops.length * count) / ((performance.now() - start) / 1000);
}

export async function bench(): Promise<BenchSection> {
  const root = await scratchDir('http');
  const storage = await FileStorage.open(path.join(root, 'data'));
  const metrics = new ServerMetrics();
  const sync = new SyncService(instrumentStorage(storage, metrics), { createClients: true, snapshotVersions: 100, snapshotDays: 14 });
  const access = new AccessPolicy({ allowClientIds: null, createClients: true, adminToken: null });
  const logger = benchLogger();
  const server = await HttpServer.listen(createRequestHandler({ sync, access, logger, metrics, health: dataDirHealth(storage.dataDir) }), [{ host: '127.0.0.1', port: 0 }]);
  const connections: LoadClient[] = [];
  /** A replica: its own connection, as each Taskwarrior process has. */
  const connect = () => {
    const connection = new LoadClient(server.urls[0] as string);
    connections.push(connection);
    return connection;
  };

  const newClient = () => parseClientId(crypto.randomUUID());
  const viaStorage = (clientId: ClientId) =>
    chainWriter(async (parent) => {
      const result = await sync.addVersion(clientId, parent as VersionId, SEGMENT);
      if (result.kind !== 'ok') throw new Error('storage add-version conflicted');
      return result.version.versionId;
    });
  const viaHttp = (clientId: ClientId) => {
    const connection = connect();
    return chainWriter(async (parent) => {
      const answer = await connection.request('POST', `/v1/client/add-version/${parent}`, { 'content-type': HISTORY_SEGMENT, 'x-client-id': clientId }, SEGMENT);
      const versionId = answer.headers['x-version-id'];
      if (answer.status !== 200 || typeof versionId !== 'string') throw new Error(`add-version answered ${answer.status}`);
      return versionId;
    });
  };

  try {
    // Interleaved, one storage add then one HTTP add, so that disk noise falls on both alike.
    const storageOne = viaStorage(newClient());
    const httpOne = viaHttp(newClient());
    const storageTimes: number[] = [];
    const httpTimes: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      storageTimes.push(...(await timeEach(1, storageOne)));
      httpTimes.push(...(await timeEach(1, httpOne)));
    }
    const storageMany = Array.from({ length: CLIENTS }, () => viaStorage(newClient()));
    const httpMany = Array.from({ length: CLIENTS }, () => viaHttp(newClient()));
    const storageManyRates: number[] = [];
    const httpManyRates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      storageManyRates.push(await rateOf(storageMany, PER_CLIENT / ROUNDS));
      httpManyRates.push(await rateOf(httpMany, PER_CLIENT / ROUNDS));
    }

    // The walk: a chain built in one transaction, then read version by version both ways.
    const walker = await clientWithHistory(storage, CHAIN, SEGMENT, newClient());
    const walk = async (step: (parent: string) => Promise<string | null>) => {
      const times: number[] = [];
      let at: string = NIL_VERSION_ID;
      for (let i = 0; i <= CHAIN; i++) {
        const started = performance.now();
        const next = await step(at);
        times.push(performance.now() - started);
        if (next === null) break;
        at = next;
      }
      if (times.length !== CHAIN + 1) throw new Error(`walk saw ${times.length - 1} versions`);
      return times;
    };
    const storageWalk = await walk(async (parent) => {
      const result = await sync.getChildVersion(walker, parent as VersionId);
      return result.kind === 'ok' ? result.version.versionId : null;
    });
    const walkConnection = connect();
    const httpWalk = await walk(async (parent) => {
      const answer = await walkConnection.request('GET', `/v1/client/get-child-version/${parent}`, { 'x-client-id': walker });
      return answer.status === 200 ? (answer.headers['x-version-id'] as string) : null;
    });

    const oneRate = 1000 / median(httpTimes);
    const manyRate = median(httpManyRates);
    const total = (times: number[]) => times.reduce((a, b) => a + b, 0);
    return {
      title: `HTTP (in-process server on 127.0.0.1, FileStorage, 1 KiB segments, undici keep-alive connection per client; ${SEQUENTIAL} sequential adds each way, interleaved; ${CLIENTS} clients in ${ROUNDS} interleaved rounds)`,
      rows: [
        ['storage only: SyncService.addVersion, one client', fmt.perSec(1000 / median(storageTimes)), `p50 ${fmt.ms(median(storageTimes))}, p99 ${fmt.ms(percentile(storageTimes, 99))}`],
        ['HTTP add-version, one client, sequential', fmt.perSec(oneRate), `p50 ${fmt.ms(median(httpTimes))}, p99 ${fmt.ms(percentile(httpTimes, 99))}`],
        ['HTTP cost / storage cost per add-version', fmt.ratio(median(httpTimes) / median(storageTimes)), 'ratio of p50s'],
        [`storage only: ${CLIENTS} clients, ${CLIENTS} in flight`, fmt.perSec(median(storageManyRates)), 'median of rounds'],
        [`HTTP add-version, ${CLIENTS} clients, ${CLIENTS} in flight`, fmt.perSec(manyRate), 'median of rounds'],
        [`HTTP ${CLIENTS} clients / 1 client (target >= 1.5x)`, fmt.ratio(manyRate / oneRate), 'requests/s'],
        [`HTTP / storage with ${CLIENTS} clients`, fmt.pct(manyRate / median(storageManyRates)), 'throughput kept'],
        [`storage only: walk of ${CHAIN} versions`, fmt.perSec(CHAIN / (total(storageWalk) / 1000)), `p50 ${fmt.ms(median(storageWalk))}, p99 ${fmt.ms(percentile(storageWalk, 99))}`],
        [`HTTP get-child-version walk of ${CHAIN} versions`, fmt.perSec(CHAIN / (total(httpWalk) / 1000)), `p50 ${fmt.ms(median(httpWalk))}, p99 ${fmt.ms(percentile(httpWalk, 99))}, total ${fmt.ms(total(httpWalk))}`],
        ['HTTP cost / storage cost per get-child-version', fmt.ratio(median(httpWalk) / median(storageWalk)), 'ratio of p50s'],
      ],
    };
  } finally {
    await Promise.all(connections.map((c) => c.close()));
    await server.close();
    await storage.close();
  }
}
