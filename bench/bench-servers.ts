/**
 * Servers run as processes of their own for the benchmarks that compare them (compare-bench,
 * scale-out-bench), and the replica that drives one: what `tcsync serve` meets from a
 * TaskChampion client, a client id with one keep-alive connection adding on top of its latest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { LoadClient, type Answer } from './load-client.js';

export const REPO = fileURLToPath(new URL('..', import.meta.url));
export const NIL = '00000000-0000-0000-0000-000000000000';
const HISTORY_SEGMENT = 'application/vnd.taskchampion.history-segment';
const SEGMENT = Buffer.alloc(1024, 42);

/**
 * TCSYNC_BENCH_SCALE (default 1) multiplies the request counts of the process benchmarks, for a
 * quick look on a shared machine (0.1: a tenth); the figures in docs/performance.md are from scale 1.
 */
const SCALE = Number(process.env.TCSYNC_BENCH_SCALE ?? 1);

export function scaled(count: number): number {
  return Math.max(1, Math.round(count * (Number.isFinite(SCALE) && SCALE > 0 ? SCALE : 1)));
}

export interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly url: string;
}

/**
 * Spawns `node ARGS` in the repository and waits for its `listening on URL` line; with `under`,
 * node runs under that command (`valgrind --tool=callgrind ...`).
 */
export function start(name: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, under: readonly string[] = []): Promise<Server> {
  const [command, ...commandArgs] = [...under, process.execPath, ...args] as [string, ...string[]];
  const child = spawn(command, commandArgs, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before listening`)));
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve({ name, child, url: match[1] as string });
    });
  });
}

/** The SQLite reference server the comparisons run against, where the harness keeps it. */
export const REFERENCE = path.resolve(REPO, '../shared/bench/sqlite-reference-server.mjs');

/** Arguments of `node` for the reference server on `dataDir`. */
export function referenceArgs(dataDir: string): string[] {
  return [REFERENCE, 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0'];
}

/**
 * Arguments of `node` for `tcsync serve` as installed (dist/bin.cjs, with the node options its
 * shebang line gives), logging every request at `logLevel`.
 */
export function tcsyncArgs(storage: readonly ['--data-dir' | '--connection', string], logLevel = 'info'): string[] {
  const shebang = readFileSync('dist/bin.cjs', 'utf8').split('\n', 1)[0] ?? '';
  const nodeOptions = shebang.split(/\s+/).slice(shebang.includes(' -S ') ? 3 : 2);
  return [...nodeOptions, 'dist/bin.cjs', 'serve', ...storage, '--listen', '127.0.0.1:0', '--log-level', logLevel];
}

/** `tcsync serve` as installed, logging every request at info as serve does. */
export function startTcsync(name: string, storage: readonly ['--data-dir' | '--connection', string]): Promise<Server> {
  return start(name, tcsyncArgs(storage));
}

export async function stop(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

export function rssMiB(server: Server): number {
  return pidRssMiB(server.child.pid as number);
}

function pidRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** The RSS of the server's process and every process under it (a server that forks counts whole). */
export function treeRssMiB(server: Server): number {
  const tree = [server.child.pid as number];
  for (let i = 0; i < tree.length; i++) tree.push(...childPids(tree[i] as number));
  return tree.reduce((sum, pid) => sum + (readFileOrEmpty(`/proc/${pid}/status`) === '' ? 0 : pidRssMiB(pid)), 0);
}

/** The processes `pid` started that are still running. */
export function childPids(pid: number): number[] {
  return readdirOrEmpty(`/proc/${pid}/task`).flatMap((task) => {
    const children = readFileOrEmpty(`/proc/${pid}/task/${task}/children`).trim();
    return children === '' ? [] : children.split(' ').map(Number);
  });
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readFileOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** add-version of a 1 KiB segment for `clientId` on top of `parent`, over `connection`: the new version's id. */
export async function addVersion(connection: LoadClient, clientId: string, parent: string): Promise<string> {
  const answer = await connection.request('POST', `/v1/client/add-version/${parent}`, {
    'Content-Type': HISTORY_SEGMENT,
    'X-Client-Id': clientId,
  }, SEGMENT);
  if (answer.status !== 200) throw new Error(`add-version answered ${answer.status}`);
  return answer.headers['x-version-id'] as string;
}

/** get-child-version of `parent` for `clientId`, over `connection`; throws unless it answers `expected`. */
export async function getChildVersion(connection: LoadClient, clientId: string, parent: string, expected = 200): Promise<Answer> {
  const answer = await connection.request('GET', `/v1/client/get-child-version/${parent}`, { 'X-Client-Id': clientId });
  if (answer.status !== expected) throw new Error(`get-child-version answered ${answer.status}, not ${expected}`);
  return answer;
}

/** One replica: its own client id and keep-alive connection, adding on top of its latest. */
export class Replica {
  readonly id = crypto.randomUUID();
  readonly versions: string[] = [];
  #connection: LoadClient;

  constructor(url: string) {
    this.#connection = new LoadClient(url);
  }

  async add(): Promise<number> {
    const started = performance.now();
    this.versions.push(await addVersion(this.#connection, this.id, this.versions.at(-1) ?? NIL));
    return performance.now() - started;
  }

  async get(parent: string): Promise<number> {
    const started = performance.now();
    await getChildVersion(this.#connection, this.id, parent);
    return performance.now() - started;
  }

  /** get-child-version of the latest: a replica's poll when nothing is new (404). */
  async poll(): Promise<number> {
    const started = performance.now();
    await getChildVersion(this.#connection, this.id, this.versions.at(-1) ?? NIL, 404);
    return performance.now() - started;
  }

  /** The same client and history, on a server started again at `url` (a restart picks a new port). */
  async reconnect(url: string): Promise<void> {
    await this.#connection.close();
    this.#connection = new LoadClient(url);
  }

  close(): Promise<void> {
    return this.#connection.close();
  }
}

/**
 * Scenario (c)'s walk: get-child-version of every version's parent in `replica`'s history in
 * turn, from nil, one request at a time, as a replica catching up reads it: the rate per second
 * and each request's latency. With `from` and `to`, only the children of versions from..to-1
 * (version -1 being nil), so that a long walk can be taken in turns with other servers'.
 */
export function walkHistory(replica: Replica, from = 0, to = replica.versions.length): Promise<{ rate: number; latencies: number[] }> {
  const parents = [NIL, ...replica.versions.slice(0, -1)];
  let i = from;
  return repeat(to - from, () => replica.get(parents[i++] as string));
}

/** Runs `step` `times` in sequence: its rate per second and each step's latency. */
export async function repeat(times: number, step: () => Promise<number>): Promise<{ rate: number; latencies: number[] }> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < times; i++) latencies.push(await step());
  return { rate: times / ((performance.now() - started) / 1000), latencies };
}

/** Each replica adds `each` versions in sequence, all replicas at once: commits per second, each add's latency. */
export async function addInParallel(replicas: readonly Replica[], each: number): Promise<{ rate: number; latencies: number[] }> {
  const started = performance.now();
  const latencies = await Promise.all(replicas.map(async (replica) => {
    const own: number[] = [];
    for (let i = 0; i < each; i++) own.push(await replica.add());
    return own;
  }));
  return { rate: (replicas.length * each) / ((performance.now() - started) / 1000), latencies: latencies.flat() };
}

/** `list` in round `round`'s order: reversed every other round, so that none always meets the machine warmer. */
export function inTurn<T>(round: number, list: readonly T[]): readonly T[] {
  return round % 2 === 0 ? list : [...list].reverse();
}
