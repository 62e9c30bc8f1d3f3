/**
 * A kill -9 cannot see a missing fsync: the page cache survives it. So the order of a commit's
 * system calls is checked directly, under strace: content is fsync'd before its name is
 * committed (rename/link), data, new directories and renamed files are durable before the
 * metadata that makes them visible, a loose version's removal before a client.json that no
 * longer has it, a client.json before the removal of what it replaced, and every directory a
 * commit changed is fsync'd before the commit returns.
 * For every kind of commit, and for a compaction and a pruning.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { prepareCompaction, preparePruning, type PackHistory } from '../support/pack-history.js';
import { fdPath, hasStrace, parseTrace, quoted, TRACEABLE_ENV, type Call } from '../support/strace.js';
import { WRITER_SCRIPT } from '../support/storage-writer.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir = '';
afterEach(() => removeDir(dir));

/**
 * On tmpfs where there is one: the calls strace sees are the same, and fsyncs that take no time
 * keep CommitPacing from rightly sending the fixture's sequential commits to the pool, as it
 * would on a disk whose commits average 4 ms or more (a busy CI machine's may).
 */
async function makeFastTempDir(): Promise<string> {
  return mkdtemp('/dev/shm/tcsync-test-').catch(() => makeTempDir());
}

const TRACED = ['openat', 'write', 'writev', 'pwrite64', 'pwritev', 'fsync', 'fdatasync', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'unlink', 'unlinkat', 'mkdir', 'mkdirat'];

/** Runs the writer fixture under strace; the calls it made. */
async function traceWriter(args: readonly string[]): Promise<Call[]> {
  const log = path.join(dir, 'trace.log');
  const run = spawnSync('strace', ['-f', '-qq', '-y', '-o', log, '-e', `trace=${TRACED.join(',')}`, process.execPath, WRITER_SCRIPT, ...args], {
    env: TRACEABLE_ENV,
    encoding: 'utf8',
  });
  expect(run.status, run.stderr).toBe(0);
  return parseTrace(await readFile(log, 'utf8'));
}

/** What the fixture writes to stdout once a commit (or a compaction, or a pruning) returned. */
const RETURNED = /"(?:COMMITTED|compacted \d+|pruned \d+)\\n"/;

interface OrderCheck {
  readonly problems: string[];
  /** Commits (or compactions, prunings) that returned. */
  readonly commits: number;
  readonly commitPoints: number;
  /** How each commit's version files were fsync'd: on the event loop's thread (inline) or another. */
  readonly versionFsyncs: ('inline' | 'pooled')[][];
}

/** Checks the order of the calls against the rules above. */
function checkOrder(calls: readonly Call[], dataDir: string): OrderCheck {
  // strace names the main thread by the process id, the first it traces.
  const mainThread = calls[0]!.tid;
  // Lock directories are leases, not data; a deleted client's trashed copy need not survive. A
  // new client built under trash/ (trash/<client>.new-<uuid>) is data: its rename commits it.
  const trash = path.join(dataDir, 'trash') + path.sep;
  const isStaged = (p: string) => p.startsWith(trash) && /^[0-9a-f-]{36}\.new-/.test(p.slice(trash.length));
  const relevant = (p: string) => p.startsWith(dataDir) && !p.startsWith(path.join(dataDir, 'locks')) && (!`${p}${path.sep}`.startsWith(trash) || isStaged(p));
  const dirtyFiles = new Set<string>();
  const dirtyDirs = new Set<string>();
  // Files renamed into place (a pack), loose versions' names removed, and client.json renamed,
  // until their directory's fsync.
  const renamed = new Set<string>();
  const removed = new Set<string>();
  const metas = new Set<string>();
  const problems: string[] = [];
  let commits = 0;
  let commitPoints = 0;
  const changed = (p: string) => relevant(path.dirname(p)) && dirtyDirs.add(path.dirname(p));
  // Commits of different clients may interleave; each client's own files are what its commit point needs.
  const clientOf = (p: string) => (isStaged(p) ? p.slice(trash.length, trash.length + 36) : path.relative(dataDir, p).split(path.sep)[0]);
  const versionFsyncs: ('inline' | 'pooled')[][] = [[]];

  for (const { tid, name, args, ok } of calls) {
    if (!ok) continue;
    const fd = fdPath(args);
    if (name === 'write' && RETURNED.test(args)) {
      commits += 1;
      versionFsyncs.push([]);
      if (dirtyDirs.size > 0) problems.push(`commit ${commits} returned before fsync of ${[...dirtyDirs].join(', ')}`);
      if (dirtyFiles.size > 0) problems.push(`commit ${commits} returned before fsync of ${[...dirtyFiles].join(', ')}`);
      // Removals after its commit point are the returned operation's own: a compaction's sweep of
      // loose copies need not be durable (a crash that undoes it leaves copies to sweep again).
      removed.clear();
    } else if (['write', 'writev', 'pwrite64', 'pwritev'].includes(name) && fd && relevant(fd)) {
      dirtyFiles.add(fd);
    } else if ((name === 'fsync' || name === 'fdatasync') && fd) {
      if (fd.endsWith('.version')) versionFsyncs.at(-1)!.push(tid === mainThread ? 'inline' : 'pooled');
      dirtyFiles.delete(fd);
      dirtyDirs.delete(fd);
      for (const set of [renamed, removed, metas]) for (const p of set) if (path.dirname(p) === fd) set.delete(p);
    } else if (name === 'openat' && args.includes('O_CREAT')) {
      const [file] = quoted(args);
      if (file) changed(file);
    } else if (name === 'mkdir' || name === 'mkdirat') {
      const [made] = quoted(args);
      if (made) changed(made);
    } else if (name.startsWith('unlink')) {
      const [gone] = quoted(args);
      if (!gone || !relevant(gone) || !/\.(version|child|pack)$/.test(gone)) continue;
      // What a commit replaced goes only once the commit is durable: else a crash may bring back
      // the old client.json without what it names.
      const uncommitted = [...metas].filter((meta) => clientOf(meta) === clientOf(gone));
      if (uncommitted.length > 0) problems.push(`${name} ${gone} while ${uncommitted.join(', ')} is not durable`);
      if (!gone.endsWith('.pack')) removed.add(gone);
    } else if (name.startsWith('rename') || name.startsWith('link')) {
      const [src, dst] = quoted(args);
      if (!src || !dst || !relevant(dst)) continue;
      if (dirtyFiles.has(src)) problems.push(`${name} ${src} before it was fsync'd`);
      const isCommitPoint = !isStaged(dst) && (isStaged(src) || dst.endsWith('/client.json') || dst.endsWith('.child'));
      if (isCommitPoint) {
        commitPoints += 1;
        // Everything the new state refers to is durable, except the entry being created now:
        // in other directories, and files renamed into place beside it.
        const mine = (p: string) => clientOf(p) === clientOf(dst);
        const others = [...dirtyDirs].filter((d) => d !== path.dirname(dst) && mine(d));
        const files = [...dirtyFiles, ...renamed].filter(mine);
        if (others.length > 0 || files.length > 0) {
          problems.push(`commit point ${dst} while ${[...others, ...files].join(', ')} not durable`);
        }
        // A client.json that has no longer a version comes after the version's loose names are gone for good.
        const stillThere = dst.endsWith('/client.json') ? [...removed].filter(mine) : [];
        if (stillThere.length > 0) problems.push(`commit point ${dst} while the removal of ${stillThere.join(', ')} is not durable`);
        if (dst.endsWith('/client.json')) metas.add(dst);
      } else {
        renamed.add(dst);
      }
      changed(src);
      changed(dst);
    }
  }
  return { problems, commits, commitPoints, versionFsyncs };
}

it.skipIf(!hasStrace)('every commit fsyncs content before naming it and directories before returning, inline or pooled', async () => {
  dir = await makeFastTempDir();
  const dataDir = path.join(dir, 'data');
  const { problems, commits, commitPoints, versionFsyncs } = checkOrder(await traceWriter(['trace', dataDir, crypto.randomUUID(), '0']), dataDir);
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

it.skipIf(!hasStrace)('a compaction and a pruning fsync each pack before its rename and the rename before client.json names it, remove loose copies durably before a pruning\'s commit, and return durable', async () => {
  dir = await makeFastTempDir();
  const runs: [string, (dataDir: string) => Promise<PackHistory>][] = [['compact', prepareCompaction], ['prune', preparePruning]];
  for (const [mode, prepare] of runs) {
    const dataDir = path.join(dir, mode);
    const history = await prepare(dataDir);
    const calls = await traceWriter([mode, dataDir, history.clientId, mode === 'prune' ? String(history.cut.getTime()) : '0']);
    const { problems, commits, commitPoints } = checkOrder(calls, dataDir);
    expect(problems, mode).toEqual([]);
    expect(commits, mode).toBe(1);
    expect(commitPoints, mode).toBe(1);
    // What the rules were checked on: a pack renamed into place, and for the pruning loose
    // copies removed before its commit.
    const renames = calls.filter((call) => call.ok && call.name.startsWith('rename')).map((call) => quoted(call.args)[1]!);
    expect(renames.filter((dst) => /\/pack-[^/]*\.pack$/.test(dst)), mode).toHaveLength(1);
    if (mode === 'prune') {
      const commit = calls.findIndex((call) => call.ok && call.name.startsWith('rename') && quoted(call.args)[1]!.endsWith('/client.json'));
      const removedBefore = calls.slice(0, commit).filter((call) => call.ok && call.name.startsWith('unlink') && quoted(call.args)[0]!.endsWith('.version'));
      expect(removedBefore).toHaveLength(2);
    }
  }
}, 60_000);
