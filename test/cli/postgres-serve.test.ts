/**
 * `serve --connection` at start: an unreachable database or a schema from a newer tcsync is
 * exit 1 with a message, a data dir as well is exit 2, and a database laid out by upstream's
 * schema.sql, holding what upstream wrote, is served as it is and stays readable by upstream.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterEach, beforeEach, expect, it } from 'vitest';
import pg from 'pg';
import { describePostgres, freshSchema } from '../support/postgres.js';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { cleanEnv, CLI, spawnServer } from '../support/spawn-server.js';

const UPSTREAM_SCHEMA = new URL('../fixtures/upstream-postgres-schema.sql', import.meta.url);

/** Runs `serve` expecting it to exit before listening: its code and stderr. */
async function serveFails(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await promisify(execFile)(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', ...args], { env: cleanEnv(), timeout: 60_000 });
    throw new Error('serve exited 0');
  } catch (err) {
    const failed = err as { code?: number; stderr?: string };
    return { code: failed.code ?? -1, stderr: failed.stderr ?? '' };
  }
}

describePostgres('serve --connection at start', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let db: pg.Client;
  beforeEach(async () => {
    schema = await freshSchema();
    db = new pg.Client({ connectionString: schema.uri });
    await db.connect();
  });
  afterEach(async () => {
    await db.end();
    await schema.drop();
  });

  it('exits 1 with a message when the database cannot be reached', async () => {
    // A port nobody listens on: taken, then given back.
    const probe = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => probe.once('listening', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const { code, stderr } = await serveFails(['--connection', `postgresql://nobody:secret@127.0.0.1:${port}/none`]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/tcsync serve: .*database unreachable/);
    expect(stderr).not.toContain('secret');
  });

  it('exits 2 when a data dir is given as well', async () => {
    expect((await serveFails(['--connection', schema.uri, '--data-dir', '/tmp/none'])).code).toBe(2);
  });

  it('exits 1 on a database laid out by a newer tcsync, and leaves it alone', async () => {
    await db.query('CREATE TABLE tcsync_schema (version INTEGER NOT NULL)');
    await db.query('INSERT INTO tcsync_schema VALUES (99)');
    const { code, stderr } = await serveFails(['--connection', schema.uri]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/schema version 99/);
    const tables = await db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", [schema.schema]);
    expect(tables.rows.map((r: { table_name: string }) => r.table_name)).toEqual(['tcsync_schema']);
  });

  it("serves a database laid out by upstream's schema.sql as it is, and upstream can read what it wrote", async () => {
    await db.query(await readFile(UPSTREAM_SCHEMA, 'utf8'));
    const columns = () =>
      db.query(
        `SELECT table_name, column_name, data_type, column_default, is_nullable FROM information_schema.columns
         WHERE table_schema = $1 AND table_name IN ('clients', 'versions') ORDER BY table_name, ordinal_position`,
        [schema.schema],
      );
    const before = (await columns()).rows;

    // What upstream's storage writes: a client, a chain of three versions, a snapshot of the second.
    const clientId = randomUUID();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await db.query('INSERT INTO clients (client_id, latest_version_id) VALUES ($1, $2)', [clientId, NIL]);
    for (const [i, id] of ids.entries()) {
      await db.query('INSERT INTO versions (version_id, client_id, parent_version_id, history_segment) VALUES ($1, $2, $3, $4)', [
        id,
        clientId,
        ids[i - 1] ?? NIL,
        Buffer.from(`upstream segment ${i}`),
      ]);
      await db.query('UPDATE clients SET latest_version_id = $1, versions_since_snapshot = versions_since_snapshot + 1 WHERE client_id = $2', [id, clientId]);
    }
    await db.query(
      'UPDATE clients SET snapshot_version_id = $1, versions_since_snapshot = $2, snapshot_timestamp = $3, snapshot = $4 WHERE client_id = $5',
      [ids[1], 1, Math.floor(Date.now() / 1000), Buffer.from('upstream snapshot'), clientId],
    );

    const server = await spawnServer({ connection: schema.uri });
    try {
      const client = new ProtocolClient(server.url, clientId);
      expect(await client.walk()).toEqual(ids);
      const second = await client.getChildVersion(ids[0]!);
      expect(second.text).toBe('upstream segment 1');
      const snapshot = await client.getSnapshot();
      expect([snapshot.status, snapshot.headers['x-version-id'], snapshot.text]).toEqual([200, ids[1], 'upstream snapshot']);
      const added = await client.addVersion(ids[2]!, 'tcsync segment');
      expect(added.status).toBe(200);
      const newId = added.headers['x-version-id'] as string;
      expect((await client.addSnapshot(newId, 'tcsync snapshot')).status).toBe(200);

      // Upstream's columns are untouched, and its queries find what tcsync wrote.
      expect((await columns()).rows).toEqual(before);
      const row = await db.query('SELECT latest_version_id, snapshot_version_id, versions_since_snapshot, snapshot_timestamp, snapshot FROM clients WHERE client_id = $1', [clientId]);
      expect(row.rows[0]).toMatchObject({ latest_version_id: newId, snapshot_version_id: newId, versions_since_snapshot: 0, snapshot: Buffer.from('tcsync snapshot') });
      // Whole seconds, as upstream reads the column.
      expect(Math.abs(Number(row.rows[0].snapshot_timestamp) - Date.now() / 1000)).toBeLessThan(3600);
      const version = await db.query('SELECT parent_version_id, history_segment FROM versions WHERE client_id = $1 AND version_id = $2', [clientId, newId]);
      expect(version.rows[0]).toEqual({ parent_version_id: ids[2], history_segment: Buffer.from('tcsync segment') });
    } finally {
      await server.stop();
    }
  });
});
