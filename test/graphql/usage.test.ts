/** Client.usage: what a client takes up, over HTTP, on each storage that keeps version times. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { InMemoryStorage } from '../../src/storage/memory-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';
import { expectData } from './support/expect-error.js';
import { ADMIN_TOKEN, startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { ADD_SNAPSHOT, addChain, newClientId } from './support/ops.js';

const USAGE = `query($id: UUID!) { client(id: $id) { usage { versions bytes oldestVersionAddedAt } } }`;

const storages: Array<[string, () => Promise<{ storage: Storage; cleanup(): Promise<void> }>]> = [
  ['memory', async () => ({ storage: new InMemoryStorage(), cleanup: async () => undefined })],
  [
    'files',
    async () => {
      const dir = await makeTempDir();
      return { storage: await FileStorage.open(dir), cleanup: () => removeDir(dir) };
    },
  ],
];

describe.each(storages)('Client.usage on %s', (_name, open) => {
  let server: TestServer;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    cleanup = opened.cleanup;
    server = await startGraphqlServer({ storage: opened.storage });
  });
  afterAll(async () => {
    await server.close();
    await cleanup();
  });

  test('a new client uses nothing and has no oldest version', async () => {
    const id = newClientId();
    expectData(await server.gql(`mutation { createClient(id: "${id}") { id } }`));
    expect(expectData(await server.gql(USAGE, { id })).client.usage).toEqual({ versions: 0, bytes: 0, oldestVersionAddedAt: null });
  });

  test('counts the versions and their segments\' bytes plus the snapshot\'s, and when the oldest was added', async () => {
    const id = newClientId();
    const before = Date.now();
    const ids = await addChain(server, id, 3); // "segment 0" ...: 9 bytes each
    const after = Date.now();
    const snapshot = Buffer.from('a snapshot').toString('base64');
    expectData(await server.gql(ADD_SNAPSHOT, { clientId: id, versionId: ids[2], data: snapshot }));
    const usage = expectData(await server.gql(USAGE, { id })).client.usage;
    expect(usage).toMatchObject({ versions: 3, bytes: 3 * 9 + 10 });
    const oldest = Date.parse(usage.oldestVersionAddedAt);
    // File times are as coarse as the kernel's clock tick.
    expect(oldest).toBeGreaterThanOrEqual(before - 1000);
    expect(oldest).toBeLessThanOrEqual(after + 1000);
  });

  test('is a field of every listed client for the admin', async () => {
    const id = newClientId();
    await addChain(server, id, 2);
    const data = expectData(await server.gql(`{ clients(first: 1000) { edges { node { id usage { versions bytes } } } } }`, {}, { token: ADMIN_TOKEN }));
    const node = data.clients.edges.map((e: { node: { id: string } }) => e.node).find((n: { id: string }) => n.id === id);
    expect(node).toEqual({ id, usage: { versions: 2, bytes: 18 } });
  });
});

describe('Client.usage and the allow-list', () => {
  test('a client outside the allow-list is FORBIDDEN, as for every Client field', async () => {
    const allowed = newClientId();
    const server = await startGraphqlServer({ allowClientIds: [allowed] });
    try {
      await addChain(server, allowed, 1);
      expect(expectData(await server.gql(USAGE, { id: allowed })).client.usage.versions).toBe(1);
      const refused = await server.gql(USAGE, { id: newClientId() });
      expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    } finally {
      await server.close();
    }
  });
});
