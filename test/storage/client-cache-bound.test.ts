/**
 * What a FileStorage remembers of clients stays within clientCacheBytes however many clients
 * are polled, and a listing that passes clients once (TxnOptions.passing, as GraphQL's clients
 * page) adds none of them (issue 20).
 */
import { afterEach, expect, it } from 'vitest';
import { NIL_VERSION_ID, parseClientId, type ClientId } from '../../src/ids.js';
import { clientStateBytes } from '../../src/storage/file/client-cache.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir = '';
let storage: FileStorage | null = null;
afterEach(async () => {
  await storage?.close();
  await removeDir(dir);
});

it('polling many clients keeps the cache within its bytes; listing them adds nothing', async () => {
  dir = await makeTempDir();
  // Room for ten clients without a snapshot or pending links (client-cache.ts).
  const bound = 10 * clientStateBytes({ meta: { snapshot: null, pendingLinks: [] } } as never);
  const setup = await FileStorage.open(dir);
  const ids: ClientId[] = Array.from({ length: 40 }, () => parseClientId(crypto.randomUUID()));
  for (const id of ids) await withTxn(setup, id, (txn) => txn.newClient(NIL_VERSION_ID));
  await setup.close();

  storage = await FileStorage.open(dir, { clientCacheBytes: bound });
  const s = storage;
  // Listed as a GraphQL page lists them: nothing is remembered.
  for (const id of await s.listClients(null, 100)) expect(await withTxn(s, id, (txn) => txn.getClient(), { passing: true })).not.toBeNull();
  expect(s.clientCache).toEqual({ clients: 0, bytes: 0 });
  // Polled: remembered, the least recently used forgotten beyond the bound.
  for (const id of ids) await withTxn(s, id, (txn) => txn.getClient());
  expect(s.clientCache.bytes).toBeLessThanOrEqual(bound);
  expect(s.clientCache.clients).toBe(10);
  // A listing passing them again neither grows the cache nor pushes the polled ones out.
  for (const id of ids.slice(0, 30)) await withTxn(s, id, (txn) => txn.getClient(), { passing: true });
  expect(s.clientCache.clients).toBe(10);
  expect(s.clientCache.bytes).toBeLessThanOrEqual(bound);
});
