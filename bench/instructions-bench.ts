/**
 * What one get-child-version costs each server in instructions: the one figure of the request
 * path that this shared, noisy machine does not move (it repeats within about 1.5%, where rates
 * move 20% between minutes). Each server runs under callgrind with its threads counted apart;
 * a replica adds versions and walks them unmeasured until the JIT has settled, the counts are
 * zeroed, WALKS more are walked, and the main thread's instructions (user space only) are
 * divided by WALKS. The bare handler and the reference run alongside: instructions are counted,
 * not timed, so running them at once changes little, but not nothing: V8 scavenges the young
 * generation in tasks, whose share moved from 5,500 to 11,000 instructions a poll with the
 * machine's load. Without valgrind it says so.
 * tcsync is also counted polling: get-child-version of the latest, answered 404, which is what
 * most of a server's requests are, as each replica asks for news it mostly does not get.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NIL, REFERENCE, Replica, referenceArgs, start, stop, tcsyncArgs, type Server } from './bench-servers.js';
import { type BenchSection } from './report.js';
import { scratchDir } from './scratch.js';

const ADDS = 200;
const WARM_UP_WALKS = 4000;
const WALKS = 1000;

/** What a counted server is asked: the walk of its history, or a poll of its latest. */
type Ask = 'walk' | 'poll';

interface Counted {
  readonly name: string;
  readonly perRequest: number;
}

export async function bench(): Promise<BenchSection> {
  const title = 'Instructions per get-child-version (callgrind, main thread, user space)';
  if (!onPath('valgrind') || !onPath('callgrind_control')) {
    return { title, rows: [['instruction counts', 'skipped', 'valgrind is not installed (apt-get install valgrind)']] };
  }
  const root = await scratchDir('instructions');
  const servers: Array<[string, string[], Ask]> = [
    ['bare node:http handler', [fileURLToPath(new URL('./bare-server.js', import.meta.url)), path.join(root, 'bare')], 'walk'],
    ['tcsync, logging at info as serve does', tcsyncArgs(['--data-dir', path.join(root, 'tcsync')]), 'walk'],
    ['tcsync, logging at warn', tcsyncArgs(['--data-dir', path.join(root, 'tcsync-warn')], 'warn'), 'walk'],
    ['tcsync, a poll of the latest (404), logging at info', tcsyncArgs(['--data-dir', path.join(root, 'tcsync-poll')]), 'poll'],
  ];
  if (existsSync(REFERENCE)) servers.push(['SQLite reference server', referenceArgs(path.join(root, 'reference')), 'walk']);
  const counted = await Promise.all(servers.map(([name, args, ask], i) => count(name, args, ask, path.join(root, `callgrind-${i}.out`))));
  const of = (prefix: string) => counted.find((c) => c.name.startsWith(prefix))?.perRequest ?? NaN;
  const reference = of('SQLite');
  return {
    title,
    rows: [
      ...counted.map((c): [string, string, string] => [
        c.name,
        `${(c.perRequest / 1000).toFixed(1)}k`,
        `${(c.perRequest / of('bare')).toFixed(2)}x the bare handler${Number.isNaN(reference) ? '' : `, ${(c.perRequest / reference).toFixed(2)}x the reference`}`,
      ]),
      ...(Number.isNaN(reference) ? [['SQLite reference server', 'skipped', `${REFERENCE} is missing`] as [string, string, string]] : []),
    ],
  };
}

async function count(name: string, args: readonly string[], ask: Ask, outFile: string): Promise<Counted> {
  const under = ['valgrind', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${outFile}`];
  const server: Server = await start(name, args, process.env, under);
  const replica = new Replica(server.url);
  try {
    for (let i = 0; i < ADDS; i++) await replica.add();
    // The bare handler answers every GET alike, whatever its parent.
    const parents = [NIL, ...replica.versions.slice(0, -1)];
    const walk = async (times: number) => {
      for (let i = 0; i < times; i++) await (ask === 'poll' ? replica.poll() : replica.get(parents[i % parents.length] as string));
    };
    await walk(WARM_UP_WALKS);
    callgrindControl('-z', server);
    await walk(WALKS);
    callgrindControl('-d', server);
  } finally {
    await replica.close();
    await stop(server);
  }
  return { name, perRequest: mainThreadInstructions(outFile) / WALKS };
}

function callgrindControl(option: string, server: Server): void {
  execFileSync('callgrind_control', [option, String(server.child.pid)], { stdio: 'ignore' });
}

/** The main thread's count in the dump callgrind_control -d made (`<out>.1-01`), from its `summary:` line. */
function mainThreadInstructions(outFile: string): number {
  const dump = `${outFile}.1-01`;
  const summary = /^(?:summary|totals): (\d+)/m.exec(readFileSync(dump, 'utf8'));
  if (summary === null) throw new Error(`${dump}: no instruction count`);
  return Number(summary[1]);
}

function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
