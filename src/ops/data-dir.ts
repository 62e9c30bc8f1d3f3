/** Opening a data directory that must exist already, for the ops commands. */
import { lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { isErrno } from '../storage/file/durable-fs.js';
import { FileStorage, type FileStorageOptions } from '../storage/file/file-storage.js';
import { FORMAT_FILE } from '../storage/file/layout.js';
import { OpsError } from './ops-error.js';

/**
 * Opens an existing data directory for ops. Unlike `FileStorage.open`, which initialises an
 * empty or missing directory for the server, a mistyped path must not become a new, empty and
 * therefore "sound" data directory. A newer format is refused by FileStorage.open.
 */
export async function openDataDir(dataDir: string, options: FileStorageOptions = {}): Promise<FileStorage> {
  const dir = path.resolve(dataDir);
  try {
    if (!(await stat(dir)).isDirectory()) throw new OpsError('NOT_A_DATA_DIR', `${dir} is not a directory`);
    await stat(path.join(dir, FORMAT_FILE));
  } catch (err) {
    if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err;
    throw new OpsError('NOT_A_DATA_DIR', `${dir} is not a tcsync data directory (it has no ${FORMAT_FILE})`);
  }
  // An ops command touches clients once: background compaction is serve's, or `tcsync compact`'s on purpose.
  return FileStorage.open(dir, { compactAfter: 0, ...options });
}

export async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}
