/**
 * PostgresStorage when the database misbehaves, over a real server: a transaction whose
 * connection is killed fails with STORAGE_UNAVAILABLE and leaves nothing, and the pool goes on
 * with new connections; a lock held too long is LOCK_TIMEOUT; a commit the database rolls back as
 * a deadlock is run again and lands.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isTcsyncError } from '../../../src/errors.js';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId } from '../../../src/ids.js';
import { PostgresStorage } from '../../../src/storage/postgres/postgres-storage.js';
import { withTxn } from '../../../src/storage/storage.js';
import { adminQuery, describePostgres, freshSchema } from '../../support/postgres.js';

/** The client's lock as tcsync takes it (database.ts), for another session to hold. */
const LOCK_CLIENT = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || $1, 0))";

describePostgres('PostgresStorage faults', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let storage: PostgresStorage;
  let clientId: ClientId;
  /** Names this test's connections in pg_stat_activity, apart from everyone else's. */
  let appName: string;

  beforeEach(async () => {
    schema = await freshSchema();
    appName = `tcsync_fault_${randomUUID().slice(0, 8)}`;
    const url = new URL(schema.uri);
    url.searchParams.set('application_name', appName);
    storage = await PostgresStorage.open(url.toString());
    clientId = parseClientId(randomUUID());
    await withTxn(storage, clientId, (txn) => txn.newClient(NIL_VERSION_ID));
  });
  afterEach(async () => {
    await storage.close();
    await schema.drop();
  });

  const latest = () => withTxn(storage, clientId, async (txn) => (await txn.getClient())!.latestVersionId);

  it('a transaction whose connection is killed fails with STORAGE_UNAVAILABLE, leaves nothing, and the next one works', async () => {
    const txn = await storage.txn(clientId);
    await txn.addVersion(newVersionId(), NIL_VERSION_ID, new Uint8Array([1]));
    const killed = await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName]);
    expect(killed.rowCount).toBeGreaterThan(0);
    const err = await txn.commit().then(() => null, (e: unknown) => e);
    expect(isTcsyncError(err, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(await latest()).toBe(NIL_VERSION_ID);
    const id = newVersionId();
    await withTxn(storage, clientId, (t) => t.addVersion(id, NIL_VERSION_ID, new Uint8Array([2])));
    expect(await latest()).toBe(id);
  });

  it("a transaction that waits for the client's lock past lockTimeoutMs fails with LOCK_TIMEOUT, and the lock is taken once free", async () => {
    const impatient = await PostgresStorage.open(schema.uri, { lockTimeoutMs: 200 });
    const other = new pg.Client({ connectionString: schema.uri });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(LOCK_CLIENT, [clientId]);
      const err = await impatient.txn(clientId).then((t) => t.rollback(), (e: unknown) => e);
      expect(isTcsyncError(err, 'LOCK_TIMEOUT')).toBe(true);
      await other.query('COMMIT');
      expect(await withTxn(impatient, clientId, async (txn) => (await txn.getClient())?.latestVersionId)).toBe(NIL_VERSION_ID);
    } finally {
      await other.end();
      await impatient.close();
    }
  });

  it('a commit rolled back as a deadlock is run again under the lock and lands', async () => {
    // Another session holds the client's row and will ask for the client's lock: a cycle with a
    // commit that holds the lock and waits for the row.
    const other = new pg.Client({ connectionString: schema.uri });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM clients WHERE client_id = $1 FOR UPDATE', [clientId]);
      const txn = await storage.txn(clientId);
      const id = newVersionId();
      await txn.addVersion(id, NIL_VERSION_ID, new Uint8Array([3]));
      const committed = txn.commit();
      // Once the commit waits for the row, close the cycle. PostgreSQL ends the deadlock by
      // failing the session whose deadlock_timeout runs out first: the commit's, which waited first.
      while ((await adminQuery("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [appName])).rowCount === 0) {
        await setTimeout(10);
      }
      await other.query(LOCK_CLIENT, [clientId]);
      await other.query('COMMIT');
      await committed;
      expect(await latest()).toBe(id);
    } finally {
      await other.end();
    }
  });
});
