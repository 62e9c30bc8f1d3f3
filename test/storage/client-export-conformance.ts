/**
 * The export/import contract of src/storage/client-export.ts, written once and run against every
 * storage that implements it: a client copied from one storage to another reads back identically.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTcsyncError, type ErrorCode } from '../../src/errors.js';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
import type { ExportableStorage, ExportedClient } from '../../src/storage/client-export.js';
import { withTxn, type Version } from '../../src/storage/storage.js';

export interface ExportableFactory {
  /** A fresh, empty storage; called twice per test (a source and a destination). */
  create(): Promise<ExportableStorage>;
  /** Called on the source after a test built its client, e.g. to move its history into another form (packs). */
  built?(source: ExportableStorage, clientId: ClientId): Promise<void>;
  cleanup?(): Promise<void>;
}

const newClientId = (): ClientId => parseClientId(crypto.randomUUID());

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(isTcsyncError(err) ? err.code : err).toBe(code);
}

/** What a storage answers about one client, through the Storage interface only. */
async function readBack(storage: ExportableStorage, clientId: ClientId, versionIds: readonly VersionId[]) {
  return withTxn(storage, clientId, async (txn) => {
    const client = await txn.getClient();
    const versions = [];
    for (const id of versionIds) {
      const version = await txn.getVersion(id);
      const byParent = version && (await txn.getVersionByParent(version.parentVersionId));
      versions.push({ version, byParentId: byParent?.versionId ?? null });
    }
    const snapshotData = client?.snapshot ? await txn.getSnapshotData(client.snapshot.versionId) : null;
    return { client, versions, snapshotData };
  });
}

async function collect(client: ExportedClient): Promise<Version[]> {
  const out: Version[] = [];
  for await (const version of client.versions()) out.push(version);
  return out;
}

export function clientExportSuite(name: string, factory: ExportableFactory): void {
  describe(`${name} client export and import`, () => {
    let source: ExportableStorage;
    let dest: ExportableStorage;
    let clientId: ClientId;

    beforeEach(async () => {
      source = await factory.create();
      dest = await factory.create();
      clientId = newClientId();
    });
    afterEach(async () => {
      await source.close();
      await dest.close();
      await factory.cleanup?.();
    });

    /** A client with `count` versions, a snapshot of the third and two versions since. */
    async function build(count: number): Promise<VersionId[]> {
      const ids = await withTxn(source, clientId, async (txn) => {
        await txn.newClient(NIL_VERSION_ID);
        const ids: VersionId[] = [];
        for (let i = 0; i < count; i++) {
          const id = newVersionId();
          await txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, new Uint8Array([i % 256, 1, 2, 3]));
          ids.push(id);
          if (i === count - 3) await txn.setSnapshot({ versionId: id, timestamp: new Date('2026-11-30T12:34:56.789Z'), versionsSince: 0 }, new Uint8Array(3000).fill(9));
        }
        return ids;
      });
      await factory.built?.(source, clientId);
      return ids;
    }

    const copy = (id: ClientId) => source.exportClient(id, (client) => dest.importClient(client));

    it('an unknown client exports as null without calling the work', async () => {
      let called = false;
      expect(await source.exportClient(clientId, async () => (called = true))).toBeNull();
      expect(called).toBe(false);
    });

    it('exports every version once, with the latest version and the snapshot as stored', async () => {
      const ids = await build(30);
      const result = await source.exportClient(clientId, async (client) => {
        const versions = await collect(client);
        // A second pass reads again.
        expect((await collect(client)).length).toBe(30);
        return { client: { latest: client.latestVersionId, snapshot: client.snapshot }, versions, snapshot: await client.readSnapshot() };
      });
      expect(result?.client).toEqual({ latest: ids[29], snapshot: { versionId: ids[27], timestamp: new Date('2026-11-30T12:34:56.789Z'), versionsSince: 2 } });
      expect(result?.versions.map((v) => v.versionId).sort()).toEqual([...ids].sort());
      const second = result?.versions.find((v) => v.versionId === ids[1]);
      // With or without when it was added (ExportedVersion.addedAt), as the storage knows.
      expect(second).toMatchObject({ versionId: ids[1], parentVersionId: ids[0], historySegment: new Uint8Array([1, 1, 2, 3]) });
      expect(result?.snapshot).toEqual(new Uint8Array(3000).fill(9));
    });

    it('a copied client reads back identically: ids, parents, bytes, latest, snapshot and versionsSince', async () => {
      const ids = await build(70);
      await copy(clientId);
      const [before, after] = await Promise.all([readBack(source, clientId, ids), readBack(dest, clientId, ids)]);
      expect(after).toEqual(before);
      expect(after.client?.snapshot?.versionsSince).toBe(2);
      expect(await dest.listClients(null, 10)).toEqual([clientId]);
      // The copy goes on like the original.
      await withTxn(dest, clientId, (txn) => txn.addVersion(newVersionId(), ids[69] as VersionId, new Uint8Array([7])));
    });

    it('a copy keeps when its versions were added, where the source knows, so retention counts from then', async () => {
      await build(5);
      const timesOf = (storage: ExportableStorage) =>
        storage.exportClient(clientId, async (client) => {
          const times = new Map<VersionId, number | null>();
          for await (const version of client.versions()) times.set(version.versionId, version.addedAt?.getTime() ?? null);
          return times;
        });
      const before = await timesOf(source);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await copy(clientId);
      const after = await timesOf(dest);
      for (const [id, time] of before!) if (time !== null) expect(after!.get(id)).toBe(time);
      if ([...before!.values()].every((time) => time !== null)) {
        expect((await dest.clientUsage(clientId))?.oldestVersionAddedAt).toEqual((await source.clientUsage(clientId))?.oldestVersionAddedAt);
      }
    });

    it('a client without versions or snapshot, whose latest version is not stored, is copied too', async () => {
      const latest = newVersionId();
      await withTxn(source, clientId, (txn) => txn.newClient(latest));
      await copy(clientId);
      expect(await withTxn(dest, clientId, (txn) => txn.getClient())).toEqual({ latestVersionId: latest, snapshot: null });
      await expectCode(dest.exportClient(clientId, (c) => c.readSnapshot()), 'SNAPSHOT_MISMATCH');
    });

    it('importing over an existing client is CLIENT_EXISTS and changes nothing', async () => {
      await build(5);
      await copy(clientId);
      const before = await dest.exportClient(clientId, async (c) => ({ latest: c.latestVersionId, n: (await collect(c)).length }));
      await withTxn(source, clientId, (txn) => txn.addVersion(newVersionId(), before!.latest, new Uint8Array([1])));
      await expectCode(copy(clientId), 'CLIENT_EXISTS');
      expect(await dest.exportClient(clientId, async (c) => ({ latest: c.latestVersionId, n: (await collect(c)).length }))).toEqual(before);
    });

    it('an import whose versions fail midway leaves no client', async () => {
      await build(5);
      const failing = source.exportClient(clientId, (client) =>
        dest.importClient({
          ...client,
          async *versions() {
            let n = 0;
            for await (const version of client.versions()) {
              if (++n === 3) throw new Error('source went away');
              yield version;
            }
          },
        }),
      );
      await expect(failing).rejects.toThrow('source went away');
      expect(await dest.listClients(null, 10)).toEqual([]);
      expect(await withTxn(dest, clientId, (txn) => txn.getClient())).toBeNull();
      // And the id is free for a whole import.
      await copy(clientId);
      expect(await dest.listClients(null, 10)).toEqual([clientId]);
    });

    it('two versions with one parent are refused with CORRUPT and leave no client', async () => {
      const parent = newVersionId();
      const bad: ExportedClient = {
        clientId,
        latestVersionId: parent,
        snapshot: null,
        readSnapshot: () => Promise.reject(new Error('no snapshot')),
        async *versions() {
          yield { versionId: newVersionId(), parentVersionId: parent, historySegment: new Uint8Array([1]) };
          yield { versionId: newVersionId(), parentVersionId: parent, historySegment: new Uint8Array([2]) };
        },
      };
      await expectCode(dest.importClient(bad), 'CORRUPT');
      expect(await dest.listClients(null, 10)).toEqual([]);
    });

    it('tombstones are listed and imported; a tombstoned id refuses an import', async () => {
      const deleted = [newClientId(), newClientId()].sort();
      for (const id of deleted) {
        await withTxn(source, id, (txn) => txn.newClient(NIL_VERSION_ID));
        await source.deleteClient(id);
      }
      expect(await source.listTombstones(null, 10)).toEqual(deleted);
      expect(await source.listTombstones(deleted[0] as ClientId, 10)).toEqual([deleted[1]]);
      for (const id of await source.listTombstones(null, 10)) await dest.importTombstone(id);
      await dest.importTombstone(deleted[0] as ClientId);
      expect(await dest.listTombstones(null, 10)).toEqual(deleted);
      expect(await dest.isTombstoned(deleted[1] as ClientId)).toBe(true);
      await source.liftTombstone(deleted[0] as ClientId);
      await withTxn(source, deleted[0] as ClientId, (txn) => txn.newClient(NIL_VERSION_ID));
      await expectCode(copy(deleted[0] as ClientId), 'CLIENT_DELETED');
    });

    it('importTombstone of an existing client is CLIENT_EXISTS', async () => {
      await build(3);
      await copy(clientId);
      await expectCode(dest.importTombstone(clientId), 'CLIENT_EXISTS');
    });

    it("the export holds the client: a commit begun meanwhile waits until the work is done", async () => {
      const ids = await build(3);
      let committed = false;
      let waiting: Promise<void> | undefined;
      const exported = await source.exportClient(clientId, async (client) => {
        // A read without the lock may run meanwhile (optimistic transactions); a change may not.
        waiting = withTxn(source, clientId, (txn) => txn.addVersion(newVersionId(), ids.at(-1)!, new Uint8Array([7]))).then(() => {
          committed = true;
        });
        for (let i = 0; i < 20; i++) await nextTurn();
        expect(committed).toBe(false);
        return client.latestVersionId;
      });
      expect(exported).toBe(ids.at(-1));
      await waiting;
      expect(committed).toBe(true);
    });
  });
}
