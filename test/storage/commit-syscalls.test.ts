/**
 * A kill -9 cannot see a missing fsync: the page cache survives it. So the order of a commit's
 * system calls is checked directly, under strace: content is fsync'd before its name is
 * committed (rename/link), data and new directories are durable before the metadata that makes
 * them visible, and every directory a commit changed is fsync'd before the commit returns.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { WRITER_SCRIPT } from '../support/storage-writer.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const hasStrace = spawnSync('strace', ['-V']).status === 0;
let dir = '';
afterEach(() => removeDir(dir));

interface Call {
  /** The thread that made the call. */
  readonly tid: number;
  readonly name: string;
  readonly args: string;
  readonly ok: boolean;
}

/** Parses `strace -f -y` output into completed calls, in completion order. */
function parseTrace(text: string): Call[] {
  const pending = new Map<string, string>();
  const calls: Call[] = [];
  for (const raw of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const [, pid, rest] = m as unknown as [string, string, string];
    let line = rest;
    if (line.endsWith('<unfinished ...>')) {
      pending.set(pid, line.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) line = (pending.get(pid) ?? '') + resumed[1];
    const call = /^(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line);
    if (call) calls.push({ tid: Number(pid), name: call[1]!, args: call[2]!, ok: Number(call[3]) >= 0 });
  }
  return calls;
}

const fdPath = (args: string) => /^\d+<([^>]*)>/.exec(args)?.[1] ?? null;
const quoted = (args: string) => [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);

/**
 * On tmpfs where there is one: the calls strace sees are the same, and fsyncs that take no time
 * keep CommitPacing from rightly sending the fixture's sequential commits to the pool, as it
 * would on a disk whose commits average 4 ms or more (a busy CI machine's may).
 */
async function makeFastTempDir(): Promise<string> {
  return mkdtemp('/dev/shm/tcsync-test-').catch(() => makeTempDir());
}

it.skipIf(!hasStrace)('every commit fsyncs content before naming it and directories before returning, inline or pooled', async () => {
  dir = await makeFastTempDir();
  const dataDir = path.join(dir, 'data');
  const log = path.join(dir, 'trace.log');
  const traced = ['openat', 'write', 'writev', 'pwrite64', 'pwritev', 'fsync', 'fdatasync', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'mkdir', 'mkdirat'];
  const run = spawnSync(
    'strace',
    ['-f', '-qq', '-y', '-o', log, '-e', `trace=${traced.join(',')}`, process.execPath, WRITER_SCRIPT, 'trace', dataDir, crypto.randomUUID(), '0'],
    // libuv may route file operations through io_uring, which strace cannot see.
    { env: { ...process.env, UV_USE_IO_URING: '0' }, encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  const calls = parseTrace(await readFile(log, 'utf8'));
  // strace names the main thread by the process id, the first it traces.
  const mainThread = calls[0]!.tid;

  // Lock directories are leases, not data; a deleted client's trashed copy need not survive.
  const relevant = (p: string) => p.startsWith(dataDir) && !p.startsWith(path.join(dataDir, 'locks')) && !p.startsWith(path.join(dataDir, 'trash'));
  const dirtyFiles = new Set<string>();
  const dirtyDirs = new Set<string>();
  const problems: string[] = [];
  let commits = 0;
  let commitPoints = 0;
  const changed = (p: string) => relevant(p) && dirtyDirs.add(path.dirname(p));
  // Commits of different clients may interleave; each client's own files are what its commit point needs.
  const clientOf = (p: string) => path.relative(dataDir, p).split(path.sep)[0];
  // How each commit's version files were fsync'd: on the event loop's thread (inline) or another.
  const versionFsyncs: ('inline' | 'pooled')[][] = [[]];

  for (const { tid, name, args, ok } of calls) {
    if (!ok) continue;
    const fd = fdPath(args);
    if (name === 'write' && args.includes('"COMMITTED\\n"')) {
      commits += 1;
      versionFsyncs.push([]);
      if (dirtyDirs.size > 0) problems.push(`commit ${commits} returned before fsync of ${[...dirtyDirs].join(', ')}`);
      if (dirtyFiles.size > 0) problems.push(`commit ${commits} returned before fsync of ${[...dirtyFiles].join(', ')}`);
    } else if (['write', 'writev', 'pwrite64', 'pwritev'].includes(name) && fd && relevant(fd)) {
      dirtyFiles.add(fd);
    } else if ((name === 'fsync' || name === 'fdatasync') && fd) {
      if (fd.endsWith('.version')) versionFsyncs.at(-1)!.push(tid === mainThread ? 'inline' : 'pooled');
      dirtyFiles.delete(fd);
      dirtyDirs.delete(fd);
    } else if (name === 'openat' && args.includes('O_CREAT')) {
      const [file] = quoted(args);
      if (file) changed(file);
    } else if (name === 'mkdir' || name === 'mkdirat') {
      const [made] = quoted(args);
      if (made) changed(made);
    } else if (name.startsWith('rename') || name.startsWith('link')) {
      const [src, dst] = quoted(args);
      if (!src || !dst || !relevant(dst)) continue;
      if (dirtyFiles.has(src)) problems.push(`${name} ${src} before it was fsync'd`);
      const isCommitPoint = dst.endsWith('/client.json') || dst.endsWith('.child');
      if (isCommitPoint) {
        commitPoints += 1;
        // Everything the new state refers to is durable, except the entry being created now.
        const mine = (p: string) => clientOf(p) === clientOf(dst);
        const others = [...dirtyDirs].filter((d) => d !== path.dirname(dst) && mine(d));
        const files = [...dirtyFiles].filter(mine);
        if (others.length > 0 || files.length > 0) {
          problems.push(`commit point ${dst} while ${[...others, ...files].join(', ')} not durable`);
        }
      }
      changed(src);
      changed(dst);
    }
  }
  expect(problems).toEqual([]);
  expect(commits).toBe(10);
  expect(commitPoints).toBeGreaterThanOrEqual(9);
  // Both ways a common commit waits for the disk were checked, each where CommitPacing must
  // choose it: alone on the event loop, and beside another transaction on the threadpool. Other
  // commits (new clients, snapshots) always use the pool.
  expect(versionFsyncs).toEqual([
    ['pooled'], // a new client with its first version
    ['inline'], ['inline'], ['inline'], ['inline'], // one version at a time, alone
    ['pooled'], // a second client
    ['pooled', 'pooled'], // both clients' commits at once
    [], [], [], // two snapshots, a deletion
    [], // after the last commit
  ]);
}, 60_000);
