/**
 * Reads without the lock while another process commits (issue 20): one child process keeps
 * adding versions and replacing snapshots of client A, and deleting client B, lifting its
 * tombstone and creating it again with a new history; this process keeps reading both, as the
 * sync protocol does. Every answer is checked against the writer's log of what it committed,
 * with the times each change began and returned: it must be what some committed state held
 * during the read, of the history current then, with the bytes of that version. And the same
 * while the writer compacts both clients often and prunes them (issue 21): a version is served
 * with its bytes until a pruning of it begins, and never once one has returned.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { isTcsyncError } from '../../src/errors.js';
import { NIL_VERSION_ID, parseClientId, parseVersionId, type ClientId, type VersionId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn, type Version } from '../../src/storage/storage.js';
import { SyncService } from '../../src/sync/sync-service.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const WRITER = fileURLToPath(new URL('../fixtures/history-writer.mjs', import.meta.url));
/** How long the writer writes; the readers read until it is done. */
const WRITE_MS = 3000;

let dir = '';
afterEach(() => removeDir(dir));

type Name = 'A' | 'B';
interface Event {
  readonly ev: 'create' | 'version' | 'snapshot' | 'delete' | 'prune' | 'compaction-error' | 'done';
  readonly c: Name;
  readonly g: number;
  readonly v?: string;
  readonly p?: string;
  readonly code?: string;
  readonly t0: string;
  readonly t1: string;
}
/** One read: what was asked, when (monotonic ns, as the writer's times), and what came. */
interface Read {
  readonly op: 'child' | 'version' | 'snapshot';
  readonly c: Name;
  readonly asked: string | null;
  readonly t0: bigint;
  readonly t1: bigint;
  readonly outcome:
    | { kind: 'version'; version: Version }
    | { kind: 'snapshot'; versionId: string; data: Uint8Array }
    | { kind: 'none' }
    | { kind: 'not-found' }
    | { kind: 'gone' }
    | { kind: 'error'; code: string };
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).split('|');

/** What the writer logged, indexed for the checks. */
class History {
  readonly versions = new Map<string, Event>();
  readonly children = new Map<string, Event>();
  readonly snapshots: Event[] = [];
  readonly created = new Map<string, Event>();
  readonly deleted = new Map<string, Event>();
  readonly prunes: Event[] = [];
  /** Each version's place in its history, from 0. */
  readonly position = new Map<string, number>();

  constructor(events: readonly Event[]) {
    const lengths = new Map<string, number>();
    for (const e of events) {
      if (e.ev === 'version') {
        this.versions.set(e.v!, e);
        this.children.set(`${e.c}|${e.g}|${e.p}`, e);
        const history = `${e.c}|${e.g}`;
        this.position.set(e.v!, lengths.get(history) ?? 0);
        lengths.set(history, (lengths.get(history) ?? 0) + 1);
      } else if (e.ev === 'prune') this.prunes.push(e);
      else if (e.ev === 'snapshot') this.snapshots.push(e);
      else if (e.ev === 'create') this.created.set(`${e.c}|${e.g}`, e);
      else if (e.ev === 'delete') this.deleted.set(`${e.c}|${e.g}`, e);
    }
  }

  /** Generations of `c` that existed from before `t0` until after `t1`: a read then must see them. */
  aliveThroughout(c: Name, t0: bigint, t1: bigint): number[] {
    const gens: number[] = [];
    for (const [key, e] of this.created) {
      if (!key.startsWith(`${c}|`) || BigInt(e.t1) >= t0) continue;
      const gone = this.deleted.get(key);
      if (gone === undefined || BigInt(gone.t0) > t1) gens.push(e.g);
    }
    return gens;
  }

  /** The prunings of the committed version `v` (it is their snapshot's version or an ancestor), as `when` says. */
  prunedBy(v: string, when: (pruning: Event) => boolean): boolean {
    const { c, g } = this.versions.get(v)!;
    const at = this.position.get(v)!;
    return this.prunes.some((e) => e.c === c && e.g === g && this.position.get(e.v!)! >= at && when(e));
  }

  /** Whether generation `g` of `c` may have been the current one at some instant of [t0, t1]. */
  maybeCurrent(c: Name, g: number, t0: bigint, t1: bigint): boolean {
    const made = this.created.get(`${c}|${g}`);
    const gone = this.deleted.get(`${c}|${g}`);
    return made !== undefined && BigInt(made.t0) <= t1 && (gone === undefined || BigInt(gone.t1) >= t0);
  }
}

/** What is wrong with `read` by `history`, or null. */
function problemOf(history: History, read: Read): string | null {
  const { c, t0, t1, outcome } = read;
  const alive = history.aliveThroughout(c, t0, t1);
  const committedBefore = (e: Event | undefined) => e !== undefined && BigInt(e.t1) < t0;
  switch (outcome.kind) {
    case 'error':
      if (outcome.code === 'NO_SUCH_CLIENT' && alive.length === 0) return null;
      return `error ${outcome.code}`;
    case 'none':
      return alive.length === 0 ? null : `no client while generation ${alive} existed throughout`;
    case 'version': {
      const { version } = outcome;
      const [name, g, id] = decode(version.historySegment);
      const logged = history.versions.get(version.versionId);
      if (name !== c || id !== version.versionId) return `bytes of ${name} ${id} answered as ${c} ${version.versionId}`;
      if (logged === undefined || logged.c !== c || String(logged.g) !== g) return `${version.versionId} was never committed to ${c} generation ${g}`;
      if (logged.p !== version.parentVersionId) return `${version.versionId} answered with parent ${version.parentVersionId}, committed on ${logged.p}`;
      if (read.op === 'child' && version.parentVersionId !== read.asked) return `asked for the child of ${read.asked}, answered one of ${version.parentVersionId}`;
      if (read.op === 'version' && version.versionId !== read.asked) return `asked for ${read.asked}, answered ${version.versionId}`;
      if (BigInt(logged.t0) > t1) return `${version.versionId} answered before its commit began`;
      if (!history.maybeCurrent(c, logged.g, t0, t1)) return `${version.versionId} of generation ${g}, not current during the read`;
      if (history.prunedBy(version.versionId, (e) => BigInt(e.t1) < t0)) return `${version.versionId} answered after its pruning returned`;
      return null;
    }
    case 'snapshot': {
      const [tag, name, g, id] = decode(outcome.data);
      if (tag !== 'snap' || name !== c || id !== outcome.versionId) return `snapshot bytes of ${name} ${id} answered as ${c}'s of ${outcome.versionId}`;
      const mine = history.snapshots.filter((e) => e.c === c && String(e.g) === g);
      const at = mine.findIndex((e) => e.v === id);
      if (at === -1) return `snapshot of ${id} was never committed to ${c} generation ${g}`;
      if (BigInt(mine[at]!.t0) > t1) return `snapshot of ${id} answered before its commit began`;
      if (committedBefore(mine[at + 1])) return `snapshot of ${id} answered after the next one was acknowledged`;
      if (!history.maybeCurrent(c, Number(g), t0, t1)) return `snapshot of generation ${g}, not current during the read`;
      return null;
    }
    case 'not-found':
    case 'gone': {
      if (read.op === 'snapshot') {
        const missed = history.snapshots.find((e) => e.c === c && alive.includes(e.g) && committedBefore(e));
        return missed === undefined ? null : `no snapshot, while the one of ${missed.v} was acknowledged before`;
      }
      // Gone once a pruning of it began.
      const prunedDuring = (v: string) => history.prunedBy(v, (e) => BigInt(e.t0) <= t1);
      if (read.op === 'version') {
        const logged = history.versions.get(read.asked!);
        if (!committedBefore(logged) || !alive.includes(logged!.g)) return null;
        return prunedDuring(read.asked!) ? null : `${read.asked} acknowledged before, read as absent`;
      }
      const parent = read.asked === NIL_VERSION_ID ? null : history.versions.get(read.asked!);
      const gens = parent == null ? alive : alive.filter((g) => g === parent.g);
      for (const g of gens) {
        const child = history.children.get(`${c}|${g}|${read.asked}`);
        if (committedBefore(child) && !prunedDuring(child!.v!)) return `${outcome.kind} for the child of ${read.asked}, while ${child!.v} was acknowledged before`;
      }
      return null;
    }
  }
}

/** What a race logged and read, and the wrong answers among the reads. */
interface Race {
  readonly history: History;
  readonly events: readonly Event[];
  readonly reads: readonly Read[];
  readonly problems: readonly string[];
  /** Whether a reader saw client A's client.json list packs. */
  readonly sawPacks: boolean;
}

/** How the readers of a race read. */
interface Reading {
  /** A child is asked of one of the last `childWindow` versions acknowledged to its client (or nil)... */
  readonly childWindow: number;
  /** ...and versions, several in one transaction, among the last `versionWindow`... */
  readonly versionWindow: number;
  /** ...`pauseMs()` after the transaction loaded the client. */
  readonly pauseMs: () => number;
}

/** Runs the writer with `writerArgs` after its usual ones while two readers read. */
async function race(writerArgs: readonly string[], reading: Reading): Promise<Race> {
  dir = await makeTempDir();
  const ids: Record<Name, ClientId> = { A: parseClientId(crypto.randomUUID()), B: parseClientId(crypto.randomUUID()) };
  const writer = spawn(process.execPath, [WRITER, dir, ids.A, ids.B, String(WRITE_MS), ...writerArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Event[] = [];
  let stderr = '';
  let pending = '';
  writer.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  writer.stdout.setEncoding('utf8').on('data', (s: string) => {
    const lines = (pending + s).split('\n');
    pending = lines.pop()!;
    for (const line of lines) events.push(JSON.parse(line) as Event);
  });
  const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve));
  let done = false;
  void exited.then(() => (done = true));

  const storage = await FileStorage.open(dir);
  const sync = new SyncService(storage, { createClients: false, snapshotVersions: 100, snapshotDays: 14 });
  const reads: Read[] = [];
  const now = () => process.hrtime.bigint();
  const codeOf = (err: unknown) => (isTcsyncError(err) ? err.code : String(err));
  async function read(op: Read['op'], c: Name, asked: string | null, work: () => Promise<Read['outcome']>): Promise<void> {
    const t0 = now();
    const outcome = await work().catch((err: unknown) => ({ kind: 'error' as const, code: codeOf(err) }));
    reads.push({ op, c, asked, t0, t1: now(), outcome });
  }
  /** A version the writer acknowledged to `c` among its last `window`, mostly behind its latest; or nil. */
  function recent(c: Name, window: number): VersionId {
    const mine = events.filter((e) => e.ev === 'version' && e.c === c).slice(-window);
    const pick = mine[Math.floor(Math.random() * (mine.length + 1))];
    return pick === undefined ? NIL_VERSION_ID : parseVersionId(pick.v!);
  }

  let sawPacks = false;
  async function reader(): Promise<void> {
    while (!done) {
      // Reads answered from memory take no I/O: give the writer's output a turn.
      await setImmediate();
      sawPacks ||= (await readFile(path.join(dir, ids.A, 'client.json'), 'utf8').catch(() => '')).includes('"packs"');
      for (const c of ['A', 'B'] as const) {
        const parent = recent(c, reading.childWindow);
        await read('child', c, parent, async () => {
          const answer = await sync.getChildVersion(ids[c], parent);
          return answer.kind === 'ok' ? { kind: 'version', version: answer.version } : answer;
        });
        await read('snapshot', c, null, async () => {
          const snapshot = await sync.getSnapshot(ids[c]);
          return snapshot === null ? { kind: 'not-found' } : { kind: 'snapshot', ...snapshot };
        });
        // As getSnapshot does, with a pause after the load, in which the writer may replace it.
        await read('snapshot', c, null, () =>
          withTxn(storage, ids[c], async (txn): Promise<Read['outcome']> => {
            const client = await txn.getClient();
            if (client === null) return { kind: 'error', code: 'NO_SUCH_CLIENT' };
            await sleep(1);
            const versionId = client.snapshot?.versionId;
            const data = versionId === undefined ? null : await txn.getSnapshotData(versionId);
            return data === null ? { kind: 'not-found' } : { kind: 'snapshot', versionId: versionId!, data };
          }),
        );
        // Several versions in one transaction, after a pause: read well after the load, while
        // the writer commits.
        const wanted = [1, 2, 3, 4].map(() => recent(c, reading.versionWindow)).filter((v) => v !== NIL_VERSION_ID);
        const t0 = now();
        const answers = await withTxn(storage, ids[c], async (txn) => {
          if ((await txn.getClient()) === null) return wanted.map((): Read['outcome'] => ({ kind: 'none' }));
          await sleep(reading.pauseMs());
          const found: Read['outcome'][] = [];
          for (const id of wanted) {
            const version = await txn.getVersion(id);
            found.push(version === null ? { kind: 'not-found' } : { kind: 'version', version });
          }
          return found;
        }).catch((err: unknown) => wanted.map((): Read['outcome'] => ({ kind: 'error', code: codeOf(err) })));
        const t1 = now();
        answers.forEach((outcome, i) => reads.push({ op: 'version', c, asked: wanted[i]!, t0, t1, outcome }));
      }
    }
  }
  await Promise.all([reader(), reader()]);
  await storage.close();

  expect(await exited, stderr).toBe(0);
  const history = new History(events);
  const problems = reads.flatMap((r) => {
    const problem = problemOf(history, r);
    return problem === null ? [] : [`${r.op} ${r.c} ${r.asked ?? ''}: ${problem}`];
  });
  return { history, events, reads, problems, sawPacks };
}

it('readers without the lock see only committed state of the current history while another process writes', async () => {
  const { history, reads, problems } = await race([], { childWindow: 8, versionWindow: 8, pauseMs: () => 1 });
  expect(problems.slice(0, 10), `${problems.length} wrong answers of ${reads.length}`).toEqual([]);
  // The race was run: both clients moved on, B went through new histories, reads were answered.
  expect(history.created.size).toBeGreaterThan(5);
  expect(reads.filter((r) => r.outcome.kind === 'version').length).toBeGreaterThan(100);
  expect(reads.filter((r) => r.outcome.kind === 'snapshot').length).toBeGreaterThan(50);
}, 60_000);

it('readers without the lock see every committed version until a pruning of it, while another process compacts and prunes', async () => {
  // Compacted after every 4 versions, so that most reads find packs, merged and replaced often;
  // A pruned every 5 steps, B after its 5th version. Children are asked of versions pruned or
  // not; versions among the newest, which compactions move out of loose files. Reads wait up to
  // 10 ms after their load, so that the files they saw are often removed under their view.
  const { history, events, reads, problems, sawPacks } = await race(['4', '5'], { childWindow: 24, versionWindow: 6, pauseMs: () => Math.random() * 10 });
  expect(problems.slice(0, 10), `${problems.length} wrong answers of ${reads.length}`).toEqual([]);
  expect(events.filter((e) => e.ev === 'compaction-error' && e.c === 'A'), 'compactions of A that failed').toEqual([]);
  // The race was run: A was compacted and pruned, and some reads found its pruned versions gone
  // (only a pruning makes a version of A gone).
  expect(sawPacks).toBe(true);
  expect(history.prunes.filter((e) => e.c === 'A').length).toBeGreaterThanOrEqual(2);
  expect(reads.filter((r) => r.outcome.kind === 'version').length).toBeGreaterThan(100);
  expect(reads.filter((r) => r.c === 'A' && r.op === 'child' && r.outcome.kind === 'gone').length).toBeGreaterThan(0);
  expect(reads.filter((r) => r.c === 'A' && r.op === 'version' && r.outcome.kind === 'not-found').length).toBeGreaterThan(0);
}, 60_000);
