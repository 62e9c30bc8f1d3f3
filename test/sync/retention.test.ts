/**
 * The retention runner (serve --prune-days) in-process over the in-memory storage: a snapshot
 * accepted by SyncService gets its client pruned soon, sweeps prune every client whose versions
 * aged past the cut, one client at a time; faults are logged, never thrown; close() stops it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
import { InMemoryStorage } from '../../src/storage/memory-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { RetentionRunner, type RetentionLog, type RetentionOptions } from '../../src/sync/retention.js';
import { SyncService } from '../../src/sync/sync-service.js';
import { TcsyncError } from '../../src/errors.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const newClientId = (): ClientId => parseClientId(crypto.randomUUID());

/** Records what the runner logs. */
function recordingLog(): RetentionLog & { readonly lines: Array<{ level: string; message: string; fields: object }> } {
  const lines: Array<{ level: string; message: string; fields: object }> = [];
  const at = (level: string) => (fields: object, message: string) => void lines.push({ level, message, fields });
  return { lines, info: at('info'), debug: at('debug'), error: at('error') };
}

/** Polls `check` until it holds, for up to 5 s. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** An in-memory storage whose pruning can be watched, held back or made to fail. */
class WatchedStorage extends InMemoryStorage {
  running = 0;
  mostAtOnce = 0;
  calls: ClientId[] = [];
  gate: Promise<void> | null = null;
  failWith: Error | null = null;

  override async pruneVersions(clientId: ClientId, addedBefore: Date): Promise<number> {
    this.calls.push(clientId);
    this.running += 1;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running);
    try {
      await this.gate;
      if (this.failWith !== null) throw this.failWith;
      return await super.pruneVersions(clientId, addedBefore);
    } finally {
      this.running -= 1;
    }
  }
}

const runners: RetentionRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.close()));
});

function runner(storage: WatchedStorage, options: Partial<RetentionOptions> = {}) {
  const log = recordingLog();
  const pruned: number[] = [];
  // Sweeps only when a test asks for them.
  const retention = new RetentionRunner(storage, { days: 0, delayMs: 20, sweepEveryMs: 60_000, log, onPruned: (n) => pruned.push(n), ...options });
  runners.push(retention);
  const sync = new SyncService(storage, { createClients: true, snapshotVersions: 100, snapshotDays: 14, onSnapshotAccepted: (id) => retention.snapshotAccepted(id) });
  return { retention, sync, log, pruned };
}

/** A client with `count` versions; returns their ids. */
async function history(sync: SyncService, clientId: ClientId, count: number): Promise<VersionId[]> {
  const ids: VersionId[] = [];
  for (let i = 0; i < count; i++) {
    const result = await sync.addVersion(clientId, ids.at(-1) ?? NIL_VERSION_ID, new Uint8Array([i]));
    if (result.kind !== 'ok') throw new Error('conflict');
    ids.push(result.version.versionId);
  }
  return ids;
}

describe('after a snapshot', () => {
  it('prunes the client soon after SyncService accepted its snapshot, and nothing before', async () => {
    const storage = new WatchedStorage();
    const { sync, pruned } = runner(storage);
    const clientId = newClientId();
    const ids = await history(sync, clientId, 4);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(storage.calls).toEqual([]);
    expect(await sync.addSnapshot(clientId, ids[2]!, new Uint8Array([1]))).toEqual({ kind: 'accepted' });
    await until(() => pruned.length === 1);
    expect(pruned).toEqual([3]);
    expect(await sync.getChildVersion(clientId, ids[1]!)).toEqual({ kind: 'gone' });
    expect(await sync.getChildVersion(clientId, ids[2]!)).toMatchObject({ kind: 'ok', version: { versionId: ids[3] } });
  });

  it('an ignored snapshot prunes nothing', async () => {
    const storage = new WatchedStorage();
    const { sync } = runner(storage);
    const clientId = newClientId();
    await history(sync, clientId, 2);
    expect((await sync.addSnapshot(clientId, newVersionId(), new Uint8Array([1]))).kind).toBe('ignored');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(storage.calls).toEqual([]);
  });

  it('prunes one client at a time, each once however many snapshots came in the wait', async () => {
    const storage = new WatchedStorage();
    const { sync, pruned } = runner(storage, { delayMs: 50 });
    const clients = [newClientId(), newClientId(), newClientId()];
    for (const clientId of clients) {
      const ids = await history(sync, clientId, 3);
      await sync.addSnapshot(clientId, ids[0]!, new Uint8Array([1]));
      await sync.addSnapshot(clientId, ids[2]!, new Uint8Array([2]));
    }
    await until(() => pruned.length === 3);
    expect([...storage.calls].sort()).toEqual([...clients].sort());
    expect(storage.mostAtOnce).toBe(1);
  });
});

describe('sweeps', () => {
  it('prune every client whose covered versions aged past the cut, one at a time', async () => {
    const storage = new WatchedStorage();
    // The clock two days ahead, the cut a day back: every version is past it.
    const { sync, log } = runner(storage, { days: 1, delayMs: 10, sweepEveryMs: 50, now: () => new Date(Date.now() + 2 * DAY_MS) });
    const clients = [newClientId(), newClientId()];
    for (const clientId of clients) {
      const ids = await history(sync, clientId, 3);
      // Stored directly: no snapshot-triggered pruning, only the sweep's.
      await withTxn(storage, clientId, (txn) => txn.setSnapshot({ versionId: ids[1]!, timestamp: new Date(), versionsSince: 1 }, new Uint8Array([1])));
    }
    const noSnapshot = newClientId();
    await history(sync, noSnapshot, 2);
    const retention = runners.at(-1)!;
    retention.start();
    await until(() => log.lines.some((line) => line.message === 'retention: swept every client'));
    expect(log.lines.find((line) => line.message === 'retention: swept every client')?.fields).toMatchObject({ clients: 3, pruned: 4 });
    for (const clientId of clients) expect((await storage.clientUsage(clientId))?.versions).toBe(1);
    expect((await storage.clientUsage(noSnapshot))?.versions).toBe(2);
    expect(storage.mostAtOnce).toBe(1);
  });

  it('with the cut before the versions were added, prune nothing', async () => {
    const storage = new WatchedStorage();
    const { sync, log, retention } = runner(storage, { days: 1, sweepEveryMs: 50, delayMs: 10 });
    const clientId = newClientId();
    const ids = await history(sync, clientId, 3);
    await sync.addSnapshot(clientId, ids[2]!, new Uint8Array([1]));
    retention.start();
    await until(() => log.lines.some((line) => line.message === 'retention: swept every client'));
    expect((await storage.clientUsage(clientId))?.versions).toBe(3);
  });
});

describe('faults and closing', () => {
  it('logs a failed pruning and goes on; a sweep stops after a few failures in a row and runs again later', async () => {
    const storage = new WatchedStorage();
    storage.failWith = new TcsyncError('STORAGE_UNAVAILABLE', 'the database is away');
    const { sync, log, retention } = runner(storage, { sweepEveryMs: 50, delayMs: 10 });
    const clients = [newClientId(), newClientId(), newClientId(), newClientId(), newClientId()];
    for (const clientId of clients) await history(sync, clientId, 1);
    retention.start();
    await until(() => log.lines.filter((line) => /sweep stopped/.test(line.message)).length >= 2);
    const failures = log.lines.filter((line) => line.message === 'retention: pruning a client failed');
    expect(failures[0]?.fields).toMatchObject({ code: 'STORAGE_UNAVAILABLE', client: expect.stringMatching(/^[0-9a-f]{8}$/) });
    // Three clients, not all five, then the next sweep starts from the first again.
    const listed = [...clients].sort();
    expect(storage.calls.slice(0, 4)).toEqual([listed[0], listed[1], listed[2], listed[0]]);
    storage.failWith = null;
    await until(() => log.lines.some((line) => line.message === 'retention: swept every client'));
  });

  it('close() stops the timers and waits for the pruning under way', async () => {
    const storage = new WatchedStorage();
    let release!: () => void;
    storage.gate = new Promise((resolve) => (release = resolve));
    const { sync, retention } = runner(storage, { delayMs: 10 });
    const clientId = newClientId();
    const ids = await history(sync, clientId, 2);
    await sync.addSnapshot(clientId, ids[1]!, new Uint8Array([1]));
    await until(() => storage.running === 1);
    let closed = false;
    const closing = retention.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toBe(false);
    release();
    await closing;
    // After close, snapshots schedule nothing.
    const other = newClientId();
    const more = await history(sync, other, 2);
    await sync.addSnapshot(other, more[1]!, new Uint8Array([1]));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(storage.calls).toEqual([clientId]);
  });
});
