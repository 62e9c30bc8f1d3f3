/**
 * What one client of a data directory takes up (Storage.clientUsage), read without the lock as
 * every read is (docs/storage.md, "Reads take no lock"):
 *
 * - versions: the committed ones, counted as an export counts them: every version in the packs
 *   client.json names, every `<parent>.child` link whose parent has no packed child (one that
 *   does is a loose copy a compaction left: the same version, counted once), and the links
 *   client.json lists as pending (measured at `<id>.version` while the link is not made yet). A
 *   `.version` file that no link names is an uncommitted leftover: not counted.
 * - bytes: their segments' sizes, as their header lines give them, plus the snapshot's size from
 *   client.json: not the files' sizes, so that every storage gives the same figure for one client.
 *   A packed version's header line is its record's first line: the index's record length
 *   includes that line, whose length varies with the digits of the size and the CRC-32, so it
 *   cannot give the segment's size alone. The headers are read in batches (one read for the
 *   records that start within READ_SPAN), about one read per thousand versions of 1 KiB, where
 *   a loose version costs an open, a stat, a read and a close. A version whose header cannot be
 *   read counts at its file's or record's size, and a pack whose index cannot be read at the
 *   pack's size with the number of versions client.json gives it (verify reports both).
 * - oldestVersionAddedAt: the oldest of the loose files' mtimes and the packed versions' `addedAt`.
 *   A version file is written once and never changed, so its mtime is when the version was
 *   added (for a client migrated or restored, when it was copied in, unless the copy kept
 *   mtimes); a compaction copies that time into the pack's index.
 *
 * A commit may land while this reads: the figures may count a version whose commit is still in
 * flight, or miss one committed after the directory was listed, and a file gone meanwhile (the
 * client deleted) is skipped. A compaction or pruning that commits meanwhile moves many versions
 * at once, so the figures are read again when client.json changed while they were read. That is
 * all an operator's estimate needs, and a commit never makes it fail.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { isTcsyncError } from '../../errors.js';
import type { VersionId } from '../../ids.js';
import { forEachLimit } from '../../pool.js';
import type { ClientUsage } from '../storage.js';
import { identityOf } from './client-cache.js';
import { parseMeta, type PackMeta } from './client-meta.js';
import { ioError, isErrno, readFileOrNull, statOrNull } from './durable-fs.js';
import { linkedParents } from './file-export.js';
import type { ClientPaths } from './layout.js';
import { idKey, indexBytes, PackIndex, type PackEntry } from './pack-file.js';
import { MAX_HEADER, parseHeader } from './version-file.js';

/** Version files measured at once: each costs an open, a stat, a read and a close on the threadpool. */
const CONCURRENCY = 8;
/** Bytes of a pack read at once for the header lines of the records in them. */
const READ_SPAN = 1024 * 1024;
/** Reads of a client whose client.json changed meanwhile, before the last figures are taken as they are. */
const ATTEMPTS = 3;

interface Figures {
  versions: number;
  bytes: number;
  oldest: number;
}

export async function fileClientUsage(paths: ClientPaths): Promise<ClientUsage | null> {
  try {
    for (let attempt = 1; ; attempt++) {
      const before = await statOrNull(paths.meta);
      if (before === null) return null;
      const usage = await measureClient(paths);
      const after = await statOrNull(paths.meta);
      if (usage === null || after === null || identityOf(after) === identityOf(before) || attempt >= ATTEMPTS) return usage;
    }
  } catch (err) {
    throw ioError('read usage', err);
  }
}

async function measureClient(paths: ClientPaths): Promise<ClientUsage | null> {
  const metaBytes = await readFileOrNull(paths.meta);
  if (metaBytes === null) return null;
  const meta = parseMeta(metaBytes.toString('utf8'), paths.meta);
  const figures: Figures = { versions: 0, bytes: meta.snapshot?.size ?? 0, oldest: Infinity };
  const indexes: PackIndex[] = [];
  for (const pack of meta.packs) {
    const index = await measurePack(paths.pack(pack.file), pack, figures);
    if (index !== null) indexes.push(index);
  }
  const files = new Map<VersionId, string>();
  for (const parent of await linkedParents(paths)) files.set(parent, paths.child(parent));
  for (const link of meta.pendingLinks) if (!files.has(link.parentVersionId)) files.set(link.parentVersionId, paths.version(link.versionId));
  for (const parent of files.keys()) if (indexes.some((index) => index.findByParent(idKey(parent)) !== null)) files.delete(parent);

  await forEachLimit([...files.values()], CONCURRENCY, async (file) => {
    const measured = await measureVersion(file);
    if (measured === null) return;
    add(figures, measured.size, measured.mtimeMs);
  });
  const { versions, bytes, oldest } = figures;
  return { versions, bytes, oldestVersionAddedAt: Number.isFinite(oldest) ? new Date(oldest) : null };
}

function add(figures: Figures, bytes: number, addedAt: number): void {
  figures.versions++;
  figures.bytes += bytes;
  figures.oldest = Math.min(figures.oldest, addedAt);
}

/**
 * Adds a pack's versions to the figures; its index, or null when it has none that reads. A pack
 * that is gone or damaged counts as client.json describes it: gone, it was most likely replaced
 * by a compaction since client.json was read, and fileClientUsage reads the client again.
 */
async function measurePack(file: string, pack: PackMeta, figures: Figures): Promise<PackIndex | null> {
  const unread = () => {
    figures.versions += pack.versions;
    figures.bytes += pack.size;
    return null;
  };
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return unread();
    throw err;
  }
  try {
    let index: PackIndex;
    try {
      index = await readIndex(handle, file, pack);
    } catch (err) {
      if (!isTcsyncError(err, 'CORRUPT')) throw err;
      return unread();
    }
    await measureRecords(handle, file, index.entries(), figures);
    return index;
  } finally {
    await handle.close();
  }
}

async function readIndex(handle: FileHandle, file: string, pack: PackMeta): Promise<PackIndex> {
  const length = Math.min(indexBytes(pack.versions), pack.size);
  const tail = Buffer.allocUnsafe(length);
  const { bytesRead } = await handle.read(tail, 0, length, pack.size - length);
  return PackIndex.parse(tail.subarray(0, bytesRead), pack.size, pack.versions, file);
}

/** Adds each record's segment size, from its header line, and its addedAt from the index. */
async function measureRecords(handle: FileHandle, file: string, entries: readonly PackEntry[], figures: Figures): Promise<void> {
  const buffer = Buffer.allocUnsafe(READ_SPAN);
  for (let first = 0; first < entries.length; ) {
    const start = entries[first]!.offset;
    let end = first + 1;
    while (end < entries.length && entries[end]!.offset + MAX_HEADER - start <= READ_SPAN) end++;
    const span = Math.min(entries[end - 1]!.offset + MAX_HEADER - start, READ_SPAN);
    const { bytesRead } = await handle.read(buffer, 0, span, start);
    for (let i = first; i < end; i++) {
      const entry = entries[i]!;
      const at = entry.offset - start;
      const head = buffer.subarray(at, Math.min(at + Math.min(entry.length, MAX_HEADER), bytesRead));
      add(figures, segmentSize(head, file, entry), entry.addedAt);
    }
    first = end;
  }
}

/** The segment's size its header line gives, or the record's length when the header does not match the entry. */
function segmentSize(head: Buffer, file: string, entry: PackEntry): number {
  try {
    const { header, bodyStart } = parseHeader(head, file);
    if (header.versionId === entry.versionId && bodyStart + header.size === entry.length) return header.size;
  } catch (err) {
    if (!isTcsyncError(err, 'CORRUPT')) throw err;
  }
  return entry.length;
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
