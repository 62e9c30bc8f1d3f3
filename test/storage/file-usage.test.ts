/** What FileStorage.clientUsage counts on disk: committed versions only, by their segments. */
import { utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { encodeVersion } from '../../src/storage/file/version-file.js';
import { withTxn } from '../../src/storage/storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

describe('file storage usage', () => {
  let dir: string;
  let storage: FileStorage;
  let clientId: ClientId;
  let versionsDir: string;

  beforeEach(async () => {
    dir = await makeTempDir();
    storage = await FileStorage.open(dir);
    clientId = parseClientId(crypto.randomUUID());
    versionsDir = path.join(dir, clientId, 'versions');
    await withTxn(storage, clientId, async (txn) => {
      await txn.newClient(NIL_VERSION_ID);
      await txn.addVersion(newVersionId(), NIL_VERSION_ID, new Uint8Array(10));
    });
  });
  afterEach(async () => {
    await storage.close();
    await removeDir(dir);
  });

  it('does not count a version file that no .child link names (a leftover of an unfinished commit)', async () => {
    const leftover = newVersionId();
    await writeFile(path.join(versionsDir, `${leftover}.version`), Buffer.concat(encodeVersion({ versionId: leftover, parentVersionId: newVersionId(), historySegment: new Uint8Array(500) })));
    expect(await storage.clientUsage(clientId)).toMatchObject({ versions: 1, bytes: 10 });
  });

  it('takes oldestVersionAddedAt from the version file\'s mtime', async () => {
    const latest = await withTxn(storage, clientId, async (txn) => (await txn.getClient())!.latestVersionId);
    const when = new Date('2026-01-02T03:04:05Z');
    await utimes(path.join(versionsDir, `${latest}.version`), when, when);
    expect((await storage.clientUsage(clientId))?.oldestVersionAddedAt).toEqual(when);
  });
});
