/**
 * GraphQL over PostgresStorage: the same queries, mutations and admin operations as over files,
 * reading what the protocol's transactions wrote in the database.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { describePostgres, freshSchema } from '../support/postgres.js';
import { expectData, expectErrorCode } from './support/expect-error.js';
import { ADMIN_TOKEN, startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { ADD_SNAPSHOT, addChain, newClientId } from './support/ops.js';

describePostgres('GraphQL over PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let server: TestServer;
  beforeAll(async () => {
    schema = await freshSchema();
    server = await startGraphqlServer({ storage: await PostgresStorage.open(schema.uri), snapshotVersions: 2 });
  });
  afterAll(async () => {
    await server.close();
    await server.storage.close();
    await schema.drop();
  });

  test('versions, snapshots and pages read back what was added', async () => {
    const id = newClientId();
    const ids = await addChain(server, id, 5);
    const snapshot = Buffer.from('snapshot bytes').toString('base64');
    expect(expectData(await server.gql(ADD_SNAPSHOT, { clientId: id, versionId: ids[3], data: snapshot })).addSnapshot.accepted).toBe(true);
    const data = expectData(
      await server.gql(`{ client(id: "${id}") {
        latestVersionId snapshot { versionId versionsSince data } snapshotUrgency
        versions(first: 2) { edges { node { id parentVersionId } } pageInfo { hasNextPage endCursor } } } }`),
    );
    expect(data.client).toMatchObject({ latestVersionId: ids[4], snapshot: { versionId: ids[3], versionsSince: 0, data: snapshot }, snapshotUrgency: 'NONE' });
    expect(data.client.versions.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([ids[4], ids[3]]);
    expect(data.client.versions.pageInfo).toEqual({ hasNextPage: true, endCursor: ids[3] });
  });

  test('usage counts the versions and their bytes plus the snapshot\'s, and when the oldest was added', async () => {
    const id = newClientId();
    const before = Date.now();
    const ids = await addChain(server, id, 3); // "segment 0" ...: 9 bytes each
    const after = Date.now();
    expectData(await server.gql(ADD_SNAPSHOT, { clientId: id, versionId: ids[2], data: Buffer.from('a snapshot').toString('base64') }));
    const data = expectData(await server.gql(`{ client(id: "${id}") { usage { versions bytes oldestVersionAddedAt } } }`));
    expect(data.client.usage).toMatchObject({ versions: 3, bytes: 3 * 9 + 10 });
    // The database's clock, on this machine in the tests.
    const oldest = Date.parse(data.client.usage.oldestVersionAddedAt);
    expect(oldest).toBeGreaterThanOrEqual(before - 1000);
    expect(oldest).toBeLessThanOrEqual(after + 1000);
  });

  test('admin operations: list, delete with a tombstone, lift it', async () => {
    const ids = [newClientId(), newClientId(), newClientId()];
    for (const id of ids) expectData(await server.gql(`mutation { createClient(id: "${id}") { id } }`));
    const listed = expectData(await server.gql('{ clients(first: 1000) { edges { node { id } } } }', {}, { token: ADMIN_TOKEN }));
    expect(listed.clients.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(expect.arrayContaining(ids));

    const [deleted] = ids;
    expect(expectData(await server.gql(`mutation { deleteClient(id: "${deleted}") }`, {}, { token: ADMIN_TOKEN })).deleteClient).toBe(true);
    expect(expectData(await server.gql(`{ client(id: "${deleted}") { id } }`)).client).toBeNull();
    const refused = expectErrorCode(await server.gql(`mutation { createClient(id: "${deleted}") { id } }`), 'FORBIDDEN');
    expect(refused.extensions.reason).toBe('CLIENT_DELETED');
    expect(expectData(await server.gql(`mutation { liftTombstone(id: "${deleted}") }`, {}, { token: ADMIN_TOKEN })).liftTombstone).toBe(true);
    expect(expectData(await server.gql(`mutation { createClient(id: "${deleted}") { id } }`)).createClient.id).toBe(deleted);
  });
});
