/**
 * Whole clients into a data directory (see ../client-export.ts). The client's directory is built
 * complete under `trash/` (never read as a client, swept when a storage opens), every file and
 * directory of it fsync'd, and then renamed into place under the client's lock: that rename is
 * the commit point, so a crash or a full disk leaves either the whole client or no client.
 *
 * The layout written is the one a commit leaves (file-storage.ts): each version as
 * `<id>.version` hard-linked as `<parent>.child`, client.json checkpointed at the latest version
 * with nothing pending, and the snapshot blob it names.
 */
import { renameSync } from 'node:fs';
import { link, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { v4 as uuidv4 } from 'uuid';
import { TcsyncError } from '../../errors.js';
import type { ClientId } from '../../ids.js';
import type { ExportedClient } from '../client-export.js';
import { serializeMeta, type SnapshotMeta } from './client-meta.js';
import { fsyncDir, ioError, isErrno, replaceFile, statOrNull, writeNewFile } from './durable-fs.js';
import { ClientPaths, TRASH_DIR, tombstonePath } from './layout.js';
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

/** Writes the client's files into `paths.dir` (which must not exist), durably. */
async function writeClient(paths: ClientPaths, client: ExportedClient): Promise<void> {
  await mkdir(paths.versionsDir, { recursive: true });
  let loose = 0;
  for await (const version of client.versions()) {
    loose += 1;
    try {
      await writeNewFile(paths.version(version.versionId), encodeVersion(version));
      await link(paths.version(version.versionId), paths.child(version.parentVersionId));
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      throw new TcsyncError('CORRUPT', `version ${version.versionId} repeats a version id or the parent ${version.parentVersionId}`);
    }
  }
  let snapshot: SnapshotMeta | null = null;
  if (client.snapshot !== null) {
    const data = await client.readSnapshot();
    const file = `snapshot-${uuidv4()}.bin`;
    await writeNewFile(paths.snapshotBlob(file), [data]);
    snapshot = { ...client.snapshot, file, size: data.byteLength, crc32: crc32(data) };
  }
  await writeNewFile(paths.meta, [Buffer.from(serializeMeta({ checkpointVersionId: client.latestVersionId, snapshot, pendingLinks: [], packs: [], loose }))]);
  await fsyncDir(paths.versionsDir);
  await fsyncDir(paths.dir);
}

export async function importFileClient(target: ImportTarget, client: ExportedClient): Promise<void> {
  const { dataDir } = target;
  const { clientId } = client;
  await target.withClientLock(clientId, async (clientDir, assertHeld) => {
    await assertFree(dataDir, clientId, false);
    const staging = path.join(dataDir, TRASH_DIR, `${clientId}.import-${uuidv4()}`);
    try {
      const built = new ClientPaths(staging, clientId);
      await writeClient(built, client);
      // A directory without client.json is the leftover of an interrupted creation, not a client.
      assertHeld();
      await rm(clientDir, { recursive: true, force: true });
      assertHeld();
      renameSync(built.dir, clientDir);
      await fsyncDir(dataDir);
    } catch (err) {
      // The source's own faults (a database gone, a damaged source) pass through as they are.
      throw isSystemError(err) ? ioError(`import client ${clientId}`, err) : err;
    } finally {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
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
