/**
 * Admin operations need `Authorization: Bearer <admin token>`: without it, with a wrong one, or
 * when no token is configured they are refused as a whole (FORBIDDEN, data null, nothing done).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectData, expectErrorCode } from './support/expect-error.js';
import { ADMIN_TOKEN, startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { ADD_VERSION, NIL, newClientId } from './support/ops.js';

let server: TestServer;
beforeAll(async () => {
  server = await startGraphqlServer();
});
afterAll(() => server.close());

const ADMIN_OPERATIONS = [
  ['clients', '{ clients { edges { cursor } } }'],
  ['deleteClient', `mutation { deleteClient(id: "${NIL}") }`],
  ['liftTombstone', `mutation { liftTombstone(id: "${NIL}") }`],
  ['clients through a fragment', '{ ...Admin } fragment Admin on Query { clients { pageInfo { hasNextPage } } }'],
  ['clients through an inline fragment, under @include(if: false)', '{ ... @include(if: false) { clients { pageInfo { hasNextPage } } } }'],
  ['clients under an alias next to a public field', '{ server { version } list: clients { pageInfo { hasNextPage } } }'],
] as const;

function expectRefused(res: Awaited<ReturnType<TestServer['gql']>>): void {
  expect(res.status).toBe(200);
  expectErrorCode(res, 'FORBIDDEN');
  expect(res.body.data).toBeNull();
  expect(res.body.errors).toHaveLength(1);
}

describe.each([
  ['no token', {}],
  ['a wrong token', { token: 'not-the-token' }],
  ['the token with a suffix', { token: `${ADMIN_TOKEN}x` }],
  ['a Basic authorization', { headers: { authorization: `Basic ${ADMIN_TOKEN}` } }],
] as const)('with %s', (_what, auth) => {
  test.each(ADMIN_OPERATIONS)('%s is refused with FORBIDDEN and data null', async (_name, query) => {
    expectRefused(await server.gql(query, undefined, auth));
  });
});

describe('with the right token', () => {
  test.each(ADMIN_OPERATIONS)('%s runs', async (_name, query) => {
    expectData(await server.gql(query, undefined, { token: ADMIN_TOKEN }));
  });

  test('the scheme is case-insensitive, as HTTP says', async () => {
    expectData(await server.gql('{ clients { edges { cursor } } }', undefined, { headers: { authorization: `bearer ${ADMIN_TOKEN}` } }));
  });
});

test('a refused operation has no side effect, even from fields before the admin one', async () => {
  const id = newClientId();
  const res = await server.gql(
    `mutation { addVersion(clientId: "${id}", parentVersionId: "${NIL}", historySegment: "AQ==") { __typename } deleteClient(id: "${id}") }`,
  );
  expectRefused(res);
  expect(expectData(await server.gql(`{ client(id: "${id}") { id } }`)).client).toBeNull();
});

test('an operation that is not run does not count: operationName picks the one that is', async () => {
  const document = 'query Public { server { version } } query Admin { clients { edges { cursor } } }';
  const res = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: document, operationName: 'Public' }),
  });
  expect((await res.json()).data.server.version).toEqual(expect.any(String));
});

test('with no admin token configured, every admin operation is refused, whatever is sent', async () => {
  const tokenless = await startGraphqlServer({ adminToken: null });
  try {
    for (const token of [undefined, '', ADMIN_TOKEN]) {
      for (const [, query] of ADMIN_OPERATIONS) expectRefused(await tokenless.gql(query, undefined, token === undefined ? {} : { token }));
    }
    // The rest of the API works without one.
    expectData(await tokenless.gql(ADD_VERSION, { clientId: newClientId(), parent: NIL, segment: 'AQ==' }));
  } finally {
    await tokenless.close();
  }
});
