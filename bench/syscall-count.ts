/**
 * What one request costs a server in system calls, counted under strace: a new client's first
 * add-version, an existing client's add-version and a poll (get-child-version of the latest, a
 * 404). Each server runs under `strace -f -y` of its own; a few requests of each kind are made
 * first (so that lazy loading and first-time checks are not counted), then a few of each (the
 * median of each count is the figure), one at a time with a pause after each, so that what a request leaves for after its answer (releasing a
 * lock) is done before the next one arrives. The trace is cut where each request's first bytes
 * are read from its socket. Counted: syscalls on files and directories (by name, or on a
 * descriptor strace shows as a path, /dev left out), so HTTP, logging and the event loop's
 * polling are not; flushes (fsync, fdatasync); and threadpool hand-offs (writes to the eventfd
 * by which a worker thread wakes the event loop).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NIL, addVersion, childPids, getChildVersion, start, type Server } from './bench-servers.js';
import { LoadClient } from './load-client.js';
import { median } from './report.js';

export interface Cost {
  readonly syscalls: number;
  readonly flushes: number;
  readonly handoffs: number;
}

export interface RequestCosts {
  readonly create: Cost;
  readonly add: Cost;
  readonly poll: Cost;
}

/** Unmeasured clients, each created, added to and polled, before the measured requests. */
const WARM_UP_CLIENTS = 3;
/** Measured clients, each created, added to and polled: each figure is the median of theirs. */
const MEASURED_CLIENTS = 3;
/** The pause after each request, for the work it leaves after its answer. */
const PAUSE_MS = 200;

/** Each server's costs, by name; an empty map when strace is not installed. */
export async function countSyscalls(root: string, servers: ReadonlyArray<readonly [string, readonly string[]]>): Promise<Map<string, RequestCosts>> {
  const costs = new Map<string, RequestCosts>();
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    return costs;
  }
  for (const [name, args] of servers) {
    const trace = path.join(root, `strace-${name.replace(/\W+/g, '-')}.txt`);
    const server = await start(name, args, process.env, ['strace', '-f', '-y', '-s', '64', '-e', 'trace=%file,%desc,fsync,fdatasync', '-o', trace]);
    const connection = new LoadClient(server.url);
    try {
      const oneClient = async () => {
        const id = crypto.randomUUID();
        const first = await addVersion(connection, id, NIL);
        await sleep(PAUSE_MS);
        const second = await addVersion(connection, id, first);
        await sleep(PAUSE_MS);
        await getChildVersion(connection, id, second, 404);
        await sleep(PAUSE_MS);
      };
      for (let i = 0; i < WARM_UP_CLIENTS + MEASURED_CLIENTS; i++) await oneClient();
      // A last request bounds the poll's share of the trace.
      await getChildVersion(connection, crypto.randomUUID(), NIL, 404).catch(() => undefined);
      await sleep(PAUSE_MS);
    } finally {
      await connection.close();
      await stopTraced(server);
    }
    const requests = splitByRequest(readFileSync(trace, 'utf8'));
    const expected = 3 * (WARM_UP_CLIENTS + MEASURED_CLIENTS) + 1;
    if (requests.length !== expected) throw new Error(`${trace}: ${requests.length} requests found, not ${expected}`);
    const measured = requests.slice(3 * WARM_UP_CLIENTS, -1).map(costOf);
    // Requests came as create, add, poll per client.
    const ofKind = (k: number) => medianCost(measured.filter((_, i) => i % 3 === k));
    costs.set(name, { create: ofKind(0), add: ofKind(1), poll: ofKind(2) });
  }
  return costs;
}

/**
 * Stops a server started under strace: strace blocks fatal signals when it writes to a file
 * (`-o FILE`), so the signal goes to the server it traces, and strace exits after it.
 */
async function stopTraced(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  for (const pid of childPids(server.child.pid as number)) process.kill(pid, 'SIGTERM');
  await exited;
}

/** A request's first read from its socket, as `strace -y -s 64` shows it (whole, or resumed after another thread's line). */
const REQUEST_START = /^\d+\s+(read\(\d+<socket:[^>]*>, |<\.\.\. read resumed>)"(GET|POST) /;

/** The trace's lines from each request's first read to the next one's; what comes before the first is dropped. */
function splitByRequest(trace: string): string[][] {
  const requests: string[][] = [];
  for (const line of trace.split('\n')) {
    if (REQUEST_START.test(line)) requests.push([]);
    else requests.at(-1)?.push(line);
  }
  return requests;
}

/** Each count's median over `costs`: a stray call (a timer's, a lazy load's) in one request does not count. */
function medianCost(costs: readonly Cost[]): Cost {
  return {
    syscalls: median(costs.map((c) => c.syscalls)),
    flushes: median(costs.map((c) => c.flushes)),
    handoffs: median(costs.map((c) => c.handoffs)),
  };
}

function costOf(lines: readonly string[]): Cost {
  let syscalls = 0;
  let flushes = 0;
  let handoffs = 0;
  for (const line of lines) {
    // `PID name(args` starts a call; `PID <... name resumed>` finishes one already counted.
    const call = /^\d+\s+([a-z0-9_]+)\((.*)$/.exec(line);
    if (call === null) continue;
    const [, name, args] = call as unknown as [string, string, string];
    const fd = /^(-?\d+)(?:<([^>]*)>)?/.exec(args);
    if (fd !== null && !args.startsWith('AT_FDCWD')) {
      // A call on a descriptor: counted when strace names a file or directory for it.
      const target = fd[2] ?? '';
      if (target.includes('eventfd') && name === 'write') handoffs += 1;
      if (!target.startsWith('/') || target.startsWith('/dev/')) continue;
    } else if (name.startsWith('epoll') || !/"\//.test(args)) {
      continue;
    }
    syscalls += 1;
    if (name === 'fsync' || name === 'fdatasync') flushes += 1;
  }
  return { syscalls, flushes, handoffs };
}
