/**
 * The floor of an add-version on PostgreSQL: the database work of tcsync's PostgresStorage and
 * nothing else (no HTTP server, no routing, no sync logic), run as its own process. Each of
 * WRITERS loops COUNT times adding a 1 KiB version on a client of its own, created (and one
 * version added, for the connections and their prepared statements) before the clock starts.
 * MODE `raw`: one node-postgres Client per writer, in pipeline mode, sending what PostgresStorage
 * sends for an add-version on a client whose row it remembers (its optimistic commit): BEGIN, the
 * client's advisory lock, the compare-and-set UPDATE of clients with the INSERT into versions,
 * COMMIT, in one write, the texts built by the storage's own code (LOCK_CLIENT,
 * addVersionIfUnchanged), each a named statement. MODE `storage`: PostgresStorage itself through
 * withTxn (getClient, addVersion, commit), with its default pool of 10 connections as serve has.
 * MODE `minimal`: only an UPDATE-and-INSERT statement, in a transaction of its own and without
 * the lock: the least an add-version on these tables can cost.
 * Usage: node pg-floor.js URI raw|storage|minimal WRITERS COUNT; prints `{"rate": commits per second, "p50": ms}`.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { NIL_VERSION_ID, newVersionId, type ClientId, type VersionId } from '../dist/ids.js';
import { LOCK_CLIENT, type Query } from '../dist/storage/postgres/database.js';
import { PostgresStorage } from '../dist/storage/postgres/postgres-storage.js';
import { addVersionIfUnchanged, writeChanges } from '../dist/storage/postgres/queries.js';
import { CLIENT_QUERY, clientFromRow, rowAfterAdd, type ClientRow } from '../dist/storage/postgres/rows.js';
import { withTxn, type Client } from '../dist/storage/storage.js';

const [uri = '', mode = 'raw', writers = '1', count = '500'] = process.argv.slice(2);
const SEGMENT = Buffer.alloc(1024, 42);

/** One add-version of `clientId`: how the writer does it, as a function of nothing but the client. */
type AddVersion = (clientId: ClientId) => Promise<void>;

/** The statements' names, one per text, as PostgresStorage names the statements it prepares. */
const names = new Map<string, string>();

/** A writer on a Client of its own, sending what PostgresStorage sends, in the same round trips. */
async function rawWriter(): Promise<{ add: AddVersion; end: () => Promise<void> }> {
  const conn = new pg.Client({ connectionString: uri, pipeline: true });
  await conn.connect();
  /** Sends `statements` at once, corked into one write, as Session does. */
  const send = async (statements: ReadonlyArray<readonly [string, unknown[]?]>): Promise<pg.QueryResult[]> => {
    const stream = (conn as Partial<{ connection: { stream: NodeJS.WritableStream & { cork(): void; uncork(): void } } }>).connection?.stream;
    stream?.cork();
    const sent = statements.map(([text, values]) => {
      if (text === 'BEGIN' || text === 'COMMIT') return conn.query(text);
      if (!names.has(text)) names.set(text, `floor_${names.size + 1}`);
      return conn.query({ name: names.get(text), text, values });
    });
    stream?.uncork();
    return Promise.all(sent);
  };
  const query: Query = async (text, values) => (await send([[text, values]]))[0] as never;
  // What a replica's add-version costs PostgresStorage once it knows the client's row (its
  // optimistic commit): BEGIN, the client's lock and the compare-and-set UPDATE with the INSERT
  // (the storage's own statement), then COMMIT, in one write and one round trip.
  const rows = new Map<ClientId, ClientRow>();
  const rowOf = async (clientId: ClientId): Promise<ClientRow> =>
    rows.get(clientId) ?? ((await send([[CLIENT_QUERY, [clientId]]]))[0]!.rows[0] as ClientRow);
  const add: AddVersion = async (clientId) => {
    const read = await rowOf(clientId);
    const before = clientFromRow(read);
    const versionId = newVersionId();
    const changes = { before, after: { ...before, latestVersionId: versionId }, versions: [{ versionId, parentVersionId: before.latestVersionId, historySegment: SEGMENT }], snapshotData: null };
    const cas = addVersionIfUnchanged(clientId, read, changes);
    const [, , written] = await send([['BEGIN'], [LOCK_CLIENT, [clientId]], [cas.text, cas.values], ['COMMIT']]);
    if (written?.rowCount !== 1) throw new Error('the client row changed under the floor');
    rows.set(clientId, rowAfterAdd(read, changes.after));
  };
  // The least any add-version on these tables can ask: the same UPDATE and INSERT as one
  // statement in a transaction of its own, no lock (the writer knows its client's latest
  // version, having written it).
  const latest = new Map<ClientId, Client>();
  const minimal: AddVersion = async (clientId) => {
    const before = latest.get(clientId) ?? { latestVersionId: NIL_VERSION_ID, snapshot: null };
    const versionId = newVersionId();
    const after = { ...before, latestVersionId: versionId };
    await writeChanges(query, clientId, { before, after, versions: [{ versionId, parentVersionId: before.latestVersionId, historySegment: SEGMENT }], snapshotData: null }, query);
    latest.set(clientId, after);
  };
  return { add: mode === 'minimal' ? minimal : add, end: () => conn.end() };
}

/** An add-version as the sync service's does it, on the storage's transaction. */
function storageAdd(storage: PostgresStorage): AddVersion {
  return (clientId) =>
    withTxn(storage, clientId, async (txn) => {
      const client = await txn.getClient();
      await txn.addVersion(newVersionId(), (client?.latestVersionId ?? NIL_VERSION_ID) as VersionId, SEGMENT);
    });
}

const storage = await PostgresStorage.open(uri);
const clients = Array.from({ length: Number(writers) }, () => crypto.randomUUID() as ClientId);
for (const id of clients) await withTxn(storage, id, (txn) => txn.newClient(NIL_VERSION_ID));
const onStorage = mode === 'storage';
const raw = onStorage ? [] : await Promise.all(clients.map(() => rawWriter()));
if (!onStorage) await storage.close();
const adds = onStorage ? clients.map(() => storageAdd(storage)) : raw.map((w) => w.add);
await Promise.all(clients.map((id, i) => adds[i]!(id)));

const latencies: number[] = [];
const started = performance.now();
await Promise.all(clients.map(async (id, i) => {
  for (let n = 0; n < Number(count); n++) {
    const begun = performance.now();
    await adds[i]!(id);
    latencies.push(performance.now() - begun);
  }
}));
const seconds = (performance.now() - started) / 1000;
for (const w of raw) await w.end();
if (onStorage) await storage.close();
latencies.sort((a, b) => a - b);
console.log(JSON.stringify({ rate: latencies.length / seconds, p50: latencies[Math.floor(latencies.length / 2)] }));
