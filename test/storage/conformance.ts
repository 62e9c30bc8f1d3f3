/**
 * The storage contract, written once and run against every storage (keyv's storageTestSuite
 * pattern). Each rule of src/storage/storage.ts and the reference server's storage tests has a
 * test here; a storage passes only if it behaves exactly like the others.
 */
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
import { isTcsyncError, type ErrorCode } from '../../src/errors.js';
import { withTxn, type Storage, type StorageTxn } from '../../src/storage/storage.js';

export interface StorageFactory {
  /** A fresh, empty storage. */
  create(): Promise<Storage>;
  /** The same storage as a new instance (reopened from disk), or null when it cannot outlive its instance. */
  reopen?(storage: Storage): Promise<Storage>;
  cleanup?(): Promise<void>;
}

const bytes = (...values: number[]) => new Uint8Array(values);
const newClientId = (): ClientId => parseClientId(crypto.randomUUID());

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected a ${code} error`).not.toBeNull();
  expect(isTcsyncError(err) ? err.code : err).toBe(code);
}

export function storageConformanceSuite(name: string, factory: StorageFactory): void {
  describe(`${name} storage conformance`, () => {
    let storage: Storage;
    let clientId: ClientId;

    beforeEach(async () => {
      storage = await factory.create();
      clientId = newClientId();
    });
    afterEach(async () => {
      await storage.close();
      await factory.cleanup?.();
    });

    const inTxn = <T>(work: (txn: StorageTxn) => Promise<T>) => withTxn(storage, clientId, work);

    /** Creates the client with `count` versions from nil; returns their ids in order. */
    async function chain(count: number): Promise<VersionId[]> {
      return inTxn(async (txn) => {
        if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
        const ids: VersionId[] = [];
        let parent = (await txn.getClient())!.latestVersionId;
        for (let i = 0; i < count; i++) {
          const id = newVersionId();
          await txn.addVersion(id, parent, bytes(i, i + 1));
          ids.push(id);
          parent = id;
        }
        return ids;
      });
    }

    describe('clients', () => {
      it('an unknown client reads as null', async () => {
        expect(await inTxn((txn) => txn.getClient())).toBeNull();
      });

      it('newClient stores the given latest version, which need not exist', async () => {
        const latest = newVersionId();
        await inTxn((txn) => txn.newClient(latest));
        expect(await inTxn((txn) => txn.getClient())).toEqual({ latestVersionId: latest, snapshot: null });
      });

      it('newClient on an existing client is CLIENT_EXISTS and changes nothing', async () => {
        await inTxn((txn) => txn.newClient(NIL_VERSION_ID));
        await expectCode(inTxn((txn) => txn.newClient(newVersionId())), 'CLIENT_EXISTS');
        expect((await inTxn((txn) => txn.getClient()))?.latestVersionId).toBe(NIL_VERSION_ID);
      });

      it('a transaction reads its own writes before commit', async () => {
        const txn = await storage.txn(clientId);
        await txn.newClient(NIL_VERSION_ID);
        const id = newVersionId();
        await txn.addVersion(id, NIL_VERSION_ID, bytes(7));
        expect((await txn.getClient())?.latestVersionId).toBe(id);
        expect((await txn.getVersion(id))?.historySegment).toEqual(bytes(7));
        expect((await txn.getVersionByParent(NIL_VERSION_ID))?.versionId).toBe(id);
        await txn.commit();
      });

      it('clients are independent', async () => {
        await chain(2);
        const other = newClientId();
        expect(await withTxn(storage, other, (txn) => txn.getClient())).toBeNull();
        expect(await withTxn(storage, other, (txn) => txn.getVersionByParent(NIL_VERSION_ID))).toBeNull();
      });
    });

    describe('ids', () => {
      // The brands are only types: a JavaScript caller can pass any string, and ids become file
      // names and SQL values. Each is refused where it enters, before anything is staged.
      const BAD_IDS = ['../../x', '', 'not-a-uuid', 'A0000000-0000-4000-8000-000000000000', '{a0000000-0000-4000-8000-000000000000}'];

      it.each(BAD_IDS)('refuses %j as a client id at every storage call', async (raw) => {
        const bad = raw as ClientId;
        await expectCode(storage.txn(bad), 'INVALID_ID');
        await expectCode(storage.deleteClient(bad), 'INVALID_ID');
        await expectCode(storage.liftTombstone(bad), 'INVALID_ID');
        await expectCode(storage.isTombstoned(bad), 'INVALID_ID');
        await expectCode(storage.listClients(bad, 10), 'INVALID_ID');
      });

      it.each(BAD_IDS)('refuses %j as a version id at every transaction call, and the transaction goes on', async (raw) => {
        const bad = raw as VersionId;
        const [first] = await chain(1);
        const txn = await storage.txn(clientId);
        await expectCode(txn.addVersion(bad, first!, bytes(1)), 'INVALID_ID');
        await expectCode(txn.addVersion(newVersionId(), bad, bytes(1)), 'INVALID_ID');
        await expectCode(txn.getVersion(bad), 'INVALID_ID');
        await expectCode(txn.getVersionByParent(bad), 'INVALID_ID');
        await expectCode(txn.getSnapshotData(bad), 'INVALID_ID');
        await expectCode(txn.setSnapshot({ versionId: bad, timestamp: new Date(), versionsSince: 0 }, bytes(1)), 'INVALID_ID');
        const second = newVersionId();
        await txn.addVersion(second, first!, bytes(2));
        await txn.commit();
        expect(await inTxn((txn) => txn.getClient())).toEqual({ latestVersionId: second, snapshot: null });
        const other = newClientId();
        await expectCode(withTxn(storage, other, (txn) => txn.newClient(bad)), 'INVALID_ID');
        expect(await withTxn(storage, other, (txn) => txn.getClient())).toBeNull();
      });
    });

    describe('versions', () => {
      it('addVersion links the chain both ways and moves latest', async () => {
        const [v1, v2] = await chain(2);
        await inTxn(async (txn) => {
          expect((await txn.getClient())?.latestVersionId).toBe(v2);
          expect(await txn.getVersion(v1!)).toEqual({ versionId: v1, parentVersionId: NIL_VERSION_ID, historySegment: bytes(0, 1) });
          expect(await txn.getVersionByParent(v1!)).toEqual({ versionId: v2, parentVersionId: v1, historySegment: bytes(1, 2) });
          expect(await txn.getVersionByParent(v2!)).toBeNull();
          expect(await txn.getVersion(newVersionId())).toBeNull();
        });
      });

      it('each version in its own transaction builds the same chain', async () => {
        await inTxn((txn) => txn.newClient(NIL_VERSION_ID));
        const ids: VersionId[] = [];
        for (let i = 0; i < 5; i++) {
          const id = newVersionId();
          await inTxn((txn) => txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, bytes(i)));
          ids.push(id);
        }
        await inTxn(async (txn) => {
          expect((await txn.getClient())?.latestVersionId).toBe(ids[4]);
          let parent = NIL_VERSION_ID;
          for (const id of ids) {
            const v = await txn.getVersionByParent(parent);
            expect(v?.versionId).toBe(id);
            parent = id;
          }
        });
      });

      it('while latest is nil, any parent is accepted', async () => {
        await inTxn((txn) => txn.newClient(NIL_VERSION_ID));
        const parent = newVersionId();
        const id = newVersionId();
        await inTxn((txn) => txn.addVersion(id, parent, bytes(1)));
        await inTxn(async (txn) => {
          expect((await txn.getClient())?.latestVersionId).toBe(id);
          expect((await txn.getVersionByParent(parent))?.versionId).toBe(id);
          expect((await txn.getVersion(id))?.parentVersionId).toBe(parent);
        });
        const next = newVersionId();
        await inTxn((txn) => txn.addVersion(next, id, bytes(2)));
        expect((await inTxn((txn) => txn.getClient()))?.latestVersionId).toBe(next);
      });

      it('a client created with a latest version that is not stored continues from it', async () => {
        const base = newVersionId();
        await inTxn((txn) => txn.newClient(base));
        const id = newVersionId();
        await inTxn((txn) => txn.addVersion(id, base, bytes(3)));
        await inTxn(async (txn) => {
          expect((await txn.getClient())?.latestVersionId).toBe(id);
          expect(await txn.getVersion(base)).toBeNull();
          expect((await txn.getVersionByParent(base))?.versionId).toBe(id);
        });
      });

      it('a parent other than the latest is WRONG_PARENT and nothing changes', async () => {
        const [v1, v2] = await chain(2);
        await expectCode(inTxn((txn) => txn.addVersion(newVersionId(), v1!, bytes(9))), 'WRONG_PARENT');
        await expectCode(inTxn((txn) => txn.addVersion(newVersionId(), NIL_VERSION_ID, bytes(9))), 'WRONG_PARENT');
        await inTxn(async (txn) => {
          expect((await txn.getClient())?.latestVersionId).toBe(v2);
          expect((await txn.getVersionByParent(v1!))?.versionId).toBe(v2);
        });
      });

      it('an existing version id is VERSION_EXISTS', async () => {
        const [v1] = await chain(1);
        await expectCode(inTxn((txn) => txn.addVersion(v1!, v1!, bytes(9))), 'VERSION_EXISTS');
        expect((await inTxn((txn) => txn.getClient()))?.latestVersionId).toBe(v1);
      });

      it('addVersion on an unknown client is NO_SUCH_CLIENT', async () => {
        await expectCode(inTxn((txn) => txn.addVersion(newVersionId(), NIL_VERSION_ID, bytes(1))), 'NO_SUCH_CLIENT');
        expect(await inTxn((txn) => txn.getClient())).toBeNull();
      });

      it('segments are stored byte for byte, empty and large alike', async () => {
        await inTxn((txn) => txn.newClient(NIL_VERSION_ID));
        const large = new Uint8Array(3 * 1024 * 1024);
        for (let i = 0; i < large.length; i++) large[i] = (i * 31) & 0xff;
        const empty = newVersionId();
        const big = newVersionId();
        await inTxn((txn) => txn.addVersion(empty, NIL_VERSION_ID, new Uint8Array(0)));
        await inTxn((txn) => txn.addVersion(big, empty, large));
        await inTxn(async (txn) => {
          expect((await txn.getVersion(empty))?.historySegment).toEqual(new Uint8Array(0));
          // Compared as Buffers: element-wise deep equality of megabytes is needlessly slow.
          const stored = (await txn.getVersion(big))?.historySegment;
          expect(stored && Buffer.from(stored).equals(Buffer.from(large))).toBe(true);
        });
      });

      it('the caller mutating its buffer after addVersion does not change the stored segment', async () => {
        await inTxn((txn) => txn.newClient(NIL_VERSION_ID));
        const segment = bytes(1, 2, 3);
        const id = newVersionId();
        await inTxn((txn) => txn.addVersion(id, NIL_VERSION_ID, segment));
        segment[0] = 99;
        expect((await inTxn((txn) => txn.getVersion(id)))?.historySegment).toEqual(bytes(1, 2, 3));
      });
    });

    describe('snapshots', () => {
      it('setSnapshot stores metadata as given and data by version; a mismatch is SNAPSHOT_MISMATCH', async () => {
        await inTxn((txn) => txn.newClient(newVersionId()));
        const snap = { versionId: newVersionId(), timestamp: new Date('2026-01-02T03:04:05.678Z'), versionsSince: 3 };
        await inTxn((txn) => txn.setSnapshot(snap, bytes(9, 8, 9)));
        await inTxn(async (txn) => {
          expect((await txn.getClient())?.snapshot).toEqual(snap);
          expect(await txn.getSnapshotData(snap.versionId)).toEqual(bytes(9, 8, 9));
          await expectCode(txn.getSnapshotData(newVersionId()), 'SNAPSHOT_MISMATCH');
        });
        const snap2 = { versionId: newVersionId(), timestamp: new Date('2026-02-02T00:00:00.000Z'), versionsSince: 10 };
        await inTxn((txn) => txn.setSnapshot(snap2, bytes(0, 2, 4, 6)));
        await inTxn(async (txn) => {
          expect((await txn.getClient())?.snapshot).toEqual(snap2);
          expect(await txn.getSnapshotData(snap2.versionId)).toEqual(bytes(0, 2, 4, 6));
          await expectCode(txn.getSnapshotData(snap.versionId), 'SNAPSHOT_MISMATCH');
        });
      });

      it('getSnapshotData without a snapshot is SNAPSHOT_MISMATCH; without a client NO_SUCH_CLIENT', async () => {
        await expectCode(inTxn((txn) => txn.getSnapshotData(newVersionId())), 'NO_SUCH_CLIENT');
        await inTxn((txn) => txn.newClient(NIL_VERSION_ID));
        await expectCode(inTxn((txn) => txn.getSnapshotData(NIL_VERSION_ID)), 'SNAPSHOT_MISMATCH');
      });

      it('setSnapshot on an unknown client is NO_SUCH_CLIENT', async () => {
        await expectCode(inTxn((txn) => txn.setSnapshot({ versionId: newVersionId(), timestamp: new Date(), versionsSince: 0 }, bytes(1))), 'NO_SUCH_CLIENT');
      });

      it('addVersion increments versionsSince, across transactions too', async () => {
        const [v1] = await chain(1);
        await inTxn((txn) => txn.setSnapshot({ versionId: v1!, timestamp: new Date(), versionsSince: 0 }, bytes(1)));
        await chain(3);
        await inTxn(async (txn) => {
          await txn.addVersion(newVersionId(), (await txn.getClient())!.latestVersionId, bytes(5));
          expect((await txn.getClient())?.snapshot?.versionsSince).toBe(4);
        });
        expect((await inTxn((txn) => txn.getClient()))?.snapshot?.versionsSince).toBe(4);
      });

      it('setting the same version again with other data replaces the data', async () => {
        const [v1] = await chain(1);
        await inTxn((txn) => txn.setSnapshot({ versionId: v1!, timestamp: new Date(), versionsSince: 0 }, bytes(1)));
        await inTxn((txn) => txn.setSnapshot({ versionId: v1!, timestamp: new Date(), versionsSince: 0 }, bytes(2, 2)));
        expect(await inTxn((txn) => txn.getSnapshotData(v1!))).toEqual(bytes(2, 2));
      });

      it('one transaction can create, add, snapshot and add again', async () => {
        const ids = await inTxn(async (txn) => {
          await txn.newClient(NIL_VERSION_ID);
          const a = newVersionId();
          const b = newVersionId();
          await txn.addVersion(a, NIL_VERSION_ID, bytes(1));
          await txn.setSnapshot({ versionId: a, timestamp: new Date(), versionsSince: 0 }, bytes(42));
          await txn.addVersion(b, a, bytes(2));
          return [a, b];
        });
        await inTxn(async (txn) => {
          const client = await txn.getClient();
          expect(client?.latestVersionId).toBe(ids[1]);
          expect(client?.snapshot?.versionsSince).toBe(1);
          expect(await txn.getSnapshotData(ids[0]!)).toEqual(bytes(42));
          expect((await txn.getVersionByParent(ids[0]!))?.versionId).toBe(ids[1]);
        });
      });
    });

    describe('transaction lifetime', () => {
      it('rolled-back changes are never seen', async () => {
        const [v1] = await chain(1);
        const txn = await storage.txn(clientId);
        const staged = newVersionId();
        await txn.addVersion(staged, v1!, bytes(5));
        await txn.setSnapshot({ versionId: staged, timestamp: new Date(), versionsSince: 0 }, bytes(5));
        await txn.rollback();
        await inTxn(async (t) => {
          const client = await t.getClient();
          expect(client).toEqual({ latestVersionId: v1, snapshot: null });
          expect(await t.getVersionByParent(v1!)).toBeNull();
          expect(await t.getVersion(staged)).toBeNull();
        });
      });

      it('a rolled-back new client does not exist', async () => {
        const txn = await storage.txn(clientId);
        await txn.newClient(NIL_VERSION_ID);
        await txn.addVersion(newVersionId(), NIL_VERSION_ID, bytes(1));
        await txn.rollback();
        expect(await inTxn((t) => t.getClient())).toBeNull();
        expect(await inTxn((t) => t.getVersionByParent(NIL_VERSION_ID))).toBeNull();
      });

      it('commit twice, or any call after the end, is TXN_ENDED; rollback after the end is harmless', async () => {
        const txn = await storage.txn(clientId);
        await txn.newClient(NIL_VERSION_ID);
        await txn.commit();
        await expectCode(txn.commit(), 'TXN_ENDED');
        await expectCode(txn.getClient(), 'TXN_ENDED');
        await expectCode(txn.addVersion(newVersionId(), NIL_VERSION_ID, bytes(1)), 'TXN_ENDED');
        await expectCode(txn.getVersion(NIL_VERSION_ID), 'TXN_ENDED');
        await txn.rollback();
        const rolled = await storage.txn(clientId);
        await rolled.rollback();
        await expectCode(rolled.commit(), 'TXN_ENDED');
        expect((await inTxn((t) => t.getClient()))?.latestVersionId).toBe(NIL_VERSION_ID);
      });

      it('a read-only transaction may commit or roll back', async () => {
        await chain(1);
        const a = await storage.txn(clientId);
        await a.getClient();
        await a.commit();
        const b = await storage.txn(clientId);
        await b.getClient();
        await b.rollback();
      });

      it('a second transaction on the client waits for the first to end', async () => {
        await chain(1);
        const first = await storage.txn(clientId);
        const latest = (await first.getClient())!.latestVersionId;
        let secondStarted = false;
        const second = storage.txn(clientId).then((t) => {
          secondStarted = true;
          return t;
        });
        await new Promise((r) => setTimeout(r, 50));
        expect(secondStarted).toBe(false);
        const added = newVersionId();
        await first.addVersion(added, latest, bytes(1));
        await first.commit();
        const t2 = await second;
        expect((await t2.getClient())?.latestVersionId).toBe(added);
        await t2.rollback();
      });

      it('transactions on other clients do not wait', async () => {
        await chain(1);
        const held = await storage.txn(clientId);
        const other = newClientId();
        await withTxn(storage, other, (txn) => txn.newClient(NIL_VERSION_ID));
        await held.rollback();
      });

      it('concurrent writers on one client build one linear chain', async () => {
        await inTxn((txn) => txn.newClient(NIL_VERSION_ID));
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            inTxn(async (txn) => {
              const latest = (await txn.getClient())!.latestVersionId;
              await txn.addVersion(newVersionId(), latest, bytes(i));
            }),
          ),
        );
        await inTxn(async (txn) => {
          let parent = NIL_VERSION_ID;
          let count = 0;
          for (let v = await txn.getVersionByParent(parent); v !== null; v = await txn.getVersionByParent(parent)) {
            parent = v.versionId;
            count += 1;
          }
          expect(count).toBe(20);
          expect((await txn.getClient())?.latestVersionId).toBe(parent);
        });
      });
    });

    describe('deleting clients', () => {
      it('deleteClient removes everything and leaves a tombstone that refuses newClient until lifted', async () => {
        const [v1] = await chain(2);
        await inTxn((txn) => txn.setSnapshot({ versionId: v1!, timestamp: new Date(), versionsSince: 0 }, bytes(1)));
        expect(await storage.deleteClient(clientId)).toBe(true);
        expect(await storage.isTombstoned(clientId)).toBe(true);
        await inTxn(async (txn) => {
          expect(await txn.getClient()).toBeNull();
          expect(await txn.getVersion(v1!)).toBeNull();
          expect(await txn.getVersionByParent(NIL_VERSION_ID)).toBeNull();
        });
        await expectCode(inTxn((txn) => txn.newClient(NIL_VERSION_ID)), 'CLIENT_DELETED');
        expect(await storage.liftTombstone(clientId)).toBe(true);
        expect(await storage.liftTombstone(clientId)).toBe(false);
        await inTxn((txn) => txn.newClient(NIL_VERSION_ID));
        expect(await inTxn((txn) => txn.getVersionByParent(NIL_VERSION_ID))).toBeNull();
      });

      it('deleting an unknown client is false and leaves no tombstone', async () => {
        expect(await storage.deleteClient(clientId)).toBe(false);
        expect(await storage.isTombstoned(clientId)).toBe(false);
      });

      it('listClients pages through existing clients in ascending order', async () => {
        const ids = [newClientId(), newClientId(), newClientId(), newClientId()].sort();
        for (const id of ids) await withTxn(storage, id, (txn) => txn.newClient(NIL_VERSION_ID));
        expect(await storage.listClients(null, 10)).toEqual(ids);
        expect(await storage.listClients(null, 2)).toEqual(ids.slice(0, 2));
        expect(await storage.listClients(ids[1]!, 10)).toEqual(ids.slice(2));
        expect(await storage.listClients(ids[3]!, 10)).toEqual([]);
        await storage.deleteClient(ids[0]!);
        expect(await storage.listClients(null, 10)).toEqual(ids.slice(1));
      });
    });

    describe('usage', () => {
      /** Times from file systems are coarse (a clock tick or so): compare with this much slack. */
      const SLACK_MS = 1000;

      it('an unknown client has no usage; a client without versions or snapshot uses nothing', async () => {
        expect(await storage.clientUsage(clientId)).toBeNull();
        await inTxn((txn) => txn.newClient(newVersionId()));
        expect(await storage.clientUsage(clientId)).toEqual({ versions: 0, bytes: 0, oldestVersionAddedAt: null });
      });

      it('counts every stored version and their segments\' bytes plus the current snapshot\'s', async () => {
        const before = Date.now();
        const ids = await chain(3); // segments of 2 bytes each
        const after = Date.now();
        await inTxn(async (txn) => txn.addVersion(newVersionId(), ids[2]!, new Uint8Array(1000)));
        let usage = await storage.clientUsage(clientId);
        expect(usage).toMatchObject({ versions: 4, bytes: 3 * 2 + 1000 });
        const oldest = usage!.oldestVersionAddedAt!.getTime();
        expect(oldest).toBeGreaterThanOrEqual(before - SLACK_MS);
        expect(oldest).toBeLessThanOrEqual(after + SLACK_MS);
        await inTxn((txn) => txn.setSnapshot({ versionId: ids[1]!, timestamp: new Date(), versionsSince: 2 }, new Uint8Array(300)));
        expect((await storage.clientUsage(clientId))?.bytes).toBe(3 * 2 + 1000 + 300);
        // A new snapshot replaces the old one's bytes.
        await inTxn((txn) => txn.setSnapshot({ versionId: ids[2]!, timestamp: new Date(), versionsSince: 1 }, new Uint8Array(50)));
        usage = await storage.clientUsage(clientId);
        expect(usage).toMatchObject({ versions: 4, bytes: 3 * 2 + 1000 + 50 });
      });

      it('oldestVersionAddedAt is the time of the first version added, not of the last', async () => {
        await chain(1);
        const between = Date.now();
        await new Promise((resolve) => setTimeout(resolve, 1100));
        await chain(2);
        const oldest = (await storage.clientUsage(clientId))?.oldestVersionAddedAt ?? null;
        expect(oldest!.getTime()).toBeLessThanOrEqual(between + 100);
      });

      it('does not count a version of a rolled-back transaction', async () => {
        await chain(2);
        const txn = await storage.txn(clientId);
        await txn.addVersion(newVersionId(), (await txn.getClient())!.latestVersionId, bytes(1, 2, 3));
        await txn.rollback();
        expect(await storage.clientUsage(clientId)).toMatchObject({ versions: 2, bytes: 4 });
      });

      it('a deleted client has no usage, and other clients are not counted', async () => {
        await chain(2);
        const other = newClientId();
        await withTxn(storage, other, async (txn) => {
          await txn.newClient(NIL_VERSION_ID);
          await txn.addVersion(newVersionId(), NIL_VERSION_ID, new Uint8Array(77));
        });
        expect(await storage.clientUsage(other)).toMatchObject({ versions: 1, bytes: 77 });
        await storage.deleteClient(clientId);
        expect(await storage.clientUsage(clientId)).toBeNull();
        expect(await storage.clientUsage(other)).toMatchObject({ versions: 1, bytes: 77 });
      });

      it('never fails while commits land; each answer lies between the states before and after', async () => {
        await chain(1);
        const writes = (async () => {
          for (let i = 0; i < 20; i++) await chain(1);
        })();
        const seen: number[] = [];
        let done = false;
        void writes.then(() => (done = true), () => (done = true));
        while (!done) {
          const usage = await storage.clientUsage(clientId);
          seen.push(usage!.versions);
          expect(usage!.bytes).toBe(usage!.versions * 2);
        }
        await writes;
        expect(Math.min(...seen)).toBeGreaterThanOrEqual(1);
        expect(Math.max(...seen)).toBeLessThanOrEqual(21);
        expect((await storage.clientUsage(clientId))?.versions).toBe(21);
      });
    });

    describe('pruning', () => {
      const DAY_MS = 24 * 60 * 60 * 1000;
      /** A cut after every version: everything a snapshot covers goes. */
      const future = () => new Date(Date.now() + DAY_MS);
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      const snapshotAt = (versionId: VersionId) =>
        inTxn((txn) => txn.setSnapshot({ versionId, timestamp: new Date('2026-04-05T06:07:08.009Z'), versionsSince: 0 }, bytes(4, 2)));
      /** Whether each of `ids` is stored. */
      const stored = (ids: readonly VersionId[]) =>
        inTxn(async (txn) => {
          const found: boolean[] = [];
          // One call at a time: a transaction's calls are not made to overlap.
          for (const id of ids) found.push((await txn.getVersion(id)) !== null);
          return found;
        });

      it('a client without a snapshot loses nothing', async () => {
        const ids = await chain(4);
        expect(await storage.pruneVersions(clientId, future())).toBe(0);
        expect(await stored(ids)).toEqual([true, true, true, true]);
      });

      it('deletes the snapshot\'s version and its ancestors, never a newer version, and keeps the snapshot', async () => {
        const ids = await chain(6);
        await snapshotAt(ids[3]!);
        const client = await inTxn((txn) => txn.getClient());
        expect(await storage.pruneVersions(clientId, future())).toBe(4);
        expect(await stored(ids)).toEqual([false, false, false, false, true, true]);
        await inTxn(async (txn) => {
          expect(await txn.getClient()).toEqual(client);
          expect(await txn.getSnapshotData(ids[3]!)).toEqual(bytes(4, 2));
          // The first version after the snapshot is still found by its (pruned) parent...
          expect((await txn.getVersionByParent(ids[3]!))?.versionId).toBe(ids[4]);
          // ...and nothing by the parents that went.
          for (const parent of [NIL_VERSION_ID, ids[0]!, ids[1]!, ids[2]!]) expect(await txn.getVersionByParent(parent)).toBeNull();
        });
        expect(await storage.clientUsage(clientId)).toMatchObject({ versions: 2, bytes: 2 * 2 + 2 });
      });

      it('pruning again deletes nothing more', async () => {
        const ids = await chain(3);
        await snapshotAt(ids[1]!);
        expect(await storage.pruneVersions(clientId, future())).toBe(2);
        expect(await storage.pruneVersions(clientId, future())).toBe(0);
        expect(await stored(ids)).toEqual([false, false, true]);
      });

      it('a cut before the client existed deletes nothing', async () => {
        const before = new Date(Date.now() - DAY_MS);
        const ids = await chain(3);
        await snapshotAt(ids[2]!);
        expect(await storage.pruneVersions(clientId, before)).toBe(0);
        expect(await stored(ids)).toEqual([true, true, true]);
      });

      it('versions added at or after the cut stay, even those the snapshot covers', async () => {
        const old = await chain(3);
        // Wider than a file system's clock tick on either side of the cut.
        await sleep(600);
        const cut = new Date();
        await sleep(600);
        const recent = await chain(3);
        await snapshotAt(recent[1]!);
        expect(await storage.pruneVersions(clientId, cut)).toBe(3);
        expect(await stored([...old, ...recent])).toEqual([false, false, false, true, true, true]);
        expect((await inTxn((txn) => txn.getVersionByParent(old[2]!)))?.versionId).toBe(recent[0]);
        expect(await storage.pruneVersions(clientId, cut)).toBe(0);
      });

      it('a snapshot of the latest version leaves no version; the client goes on from it', async () => {
        const ids = await chain(3);
        await snapshotAt(ids[2]!);
        expect(await storage.pruneVersions(clientId, future())).toBe(3);
        expect(await storage.clientUsage(clientId)).toMatchObject({ versions: 0, oldestVersionAddedAt: null });
        const next = newVersionId();
        await inTxn((txn) => txn.addVersion(next, ids[2]!, bytes(9)));
        expect((await inTxn((txn) => txn.getVersionByParent(ids[2]!)))?.versionId).toBe(next);
      });

      it('an unknown client and a deleted one are 0', async () => {
        expect(await storage.pruneVersions(clientId, future())).toBe(0);
        const ids = await chain(2);
        await snapshotAt(ids[1]!);
        await storage.deleteClient(clientId);
        expect(await storage.pruneVersions(clientId, future())).toBe(0);
        expect(await storage.isTombstoned(clientId)).toBe(true);
      });

      it('versions added while pruning runs all stay, in one chain', async () => {
        const ids = await chain(40);
        await snapshotAt(ids[39]!);
        const [pruned, added] = await Promise.all([storage.pruneVersions(clientId, future()), chainOneByOne(10)]);
        expect(pruned).toBe(40);
        expect(await stored(added)).toEqual(added.map(() => true));
        await inTxn(async (txn) => {
          let parent = ids[39]!;
          for (const id of added) {
            expect((await txn.getVersionByParent(parent))?.versionId).toBe(id);
            parent = id;
          }
          expect((await txn.getClient())?.latestVersionId).toBe(parent);
        });
      });

      if (factory.reopen) {
        const reopen = factory.reopen;
        it('what was pruned stays pruned for another instance', async () => {
          const ids = await chain(3);
          await snapshotAt(ids[1]!);
          expect(await storage.pruneVersions(clientId, future())).toBe(2);
          const second = await reopen(storage);
          try {
            expect(await withTxn(second, clientId, async (txn) => [await txn.getVersion(ids[0]!), await txn.getVersion(ids[1]!)])).toEqual([null, null]);
            expect((await withTxn(second, clientId, (txn) => txn.getVersionByParent(ids[1]!)))?.versionId).toBe(ids[2]);
            expect(await second.pruneVersions(clientId, future())).toBe(0);
          } finally {
            await second.close();
          }
        });
      }

      /** Adds `count` versions, each in its own transaction; returns their ids in order. */
      async function chainOneByOne(count: number): Promise<VersionId[]> {
        const added: VersionId[] = [];
        for (let i = 0; i < count; i++) {
          const id = newVersionId();
          await inTxn(async (txn) => txn.addVersion(id, (await txn.getClient())!.latestVersionId, bytes(i)));
          added.push(id);
        }
        return added;
      }
    });

    if (factory.reopen) {
      const reopen = factory.reopen;
      describe('persistence', () => {
        it('committed state survives reopening, rolled-back state does not', async () => {
          const ids = await chain(70);
          await inTxn((txn) => txn.setSnapshot({ versionId: ids[60]!, timestamp: new Date('2026-03-03T00:00:00Z'), versionsSince: 0 }, bytes(6)));
          await chain(5);
          const txn = await storage.txn(clientId);
          const client = await txn.getClient();
          await txn.addVersion(newVersionId(), client!.latestVersionId, bytes(1));
          await txn.rollback();
          const before = await inTxn((t) => t.getClient());
          storage = await reopen(storage);
          await inTxn(async (t) => {
            expect(await t.getClient()).toEqual(before);
            expect(before?.snapshot?.versionsSince).toBe(5);
            expect(await t.getSnapshotData(ids[60]!)).toEqual(bytes(6));
            expect((await t.getVersionByParent(ids[68]!))?.versionId).toBe(ids[69]);
            expect(await t.getVersionByParent(before!.latestVersionId)).toBeNull();
          });
        });

        it('a second instance reads the same usage', async () => {
          const ids = await chain(3);
          await inTxn((txn) => txn.setSnapshot({ versionId: ids[2]!, timestamp: new Date(), versionsSince: 0 }, bytes(1, 2, 3, 4, 5)));
          const second = await reopen(storage);
          expect(await second.clientUsage(clientId)).toEqual(await storage.clientUsage(clientId));
          expect(await second.clientUsage(clientId)).toMatchObject({ versions: 3, bytes: 3 * 2 + 5 });
          await second.close();
        });

        it('a second instance on the same storage sees the first one\'s commits', async () => {
          await chain(3);
          const second = await reopen(storage);
          const ids = await withTxn(second, clientId, async (txn) => {
            const latest = (await txn.getClient())!.latestVersionId;
            const id = newVersionId();
            await txn.addVersion(id, latest, bytes(4));
            return id;
          });
          expect((await inTxn((t) => t.getClient()))?.latestVersionId).toBe(ids);
          await second.close();
        });
      });
    }
  });
}
