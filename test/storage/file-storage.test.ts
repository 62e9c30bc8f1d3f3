import { FileStorage } from '../../src/storage/file/file-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';
import { storageConformanceSuite } from './conformance.js';

const dirs: string[] = [];
const dirOf = new WeakMap<Storage, string>();

storageConformanceSuite('file', {
  async create() {
    const dir = await makeTempDir();
    dirs.push(dir);
    // A small checkpoint interval makes the suite cross checkpoints as well as follow links.
    const storage = await FileStorage.open(dir, { checkpointEvery: 16 });
    dirOf.set(storage, dir);
    return storage;
  },
  async reopen(storage) {
    const dir = dirOf.get(storage)!;
    const reopened = await FileStorage.open(dir, { checkpointEvery: 16 });
    dirOf.set(reopened, dir);
    return reopened;
  },
  async cleanup() {
    await Promise.all(dirs.splice(0).map(removeDir));
  },
});
