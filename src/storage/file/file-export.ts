/**
 * Whole clients out of a data directory (see ../client-export.ts): read through a transaction of
 * the storage itself, so an export sees what a sync request would, holds the client's lock as any
 * transaction does, and reads each version as it is consumed.
 *
 * The versions come pack by pack, oldest pack first and each in chain order, then the loose ones
 * by parent id. A loose file whose version a pack holds (a compaction that crashed before it
 * removed the loose files) is a copy, and the version is yielded once, from its pack, as every
 * read finds it there first.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { TcsyncError } from '../../errors.js';
import { isCanonicalUuid, type ClientId, type VersionId } from '../../ids.js';
import type { ExportedClient, ExportedVersion } from '../client-export.js';
import { parseMeta } from './client-meta.js';
import { ioError, isErrno, readFileOrNull, statOrNull } from './durable-fs.js';
import type { FileTxn } from './file-txn.js';
import { CHILD_SUFFIX, ClientPaths, TOMBSTONES_DIR } from './layout.js';

/**
 * The parents whose child is committed: every `<parent>.child`, and the links client.json lists
 * as pending (a transaction without an exclusive lock reads them where they are listed).
 */
async function committedParents(paths: ClientPaths): Promise<VersionId[]> {
  const parents = new Set<VersionId>(await linkedParents(paths));
  const meta = await readFileOrNull(paths.meta);
  if (meta !== null) for (const link of parseMeta(meta.toString('utf8'), paths.meta).pendingLinks) parents.add(link.parentVersionId);
  return [...parents].sort();
}

/** The parents named by `<parent>.child` links; none when the versions directory is gone. */
export async function linkedParents(paths: ClientPaths): Promise<VersionId[]> {
  let names: string[];
  try {
    names = await readdir(paths.versionsDir);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return [];
    throw err;
  }
  return names
    .map((name) => (name.endsWith(CHILD_SUFFIX) ? name.slice(0, -CHILD_SUFFIX.length) : ''))
    .filter((id): id is VersionId => isCanonicalUuid(id));
}

/** Runs `work` on the client in a transaction that holds its lock throughout, and ends it. */
export async function exportFileClient<T>(
  lockedTxn: () => Promise<FileTxn>,
  dataDir: string,
  clientId: ClientId,
  work: (client: ExportedClient) => Promise<T>,
): Promise<T | null> {
  const paths = new ClientPaths(dataDir, clientId);
  const txn = await lockedTxn();
  let result: T | null;
  try {
    result = await exportFrom(txn, paths, clientId, work);
  } catch (err) {
    await txn.rollback();
    throw err;
  }
  await txn.commit();
  return result;
}

async function exportFrom<T>(txn: FileTxn, paths: ClientPaths, clientId: ClientId, work: (client: ExportedClient) => Promise<T>): Promise<T | null> {
  const client = await txn.getClient();
  if (client === null) return null;
  const { latestVersionId, snapshot } = client;
  return work({
    clientId,
    latestVersionId,
    snapshot,
    async readSnapshot() {
      if (snapshot === null) throw new TcsyncError('SNAPSHOT_MISMATCH', 'the client has no snapshot');
      const data = await txn.getSnapshotData(snapshot.versionId);
      if (data === null) throw new TcsyncError('CORRUPT', `${clientId}: client.json names a snapshot blob that is missing`);
      return data;
    },
    async *versions(): AsyncIterable<ExportedVersion> {
      // A parent has one child: the packed one, when there is a loose copy of it too.
      const packedParents = new Set<VersionId>();
      for await (const version of txn.packedVersions()) {
        packedParents.add(version.parentVersionId);
        yield version;
      }
      let parents: VersionId[];
      try {
        parents = await committedParents(paths);
      } catch (err) {
        throw ioError('list versions', err);
      }
      for (const parent of parents) {
        if (packedParents.has(parent)) continue;
        const version = await txn.getVersionByParent(parent);
        // A loose version was added when its file was written (a pending link's file has no `.child` yet).
        const st = version && ((await statOrNull(paths.child(parent))) ?? (await statOrNull(paths.version(version.versionId))));
        if (version !== null) yield { ...version, addedAt: st ? new Date(Number(st.mtimeMs)) : null };
      }
    },
  });
}

/** Tombstoned ids greater than `after`, ascending, at most `limit`; temporary files are not tombstones. */
export async function listFileTombstones(dataDir: string, after: ClientId | null, limit: number): Promise<ClientId[]> {
  let names: string[];
  try {
    names = await readdir(path.join(dataDir, TOMBSTONES_DIR));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw ioError('list tombstones', err);
  }
  return names
    .filter((name): name is ClientId => isCanonicalUuid(name) && (after === null || name > after))
    .sort()
    .slice(0, limit);
}
