/** Data the benchmarks start from. */
import { copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { FileStorage, NIL_VERSION_ID, newVersionId, parseClientId, withTxn, type ClientId, type Storage } from '../dist/index.js';

/** Creates a client whose history is `length` versions of `segment`, in one transaction. */
export async function clientWithHistory(
  storage: Storage,
  length: number,
  segment: Uint8Array,
  clientId: ClientId = parseClientId(crypto.randomUUID()),
): Promise<ClientId> {
  await withTxn(storage, clientId, async (txn) => {
    await txn.newClient(NIL_VERSION_ID);
    let parent = NIL_VERSION_ID;
    for (let i = 0; i < length; i++) {
      const id = newVersionId();
      await txn.addVersion(id, parent, segment);
      parent = id;
    }
  });
  return clientId;
}

/**
 * A data directory of `clients` clients as a replica's sync leaves them: each added two 1 KiB
 * versions (one transaction each, as two add-version requests commit them) and then a 1 KiB
 * snapshot, so that a client is a client.json, a snapshot blob and two `.version` files each
 * hard-linked as a `.child`. One client is made through FileStorage and the others are copies
 * of its directory under new ids (a client's files do not name its id), with hard links kept
 * and nothing fsync'd: 10,000 clients take seconds instead of a minute of commits. The caller
 * syncs. The clients share version ids, which nothing reads across clients.
 */
export async function replicatedDataDir(dataDir: string, clients: number): Promise<void> {
  const storage = await FileStorage.open(dataDir);
  const template = parseClientId(crypto.randomUUID());
  const [first, second] = [newVersionId(), newVersionId()];
  const bytes = (fill: number) => new Uint8Array(1024).fill(fill);
  try {
    await withTxn(storage, template, async (txn) => {
      await txn.newClient(NIL_VERSION_ID);
      await txn.addVersion(first, NIL_VERSION_ID, bytes(1));
    });
    await withTxn(storage, template, (txn) => txn.addVersion(second, first, bytes(2)));
    await withTxn(storage, template, (txn) => txn.setSnapshot({ versionId: second, timestamp: new Date(), versionsSince: 0 }, bytes(3)));
  } finally {
    await storage.close();
  }
  const from = path.join(dataDir, template);
  const files = readdirSync(from, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const name = path.relative(from, path.join(entry.parentPath, entry.name));
      return { name, ino: lstatSync(path.join(from, name)).ino };
    });
  for (let i = 1; i < clients; i++) {
    const to = path.join(dataDir, crypto.randomUUID());
    mkdirSync(path.join(to, 'versions'), { recursive: true });
    const copied = new Map<number, string>();
    for (const { name, ino } of files) {
      const first = copied.get(ino);
      if (first === undefined) copyFileSync(path.join(from, name), path.join(to, name));
      else linkSync(first, path.join(to, name));
      copied.set(ino, path.join(to, name));
    }
  }
}
