/**
 * What one client of a data directory takes up (Storage.clientUsage), read without the lock as
 * every read is (docs/storage.md, "Reads take no lock"):
 *
 * - versions: the committed ones, counted as an export counts them: every `<parent>.child`
 *   link, and the links client.json lists as pending (measured at `<id>.version` while the link
 *   is not made yet). A `.version` file that no link names is an uncommitted leftover: not counted.
 * - bytes: their segments' sizes, as their header lines give them, plus the snapshot's size from
 *   client.json: not the files' sizes, so that every storage gives the same figure for one client.
 *   A version whose header cannot be read counts at its file's size (verify reports it).
 * - oldestVersionAddedAt: the oldest of those files' mtimes. A version file is written once and
 *   never changed, so its mtime is when the version was added (for a client migrated or
 *   restored, when it was copied in, unless the copy kept mtimes).
 *
 * A commit may land while this reads: the figures may count a version whose commit is still in
 * flight, or miss one committed after the directory was listed, and a file gone meanwhile (the
 * client deleted) is skipped. That is all an operator's estimate needs, and a commit never makes
 * it fail.
 */
import { open } from 'node:fs/promises';
import { isTcsyncError } from '../../errors.js';
import type { VersionId } from '../../ids.js';
import { forEachLimit } from '../../pool.js';
import type { ClientUsage } from '../storage.js';
import { parseMeta } from './client-meta.js';
import { ioError, isErrno, readFileOrNull } from './durable-fs.js';
import { linkedParents } from './file-export.js';
import type { ClientPaths } from './layout.js';
import { MAX_HEADER, parseHeader } from './version-file.js';

/** Version files measured at once: each costs an open, a stat, a read and a close on the threadpool. */
const CONCURRENCY = 8;

export async function fileClientUsage(paths: ClientPaths): Promise<ClientUsage | null> {
  try {
    const metaBytes = await readFileOrNull(paths.meta);
    if (metaBytes === null) return null;
    const meta = parseMeta(metaBytes.toString('utf8'), paths.meta);
    const files = new Map<VersionId, string>();
    for (const parent of await linkedParents(paths)) files.set(parent, paths.child(parent));
    for (const link of meta.pendingLinks) if (!files.has(link.parentVersionId)) files.set(link.parentVersionId, paths.version(link.versionId));

    let versions = 0;
    let bytes = meta.snapshot?.size ?? 0;
    let oldest = Infinity;
    await forEachLimit([...files.values()], CONCURRENCY, async (file) => {
      const measured = await measureVersion(file);
      if (measured === null) return;
      versions++;
      bytes += measured.size;
      oldest = Math.min(oldest, measured.mtimeMs);
    });
    return { versions, bytes, oldestVersionAddedAt: Number.isFinite(oldest) ? new Date(oldest) : null };
  } catch (err) {
    throw ioError('read usage', err);
  }
}

/** A version file's segment size and mtime, or null when the file is gone. */
async function measureVersion(file: string): Promise<{ size: number; mtimeMs: number } | null> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
  try {
    const stats = await handle.stat();
    const head = Buffer.alloc(MAX_HEADER);
    const { bytesRead } = await handle.read(head, 0, MAX_HEADER, 0);
    let size = stats.size;
    try {
      size = parseHeader(head.subarray(0, bytesRead), file).header.size;
    } catch (err) {
      if (!isTcsyncError(err, 'CORRUPT')) throw err;
    }
    return { size, mtimeMs: stats.mtimeMs };
  } finally {
    await handle.close();
  }
}
