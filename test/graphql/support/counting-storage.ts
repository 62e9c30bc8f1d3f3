/** A storage that counts getVersion calls, to prove how much a request loads. */
import type { ClientId } from '../../../src/ids.js';
import { InMemoryStorage } from '../../../src/storage/memory-storage.js';
import type { StorageTxn } from '../../../src/storage/storage.js';

export class CountingStorage extends InMemoryStorage {
  versionLoads = 0;

  override async txn(clientId: ClientId): Promise<StorageTxn> {
    const txn = await super.txn(clientId);
    const getVersion = txn.getVersion.bind(txn);
    txn.getVersion = (id) => {
      this.versionLoads += 1;
      return getVersion(id);
    };
    return txn;
  }
}
