/**
 * One `tcsync serve` (built, over a real data dir): the sync protocol and GraphQL on one port
 * share one sync implementation, so each sees what the other wrote, byte for byte; and the
 * mount keeps GraphQL's rules (no-store, 415, admin token, GraphiQL).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ProtocolClient, NIL } from '../support/protocol-client.js';
import { spawnServer, type SpawnedServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';
import { ADD_SNAPSHOT, ADD_VERSION } from './support/ops.js';

const TOKEN = 'serve-admin-token';
let dataDir: string;
let server: SpawnedServer;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function gql(query: string, variables?: Record<string, unknown>, token?: string): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

beforeAll(async () => {
  dataDir = await makeTempDir('tcsync-graphql-');
  server = await spawnServer(dataDir, { args: ['--admin-token', TOKEN, '--snapshot-versions', '3'] });
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  await removeDir(dataDir);
});

describe('written over HTTP, read over GraphQL', () => {
  test('versions, their bytes, the snapshot and the urgency', async () => {
    const replica = new ProtocolClient(server.url);
    const segments = [Buffer.from([1, 0, 255]), Buffer.from('second'), Buffer.from([0x0d, 0x0a])];
    const ids: string[] = [];
    for (const segment of segments) {
      const answer = await replica.addVersion(ids.at(-1) ?? NIL, segment);
      expect(answer.status).toBe(200);
      ids.push(answer.headers['x-version-id'] as string);
    }
    // A snapshot of the second version, stored after the third: versionsSince counts adds since storing.
    expect((await replica.addSnapshot(ids[1] as string, Buffer.from('snap'))).status).toBe(200);

    const res = await gql(`query($id: UUID!) { client(id: $id) {
      id latestVersionId snapshotUrgency
      snapshot { versionId versionsSince data }
      versions { edges { node { id parentVersionId historySegment size } } }
      childVersion(parentVersionId: "${NIL}") { ... on Version { id } }
    } }`, { id: replica.clientId.toUpperCase() });
    expect(res.body.errors).toBeUndefined();
    const client = res.body.data.client;
    expect(client.id).toBe(replica.clientId);
    expect(client.latestVersionId).toBe(ids[2]);
    expect(client.snapshot).toEqual({ versionId: ids[1], versionsSince: 0, data: Buffer.from('snap').toString('base64') });
    expect(client.snapshotUrgency).toBe('NONE');
    expect(client.childVersion.id).toBe(ids[0]);
    expect(client.versions.edges.map((e: { node: unknown }) => e.node)).toEqual(
      [2, 1, 0].map((i) => ({
        id: ids[i],
        parentVersionId: i === 0 ? NIL : ids[i - 1],
        historySegment: (segments[i] as Buffer).toString('base64'),
        size: (segments[i] as Buffer).length,
      })),
    );
  });
});

describe('written over GraphQL, read over HTTP', () => {
  test('a version chain and a snapshot, byte for byte; conflicts agree', async () => {
    const replica = new ProtocolClient(server.url);
    const first = Buffer.from([0, 1, 2, 250]);
    const added = (await gql(ADD_VERSION, { clientId: replica.clientId, parent: NIL, segment: first.toString('base64') })).body.data.addVersion;
    expect(added.__typename).toBe('VersionAdded');

    const child = await replica.getChildVersion(NIL);
    expect(child.status).toBe(200);
    expect(child.headers['x-version-id']).toBe(added.version.id);
    expect(child.body.equals(first)).toBe(true);

    // HTTP adds on top; GraphQL's stale add conflicts with the version HTTP made.
    const [second] = await replica.addChain(added.version.id, 1);
    const stale = (await gql(ADD_VERSION, { clientId: replica.clientId, parent: added.version.id, segment: 'AQ==' })).body.data.addVersion;
    expect(stale).toEqual({ __typename: 'VersionConflict', expectedParentVersionId: second });

    const snapshot = Buffer.from('snapshot bytes');
    expect((await gql(ADD_SNAPSHOT, { clientId: replica.clientId, versionId: second, data: snapshot.toString('base64') })).body.data.addSnapshot.accepted).toBe(true);
    const stored = await replica.getSnapshot();
    expect(stored.status).toBe(200);
    expect(stored.headers['x-version-id']).toBe(second);
    expect(stored.body.equals(snapshot)).toBe(true);
  });

  test('deleteClient leaves a tombstone the sync protocol honours until it is lifted', async () => {
    const replica = new ProtocolClient(server.url);
    const [v1] = await replica.addChain(NIL, 1);
    expect((await gql(`mutation { deleteClient(id: "${replica.clientId}") }`, undefined, TOKEN)).body.data.deleteClient).toBe(true);
    expect((await replica.getChildVersion(NIL)).status).toBe(404);
    expect((await replica.addVersion(v1 as string, 'after delete')).status).toBe(403);
    expect((await gql(`mutation { liftTombstone(id: "${replica.clientId}") }`, undefined, TOKEN)).body.data.liftTombstone).toBe(true);
    expect((await replica.addVersion(NIL, 'fresh start')).status).toBe(200);
  });
});

describe('the mount in tcsync serve', () => {
  test('keeps no-store, 415 for non-JSON posts, the admin token and GraphiQL', async () => {
    const ok = await gql('{ server { version createClients snapshotVersions } }');
    expect(ok.headers.get('cache-control')).toBe('no-store, max-age=0');
    expect(ok.body.data.server).toMatchObject({ createClients: true, snapshotVersions: 3 });

    const form = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'query=%7B__typename%7D' });
    expect(form.status).toBe(415);
    const tooLarge = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array(16 * 1024 * 1024 + 1) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.get('cache-control')).toBe('no-store, max-age=0');

    const refused = await gql('{ clients { edges { cursor } } }', undefined, 'wrong');
    expect(refused.body).toMatchObject({ data: null, errors: [{ extensions: { code: 'FORBIDDEN' } }] });
    expect((await gql('{ clients { edges { cursor } } }', undefined, TOKEN)).body.data.clients.edges.length).toBeGreaterThan(0);

    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('tcsync GraphiQL');
    // Every script is inline: nothing for a browser to fetch from a CDN.
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+stylesheet[^>]+href="http/);
  });
});
