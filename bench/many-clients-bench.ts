/**
 * (e) Many clients (issue 20): N clients (TCSYNC_BENCH_CLIENTS, default 10,000 times
 * TCSYNC_BENCH_SCALE) created over HTTP with two 1 KiB versions each (add-version from nil, then
 * from the first), 16 requests in flight; then every client polled for its latest version twice
 * (get-child-version of the latest: 404, nothing newer), 16 in flight. The second round's rate is
 * the poll figure: the first meets whatever creating left cold. tcsync (`serve` on a data
 * directory) and the SQLite reference server run as processes of their own on the same disk,
 * interleaved phase by phase (creation in CHUNKS, polls round by round, the order turned each
 * time) so that noise on this shared machine falls on both.
 *
 * Beside them, the floors, in the same turns: the bare node:http handler (bare-server.ts, MODE
 * files) creating the same clients with the files and flushes a new client costs tcsync, and
 * answering the polls with the two look-ups a lock-free poll makes (stat client.json, stat
 * `<latest>.child`); its RSS growth is the runtime's own under the same load. What each request
 * costs in system calls and flushes is counted under strace (syscall-count.ts). Memory: each
 * process tree's RSS idle, after creating and after polling; tcsync's heap after a forced garbage
 * collection (heap-probe.cts, preloaded) idle, after polling and after listing every client
 * through GraphQL. Disk: what each data directory allocates (du: blocks, a hard-linked inode once)
 * and how many names it holds (find: directories and links included).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { NIL, REFERENCE, addVersion, getChildVersion, inTurn, referenceArgs, scaled, start, stop, tcsyncArgs, treeRssMiB, type Server } from './bench-servers.js';
import { diskUse, type DiskUse } from './disk-use.js';
import { LoadClient } from './load-client.js';
import { fmt, type BenchSection } from './report.js';
import { scratchDir } from './scratch.js';
import { countSyscalls, type RequestCosts } from './syscall-count.js';

const TITLE = '(e) many clients: create N clients with 2 versions each, then poll each for its latest twice (tcsync figure vs reference figure, ratio tcsync / reference)';
/** TCSYNC_BENCH_CLIENTS, when set, is N as it is; otherwise 10,000 scaled as every process benchmark is. */
const CLIENTS = process.env.TCSYNC_BENCH_CLIENTS === undefined ? scaled(10_000) : Math.max(1, Math.round(Number(process.env.TCSYNC_BENCH_CLIENTS)) || 1);
const IN_FLIGHT = 16;
/** Creation runs in this many turns per server, the order turned each time. */
const CHUNKS = 4;
const POLL_ROUNDS = 2;
/** The largest page `clients(first:)` allows. */
const PAGE = 1000;
const ADMIN_TOKEN = 'many-clients-bench';
const MiB = 1024 * 1024;
const TCSYNC = 'tcsync';
const REFERENCE_NAME = 'reference';
const BARE = 'bare node:http';

interface Figures {
  /** Seconds spent creating, over all chunks. */
  createSeconds: number;
  pollRates: number[];
  rss: { idle: number; created: number; polled: number };
  disk: DiskUse;
  /** The latest version of each client, by index: what it polls for. */
  readonly latest: string[];
  readonly lanes: LoadClient[];
}

/** Runs `work` on every index below `count`, IN_FLIGHT at a time, one keep-alive connection each. */
async function inFlight(lanes: readonly LoadClient[], from: number, to: number, work: (lane: LoadClient, index: number) => Promise<void>): Promise<number> {
  let next = from;
  const started = performance.now();
  await Promise.all(lanes.map(async (lane) => {
    while (next < to) await work(lane, next++);
  }));
  return (performance.now() - started) / 1000;
}

/** tcsync's heap after a forced garbage collection, in bytes, read through heap-probe.cts. */
async function heapAfterGc(server: Server, file: string): Promise<number> {
  rmSync(file, { force: true });
  server.child.kill('SIGUSR2');
  for (let waited = 0; waited < 10_000; waited += 20) {
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { heapUsed: number }).heapUsed;
    await sleep(20);
  }
  throw new Error('the heap probe did not answer');
}

/** tcsync's heap after a forced GC (bytes): idle, after polling, after GraphQL's first request, after listing. */
interface Heap {
  idle: number;
  polled: number;
  graphql: number;
  listed: number;
}

/** Each server's data directory under the run's scratch directory. */
function dataDirOf(root: string, name: string): string {
  return path.join(root, name.replace(/\W+/g, '-'));
}

/** One GraphQL request with the admin token: its `data`, or an error naming what it answered. */
async function graphql<T>(url: string, query: string, variables: Record<string, unknown>, connection = new LoadClient(url)): Promise<T> {
  const answer = await connection.request('POST', '/graphql', { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN_TOKEN}` }, JSON.stringify({ query, variables }));
  const result = JSON.parse(answer.body.toString('utf8')) as { data?: T; errors?: unknown };
  if (answer.status !== 200 || result.data === undefined) throw new Error(`GraphQL answered ${answer.status}: ${JSON.stringify(result.errors)}`);
  return result.data;
}

interface Listing {
  readonly seconds: number;
  readonly listed: number;
}

/** Lists every client through GraphQL, a page of PAGE at a time, as an operator would. */
async function listThroughGraphql(url: string): Promise<Listing> {
  const query = 'query($after: UUID) { clients(first: ' + PAGE + ', after: $after) { edges { node { id latestVersionId } } pageInfo { hasNextPage endCursor } } }';
  const connection = new LoadClient(url);
  let after: string | null = null;
  let listed = 0;
  const started = performance.now();
  try {
    for (;;) {
      type Page = { clients: { edges: unknown[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
      const { clients }: Page = await graphql<Page>(url, query, { after }, connection);
      listed += clients.edges.length;
      if (!clients.pageInfo.hasNextPage) break;
      after = clients.pageInfo.endCursor;
    }
  } finally {
    await connection.close();
  }
  return { seconds: (performance.now() - started) / 1000, listed };
}

export async function bench(): Promise<BenchSection> {
  if (!existsSync(REFERENCE)) return { title: TITLE, rows: [['(e) many clients', 'skipped', `${REFERENCE} is missing`]] };
  const root = await scratchDir('many');
  const heapFile = path.join(root, 'heap.json');
  const bareScript = fileURLToPath(new URL('./bare-server.js', import.meta.url));
  const probe = fileURLToPath(new URL('./heap-probe.cjs', import.meta.url));
  // The syscalls and flushes of one request of each kind, on servers of their own under strace.
  const costs = await countSyscalls(root, [
    [TCSYNC, tcsyncArgs(['--data-dir', path.join(root, 'strace-tcsync')])],
    [REFERENCE_NAME, referenceArgs(path.join(root, 'strace-reference'))],
    [BARE, [bareScript, path.join(root, 'strace-bare'), 'files']],
  ]);

  // The bare handler gets tcsync's default threadpool, so that the floor is not held back by libuv's 4.
  const threadpool = { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' };
  const servers: Server[] = [];
  const figures = new Map<string, Figures>();
  const heap: Heap = { idle: NaN, polled: NaN, graphql: NaN, listed: NaN };
  let listing: Listing = { seconds: NaN, listed: 0 };
  const ids = Array.from({ length: CLIENTS }, () => crypto.randomUUID());
  try {
    servers.push(await start(TCSYNC, ['--expose-gc', '--require', probe, ...tcsyncArgs(['--data-dir', dataDirOf(root, TCSYNC)]), '--admin-token', ADMIN_TOKEN], { ...process.env, TCSYNC_BENCH_HEAP_FILE: heapFile }));
    servers.push(await start(REFERENCE_NAME, referenceArgs(dataDirOf(root, REFERENCE_NAME))));
    servers.push(await start(BARE, [bareScript, dataDirOf(root, BARE), 'files'], threadpool));
    await sleep(500);
    for (const s of servers) {
      figures.set(s.name, {
        createSeconds: 0, pollRates: [], rss: { idle: treeRssMiB(s), created: NaN, polled: NaN }, disk: { bytes: NaN, names: NaN },
        latest: new Array<string>(CLIENTS), lanes: Array.from({ length: IN_FLIGHT }, () => new LoadClient(s.url)),
      });
    }
    const at = (s: Server) => figures.get(s.name) as Figures;
    const tcsync = servers[0] as Server;
    heap.idle = await heapAfterGc(tcsync, heapFile);

    for (let chunk = 0; chunk < CHUNKS; chunk++) {
      const from = Math.floor((CLIENTS * chunk) / CHUNKS);
      const to = Math.floor((CLIENTS * (chunk + 1)) / CHUNKS);
      for (const s of inTurn(chunk, servers)) {
        const f = at(s);
        f.createSeconds += await inFlight(f.lanes, from, to, async (lane, i) => {
          const id = ids[i] as string;
          f.latest[i] = await addVersion(lane, id, await addVersion(lane, id, NIL));
        });
      }
    }
    for (const s of servers) at(s).rss.created = treeRssMiB(s);

    for (let round = 0; round < POLL_ROUNDS; round++) {
      for (const s of inTurn(round, servers)) {
        const f = at(s);
        const seconds = await inFlight(f.lanes, 0, CLIENTS, async (lane, i) => {
          await getChildVersion(lane, ids[i] as string, f.latest[i] as string, 404);
        });
        f.pollRates.push(CLIENTS / seconds);
      }
    }
    for (const s of servers) at(s).rss.polled = treeRssMiB(s);
    // While the servers run, as a user's disk holds them (the reference's WAL included).
    for (const s of servers) at(s).disk = diskUse(dataDirOf(root, s.name));
    heap.polled = await heapAfterGc(tcsync, heapFile);
    // GraphQL is loaded at its first request: what loading costs is told apart from what listing does.
    await graphql(tcsync.url, '{ server { version } }', {});
    heap.graphql = await heapAfterGc(tcsync, heapFile);
    listing = await listThroughGraphql(tcsync.url);
    if (listing.listed !== CLIENTS) throw new Error(`GraphQL listed ${listing.listed} clients, not ${CLIENTS}`);
    heap.listed = await heapAfterGc(tcsync, heapFile);
  } finally {
    for (const f of figures.values()) for (const lane of f.lanes) await lane.close();
    for (const s of servers) await stop(s);
  }

  return { title: TITLE, rows: rows(figures, heap, listing, costs) };
}

function rows(figures: Map<string, Figures>, heap: Heap, listing: Listing, costs: Map<string, RequestCosts>): Array<readonly [string, string, string]> {
  const t = figures.get(TCSYNC) as Figures;
  const r = figures.get(REFERENCE_NAME) as Figures;
  const b = figures.get(BARE) as Figures;
  const createRate = (f: Figures) => (2 * CLIENTS) / f.createSeconds;
  const poll = (f: Figures) => f.pollRates[POLL_ROUNDS - 1] as number;
  const goal = (met: boolean, text: string) => `${met ? 'pass' : 'MISS'}: ${text}`;
  const mib = (v: number) => `${v.toFixed(0)} MiB`;
  const rssOf = (f: Figures) => `${mib(f.rss.idle)} -> ${mib(f.rss.created)} -> ${mib(f.rss.polled)}`;
  const growth = (f: Figures) => f.rss.polled - f.rss.idle;
  const diskOf = (f: Figures) => `${(f.disk.bytes / MiB).toFixed(1)} MiB in ${f.disk.names.toLocaleString('en')} names`;
  const heapMiB = (v: number) => `${(v / MiB).toFixed(1)} MiB`;
  const costOf = (name: string, kind: keyof RequestCosts) => {
    const c = costs.get(name)?.[kind];
    return c === undefined ? 'not counted' : `${c.syscalls} syscalls, ${c.flushes} flushes, ${c.handoffs} threadpool hand-offs`;
  };
  const strace = costs.size === 0 ? ' (strace is not installed)' : '';
  return [
    ['(e) clients', CLIENTS.toLocaleString('en'), `each created with 2 versions of 1 KiB, ${IN_FLIGHT} requests in flight; set TCSYNC_BENCH_CLIENTS for fewer`],
    ['(e) create: add-version /s', `${fmt.perSec(createRate(t))} vs ${fmt.perSec(createRate(r))}`,
      `${fmt.ratio(createRate(t) / createRate(r))}; ${goal(createRate(t) >= 0.6 * createRate(r), 'goal >= 0.60x')}; tcsync = ${fmt.pct(createRate(t) / createRate(b))} of the bare handler's ${fmt.perSec(createRate(b))}`],
    ['(e) poll, second round (the figure): get-child-version of the latest, 404 /s', `${fmt.perSec(poll(t))} vs ${fmt.perSec(poll(r))}`,
      `${fmt.ratio(poll(t) / poll(r))}; ${goal(poll(t) >= 1.5 * poll(r), 'goal >= 1.50x')}; tcsync = ${fmt.pct(poll(t) / poll(b))} of the bare handler's ${fmt.perSec(poll(b))}`],
    ['(e) poll, first round /s', `${fmt.perSec(t.pollRates[0] as number)} vs ${fmt.perSec(r.pollRates[0] as number)}`,
      `${fmt.ratio((t.pollRates[0] as number) / (r.pollRates[0] as number))}; bare handler ${fmt.perSec(b.pollRates[0] as number)}`],
    ['(e) RSS of the process tree: idle -> after creating -> after polling', `${rssOf(t)} vs ${rssOf(r)}`,
      `${fmt.ratio(t.rss.polled / r.rss.polled)} after polling; ${goal(t.rss.polled <= 1.2 * r.rss.polled, 'goal <= 1.20x')}`],
    ['(e) RSS growth, idle -> after polling: tcsync vs the bare handler', `${mib(growth(t))} vs ${mib(growth(b))}`,
      `bare handler ${rssOf(b)}, the runtime's own growth under the same load; tcsync ${mib(growth(t) - growth(b))} above it; ${goal(growth(t) <= growth(b) + 16, 'goal <= 16 MiB above')}`],
    ['(e) tcsync heap after a forced GC: idle / after polling / after listing through GraphQL', `${heapMiB(heap.idle)} / ${heapMiB(heap.polled)} / ${heapMiB(heap.listed)}`,
      `${goal(heap.polled - heap.idle <= 16 * MiB && heap.listed - heap.idle <= 16 * MiB, 'goal: each within 16 MiB of idle')}; ` +
        `above idle: polling ${heapMiB(heap.polled - heap.idle)}, then GraphQL's first request (\`{ server { version } }\`: loading it) ${heapMiB(heap.graphql - heap.polled)}, then the listing ${heapMiB(heap.listed - heap.graphql)}; listing ${listing.listed.toLocaleString('en')} clients (id, latestVersionId) ${Math.ceil(CLIENTS / PAGE)} pages of ${PAGE} took ${listing.seconds.toFixed(2)} s`],
    ['(e) disk: allocated (du) in names (find)', `${diskOf(t)} vs ${diskOf(r)}`, `${fmt.ratio(t.disk.bytes / r.disk.bytes)}; bare handler ${diskOf(b)}`],
    ...(['create', 'add', 'poll'] as const).map((kind): readonly [string, string, string] => [
      `${{ create: "a new client's add-version", add: "an existing client's add-version", poll: 'a poll (get-child-version of the latest, 404)' }[kind]}, counted under strace${strace}`,
      `tcsync: ${costOf(TCSYNC, kind)}; reference: ${costOf(REFERENCE_NAME, kind)}`,
      `bare handler${kind === 'create' ? ', the files a new client costs tcsync' : ''}: ${costOf(BARE, kind)}; syscalls on files and directories (HTTP, logging and the event loop left out)`,
    ]),
  ];
}
