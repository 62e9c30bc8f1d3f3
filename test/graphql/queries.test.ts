/** Every Query and Client field of the contract, over HTTP, against state made through GraphQL. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { NIL_VERSION_ID, parseClientId } from '../../src/ids.js';
import { SERVER_VERSION } from '../../src/version.js';
import { expectData, expectErrorCode } from './support/expect-error.js';
import { startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { ADD_SNAPSHOT, addChain, NIL, newClientId } from './support/ops.js';

const DAY = 86_400_000;
let clock = new Date('2024-05-01T00:00:00Z').getTime();
let server: TestServer;

beforeAll(async () => {
  server = await startGraphqlServer({ snapshotVersions: 4, snapshotDays: 10, now: () => new Date(clock) });
});
afterAll(() => server.close());

const CLIENT_FIELDS = `id latestVersionId snapshotUrgency snapshot { versionId timestamp versionsSince data }`;

describe('Query.server', () => {
  test('reports the version and the snapshot and creation policy', async () => {
    const data = expectData(await server.gql('{ server { version snapshotVersions snapshotDays createClients } }'));
    expect(data.server).toEqual({ version: SERVER_VERSION, snapshotVersions: 4, snapshotDays: 10, createClients: true });
  });
});

describe('Query.client', () => {
  test('is null for a client that does not exist', async () => {
    expect(expectData(await server.gql(`{ client(id: "${newClientId()}") { id } }`)).client).toBeNull();
  });

  test('answers an empty client: nil latest version, no snapshot, high urgency', async () => {
    const id = newClientId();
    expectData(await server.gql(`mutation { createClient(id: "${id}") { id } }`));
    const data = expectData(await server.gql(`{ client(id: "${id}") { ${CLIENT_FIELDS} } }`));
    expect(data.client).toEqual({ id, latestVersionId: NIL, snapshotUrgency: 'HIGH', snapshot: null });
  });

  test('answers the latest version, the snapshot with its bytes, and the urgency now', async () => {
    const id = newClientId();
    const [v1, v2] = await addChain(server, id, 2);
    const snapshotData = Buffer.from('the snapshot').toString('base64');
    expectData(await server.gql(ADD_SNAPSHOT, { clientId: id, versionId: v2, data: snapshotData }));
    const read = async () => expectData(await server.gql(`{ client(id: "${id}") { ${CLIENT_FIELDS} } }`)).client;

    expect(await read()).toEqual({
      id,
      latestVersionId: v2,
      snapshotUrgency: 'NONE',
      snapshot: { versionId: v2, timestamp: new Date(clock).toISOString(), versionsSince: 0, data: snapshotData },
    });
    expect(v1).not.toBe(v2);

    // Urgency follows the current state: versions since the snapshot, then its age.
    await addChain(server, id, 4, v2);
    expect(await read()).toMatchObject({ snapshotUrgency: 'LOW', snapshot: { versionsSince: 4 } });
    await addChain(server, id, 2, (await read()).latestVersionId);
    expect((await read()).snapshotUrgency).toBe('HIGH');

    const aged = newClientId();
    const [a1] = await addChain(server, aged, 1);
    expectData(await server.gql(ADD_SNAPSHOT, { clientId: aged, versionId: a1, data: snapshotData }));
    clock += 10 * DAY;
    expect(expectData(await server.gql(`{ client(id: "${aged}") { snapshotUrgency } }`)).client.snapshotUrgency).toBe('LOW');
    clock += 5 * DAY;
    expect(expectData(await server.gql(`{ client(id: "${aged}") { snapshotUrgency } }`)).client.snapshotUrgency).toBe('HIGH');
  });
});

describe('Client.version', () => {
  test('answers a version by id with its bytes and size, or null', async () => {
    const id = newClientId();
    const [v1, v2] = await addChain(server, id, 2);
    const data = expectData(
      await server.gql(`{ client(id: "${id}") { a: version(id: "${v2}") { id parentVersionId historySegment size } b: version(id: "${newClientId()}") { id } } }`),
    );
    expect(data.client.a).toEqual({ id: v2, parentVersionId: v1, historySegment: Buffer.from('segment 1').toString('base64'), size: 9 });
    expect(data.client.b).toBeNull();
  });

  test("does not answer another client's version", async () => {
    const [other] = await addChain(server, newClientId(), 1);
    const id = newClientId();
    await addChain(server, id, 1);
    expect(expectData(await server.gql(`{ client(id: "${id}") { version(id: "${other}") { id } } }`)).client.version).toBeNull();
  });
});

describe('Client.childVersion', () => {
  const CHILD = `query($id: UUID!, $parent: UUID!) { client(id: $id) { childVersion(parentVersionId: $parent) {
    __typename
    ... on Version { id parentVersionId historySegment size }
    ... on VersionNotFound { parentVersionId }
    ... on VersionGone { parentVersionId }
  } } }`;
  const child = async (id: string, parent: string) => expectData(await server.gql(CHILD, { id, parent })).client.childVersion;

  test('an empty client: NotFound for any parent, echoing it', async () => {
    const id = newClientId();
    expectData(await server.gql(`mutation { createClient(id: "${id}") { id } }`));
    expect(await child(id, NIL)).toEqual({ __typename: 'VersionNotFound', parentVersionId: NIL });
    const other = newClientId();
    expect(await child(id, other.toUpperCase())).toEqual({ __typename: 'VersionNotFound', parentVersionId: other });
  });

  test('the child of a parent, NotFound after the latest, Gone for an unknown parent', async () => {
    const id = newClientId();
    const [v1, v2] = (await addChain(server, id, 2)) as [string, string];
    expect(await child(id, NIL)).toEqual({ __typename: 'Version', id: v1, parentVersionId: NIL, historySegment: Buffer.from('segment 0').toString('base64'), size: 9 });
    expect(await child(id, v1)).toMatchObject({ __typename: 'Version', id: v2, parentVersionId: v1 });
    expect(await child(id, v2)).toEqual({ __typename: 'VersionNotFound', parentVersionId: v2 });
    const unknown = newClientId();
    expect(await child(id, unknown)).toEqual({ __typename: 'VersionGone', parentVersionId: unknown });
  });
});

describe('allow-list', () => {
  test('client(id) of an id outside the allow-list is FORBIDDEN, with no data about it', async () => {
    const allowed = newClientId();
    const restricted = await startGraphqlServer({ allowClientIds: [allowed] });
    try {
      const other = newClientId();
      await restricted.sync.addVersion(parseClientId(other), NIL_VERSION_ID, new Uint8Array([1]));
      const res = await restricted.gql(`{ client(id: "${other}") { id latestVersionId } }`);
      expectErrorCode(res, 'FORBIDDEN');
      expect(res.body.data).toEqual({ client: null });
      expect(expectData(await restricted.gql(`{ client(id: "${allowed.toUpperCase()}") { id } }`)).client).toBeNull();
    } finally {
      await restricted.close();
    }
  });
});
