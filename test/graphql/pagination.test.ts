/**
 * Connections: cursors are node ids; versions() walks history newest first from the latest (or
 * from the parent of `after`); clients() lists ids above `after` ascending; `first` is 0..1000.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectData, expectErrorCode } from './support/expect-error.js';
import { ADMIN_TOKEN, startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { CountingStorage } from './support/counting-storage.js';
import { addChain, newClientId } from './support/ops.js';

let server: TestServer;
let clientId: string;
let chain: string[];

beforeAll(async () => {
  server = await startGraphqlServer();
  clientId = newClientId();
  chain = await addChain(server, clientId, 120);
});
afterAll(() => server.close());

const VERSIONS = `query($id: UUID!, $first: Int, $after: UUID) {
  client(id: $id) { versions(first: $first, after: $after) { edges { cursor node { id parentVersionId } } pageInfo { hasNextPage endCursor } } }
}`;

async function versions(variables: { first?: number; after?: string }) {
  return expectData(await server.gql(VERSIONS, { id: clientId, ...variables })).client.versions;
}

const newestFirst = () => [...chain].reverse();

describe('Client.versions', () => {
  test('defaults to the 50 newest, newest first, cursor = node id', async () => {
    const page = await versions({});
    expect(page.edges.map((e: { cursor: string }) => e.cursor)).toEqual(newestFirst().slice(0, 50));
    for (const edge of page.edges) expect(edge.cursor).toBe(edge.node.id);
    expect(page.pageInfo).toEqual({ hasNextPage: true, endCursor: newestFirst()[49] });
  });

  test('pages through the whole history by endCursor, each page starting at the parent of `after`', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await versions({ first: 50, ...(after ? { after } : {}) });
      seen.push(...page.edges.map((e: { cursor: string }) => e.cursor));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(newestFirst());
  });

  test('hasNextPage is false on a page that ends exactly at the first version', async () => {
    const page = await versions({ first: 20, after: chain[20] });
    expect(page.edges).toHaveLength(20);
    expect(page.pageInfo).toEqual({ hasNextPage: false, endCursor: chain[0] });
  });

  test('an empty page has endCursor null', async () => {
    expect(await versions({ after: chain[0] })).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
    const empty = newClientId();
    expectData(await server.gql(`mutation { createClient(id: "${empty}") { id } }`));
    const page = expectData(await server.gql(VERSIONS, { id: empty })).client.versions;
    expect(page).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });

  test('first: 0 answers no edges and whether there is anything', async () => {
    expect(await versions({ first: 0 })).toEqual({ edges: [], pageInfo: { hasNextPage: true, endCursor: null } });
  });

  test('first: 1000 is accepted; 1001 and negative values are BAD_USER_INPUT', async () => {
    expect((await versions({ first: 1000 })).edges).toHaveLength(120);
    for (const first of [1001, 1_000_000_000, -1]) {
      const res = await server.gql(VERSIONS, { id: clientId, first });
      expect(expectErrorCode(res, 'BAD_USER_INPUT').message).toMatch(/first/);
    }
  });

  test('an explicit `first: null` is BAD_USER_INPUT, not the default', async () => {
    expect(expectErrorCode(await server.gql(VERSIONS, { id: clientId, first: null }), 'BAD_USER_INPUT').message).toMatch(/null/);
  });

  test('an `after` that is not a version of this client is BAD_USER_INPUT', async () => {
    const [foreign] = await addChain(server, newClientId(), 1);
    expectErrorCode(await server.gql(VERSIONS, { id: clientId, after: foreign }), 'BAD_USER_INPUT');
  });
});

describe('Query.clients', () => {
  const CLIENTS = `query($first: Int, $after: UUID) { clients(first: $first, after: $after) {
    edges { cursor node { id latestVersionId } } pageInfo { hasNextPage endCursor } } }`;

  test('lists ids above `after` in ascending order, page by page', async () => {
    const fresh = await startGraphqlServer();
    try {
      const ids = Array.from({ length: 7 }, () => newClientId()).reverse();
      for (const id of ids) expectData(await fresh.gql(`mutation { createClient(id: "${id}") { id } }`));
      const sorted = [...ids].sort();
      const list = async (variables: Record<string, unknown>) => expectData(await fresh.gql(CLIENTS, variables, { token: ADMIN_TOKEN })).clients;

      const all = await list({});
      expect(all.edges.map((e: { cursor: string }) => e.cursor)).toEqual(sorted);
      for (const edge of all.edges) expect(edge.node).toEqual({ id: edge.cursor, latestVersionId: '00000000-0000-0000-0000-000000000000' });
      expect(all.pageInfo).toEqual({ hasNextPage: false, endCursor: sorted[6] });

      const first = await list({ first: 3 });
      expect(first.pageInfo).toEqual({ hasNextPage: true, endCursor: sorted[2] });
      const second = await list({ first: 3, after: first.pageInfo.endCursor.toUpperCase() });
      expect(second.edges.map((e: { cursor: string }) => e.cursor)).toEqual(sorted.slice(3, 6));
      const last = await list({ first: 3, after: sorted[5] });
      expect(last.edges.map((e: { cursor: string }) => e.cursor)).toEqual([sorted[6]]);
      expect(last.pageInfo.hasNextPage).toBe(false);
      // `after` need not be an existing id: it is a position in the id order.
      expect(await list({ after: 'ffffffff-ffff-ffff-ffff-ffffffffffff' })).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });

      for (const bad of [1001, -5]) expectErrorCode(await fresh.gql(CLIENTS, { first: bad }, { token: ADMIN_TOKEN }), 'BAD_USER_INPUT');
      expect((await list({ first: 1000 })).edges).toHaveLength(7);
    } finally {
      await fresh.close();
    }
  });
});

test('versions() loads at most one version more than its page, however long the history', async () => {
  const storage = new CountingStorage();
  const counted = await startGraphqlServer({ storage });
  try {
    const id = newClientId();
    const ids = await addChain(counted, id, 300);
    storage.versionLoads = 0;
    const page = expectData(await counted.gql(VERSIONS, { id, first: 10, after: ids[200] })).client.versions;
    expect(page.edges).toHaveLength(10);
    // `after` itself, the ten versions, and one look at the next to answer hasNextPage.
    expect(storage.versionLoads).toBe(12);
  } finally {
    await counted.close();
  }
});
