/**
 * Every limit of docs/graphql.md's "Limits" section: refused with BAD_USER_INPUT before anything runs
 * (nesting, tokens, depth, aliases, directives, cost) or while resolving (page sizes, load budget).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LIMITS } from '../../src/graphql/limits.js';
import { expectData, expectErrorCode } from './support/expect-error.js';
import { startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { ADD_VERSION, NIL, newClientId } from './support/ops.js';

let server: TestServer;
let clientId: string;
beforeAll(async () => {
  server = await startGraphqlServer();
  clientId = newClientId();
  expectData(await server.gql(`mutation { createClient(id: "${clientId}") { id } }`));
});
afterAll(() => server.close());

describe('static limits', () => {
  test('the GraphiQL introspection query passes every static limit', async () => {
    const { getIntrospectionQuery } = await import('graphql');
    expectData(await server.gql(getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true })));
  });

  test(`more than ${LIMITS.maxTokens} tokens is refused`, async () => {
    const fields = Array.from({ length: LIMITS.maxTokens }, () => '__typename').join(' ');
    const error = expectErrorCode(await server.gql(`{ ${fields} }`), 'BAD_USER_INPUT');
    expect(error.message).toMatch(/token/i);
  });

  test(`depth above ${LIMITS.maxDepth} is refused`, async () => {
    // The schema's deepest natural path is clients > edges > node > versions > edges > node > id (7);
    // inline fragments count as a level each, which lets a valid query go deeper.
    const nested = (levels: number) => {
      let selection = 'version';
      for (let i = 1; i < levels; i++) selection = `... on ServerInfo { ${selection} }`;
      return `{ server { ${selection} } }`;
    };
    expectData(await server.gql(nested(LIMITS.maxDepth - 1)));
    const error = expectErrorCode(await server.gql(nested(LIMITS.maxDepth + 1)), 'BAD_USER_INPUT');
    expect(error.message).toMatch(/depth/i);
  });

  test(`more than ${LIMITS.maxAliases} aliases is refused`, async () => {
    const aliases = (n: number) => Array.from({ length: n }, (_, i) => `a${i}: server { version }`).join(' ');
    expectData(await server.gql(`{ ${aliases(LIMITS.maxAliases)} }`));
    const error = expectErrorCode(await server.gql(`{ ${aliases(LIMITS.maxAliases + 1)} }`), 'BAD_USER_INPUT');
    expect(error.message).toMatch(/alias/i);
  });

  test(`more than ${LIMITS.maxDirectives} directives is refused`, async () => {
    const directives = Array.from({ length: LIMITS.maxDirectives + 1 }, () => '@include(if: true)').join(' ');
    const error = expectErrorCode(await server.gql(`{ server ${directives} { version } }`), 'BAD_USER_INPUT');
    expect(error.message).toMatch(/directive/i);
  });

  test(`a cost above ${LIMITS.maxCost} is refused; one full page of every field is not`, async () => {
    const page = (alias: string) =>
      `${alias}: versions(first: 1000) { edges { cursor node { id parentVersionId historySegment size } } pageInfo { hasNextPage endCursor } }`;
    expectData(await server.gql(`{ client(id: "${clientId}") { ${page('p0')} } }`));
    const pages = Array.from({ length: 3 }, (_, i) => page(`p${i}`)).join(' ');
    const error = expectErrorCode(await server.gql(`{ client(id: "${clientId}") { ${pages} } }`), 'BAD_USER_INPUT');
    expect(error.message).toMatch(/cost/i);
  });

  test('a refused request runs nothing', async () => {
    const id = newClientId();
    const aliases = Array.from({ length: LIMITS.maxAliases + 1 }, (_, i) => `a${i}: addVersion(clientId: "${id}", parentVersionId: "${NIL}", historySegment: "AQ==") { __typename }`).join(' ');
    expectErrorCode(await server.gql(`mutation { ${aliases} }`), 'BAD_USER_INPUT');
    expect(expectData(await server.gql(`{ client(id: "${id}") { id } }`)).client).toBeNull();
  });
});

describe('nesting', () => {
  const nestedList = (depth: number, leaf: string) => `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;
  /** `{ client(id: [[…"x"…]]) { id } }`: the braces and the parenthesis nest 2 besides the lists. */
  const clientWithListId = (depth: number) => `{ client(id: ${nestedList(depth - 2, '"x"')}) { id } }`;

  test.each([
    ['a ~4 KB argument of lists nested 2000 deep', clientWithListId(2000)],
    ['an argument of lists nested 100,000 deep', clientWithListId(100_000)],
    ['a variable default nested 3000 deep', `query Q($x: Int = ${nestedList(3000, '1')}) { __typename }`],
    ['an object value nested 3000 deep', `{ client(id: ${'{a: '.repeat(3000)}1${'}'.repeat(3000)}) { id } }`],
    ['selections nested 3000 deep', `${'{ server '.repeat(3000)}${'}'.repeat(3000)}`],
  ])(`%s is refused before it is parsed, not a 500`, async (_what, query) => {
    const res = await server.gql(query);
    expect(res.status).toBe(200);
    expect(expectErrorCode(res, 'BAD_USER_INPUT').message).toBe(`Brackets, braces and parentheses nested more than ${LIMITS.maxNesting} deep.`);
  });

  test(`nesting up to ${LIMITS.maxNesting} is parsed`, async () => {
    const atLimit = await server.gql(clientWithListId(LIMITS.maxNesting));
    expect(expectErrorCode(atLimit, 'BAD_USER_INPUT').message).toMatch(/UUID/);
    expect(expectErrorCode(await server.gql(clientWithListId(LIMITS.maxNesting + 1)), 'BAD_USER_INPUT').message).toMatch(/nested/);
  });

  test('a syntax error the nesting check stops at is reported by the parser as usual', async () => {
    const res = await server.gql(`{ client(id: ${'['.repeat(10)} "unterminated`);
    expect(res.body.errors[0].message).toMatch(/Syntax Error: Unterminated string/);
    expect(res.body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
  });

  /** A POST whose `field` is JSON arrays nested 100,000 deep, well under the body limit. */
  async function postDeepJson(request: Record<string, unknown>, field: 'variables' | 'extensions') {
    const deep = nestedList(100_000, '');
    // JSON.stringify of the nesting itself would overflow the stack, so it goes in as text.
    const body = JSON.stringify({ ...request, [field]: { x: 'DEEP' } }).replace('"DEEP"', deep);
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: res.status, headers: res.headers, body: await res.json() };
  }

  test('JSON nested 100,000 deep in variables is BAD_USER_INPUT, not a 500', async () => {
    const res = await postDeepJson({ query: 'query($x: UUID!) { client(id: $x) { id } }' }, 'variables');
    expect(res.status).toBe(400);
    expect(expectErrorCode(res, 'BAD_USER_INPUT').message).toMatch(/UUID must be/);
    expectData(await server.gql('{ __typename }'));
  });

  test('JSON nested 100,000 deep in extensions is ignored', async () => {
    expect(expectData(await postDeepJson({ query: '{ __typename }' }, 'extensions'))).toEqual({ __typename: 'Query' });
  });
});

describe('load budget', () => {
  test(`pages of one request may not add up to more than ${LIMITS.maxNodesPerRequest} nodes`, async () => {
    // Page sizes in variables are unknown to the static cost; the budget counts them when they run.
    const pages = (n: number) => Array.from({ length: n }, (_, i) => `p${i}: versions(first: $n) { pageInfo { hasNextPage } }`).join(' ');
    const query = (n: number) => `query($n: Int) { client(id: "${clientId}") { ${pages(n)} } }`;
    const ok = Math.floor(LIMITS.maxNodesPerRequest / 1000);
    expectData(await server.gql(query(ok), { n: 1000 }));
    const res = await server.gql(query(ok + 1), { n: 1000 });
    expect(expectErrorCode(res, 'BAD_USER_INPUT').message).toMatch(/nodes/);
  });

  test('the byte budget is shared by every version and snapshot a request loads', async () => {
    const { LoadBudget } = await import('../../src/graphql/load-budget.js');
    const budget = new LoadBudget(10, 100);
    budget.chargeBytes(60);
    expect(() => budget.chargeBytes(41)).toThrow(/bytes/);
    budget.reservePage(10);
    expect(() => budget.reservePage(1)).toThrow(/nodes/);
  });

  test('a large history segment counts against the byte budget when read', async () => {
    const id = newClientId();
    const size = 8 * 1024 * 1024;
    const segment = Buffer.alloc(size, 7).toString('base64');
    const added = expectData(await server.gql(ADD_VERSION, { clientId: id, parent: NIL, segment })).addVersion;
    const reads = (n: number) => Array.from({ length: n }, (_, i) => `v${i}: version(id: "${added.version.id}") { size }`).join(' ');
    const allowed = LIMITS.maxBytesPerRequest / size;
    expect(allowed).toBeLessThan(LIMITS.maxAliases);
    expectData(await server.gql(`{ client(id: "${id}") { ${reads(allowed)} } }`));
    expect(expectErrorCode(await server.gql(`{ client(id: "${id}") { ${reads(allowed + 1)} } }`), 'BAD_USER_INPUT').message).toMatch(/bytes/);
  });
});
