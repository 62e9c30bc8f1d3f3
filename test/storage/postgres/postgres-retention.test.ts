/**
 * Retention on PostgreSQL beyond the shared conformance suite: added times live in a table of
 * tcsync's own (upstream's `versions` has no column for them), a database of an older tcsync
 * gains it, versions without a time are handled as the rule says, and pruning deletes in short
 * batches, oldest first.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../../src/ids.js';
import { PostgresStorage } from '../../../src/storage/postgres/postgres-storage.js';
import { PRUNE_BATCH } from '../../../src/storage/postgres/postgres-prune.js';
import { SCHEMA_VERSION } from '../../../src/storage/postgres/schema.js';
import { withTxn } from '../../../src/storage/storage.js';
import { describePostgres, freshSchema } from '../../support/postgres.js';

const FUTURE = () => new Date(Date.now() + 24 * 60 * 60 * 1000);

describePostgres('PostgreSQL retention', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let storage: PostgresStorage;
  let db: pg.Client;
  let clientId: ClientId;

  beforeEach(async () => {
    schema = await freshSchema();
    storage = await PostgresStorage.open(schema.uri);
    db = new pg.Client({ connectionString: schema.uri });
    await db.connect();
    clientId = parseClientId(randomUUID());
    await withTxn(storage, clientId, (txn) => txn.newClient(NIL_VERSION_ID));
  });
  afterEach(async () => {
    await db.end();
    await storage.close();
    await schema.drop();
  });

  /** Adds `count` versions in one transaction on top of the latest; returns their ids in order. */
  const chain = (count: number) =>
    withTxn(storage, clientId, async (txn) => {
      const ids: VersionId[] = [];
      let parent = (await txn.getClient())!.latestVersionId;
      for (let i = 0; i < count; i++) {
        const id = newVersionId();
        await txn.addVersion(id, parent, new Uint8Array([i % 256]));
        ids.push(id);
        parent = id;
      }
      return ids;
    });
  const snapshotAt = (versionId: VersionId) =>
    withTxn(storage, clientId, (txn) => txn.setSnapshot({ versionId, timestamp: new Date(), versionsSince: 0 }, new Uint8Array([1])));
  const storedIds = async () => new Set((await db.query('SELECT version_id FROM versions')).rows.map((row) => row.version_id as string));

  it('every added version gets its time, in the statement that inserts it', async () => {
    const [first] = await chain(1);
    // The single add-version goes the one-statement way; three at once go the other.
    await withTxn(storage, clientId, (txn) => txn.addVersion(newVersionId(), first!, new Uint8Array([2])));
    await chain(3);
    const { rows } = await db.query('SELECT (SELECT count(*) FROM versions) AS versions, (SELECT count(*) FROM tcsync_version_added) AS timed');
    expect(rows[0]).toEqual({ versions: '5', timed: '5' });
  });

  it('a database of tcsync schema 1 gains the table; its versions have no time and are pruned only as ancestors of one that has', async () => {
    const before = await chain(3);
    // What a tcsync before retention left: no table of times, schema 1.
    await db.query('DROP TABLE tcsync_version_added');
    await db.query('UPDATE tcsync_schema SET version = 1');
    await storage.close();
    storage = await PostgresStorage.open(schema.uri);
    expect((await db.query('SELECT version FROM tcsync_schema')).rows).toEqual([{ version: SCHEMA_VERSION }]);
    expect(SCHEMA_VERSION).toBe(2);
    expect((await storage.clientUsage(clientId))?.oldestVersionAddedAt).toBeNull();

    await snapshotAt(before[2]!);
    expect(await storage.pruneVersions(clientId, FUTURE())).toBe(0);
    const after = await chain(2);
    // Some versions without a time: the oldest time is not known.
    expect((await storage.clientUsage(clientId))?.oldestVersionAddedAt).toBeNull();
    await snapshotAt(after[0]!);
    expect(await storage.pruneVersions(clientId, FUTURE())).toBe(4);
    expect(await storedIds()).toEqual(new Set([after[1]]));
    expect((await storage.clientUsage(clientId))?.oldestVersionAddedAt).toBeInstanceOf(Date);
  });

  it('a version without a time (written by upstream) between the snapshot and the cut stays; the walk goes on past it', async () => {
    const ids = await chain(4);
    await db.query('DELETE FROM tcsync_version_added WHERE version_id = ANY($1::uuid[])', [[ids[2], ids[3]]]);
    await snapshotAt(ids[3]!);
    expect(await storage.pruneVersions(clientId, FUTURE())).toBe(2);
    expect(await storedIds()).toEqual(new Set([ids[2], ids[3]]));
  });

  it(`deletes more than ${PRUNE_BATCH} versions in batches, oldest first: a reader meanwhile always sees the newer part whole`, async () => {
    const ids = await chain(2 * PRUNE_BATCH + 500);
    await snapshotAt(ids.at(-1)!);
    const position = new Map(ids.map((id, i) => [id as string, i]));
    let done = false;
    const pruning = storage.pruneVersions(clientId, FUTURE()).finally(() => (done = true));
    const seen = new Set<number>();
    while (!done) {
      const kept = [...(await storedIds())].map((id) => position.get(id)!).sort((a, b) => a - b);
      seen.add(kept.length);
      // A suffix of the chain: from some version to the newest, with no gap.
      if (kept.length > 0) expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => ids.length - kept.length + i));
    }
    expect(await pruning).toBe(ids.length);
    expect(await storedIds()).toEqual(new Set());
    expect(Number((await db.query('SELECT count(*) AS n FROM tcsync_version_added')).rows[0].n)).toBe(0);
  });

  it('a database opened without creating tables and lacking the table of times prunes nothing', async () => {
    const ids = await chain(2);
    await snapshotAt(ids[1]!);
    await db.query('DROP TABLE tcsync_version_added');
    const reader = await PostgresStorage.open(schema.uri, { create: false });
    try {
      expect(await reader.pruneVersions(clientId, FUTURE())).toBe(0);
      expect(await reader.clientUsage(clientId)).toMatchObject({ versions: 2, oldestVersionAddedAt: null });
      const exported = await reader.exportClient(clientId, async (client) => {
        const times = [];
        for await (const version of client.versions()) times.push(version.addedAt ?? null);
        return times;
      });
      expect(exported).toEqual([null, null]);
    } finally {
      await reader.close();
    }
  });
});
