import { link, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, newVersionId, parseClientId, type VersionId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn, type Version } from '../../src/storage/storage.js';
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

clientExportSuite('file, packed', {
  async create() {
    const dir = await makeTempDir();
    dirs.push(dir);
    return FileStorage.open(dir, { checkpointEvery: 16, compactAfter: 0 });
  },
  // Every version of the built client is read from a pack.
  async built(source, clientId) {
    expect(await (source as FileStorage).compact(clientId)).toMatchObject({ merged: 0 });
  },
  async cleanup() {
    await Promise.all(dirs.splice(0).map(removeDir));
  },
});

describe('file export of packed histories', () => {
  const clientId = parseClientId('dddddddd-4444-4444-8444-444444444444');
  let dir: string;
  let storage: FileStorage;
  beforeEach(async () => {
    dir = await makeTempDir();
    storage = await FileStorage.open(dir, { compactAfter: 0 });
  });
  afterEach(async () => {
    await storage.close();
    await removeDir(dir);
  });

  async function addVersions(ids: VersionId[], count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const id = newVersionId();
      await withTxn(storage, clientId, async (txn) => {
        if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
        await txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, new Uint8Array([ids.length % 256, 7]));
      });
      ids.push(id);
    }
  }

  const exported = async (from: FileStorage = storage): Promise<Version[]> =>
    (await from.exportClient(clientId, async (client) => {
      const versions: Version[] = [];
      for await (const version of client.versions()) versions.push(version);
      return versions;
    })) ?? [];

  it('yields every packed and loose version once: the packs oldest first in chain order, then the loose ones', async () => {
    const ids: VersionId[] = [];
    await addVersions(ids, 10);
    await storage.compact(clientId);
    await addVersions(ids, 10);
    await storage.compact(clientId);
    await addVersions(ids, 4);
    await storage.compact(clientId);
    await addVersions(ids, 3);
    // Packs of 10, 10 and 4 (not merged yet: three of the smallest tier), and 3 loose versions.
    expect((await readdir(path.join(dir, clientId))).filter((name) => name.endsWith('.pack'))).toHaveLength(3);
    const versions = await exported();
    expect(versions.slice(0, 24).map((v) => v.versionId)).toEqual(ids.slice(0, 24));
    expect(versions.map((v) => v.versionId).sort()).toEqual([...ids].sort());
    expect(versions[5]).toEqual({ versionId: ids[5], parentVersionId: ids[4], historySegment: new Uint8Array([5, 7]), addedAt: expect.any(Date) });
  });

  it('a loose copy of a packed version (a crashed compaction) is not yielded twice', async () => {
    const ids: VersionId[] = [];
    await addVersions(ids, 6);
    const versionsDir = path.join(dir, clientId, 'versions');
    const copies = await Promise.all((await readdir(versionsDir)).filter((n) => n.endsWith('.version')).map(async (n) => [n, await readFile(path.join(versionsDir, n))] as const));
    await storage.compact(clientId);
    await addVersions(ids, 2);
    const clean = await exported();
    expect(clean.map((v) => v.versionId).sort()).toEqual([...ids].sort());
    for (const [name, bytes] of copies) await writeFile(path.join(versionsDir, name), bytes);
    for (const [i, id] of ids.slice(0, 6).entries()) await link(path.join(versionsDir, `${id}.version`), path.join(versionsDir, `${i === 0 ? NIL_VERSION_ID : ids[i - 1]}.child`));
    expect(await exported()).toEqual(clean);
  });

  it('an import writes every version into one pack, with the times the source gave, and nothing loose', async () => {
    const ids: VersionId[] = [];
    await addVersions(ids, 70);
    await storage.compact(clientId);
    const destDir = await makeTempDir();
    const dest = await FileStorage.open(destDir, { compactAfter: 64 });
    try {
      await storage.exportClient(clientId, (client) => dest.importClient(client));
      const meta = JSON.parse(await readFile(path.join(destDir, clientId, 'client.json'), 'utf8'));
      expect(meta).toMatchObject({ format: 2, checkpointVersionId: ids[69], loose: 0, packs: [{ versions: 70 }] });
      expect(await readdir(path.join(destDir, clientId, 'versions'))).toEqual([]);
      expect((await dest.clientUsage(clientId))?.oldestVersionAddedAt).toEqual((await storage.clientUsage(clientId))?.oldestVersionAddedAt);
      const next = newVersionId();
      await withTxn(dest, clientId, (txn) => txn.addVersion(next, ids[69]!, new Uint8Array([1])));
      const versions = await exported(dest);
      expect(versions.map((v) => v.versionId).sort()).toEqual([...ids, next].sort());
    } finally {
      await dest.close();
      await removeDir(destDir);
    }
  });
});
