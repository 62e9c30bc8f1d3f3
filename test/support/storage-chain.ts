/** Reading a client's whole history through the public storage interface. */
import { NIL_VERSION_ID, type ClientId, type VersionId } from '../../src/ids.js';
import { withTxn, type Storage } from '../../src/storage/storage.js';

/** Version ids from the first to the latest, following getVersionByParent from nil; also the client's latest. */
export async function readChain(storage: Storage, clientId: ClientId): Promise<{ chain: VersionId[]; latest: VersionId | null }> {
  return withTxn(storage, clientId, async (txn) => {
    const client = await txn.getClient();
    const chain: VersionId[] = [];
    let parent = NIL_VERSION_ID;
    for (let v = await txn.getVersionByParent(parent); v !== null; v = await txn.getVersionByParent(parent)) {
      if (chain.length > 1_000_000) throw new Error('chain does not end');
      chain.push(v.versionId);
      parent = v.versionId;
    }
    return { chain, latest: client?.latestVersionId ?? null };
  });
}
