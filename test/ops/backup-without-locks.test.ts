/**
 * backup copies a client nobody is committing to without taking its lock, and counts that copy
 * only if the client was still quiet after it and every commit point it read was still there:
 * a commit met on the way is either wholly in the backup or wholly out of it.
 */
import { renameSync, unlinkSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  DEFAULT_SNAPSHOT_POLICY,
  FileStorage,
  NIL_VERSION_ID,
  SyncService,
  parseClientId,
  withTxn,
  type ClientId,
  type VersionId,
} from '../../src/index.js';
import { backupDataDir } from '../../src/ops/backup.js';
import { buildFixture, expectAcknowledgedIn, spawnWriter, tempDir, until } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
let backups = 0;
beforeAll(async () => {
  root = await tempDir();
});
afterAll(() => root.cleanup());
afterEach(() => {
  vi.restoreAllMocks();
});

const nextDest = () => path.join(root.dir, `backup-${++backups}`);
const CLIENT = parseClientId('55555555-5555-4555-8555-555555555555');

/** A data directory whose one client has three versions, each added on its own (common commits). */
async function threeVersions(dataDir: string): Promise<VersionId[]> {
  const storage = await FileStorage.open(dataDir);
  const sync = new SyncService(storage, { ...DEFAULT_SNAPSHOT_POLICY, createClients: true });
  const added: VersionId[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const result = await sync.addVersion(CLIENT, added.at(-1) ?? NIL_VERSION_ID, Buffer.from(`version ${i}`));
      if (result.kind !== 'ok') throw new Error('fixture: unexpected conflict');
      added.push(result.version.versionId);
    }
  } finally {
    await storage.close();
  }
  return added;
}

/**
 * Runs `meanwhile` when the backup looks whether CLIENT is still quiet after copying it without
 * its lock: as if a commit ran between the copy's reads and that look. Counts CLIENT's locks.
 */
function betweenCopyAndLook(meanwhile: () => void): { locks: () => number } {
  const isQuiet = FileStorage.prototype.isQuiet;
  let looks = 0;
  vi.spyOn(FileStorage.prototype, 'isQuiet').mockImplementation(function (this: FileStorage, clientId: ClientId) {
    if (clientId === CLIENT && ++looks === 2) meanwhile();
    return isQuiet.call(this, clientId);
  });
  const lock = vi.spyOn(FileStorage.prototype, 'withClientLock');
  return { locks: () => lock.mock.calls.filter(([id]) => id === CLIENT).length };
}

async function versionsIn(dataDir: string, ids: readonly VersionId[]): Promise<boolean[]> {
  const storage = await FileStorage.open(dataDir);
  try {
    return await withTxn(storage, CLIENT, async (txn) => Promise.all(ids.map(async (id) => (await txn.getVersion(id)) !== null)));
  } finally {
    await storage.close();
  }
}

test('a stopped data directory is copied without taking a single lock', async () => {
  const dataDir = path.join(root.dir, 'stopped');
  await buildFixture(dataDir);
  const lock = vi.spyOn(FileStorage.prototype, 'withClientLock');
  const report = await backupDataDir(dataDir, nextDest());
  expect(report.verify.sound).toBe(true);
  expect(report.clients).toBe(3);
  expect(report.lockedClients).toBe(0);
  expect(lock).not.toHaveBeenCalled();
});

describe('a commit met by a copy made without the lock', () => {
  test('taken back (its fsync failed) after the copy read it: the version is not in the backup, nor any file of it', async () => {
    const dataDir = path.join(root.dir, 'taken-back');
    const [first, second, third] = (await threeVersions(dataDir)) as [VersionId, VersionId, VersionId];
    const versionsDir = path.join(dataDir, CLIENT, 'versions');
    // What a failed common commit does before it answers (file-txn.ts #takeBack): its link, then its file.
    const { locks } = betweenCopyAndLook(() => {
      unlinkSync(path.join(versionsDir, `${second}.child`));
      unlinkSync(path.join(versionsDir, `${third}.version`));
    });
    const report = await backupDataDir(dataDir, nextDest());
    expect(report.verify.sound).toBe(true);
    expect(report.lockedClients).toBe(1);
    expect(locks()).toBe(1);
    expect(await versionsIn(report.dest, [first, second, third])).toEqual([true, true, false]);
    expect((await readdir(path.join(report.dest, CLIENT, 'versions'))).filter((n) => n.startsWith(third) || n.startsWith(second + '.child'))).toEqual([]);
  });

  test('rewriting client.json (a snapshot, a checkpoint): the client is copied again under its lock', async () => {
    const dataDir = path.join(root.dir, 'rewritten');
    const versions = await threeVersions(dataDir);
    const meta = path.join(dataDir, CLIENT, 'client.json');
    const content = await readFile(meta);
    // A replaced client.json is another file, even with the same bytes (as replaceFile makes it).
    await writeFile(`${meta}.1`, content);
    const { locks } = betweenCopyAndLook(() => renameSync(`${meta}.1`, meta));
    const report = await backupDataDir(dataDir, nextDest());
    expect(report.verify.sound).toBe(true);
    expect(report.lockedClients).toBe(1);
    expect(locks()).toBe(1);
    expect(await versionsIn(report.dest, versions)).toEqual([true, true, true]);
  });
});

test('backups taken while writers with idle moments commit and compact: each verifies and holds every version acknowledged before it started', async () => {
  const dataDir = path.join(root.dir, 'live');
  await FileStorage.open(dataDir).then((s) => s.close());
  const clients = [1, 2, 3, 4].map((n) => `0000000${n}-bbbb-4ccc-8ddd-00000000000${n}`);
  // Up to 100 ms between commits, often longer than the 25 ms a lock lingers, so each client is
  // sometimes quiet and sometimes busy when a backup comes by; a compaction every 8 versions
  // writes its pack and removes the loose copies without the lock, also while the client is quiet.
  const writers = clients.map((client) => spawnWriter(dataDir, client, 100, 8));
  let withoutLock = 0;
  try {
    for (let round = 0; round < 10; round++) {
      await until(() => {
        if (writers.some((w) => w.child.exitCode !== null)) throw new Error('a writer died');
        return writers.every((w) => w.acks.length >= 5 * (round + 1));
      });
      const acknowledged = writers.map((w, i) => ({ client: clients[i] as string, versions: [...w.acks] }));
      const report = await backupDataDir(dataDir, nextDest());
      expect(report.verify.findings).toEqual([]);
      expect(report.clients).toBe(4);
      withoutLock += report.clients - report.lockedClients;
      await expectAcknowledgedIn(report.dest, acknowledged);
    }
  } finally {
    for (const w of writers) w.child.kill('SIGTERM');
    await Promise.all(writers.map((w) => w.exited));
  }
  // The race this test is for: clients of a live server copied without their lock, while they
  // were compacted.
  expect(withoutLock).toBeGreaterThan(0);
  const packs = await Promise.all(clients.map(async (client) => (await readdir(path.join(dataDir, client))).filter((n) => n.startsWith('pack-'))));
  expect(packs.every((names) => names.length > 0)).toBe(true);
}, 60_000);
