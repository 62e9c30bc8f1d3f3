import { FileStorage } from '../../src/storage/file/file-storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';
import { clientExportSuite } from './client-export-conformance.js';

const dirs: string[] = [];

clientExportSuite('file', {
  async create() {
    const dir = await makeTempDir();
    dirs.push(dir);
    // A small checkpoint interval: the exported latest version is found by following links.
    return FileStorage.open(dir, { checkpointEvery: 16 });
  },
  async cleanup() {
    await Promise.all(dirs.splice(0).map(removeDir));
  },
});
