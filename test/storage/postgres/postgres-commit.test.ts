/**
 * PostgresTxn's short ways, over a real server: the client is read in BEGIN's round trip, right
 * after the lock, and an add-version is written and committed in one; the versions' primary key,
 * not a read before, refuses a stored version id. Each must keep what the long way guaranteed.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isTcsyncError } from '../../../src/errors.js';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../../src/ids.js';
import { PostgresStorage } from '../../../src/storage/postgres/postgres-storage.js';
import { withTxn } from '../../../src/storage/storage.js';
import { describePostgres, freshSchema } from '../../support/postgres.js';

describePostgres('PostgresTxn commits', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let storage: PostgresStorage;
  let clientId: ClientId;

  beforeEach(async () => {
    schema = await freshSchema();
    storage = await PostgresStorage.open(schema.uri);
    clientId = parseClientId(randomUUID());
    await withTxn(storage, clientId, (txn) => txn.newClient(NIL_VERSION_ID));
  });
  afterEach(async () => {
    await storage.close();
    await schema.drop();
  });

  const errorOf = (promise: Promise<unknown>) => promise.then(() => null, (e: unknown) => e);
  const add = (s: PostgresStorage, id: VersionId, parent: VersionId) => withTxn(s, clientId, (txn) => txn.addVersion(id, parent, new Uint8Array([1, 2, 3])));
  const latest = () => withTxn(storage, clientId, async (txn) => (await txn.getClient())!.latestVersionId);
  const versionCount = async () => {
    const conn = new pg.Client({ connectionString: schema.uri });
    await conn.connect();
    try {
      return Number((await conn.query('SELECT count(*) AS n FROM versions')).rows[0].n);
    } finally {
      await conn.end();
    }
  };

  it('a stored version id is VERSION_EXISTS at commit and leaves nothing; the next commit lands', async () => {
    const v1 = newVersionId();
    await add(storage, v1, NIL_VERSION_ID);
    const v2 = newVersionId();
    await add(storage, v2, v1);
    // v1 again as a child of the latest: only the primary key can tell.
    const err = await errorOf(add(storage, v1, v2));
    expect(isTcsyncError(err, 'VERSION_EXISTS')).toBe(true);
    expect(await latest()).toBe(v2);
    expect(await versionCount()).toBe(2);
    const v3 = newVersionId();
    await add(storage, v3, v2);
    expect(await latest()).toBe(v3);
  });

  it("a version id stored for another client is no hindrance (the key is the client's and the version's)", async () => {
    const shared = newVersionId();
    await add(storage, shared, NIL_VERSION_ID);
    const other = parseClientId(randomUUID());
    await withTxn(storage, other, async (txn) => {
      await txn.newClient(NIL_VERSION_ID);
      await txn.addVersion(shared, NIL_VERSION_ID, new Uint8Array([9]));
    });
    expect(await withTxn(storage, other, async (txn) => (await txn.getClient())?.latestVersionId)).toBe(shared);
  });

  it('a version id staged twice in one transaction is still VERSION_EXISTS at once', async () => {
    const v1 = newVersionId();
    const err = await errorOf(
      withTxn(storage, clientId, async (txn) => {
        await txn.addVersion(v1, NIL_VERSION_ID, new Uint8Array([1]));
        await txn.addVersion(v1, v1, new Uint8Array([2]));
      }),
    );
    expect(isTcsyncError(err, 'VERSION_EXISTS')).toBe(true);
    expect(await latest()).toBe(NIL_VERSION_ID);
  });

  it("a transaction that waited for another process's lock reads what that one committed, all of it", async () => {
    const other = await PostgresStorage.open(schema.uri);
    try {
      const v1 = newVersionId();
      await add(storage, v1, NIL_VERSION_ID);
      const holder = await other.txn(clientId);
      expect((await holder.getClient())?.latestVersionId).toBe(v1);
      let begun = false;
      const waiting = storage.txn(clientId).then((txn) => {
        begun = true;
        return txn;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(begun).toBe(false);
      const v2 = newVersionId();
      await holder.addVersion(v2, v1, new Uint8Array([7]));
      await holder.commit();
      const reader = await waiting;
      try {
        // The client row and the versions, read in different statements, agree with the commit.
        expect((await reader.getClient())?.latestVersionId).toBe(v2);
        expect((await reader.getVersionByParent(v1))?.versionId).toBe(v2);
        expect(await reader.getVersion(v2)).not.toBeNull();
      } finally {
        await reader.rollback();
      }
    } finally {
      await other.close();
    }
  });

  it('a read transaction sees one state while another process keeps committing without waiting for it', async () => {
    // The other process cannot commit while the reader holds the lock: its commits queue behind.
    const other = await PostgresStorage.open(schema.uri);
    try {
      let parent: VersionId = NIL_VERSION_ID;
      for (let i = 0; i < 3; i++) {
        const id = newVersionId();
        await add(storage, id, parent);
        parent = id;
      }
      const reader = await storage.txn(clientId);
      const seen = (await reader.getClient())!.latestVersionId;
      let landed = false;
      const writer = (async () => {
        const id = newVersionId();
        await add(other, id, seen);
        landed = true;
        return id;
      })();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await reader.getVersionByParent(seen)).toBeNull();
      expect((await reader.getClient())?.latestVersionId).toBe(seen);
      expect(landed).toBe(false);
      await reader.commit();
      const added = await writer;
      expect(await latest()).toBe(added);
    } finally {
      await other.close();
    }
  });

  it('a row changed by a program that takes no lock fails the commit as LOCK_LOST and writes nothing', async () => {
    const v1 = newVersionId();
    await add(storage, v1, NIL_VERSION_ID);
    const txn = await storage.txn(clientId);
    await txn.getClient();
    const foreign = newVersionId();
    const conn = new pg.Client({ connectionString: schema.uri });
    await conn.connect();
    try {
      await conn.query('UPDATE clients SET latest_version_id = $1 WHERE client_id = $2', [foreign, clientId]);
    } finally {
      await conn.end();
    }
    await txn.addVersion(newVersionId(), v1, new Uint8Array([5]));
    expect(isTcsyncError(await errorOf(txn.commit()), 'LOCK_LOST')).toBe(true);
    expect(await latest()).toBe(foreign);
    expect(await versionCount()).toBe(1);
  });
});
