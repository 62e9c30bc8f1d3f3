/**
 * The protocol's four transactions on the in-memory storage, with a controlled clock: the cases
 * of the reference server's own tests (core/src/server.rs), including the ones a transport test
 * cannot reach, like a snapshot's age in days.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { isTcsyncError } from '../../src/errors.js';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
import { InMemoryStorage } from '../../src/storage/memory-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { SyncService, type SyncOptions } from '../../src/sync/sync-service.js';
import { snapshotUrgency } from '../../src/sync/urgency.js';

const DAY = 86_400_000;
const bytes = (...v: number[]) => new Uint8Array(v);
let storage: InMemoryStorage;
let clientId: ClientId;
let now: Date;

function service(options: Partial<SyncOptions> = {}): SyncService {
  return new SyncService(storage, { createClients: true, snapshotVersions: 100, snapshotDays: 14, now: () => now, ...options });
}

/** A client with `count` versions and optionally a snapshot at version `snapshotAt`, taken `daysAgo`. */
async function setup(count: number, snapshotAt?: number, daysAgo = 0): Promise<VersionId[]> {
  return withTxn(storage, clientId, async (txn) => {
    await txn.newClient(NIL_VERSION_ID);
    const ids: VersionId[] = [];
    for (let i = 0; i < count; i++) {
      const id = newVersionId();
      await txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, bytes(0, 0, i));
      ids.push(id);
      if (i === snapshotAt) {
        await txn.setSnapshot({ versionId: id, timestamp: new Date(now.getTime() - daysAgo * DAY), versionsSince: 0 }, bytes(i));
      }
    }
    return ids;
  });
}

beforeEach(() => {
  storage = new InMemoryStorage();
  clientId = parseClientId(crypto.randomUUID());
  now = new Date('2026-06-01T12:00:00Z');
});

describe('snapshot urgency', () => {
  const policy = { snapshotVersions: 100, snapshotDays: 14 };
  const at = (versionsSince: number, days: number) =>
    snapshotUrgency({ latestVersionId: NIL_VERSION_ID, snapshot: { versionId: NIL_VERSION_ID, timestamp: new Date(now.getTime() - days * DAY), versionsSince } }, policy, now);

  it('is high without a snapshot', () => {
    expect(snapshotUrgency({ latestVersionId: NIL_VERSION_ID, snapshot: null }, policy, now)).toBe('high');
  });
  it('follows the versions thresholds: low at N, high at N*3/2', () => {
    expect([at(0, 0), at(99, 0), at(100, 0), at(149, 0), at(150, 0)]).toEqual(['none', 'none', 'low', 'low', 'high']);
  });
  it('follows the age thresholds in whole days: low at D, high at D*3/2', () => {
    expect([at(0, 13.9), at(0, 14), at(0, 20.99), at(0, 21)]).toEqual(['none', 'low', 'low', 'high']);
  });
  it('is the greater of the two', () => {
    expect(at(150, 14)).toBe('high');
    expect(at(100, 21)).toBe('high');
  });
  it('uses integer division like the reference (odd thresholds)', () => {
    const odd = { snapshotVersions: 3, snapshotDays: 3 };
    const u = (v: number) => snapshotUrgency({ latestVersionId: NIL_VERSION_ID, snapshot: { versionId: NIL_VERSION_ID, timestamp: now, versionsSince: v } }, odd, now);
    expect([u(2), u(3), u(4)]).toEqual(['none', 'low', 'high']);
  });
});

describe('addVersion', () => {
  it('creates an unknown client and answers high urgency (no snapshot yet)', async () => {
    const result = await service().addVersion(clientId, NIL_VERSION_ID, bytes(1));
    expect(result).toMatchObject({ kind: 'ok', snapshotUrgency: 'high', version: { parentVersionId: NIL_VERSION_ID } });
    const latest = await withTxn(storage, clientId, async (txn) => (await txn.getClient())?.latestVersionId);
    expect(result.kind === 'ok' && result.version.versionId).toBe(latest);
  });

  it('without client creation, an unknown client is NO_SUCH_CLIENT', async () => {
    const err = await service({ createClients: false }).addVersion(clientId, NIL_VERSION_ID, bytes(1)).catch((e) => e);
    expect(isTcsyncError(err, 'NO_SUCH_CLIENT')).toBe(true);
  });

  it('a parent other than the latest is a conflict naming the latest', async () => {
    const ids = await setup(3);
    expect(await service().addVersion(clientId, ids[1]!, bytes(1))).toEqual({ kind: 'conflict', expectedParentVersionId: ids[2] });
    expect(await service().addVersion(clientId, NIL_VERSION_ID, bytes(1))).toEqual({ kind: 'conflict', expectedParentVersionId: ids[2] });
  });

  it('accepts any parent while the client has no versions', async () => {
    await setup(0);
    expect((await service().addVersion(clientId, newVersionId(), bytes(1))).kind).toBe('ok');
  });

  it('computes urgency from the state before the add', async () => {
    const ids = await setup(100, 0);
    // 99 versions since the snapshot before this add: none, though the add makes it 100.
    const r = await service().addVersion(clientId, ids[99]!, bytes(1));
    expect(r).toMatchObject({ kind: 'ok', snapshotUrgency: 'none' });
    expect(await service().currentUrgency(clientId)).toBe('low');
  });

  it('answers low and high by age of the snapshot', async () => {
    const ids = await setup(1, 0, 14);
    expect(await service().addVersion(clientId, ids[0]!, bytes(1))).toMatchObject({ snapshotUrgency: 'low' });
    now = new Date(now.getTime() + 7 * DAY);
    const latest = await withTxn(storage, clientId, async (txn) => (await txn.getClient())!.latestVersionId);
    expect(await service().addVersion(clientId, latest, bytes(1))).toMatchObject({ snapshotUrgency: 'high' });
  });
});

describe('getChildVersion', () => {
  it('returns the child of a stored parent', async () => {
    const ids = await setup(2);
    expect(await service().getChildVersion(clientId, ids[0]!)).toEqual({
      kind: 'ok',
      version: { versionId: ids[1], parentVersionId: ids[0], historySegment: bytes(0, 0, 1) },
    });
  });
  it('is not-found for the latest version, and for anything while there are no versions', async () => {
    const ids = await setup(2);
    expect(await service().getChildVersion(clientId, ids[1]!)).toEqual({ kind: 'not-found' });
    clientId = parseClientId(crypto.randomUUID());
    await setup(0);
    expect(await service().getChildVersion(clientId, NIL_VERSION_ID)).toEqual({ kind: 'not-found' });
    expect(await service().getChildVersion(clientId, newVersionId())).toEqual({ kind: 'not-found' });
  });
  it('is gone for an unknown parent when versions exist', async () => {
    await setup(2);
    expect(await service().getChildVersion(clientId, newVersionId())).toEqual({ kind: 'gone' });
  });
  it('is NO_SUCH_CLIENT for an unknown client', async () => {
    const err = await service().getChildVersion(clientId, NIL_VERSION_ID).catch((e) => e);
    expect(isTcsyncError(err, 'NO_SUCH_CLIENT')).toBe(true);
  });
});

describe('addSnapshot and getSnapshot', () => {
  it('accepts a snapshot of any of the latest 5 versions, not the 6th', async () => {
    for (const back of [0, 4]) {
      clientId = parseClientId(crypto.randomUUID());
      const ids = await setup(10);
      expect(await service().addSnapshot(clientId, ids[9 - back]!, bytes(7))).toEqual({ kind: 'accepted' });
      expect(await service().getSnapshot(clientId)).toEqual({ versionId: ids[9 - back], data: bytes(7) });
    }
    clientId = parseClientId(crypto.randomUUID());
    const ids = await setup(10);
    expect(await service().addSnapshot(clientId, ids[4]!, bytes(7))).toEqual({ kind: 'ignored', reason: 'too-old' });
    expect(await service().getSnapshot(clientId)).toBeNull();
  });

  it('ignores the current snapshot\'s version, an older one, an unknown one and nil', async () => {
    const ids = await setup(5, 3);
    expect(await service().addSnapshot(clientId, ids[3]!, bytes(9))).toEqual({ kind: 'ignored', reason: 'already-stored' });
    expect(await service().addSnapshot(clientId, ids[2]!, bytes(9))).toEqual({ kind: 'ignored', reason: 'older-than-current' });
    expect(await service().addSnapshot(clientId, newVersionId(), bytes(9))).toEqual({ kind: 'ignored', reason: 'older-than-current' });
    clientId = parseClientId(crypto.randomUUID());
    await setup(2);
    expect(await service().addSnapshot(clientId, newVersionId(), bytes(9))).toEqual({ kind: 'ignored', reason: 'version-not-found' });
    expect(await service().addSnapshot(clientId, NIL_VERSION_ID, bytes(9))).toEqual({ kind: 'ignored', reason: 'version-not-found' });
  });

  it('ignores a snapshot when the walk meets a missing version', async () => {
    const base = newVersionId();
    await withTxn(storage, clientId, (txn) => txn.newClient(base));
    const r = await service().addVersion(clientId, base, bytes(1));
    expect(await service().addSnapshot(clientId, newVersionId(), bytes(9))).toEqual({ kind: 'ignored', reason: 'version-not-found' });
    expect(r.kind).toBe('ok');
  });

  it('stores the snapshot with the clock\'s time and versionsSince 0', async () => {
    const ids = await setup(3);
    await service().addSnapshot(clientId, ids[2]!, bytes(1));
    const client = await withTxn(storage, clientId, (txn) => txn.getClient());
    expect(client?.snapshot).toEqual({ versionId: ids[2], timestamp: now, versionsSince: 0 });
  });

  it('an unknown client: addSnapshot is ignored, getSnapshot NO_SUCH_CLIENT', async () => {
    expect(await service().addSnapshot(clientId, NIL_VERSION_ID, bytes(1))).toEqual({ kind: 'ignored', reason: 'no-such-client' });
    const err = await service().getSnapshot(clientId).catch((e) => e);
    expect(isTcsyncError(err, 'NO_SUCH_CLIENT')).toBe(true);
  });
});
