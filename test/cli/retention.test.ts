/**
 * `serve --prune-days 0`: soon after a client stores a snapshot, the versions it covers are gone.
 * A pruned parent answers 410 over HTTP and VersionGone in GraphQL, the snapshot's version still
 * leads to its child, `versions` ends at the cut, and /metrics counts what went; a client
 * without a snapshot keeps everything. Over a real socket to a spawned server, on each storage.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../support/http-request.js';
import { describePostgres, freshSchema } from '../support/postgres.js';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { spawnServer, type SpawnedServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

/** Polls `check` until it holds, for up to `ms`. */
async function until(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function gql(url: string, query: string) {
  const answer = await httpRequest(`${url}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const body = JSON.parse(answer.text);
  expect(body.errors).toBeUndefined();
  return body.data;
}

/** The scenario, on a server started with --prune-days 0. */
async function prunesWhatTheSnapshotCovers(server: SpawnedServer): Promise<void> {
  const client = new ProtocolClient(server.url);
  const ids = await client.addChain(NIL, 5);
  const untouched = new ProtocolClient(server.url);
  const kept = await untouched.addChain(NIL, 3);

  const started = Date.now();
  expect((await client.addSnapshot(ids[2]!, 'snapshot of three')).status).toBe(200);
  await until(async () => (await client.getChildVersion(ids[0]!)).status === 410);
  expect(Date.now() - started).toBeLessThan(10_000);

  for (const parent of [NIL, ids[0]!, ids[1]!]) expect((await client.getChildVersion(parent)).status, parent).toBe(410);
  const child = await client.getChildVersion(ids[2]!);
  expect(child.status).toBe(200);
  expect(child.headers['x-version-id']).toBe(ids[3]);
  expect((await client.getChildVersion(ids[4]!)).status).toBe(404);
  const snapshot = await client.getSnapshot();
  expect([snapshot.status, snapshot.headers['x-version-id'], snapshot.text]).toEqual([200, ids[2], 'snapshot of three']);

  const data = await gql(
    server.url,
    `{ client(id: "${client.clientId}") {
      gone: childVersion(parentVersionId: "${ids[1]}") { __typename ... on VersionGone { parentVersionId } }
      next: childVersion(parentVersionId: "${ids[2]}") { __typename ... on Version { id } }
      pruned: version(id: "${ids[2]}") { id }
      versions(first: 10) { edges { node { id } } pageInfo { hasNextPage } }
      usage { versions } } }`,
  );
  expect(data.client).toEqual({
    gone: { __typename: 'VersionGone', parentVersionId: ids[1] },
    next: { __typename: 'Version', id: ids[3] },
    pruned: null,
    versions: { edges: [{ node: { id: ids[4] } }, { node: { id: ids[3] } }], pageInfo: { hasNextPage: false } },
    usage: { versions: 2 },
  });

  // The client goes on from where it was, and one without a snapshot lost nothing.
  expect((await client.addVersion(ids[4]!, 'more')).status).toBe(200);
  expect(await untouched.walk()).toEqual(kept);
  const metrics = (await httpRequest(`${server.url}/metrics`)).text;
  expect(metrics).toMatch(/^tcsync_retention_pruned_versions_total 3$/m);
}

const servers: SpawnedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

describe('serve --prune-days 0 on a data directory', () => {
  it('prunes what a new snapshot covers within seconds; pruned parents answer 410 and VersionGone', async () => {
    const dir = await makeTempDir();
    try {
      const server = await spawnServer(dir, { args: ['--prune-days', '0'] });
      servers.push(server);
      await prunesWhatTheSnapshotCovers(server);
    } finally {
      await Promise.all(servers.splice(0).map((server) => server.stop()));
      await removeDir(dir);
    }
  });
});

describePostgres('serve --prune-days 0 on PostgreSQL', () => {
  it('prunes what a new snapshot covers within seconds; pruned parents answer 410 and VersionGone', async () => {
    const schema = await freshSchema();
    try {
      const server = await spawnServer({ connection: schema.uri }, { args: ['--prune-days', '0'] });
      servers.push(server);
      await prunesWhatTheSnapshotCovers(server);
    } finally {
      await Promise.all(servers.splice(0).map((server) => server.stop()));
      await schema.drop();
    }
  });
});

describe('serve without --prune-days', () => {
  it('keeps every version and shows no retention counter', async () => {
    const dir = await makeTempDir();
    try {
      const server = await spawnServer(dir);
      servers.push(server);
      const client = new ProtocolClient(server.url);
      const ids = await client.addChain(NIL, 3);
      expect((await client.addSnapshot(ids[1]!, 'snapshot')).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(await client.walk()).toEqual(ids);
      expect((await httpRequest(`${server.url}/metrics`)).text).not.toContain('tcsync_retention');
    } finally {
      await Promise.all(servers.splice(0).map((server) => server.stop()));
      await removeDir(dir);
    }
  });
});
