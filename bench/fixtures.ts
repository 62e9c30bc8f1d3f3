/** Data the benchmarks start from. */
import { NIL_VERSION_ID, newVersionId, parseClientId, withTxn, type ClientId, type Storage } from '../dist/index.js';

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
