/** Every Mutation of the contract (and liftTombstone), over HTTP, with the protocol's outcomes. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectData, expectErrorCode } from './support/expect-error.js';
import { ADMIN_TOKEN, startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { ADD_SNAPSHOT, ADD_VERSION, addChain, NIL, newClientId } from './support/ops.js';

let server: TestServer;
beforeAll(async () => {
  server = await startGraphqlServer({ snapshotVersions: 2 });
});
afterAll(() => server.close());

const segment = Buffer.from('opaque').toString('base64');
const CREATE = 'mutation($id: UUID!) { createClient(id: $id) { id latestVersionId snapshot { versionId } snapshotUrgency } }';
const DELETE = 'mutation($id: UUID!) { deleteClient(id: $id) }';
const LIFT = 'mutation($id: UUID!) { liftTombstone(id: $id) }';

describe('createClient', () => {
  test('creates an empty client and answers it', async () => {
    const id = newClientId();
    const data = expectData(await server.gql(CREATE, { id: id.toUpperCase() }));
    expect(data.createClient).toEqual({ id, latestVersionId: NIL, snapshot: null, snapshotUrgency: 'HIGH' });
    expect(expectData(await server.gql(`{ client(id: "${id}") { id } }`)).client).toEqual({ id });
  });

  test('refuses a client that exists with CONFLICT', async () => {
    const id = newClientId();
    await addChain(server, id, 1);
    const res = await server.gql(CREATE, { id });
    expect(expectErrorCode(res, 'CONFLICT').message).toMatch(/exists/);
    expect(res.body.data).toBeNull();
  });

  test('refuses a deleted client until an admin lifts its tombstone', async () => {
    const id = newClientId();
    expectData(await server.gql(CREATE, { id }));
    expect(expectData(await server.gql(DELETE, { id }, { token: ADMIN_TOKEN })).deleteClient).toBe(true);
    const refused = expectErrorCode(await server.gql(CREATE, { id }), 'FORBIDDEN');
    expect(refused.extensions.reason).toBe('CLIENT_DELETED');
    expect(expectData(await server.gql(LIFT, { id }, { token: ADMIN_TOKEN })).liftTombstone).toBe(true);
    expect(expectData(await server.gql(LIFT, { id }, { token: ADMIN_TOKEN })).liftTombstone).toBe(false);
    expect(expectData(await server.gql(CREATE, { id })).createClient.id).toBe(id);
  });

  test('with --no-create-clients, needs the admin token', async () => {
    const closed = await startGraphqlServer({ createClients: false });
    try {
      const id = newClientId();
      const res = await closed.gql(CREATE, { id });
      expectErrorCode(res, 'FORBIDDEN');
      expect(res.body.data).toBeNull();
      expectErrorCode(await closed.gql(CREATE, { id }, { token: 'wrong' }), 'FORBIDDEN');
      expect(expectData(await closed.gql(CREATE, { id }, { token: ADMIN_TOKEN })).createClient.id).toBe(id);
      // The client the operator created now syncs.
      expect(expectData(await closed.gql(ADD_VERSION, { clientId: id, parent: NIL, segment })).addVersion.__typename).toBe('VersionAdded');
    } finally {
      await closed.close();
    }
  });

  test('is FORBIDDEN for an id outside the allow-list, even for the admin', async () => {
    const allowed = newClientId();
    const restricted = await startGraphqlServer({ allowClientIds: [allowed] });
    try {
      expectErrorCode(await restricted.gql(CREATE, { id: newClientId() }), 'FORBIDDEN');
      expectErrorCode(await restricted.gql(CREATE, { id: newClientId() }, { token: ADMIN_TOKEN }), 'FORBIDDEN');
      expect(expectData(await restricted.gql(CREATE, { id: allowed })).createClient.id).toBe(allowed);
    } finally {
      await restricted.close();
    }
  });
});

describe('addVersion', () => {
  test('creates an unknown client; urgency comes from the state before the add', async () => {
    const id = newClientId();
    const first = expectData(await server.gql(ADD_VERSION, { clientId: id, parent: NIL, segment })).addVersion;
    expect(first).toMatchObject({ __typename: 'VersionAdded', snapshotUrgency: 'HIGH', version: { parentVersionId: NIL, historySegment: segment, size: 6 } });
    // A snapshot now: the next add sees versionsSince 0 and answers NONE, then LOW at 2, HIGH at 3.
    expect(expectData(await server.gql(ADD_SNAPSHOT, { clientId: id, versionId: first.version.id, data: segment })).addSnapshot.accepted).toBe(true);
    let parent = first.version.id;
    const urgencies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const added = expectData(await server.gql(ADD_VERSION, { clientId: id, parent, segment })).addVersion;
      urgencies.push(added.snapshotUrgency);
      parent = added.version.id;
    }
    expect(urgencies).toEqual(['NONE', 'NONE', 'LOW', 'HIGH']);
  });

  test('answers VersionConflict with the expected parent when the parent is not the latest', async () => {
    const id = newClientId();
    const [v1, v2] = await addChain(server, id, 2);
    for (const parent of [NIL, v1, newClientId()]) {
      expect(expectData(await server.gql(ADD_VERSION, { clientId: id, parent, segment })).addVersion).toEqual({
        __typename: 'VersionConflict',
        expectedParentVersionId: v2,
      });
    }
  });

  test('accepts any parent on an empty client', async () => {
    const id = newClientId();
    const parent = newClientId();
    const added = expectData(await server.gql(ADD_VERSION, { clientId: id, parent, segment })).addVersion;
    expect(added.version.parentVersionId).toBe(parent);
  });

  test('with --no-create-clients, an unknown client is NOT_FOUND', async () => {
    const closed = await startGraphqlServer({ createClients: false });
    try {
      const res = await closed.gql(ADD_VERSION, { clientId: newClientId(), parent: NIL, segment });
      expectErrorCode(res, 'NOT_FOUND');
      expect(res.body.data).toBeNull();
    } finally {
      await closed.close();
    }
  });

  test('on a deleted client is FORBIDDEN and does not re-create it', async () => {
    const id = newClientId();
    await addChain(server, id, 3);
    expectData(await server.gql(DELETE, { id }, { token: ADMIN_TOKEN }));
    const refused = expectErrorCode(await server.gql(ADD_VERSION, { clientId: id, parent: NIL, segment }), 'FORBIDDEN');
    expect(refused.extensions.reason).toBe('CLIENT_DELETED');
    expect(expectData(await server.gql(`{ client(id: "${id}") { id } }`)).client).toBeNull();
  });

  test('is FORBIDDEN outside the allow-list', async () => {
    const restricted = await startGraphqlServer({ allowClientIds: [newClientId()] });
    try {
      expectErrorCode(await restricted.gql(ADD_VERSION, { clientId: newClientId(), parent: NIL, segment }), 'FORBIDDEN');
    } finally {
      await restricted.close();
    }
  });
});

describe('addSnapshot', () => {
  test('accepts a snapshot of a recent version and ignores others, saying why', async () => {
    const id = newClientId();
    const versions = await addChain(server, id, 7);
    const snap = (versionId: string) => server.gql(ADD_SNAPSHOT, { clientId: id, versionId, data: segment }).then((res) => expectData(res).addSnapshot);
    expect(await snap(versions[1] as string)).toEqual({ accepted: false, reason: 'too-old' });
    expect(await snap(versions[4] as string)).toEqual({ accepted: true, reason: null });
    expect(await snap(versions[4] as string)).toEqual({ accepted: false, reason: 'already-stored' });
    expect(await snap(versions[3] as string)).toEqual({ accepted: false, reason: 'older-than-current' });
    expect(await snap(newClientId())).toMatchObject({ accepted: false });
    const snapshot = expectData(await server.gql(`{ client(id: "${id}") { snapshot { versionId versionsSince data } } }`)).client.snapshot;
    expect(snapshot).toEqual({ versionId: versions[4], versionsSince: 0, data: segment });
  });

  test('on an unknown client: accepted false, and no client is created', async () => {
    const id = newClientId();
    expect(expectData(await server.gql(ADD_SNAPSHOT, { clientId: id, versionId: newClientId(), data: segment })).addSnapshot).toEqual({
      accepted: false,
      reason: 'no-such-client',
    });
    expect(expectData(await server.gql(`{ client(id: "${id}") { id } }`)).client).toBeNull();
  });

  test('refuses empty data', async () => {
    expectErrorCode(await server.gql(ADD_SNAPSHOT, { clientId: newClientId(), versionId: NIL, data: '' }), 'BAD_USER_INPUT');
  });
});

describe('deleteClient', () => {
  test('removes the client and all its data; false for an unknown client', async () => {
    const id = newClientId();
    const [v1] = await addChain(server, id, 2);
    expect(expectData(await server.gql(DELETE, { id: `urn:uuid:${id}` }, { token: ADMIN_TOKEN })).deleteClient).toBe(true);
    expect(expectData(await server.gql(`{ client(id: "${id}") { id } }`)).client).toBeNull();
    expect(expectData(await server.gql(DELETE, { id }, { token: ADMIN_TOKEN })).deleteClient).toBe(false);
    expect(expectData(await server.gql(DELETE, { id: newClientId() }, { token: ADMIN_TOKEN })).deleteClient).toBe(false);
    // Lifting the tombstone lets the id start over with no history.
    expectData(await server.gql(LIFT, { id }, { token: ADMIN_TOKEN }));
    const restarted = expectData(await server.gql(ADD_VERSION, { clientId: id, parent: NIL, segment })).addVersion;
    expect(restarted.__typename).toBe('VersionAdded');
    expect(expectData(await server.gql(`{ client(id: "${id}") { version(id: "${v1}") { id } } }`)).client.version).toBeNull();
  });
});
