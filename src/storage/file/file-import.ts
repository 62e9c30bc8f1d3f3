/**
 * Whole clients into a data directory (see ../client-export.ts). The client's directory is built
 * complete under `trash/` as a new client's is (layout.ts newClientPaths), every file and
 * directory of it fsync'd, and then renamed into place under the client's lock: that rename is
 * the commit point, so a crash or a full disk leaves either the whole client or no client.
 *
 * The layout written is the one a compaction leaves (compaction.ts): every version in one pack,
 * with the time the source says it was added, client.json checkpointed at the latest version
 * with nothing pending and nothing loose, and the snapshot blob it names. A history of any
 * length is three files, written in one pass each.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { TcsyncError } from '../../errors.js';
import type { ClientId, VersionId } from '../../ids.js';
import type { ExportedClient } from '../client-export.js';
import { serializeMeta, type PackMeta } from './client-meta.js';
import { fsyncDir, ioError, renameDirOver, replaceFile, statOrNull, writeNewFile } from './durable-fs.js';
import { writeSnapshotBlob } from './file-txn.js';
import { ClientPaths, newClientPaths, tombstonePath } from './layout.js';
import { PackWriter } from './pack-file.js';
import { encodeVersion } from './version-file.js';

/** What the import needs of the storage: its directory and its client lock (FileStorage.withClientLock). */
export interface ImportTarget {
  readonly dataDir: string;
  withClientLock<T>(clientId: ClientId, work: (clientDir: string, assertHeld: () => void) => Promise<T>): Promise<T>;
}

function isSystemError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

/** Refuses an id that is a client or carries a tombstone here. */
async function assertFree(dataDir: string, clientId: ClientId, allowTombstone: boolean): Promise<void> {
  if ((await statOrNull(new ClientPaths(dataDir, clientId).meta)) !== null) throw new TcsyncError('CLIENT_EXISTS', `client ${clientId} already exists`);
  if (!allowTombstone && (await statOrNull(tombstonePath(dataDir, clientId))) !== null) {
    throw new TcsyncError('CLIENT_DELETED', `client ${clientId} was deleted here; its tombstone must be lifted first`);
  }
}

/**
 * Writes the client's versions into one pack; null when it has none. The versions are counted in
 * a first pass (the pack's first line says how many) and written in a second, so that a long
 * history is never held in memory.
 */
async function writePack(paths: ClientPaths, client: ExportedClient): Promise<PackMeta | null> {
  let versions = 0;
  for await (const _ of client.versions()) versions += 1;
  if (versions === 0) return null;
  const file = `pack-${uuidv4()}.pack`;
  const writer = PackWriter.create(paths.pack(file), versions);
  try {
    const ids = new Set<VersionId>();
    const parents = new Set<VersionId>();
    const now = Date.now();
    for await (const version of client.versions()) {
      if (ids.has(version.versionId) || parents.has(version.parentVersionId)) {
        throw new TcsyncError('CORRUPT', `version ${version.versionId} repeats a version id or the parent ${version.parentVersionId}`);
      }
      ids.add(version.versionId);
      parents.add(version.parentVersionId);
      const { versionId, parentVersionId } = version;
      await writer.add(Buffer.concat(encodeVersion(version)), { versionId, parentVersionId, addedAt: version.addedAt?.getTime() ?? now });
    }
    return { file, versions, size: await writer.finish(paths.dir, versions) };
  } catch (err) {
    writer.abandon();
    throw err;
  }
}

/** Writes the client's files into `paths.dir` (which must not exist), durably. */
async function writeClient(paths: ClientPaths, client: ExportedClient): Promise<void> {
  // A client's directory has its versions directory from the start: the common commit links there.
  await mkdir(paths.versionsDir, { recursive: true });
  const pack = await writePack(paths, client);
  const snapshot = client.snapshot === null ? null : await writeSnapshotBlob(paths, client.snapshot, await client.readSnapshot());
  const meta = { checkpointVersionId: client.latestVersionId, snapshot, pendingLinks: [], packs: pack === null ? [] : [pack], loose: 0 };
  await writeNewFile(paths.meta, [Buffer.from(serializeMeta(meta))]);
  await fsyncDir(paths.versionsDir);
  await fsyncDir(paths.dir);
}

export async function importFileClient(target: ImportTarget, client: ExportedClient): Promise<void> {
  const { dataDir } = target;
  const { clientId } = client;
  await target.withClientLock(clientId, async (clientDir, assertHeld) => {
    await assertFree(dataDir, clientId, false);
    const built = newClientPaths(dataDir, clientId);
    try {
      await writeClient(built, client);
      // A directory without client.json is the leftover of an interrupted creation, not a client.
      assertHeld();
      await renameDirOver(built.dir, clientDir, assertHeld);
      await fsyncDir(dataDir);
    } catch (err) {
      // The source's own faults (a database gone, a damaged source) pass through as they are.
      throw isSystemError(err) ? ioError(`import client ${clientId}`, err) : err;
    } finally {
      await rm(built.dir, { recursive: true, force: true }).catch(() => undefined);
    }
  });
}

export async function importFileTombstone(target: ImportTarget, clientId: ClientId): Promise<void> {
  const { dataDir } = target;
  await target.withClientLock(clientId, async () => {
    await assertFree(dataDir, clientId, true);
    const file = tombstonePath(dataDir, clientId);
    try {
      if ((await statOrNull(file)) !== null) return;
      await replaceFile(file, JSON.stringify({ deletedAt: new Date().toISOString() }) + '\n');
      await fsyncDir(path.dirname(file));
    } catch (err) {
      throw ioError(`import tombstone ${clientId}`, err);
    }
  });
}
