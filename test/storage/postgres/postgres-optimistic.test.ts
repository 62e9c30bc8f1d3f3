/**
 * Optimistic transactions over a real server: two PostgresStorage instances on one database
 * stand for two serve processes. Each remembers the client's row from its own last transaction,
 * so one's cache goes stale whenever the other commits; nothing may then be answered or
 * committed on the stale row, and TXN_STALE must never reach a caller of withTxn.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isTcsyncError } from '../../../src/errors.js';
import { NIL_VERSION_ID, parseClientId, type ClientId, type VersionId } from '../../../src/ids.js';
import { PostgresStorage } from '../../../src/storage/postgres/postgres-storage.js';
import { withTxn } from '../../../src/storage/storage.js';
import { SyncService, type AddVersionResult } from '../../../src/sync/sync-service.js';
import { DEFAULT_SNAPSHOT_POLICY } from '../../../src/sync/urgency.js';
import { describePostgres, freshSchema } from '../../support/postgres.js';

describePostgres('optimistic transactions on PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let a: PostgresStorage;
  let b: PostgresStorage;
  let syncA: SyncService;
  let syncB: SyncService;
  let clientId: ClientId;

  beforeEach(async () => {
    schema = await freshSchema();
    a = await PostgresStorage.open(schema.uri);
    b = await PostgresStorage.open(schema.uri);
    const options = { ...DEFAULT_SNAPSHOT_POLICY, createClients: true };
    syncA = new SyncService(a, options);
    syncB = new SyncService(b, options);
    clientId = parseClientId(randomUUID());
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await schema.drop();
  });

  const segment = new Uint8Array([1, 2, 3]);
  const okId = (result: AddVersionResult): VersionId => {
    if (result.kind !== 'ok') throw new Error(`expected ok, got a conflict on ${result.expectedParentVersionId}`);
    return result.version.versionId;
  };
  const errorOf = (promise: Promise<unknown>) => promise.then(() => null, (e: unknown) => e);
  const sql = async (text: string, values: unknown[] = []) => {
    const conn = new pg.Client({ connectionString: schema.uri });
    await conn.connect();
    try {
      return await conn.query(text, values);
    } finally {
      await conn.end();
    }
  };
  /** The chain from the latest version back to its start, newest first, read by a third instance. */
  const chain = async (): Promise<VersionId[]> => {
    const c = await PostgresStorage.open(schema.uri);
    try {
      return await withTxn(c, clientId, async (txn) => {
        const ids: VersionId[] = [];
        let next = (await txn.getClient())!.latestVersionId;
        while (next !== NIL_VERSION_ID) {
          const version = await txn.getVersion(next);
          if (version === null) break;
          ids.push(version.versionId);
          next = version.parentVersionId;
        }
        return ids;
      });
    } finally {
      await c.close();
    }
  };

  /** Makes `storage` remember the client's row (a pessimistic transaction's read caches it), so that its next transaction is optimistic. */
  const remember = async (storage: PostgresStorage): Promise<void> => {
    const txn = await storage.txn(clientId);
    await txn.getClient();
    await txn.rollback();
  };

  it("a stale cache answers a conflict with the other instance's version, and an add on that version succeeds", async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    const v2 = okId(await syncA.addVersion(clientId, v1, segment)); // a now caches latest = v2
    const v3 = okId(await syncB.addVersion(clientId, v2, segment));
    // a's cache still says v2: an add on v2 would pass a check against it.
    expect(await syncA.addVersion(clientId, v2, segment)).toEqual({ kind: 'conflict', expectedParentVersionId: v3 });
    const v4 = okId(await syncA.addVersion(clientId, v3, segment));
    // And the other way round, b's cache being stale now.
    expect(await syncB.addVersion(clientId, v3, segment)).toEqual({ kind: 'conflict', expectedParentVersionId: v4 });
    expect(await chain()).toEqual([v4, v3, v2, v1]);
  });

  it("an add on the stale cache's latest, racing nobody, is refused and answered from the database", async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    // A client's first add-version leaves nothing cached (it created the row); a read caches it.
    await remember(a);
    const v2 = okId(await syncB.addVersion(clientId, v1, segment));
    // a's cache says v1, so the optimistic path accepts the parent; its commit must not land.
    expect(await syncA.addVersion(clientId, v1, segment)).toEqual({ kind: 'conflict', expectedParentVersionId: v2 });
    expect(await chain()).toEqual([v2, v1]);
  });

  it('read-only answers (urgency, snapshot, child version) are checked against the database', async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    const v2 = okId(await syncB.addVersion(clientId, v1, segment));
    expect(await syncA.getChildVersion(clientId, v1)).toMatchObject({ kind: 'ok', version: { versionId: v2 } });
    const v3 = okId(await syncB.addVersion(clientId, v2, segment));
    expect((await syncB.addSnapshot(clientId, v3, new Uint8Array([5]))).kind).toBe('accepted');
    expect(await syncA.getSnapshot(clientId)).toMatchObject({ versionId: v3 });
    expect(await withTxn(a, clientId, async (txn) => (await txn.getClient())?.snapshot?.versionId)).toBe(v3);
  });

  it("a conflict on an older parent than the cached latest names the database's latest, not the cached one", async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    const v2 = okId(await syncA.addVersion(clientId, v1, segment)); // a caches latest = v2
    const v3 = okId(await syncB.addVersion(clientId, v2, segment));
    // Answered from the cached row this would be a conflict on v2: the read-only commit's check catches it.
    expect(await syncA.addVersion(clientId, v1, segment)).toEqual({ kind: 'conflict', expectedParentVersionId: v3 });
  });

  it("a child version's not-found or gone is decided on the row confirmed under the lock, not the cached one", async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    const v2 = okId(await syncA.addVersion(clientId, v1, segment)); // a caches latest = v2
    const v3 = okId(await syncB.addVersion(clientId, v2, segment));
    // No child of v3 yet, and v3 is the latest: an add on it would succeed (not-found). The cached
    // latest v2 would make it gone; only the confirmation's compare of the row tells.
    expect(await syncA.getChildVersion(clientId, v3)).toEqual({ kind: 'not-found' });
  });

  it("a snapshot written by a writer that keeps no milliseconds (upstream) is not overwritten by an optimistic commit", async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    const v2 = okId(await syncA.addVersion(clientId, v1, segment)); // a caches: latest v2, no snapshot
    // As upstream's add_snapshot writes it: the clients columns only, no tcsync_snapshot_millis row.
    await sql('UPDATE clients SET snapshot_version_id = $2, versions_since_snapshot = 0, snapshot_timestamp = 1700000000, snapshot = $3 WHERE client_id = $1', [
      clientId, v2, Buffer.from([7]),
    ]);
    const v3 = okId(await syncA.addVersion(clientId, v2, segment));
    const { rows } = await sql('SELECT latest_version_id, snapshot_version_id, versions_since_snapshot FROM clients WHERE client_id = $1', [clientId]);
    expect(rows[0]).toEqual({ latest_version_id: v3, snapshot_version_id: v2, versions_since_snapshot: 1 });
  });

  it("racing writers through both instances end in one linear chain, and no error escapes", async () => {
    const perWriter = 15;
    const writer = async (sync: SyncService): Promise<number> => {
      let parent: VersionId = NIL_VERSION_ID;
      let added = 0;
      while (added < perWriter) {
        const result = await sync.addVersion(clientId, parent, segment);
        if (result.kind === 'ok') {
          parent = result.version.versionId;
          added++;
        } else {
          parent = result.expectedParentVersionId;
        }
      }
      return added;
    };
    const counts = await Promise.all([writer(syncA), writer(syncB), writer(syncA), writer(syncB)]);
    const total = counts.reduce((x, y) => x + y, 0);
    const ids = await chain();
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);
    expect(Number((await sql('SELECT count(*) AS n FROM versions')).rows[0].n)).toBe(total);
    // No version shares a parent with another: the history never forked.
    expect(Number((await sql('SELECT count(DISTINCT parent_version_id) AS n FROM versions')).rows[0].n)).toBe(total);
  });

  it("a snapshot stored through the other instance is not overwritten by an optimistic commit", async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    const v2 = okId(await syncA.addVersion(clientId, v1, segment)); // a caches: latest v2, no snapshot
    expect((await syncB.addSnapshot(clientId, v2, new Uint8Array([9, 9]))).kind).toBe('accepted');
    // The latest is still v2, as cached; only the snapshot columns tell the row changed.
    const v3 = okId(await syncA.addVersion(clientId, v2, segment));
    const c = await PostgresStorage.open(schema.uri);
    try {
      const client = await withTxn(c, clientId, (txn) => txn.getClient());
      expect(client?.latestVersionId).toBe(v3);
      expect(client?.snapshot).toMatchObject({ versionId: v2, versionsSince: 1 });
    } finally {
      await c.close();
    }
    expect(await syncA.getSnapshot(clientId)).toEqual({ versionId: v2, data: new Uint8Array([9, 9]) });
  });

  it('a client deleted through the other instance is not written to, and is answered as deleted', async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    await remember(a);
    expect(await b.deleteClient(clientId)).toBe(true);
    const err = await errorOf(syncA.addVersion(clientId, v1, segment));
    expect(isTcsyncError(err, 'CLIENT_DELETED')).toBe(true);
    expect(Number((await sql('SELECT count(*) AS n FROM versions')).rows[0].n)).toBe(0);
  });

  it('a raw optimistic transaction on a stale row fails with TXN_STALE at commit and writes nothing; withTxn hides it', async () => {
    const v0 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    const v1 = okId(await syncA.addVersion(clientId, v0, segment)); // a caches latest = v1
    const v2 = okId(await syncB.addVersion(clientId, v1, segment));
    const txn = await a.txn(clientId, { optimistic: true });
    expect((await txn.getClient())?.latestVersionId).toBe(v1); // the cached row, unchecked so far
    await txn.addVersion(parseClientId(randomUUID()) as unknown as VersionId, v1, segment);
    expect(isTcsyncError(await errorOf(txn.commit()), 'TXN_STALE')).toBe(true);
    expect(await chain()).toEqual([v2, v1, v0]);
    // The stale row was dropped: the next transaction reads the database.
    const again = await a.txn(clientId, { optimistic: true });
    expect((await again.getClient())?.latestVersionId).toBe(v2);
    await again.rollback();
    // A read-only transaction on a stale row fails its commit the same way.
    const v3 = okId(await syncB.addVersion(clientId, v2, segment));
    const reader = await a.txn(clientId, { optimistic: true });
    expect((await reader.getClient())?.latestVersionId).toBe(v2);
    expect(isTcsyncError(await errorOf(reader.commit()), 'TXN_STALE')).toBe(true);
    expect(await withTxn(a, clientId, async (t) => (await t.getClient())?.latestVersionId)).toBe(v3);
  });

  it('without the option a transaction is pessimistic: it reads the database under the lock', async () => {
    const v1 = okId(await syncA.addVersion(clientId, NIL_VERSION_ID, segment));
    const v2 = okId(await syncB.addVersion(clientId, v1, segment));
    const txn = await a.txn(clientId);
    expect((await txn.getClient())?.latestVersionId).toBe(v2);
    await txn.rollback();
  });
});
