/**
 * UUID takes every spelling the sync protocol's X-Client-Id takes and answers canonically;
 * Base64 is strict; DateTime is RFC 3339 in UTC. Checked over HTTP, as literals and as variables.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DateTimeScalar, decodeBase64Strict } from '../../src/graphql/scalars.js';
import { expectData, expectErrorCode } from './support/expect-error.js';
import { startGraphqlServer, type TestServer } from './support/graphql-server.js';

const CANONICAL = 'f47ac10b-58cc-4372-a567-0e02b2c3d479';
const SPELLINGS = [
  CANONICAL,
  CANONICAL.toUpperCase(),
  'f47ac10b58cc4372a5670e02b2c3d479',
  'F47AC10B58CC4372A5670E02B2C3D479',
  `{${CANONICAL}}`,
  `{${CANONICAL.toUpperCase()}}`,
  `urn:uuid:${CANONICAL}`,
  `urn:uuid:${CANONICAL.toUpperCase()}`,
];
// Shapes Rust's uuid parser refuses too: braces or urn around the simple form, an upper-case urn prefix.
const NOT_UUIDS = ['', 'nope', `{${CANONICAL.replaceAll('-', '')}}`, `urn:uuid:${CANONICAL.replaceAll('-', '')}`, `URN:UUID:${CANONICAL}`, `${CANONICAL}0`, CANONICAL.slice(1), `{${CANONICAL}`, ` ${CANONICAL}`, 'g47ac10b-58cc-4372-a567-0e02b2c3d479'];
const NIL = '00000000-0000-0000-0000-000000000000';

let server: TestServer;
beforeAll(async () => {
  server = await startGraphqlServer();
  expectData(await server.gql(`mutation { createClient(id: "${CANONICAL}") { id } }`));
});
afterAll(() => server.close());

describe('UUID', () => {
  test.each(SPELLINGS)('accepts %s as a variable and answers the canonical form', async (spelling) => {
    const data = expectData(await server.gql('query($id: UUID!) { client(id: $id) { id } }', { id: spelling }));
    expect(data.client.id).toBe(CANONICAL);
  });

  test.each(SPELLINGS)('accepts %s as a literal', async (spelling) => {
    const data = expectData(await server.gql(`{ client(id: ${JSON.stringify(spelling)}) { id } }`));
    expect(data.client.id).toBe(CANONICAL);
  });

  test.each(NOT_UUIDS)('refuses %j with BAD_USER_INPUT', async (bad) => {
    expectErrorCode(await server.gql('query($id: UUID!) { client(id: $id) { id } }', { id: bad }), 'BAD_USER_INPUT');
    expectErrorCode(await server.gql(`{ client(id: ${JSON.stringify(bad)}) { id } }`), 'BAD_USER_INPUT');
  });

  test('refuses a non-string', async () => {
    expectErrorCode(await server.gql('query($id: UUID!) { client(id: $id) { id } }', { id: 42 }), 'BAD_USER_INPUT');
    expectErrorCode(await server.gql('{ client(id: 42) { id } }'), 'BAD_USER_INPUT');
  });

  test('treats the nil UUID as a client id like any other', async () => {
    const data = expectData(await server.gql(`mutation { createClient(id: "{${NIL}}") { id latestVersionId } }`));
    expect(data.createClient).toEqual({ id: NIL, latestVersionId: NIL });
  });

  test('canonicalises version ids too', async () => {
    const added = expectData(
      await server.gql(`mutation { addVersion(clientId: "${CANONICAL}", parentVersionId: "urn:uuid:${NIL}", historySegment: "AQ==") { ... on VersionAdded { version { id parentVersionId } } } }`),
    );
    const id: string = added.addVersion.version.id;
    expect(added.addVersion.version.parentVersionId).toBe(NIL);
    const data = expectData(await server.gql(`{ client(id: "${CANONICAL}") { version(id: "{${id.toUpperCase()}}") { id } } }`));
    expect(data.client.version.id).toBe(id);
  });
});

describe('Base64', () => {
  const add = (segment: unknown) =>
    server.gql('mutation($s: Base64!) { addVersion(clientId: "00000000000000000000000000000001", parentVersionId: "00000000-0000-0000-0000-000000000000", historySegment: $s) { __typename } }', { s: segment });

  test.each([
    ['whitespace inside', 'aGVs bG8='],
    ['a trailing newline', 'aGVsbG8=\n'],
    ['line breaks every 4 characters', 'aGVs\nbG8='],
    ['the URL-safe alphabet', 'a-_a'],
    ['missing padding', 'aGVsbG8'],
    ['too much padding', 'aGVsbG8=='],
    ['padding in the middle', 'aG=sbG8='],
    ['a length that is not a multiple of 4', 'aGVsbG8=a'],
    ['non-canonical trailing bits', 'aGVsbG9='],
    ['a character outside the alphabet', 'aGVs*G8='],
    ['a non-string', 12],
  ])('refuses %s with BAD_USER_INPUT', async (_what, input) => {
    const error = expectErrorCode(await add(input), 'BAD_USER_INPUT');
    expect(error.message).toMatch(/base64/i);
  });

  test('refuses an empty history segment, as the HTTP protocol refuses an empty body', async () => {
    expectErrorCode(await add(''), 'BAD_USER_INPUT');
  });

  test('round-trips every byte value exactly', async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const data = expectData(
      await server.gql(
        `mutation($s: Base64!) { addVersion(clientId: "00000000000000000000000000000002", parentVersionId: "${NIL}", historySegment: $s) { ... on VersionAdded { version { historySegment size } } } }`,
        { s: bytes.toString('base64') },
      ),
    );
    expect(data.addVersion.version.historySegment).toBe(bytes.toString('base64'));
    expect(data.addVersion.version.size).toBe(256);
  });

  test('decodeBase64Strict accepts every padding length', () => {
    for (const text of ['', 'QQ==', 'QUI=', 'QUJD']) expect(Buffer.from(decodeBase64Strict(text) ?? [])).toEqual(Buffer.from(text, 'base64'));
  });
});

describe('DateTime', () => {
  test('input takes RFC 3339 with any offset and means the same instant', () => {
    expect(DateTimeScalar.parseValue('2024-01-31T14:00:00+02:00')).toEqual(new Date('2024-01-31T12:00:00Z'));
    expect(DateTimeScalar.parseValue('2024-01-31t12:00:00.5z')).toEqual(new Date('2024-01-31T12:00:00.500Z'));
  });

  test.each(['2024-01-31 12:00:00Z', '2024-01-31T12:00:00', '2024-01-31', 'yesterday', '2024-02-30T12:00:00Z', '2024-13-01T12:00:00Z', '2024-01-31T25:00:00Z'])(
    'input refuses %j with BAD_USER_INPUT',
    (input) => {
      expect(() => DateTimeScalar.parseValue(input)).toThrow(expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT' } }));
    },
  );

  test('output is UTC with a Z', () => {
    expect(DateTimeScalar.serialize(new Date('2024-01-31T14:00:00+02:00'))).toBe('2024-01-31T12:00:00.000Z');
  });

  test('answers RFC 3339 in UTC', async () => {
    const id = '00000000000000000000000000000003';
    const added = expectData(
      await server.gql(`mutation { addVersion(clientId: "${id}", parentVersionId: "${NIL}", historySegment: "AQ==") { ... on VersionAdded { version { id } } } }`),
    );
    expectData(await server.gql(`mutation { addSnapshot(clientId: "${id}", versionId: "${added.addVersion.version.id}", data: "Ag==") { accepted } }`));
    const data = expectData(await server.gql(`{ client(id: "${id}") { snapshot { timestamp } } }`));
    expect(data.client.snapshot.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(Math.abs(Date.parse(data.client.snapshot.timestamp) - Date.now())).toBeLessThan(60_000);
  });
});
