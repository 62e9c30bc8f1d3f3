/** What FileStorage.clientUsage counts on disk: committed versions only, by their segments. */
import { readdir, readFile, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, type ClientId, type VersionId } from '../../src/ids.js';
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

  describe('of a packed history', () => {
    /** Versions on top of the latest, one commit each, with segments of 1 to 300 bytes (headers of varying length). */
    async function addVersions(count: number): Promise<VersionId[]> {
      const ids: VersionId[] = [];
      for (let i = 0; i < count; i++) {
        await withTxn(storage, clientId, async (txn) => {
          const id = newVersionId();
          await txn.addVersion(id, (await txn.getClient())!.latestVersionId, new Uint8Array((i * 37) % 300 + 1).fill(i));
          ids.push(id);
        });
      }
      return ids;
    }

    it('counts packed versions as it counted them loose: the same versions, bytes and oldest time', async () => {
      await addVersions(40);
      const loose = await storage.clientUsage(clientId);
      expect(loose?.versions).toBe(41);
      await storage.compact(clientId);
      await addVersions(20);
      await storage.compact(clientId);
      const more = await addVersions(5);
      expect((await readdir(path.join(dir, clientId))).filter((n) => n.endsWith('.pack'))).toHaveLength(2);
      const bytesOfMore = (await Promise.all(more.map((id) => withTxn(storage, clientId, async (txn) => (await txn.getVersion(id))!.historySegment.byteLength)))).reduce((a, b) => a + b, 0);
      const packed = await storage.clientUsage(clientId);
      expect(packed?.versions).toBe(66);
      expect(packed?.oldestVersionAddedAt).toEqual(loose?.oldestVersionAddedAt);
      // The 20 added between the compactions, by the same rule of sizes.
      const middle = Array.from({ length: 20 }, (_, i) => (i * 37) % 300 + 1).reduce((a, b) => a + b, 0);
      expect(packed?.bytes).toBe(loose!.bytes + middle + bytesOfMore);
    });

    it('counts a loose copy of a packed version (a crashed compaction) once', async () => {
      await addVersions(8);
      const names = await readdir(versionsDir);
      const copies = await Promise.all(names.filter((n) => n.endsWith('.version')).map(async (n) => [n, await readFile(path.join(versionsDir, n))] as const));
      const children = await Promise.all(names.filter((n) => n.endsWith('.child')).map(async (n) => [n, await readFile(path.join(versionsDir, n))] as const));
      const before = await storage.clientUsage(clientId);
      await storage.compact(clientId);
      expect(await readdir(versionsDir)).toEqual([]);
      for (const [name, bytes] of [...copies, ...children]) await writeFile(path.join(versionsDir, name), bytes);
      expect(await storage.clientUsage(clientId)).toEqual(before);
    });

    it('counts a pack whose index cannot be read as client.json describes it', async () => {
      await addVersions(4);
      await storage.compact(clientId);
      const meta = JSON.parse(await readFile(path.join(dir, clientId, 'client.json'), 'utf8'));
      const [pack] = meta.packs;
      await truncate(path.join(dir, clientId, pack.file), 100);
      expect(await storage.clientUsage(clientId)).toMatchObject({ versions: 5, bytes: pack.size });
    });
  });

  it('takes oldestVersionAddedAt from the version file\'s mtime', async () => {
    const latest = await withTxn(storage, clientId, async (txn) => (await txn.getClient())!.latestVersionId);
    const when = new Date('2026-01-02T03:04:05Z');
    await utimes(path.join(versionsDir, `${latest}.version`), when, when);
    expect((await storage.clientUsage(clientId))?.oldestVersionAddedAt).toEqual(when);
  });
});
