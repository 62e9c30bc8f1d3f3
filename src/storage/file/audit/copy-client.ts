/**
 * Copies one client's committed files (see file-storage.ts) into another data directory, and
 * indexes the copy as written, so that it can be checked without reading it back.
 *
 * Files are read and written, never linked to the source nor copied by the kernel: a backup must
 * share neither inodes nor extents with the live data, and copy_file_range(2), which fs.copyFile
 * uses, shares extents on file systems that can (btrfs, XFS with reflink). Each `.version` is
 * written once and its `.child` hard-linked to it, whether or not the source pair was hard-linked
 * (a data directory copied with `cp -r` is not). Nothing is fsync'd here: the caller makes the
 * whole copy durable at once (sync-file-system.ts).
 * Synchronous calls, for the reason client-index.ts gives.
 */
import { closeSync, linkSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TcsyncError } from '../../../errors.js';
import type { VersionId } from '../../../ids.js';
import { ClientPaths } from '../layout.js';
import { MAX_HEADER, parseHeader } from '../version-file.js';
import { namedPacks, namedSnapshotBlob, packedVersions, sameBytes, yieldSometimes, type ClientIndex, type IndexedFile } from './client-index.js';

export interface CopiedClient {
  /**
   * The copy, indexed as indexClient would read it. Its files' `ino` numbers them as written
   * (a `.child` and its `.version` share one), and their bytes are attached (up to KEPT_BYTES
   * per client; the rest is read back from the copy when checked).
   */
  readonly index: ClientIndex;
  /**
   * The source's commit points that the copy holds: client.json and the `.child` links copied. A
   * commit taken back removes or replaces one of them (the versions they name and the files
   * client.json names are never changed in place), so a copy made without the lock counts only
   * if they are still the files it read (stillIndexed). Loose copies of packed versions are not
   * among them: a compaction removes those without the lock.
   */
  readonly commitPoints: readonly IndexedFile[];
  /** Files written (a hard link is not one). */
  readonly files: number;
  /** Bytes written. */
  readonly bytes: number;
}

/** Files up to this size are read whole and written in one call; larger ones in pieces of it. */
const WHOLE_FILE_MAX = 1024 * 1024;
/** Bytes of one client's copy kept for checking it; a client larger than this is partly read back. */
const KEPT_BYTES = 8 * 1024 * 1024;

interface CommittedFiles {
  /** Files to copy. */
  readonly files: IndexedFile[];
  /** Each `.child` that is its `.version` (one file, or the same bytes), to re-create as a hard link. */
  readonly links: ReadonlyArray<{ readonly child: IndexedFile; readonly version: IndexedFile }>;
  /** client.json and the `.child` files among them (see CopiedClient.commitPoints). */
  readonly commitPoints: readonly IndexedFile[];
}

/** The version a `.child` header names, or null when the header does not parse. */
function headerVersionId(file: string): VersionId | null {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(MAX_HEADER);
    return parseHeader(head.subarray(0, readSync(fd, head, 0, head.length, 0)), file).header.versionId;
  } catch (err) {
    if (err instanceof TcsyncError) return null;
    throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * client.json and the files it names: the snapshot blob and the packs, as they are (checking the
 * copy reads every record). Whatever client.json comes to name is copied by being listed here.
 */
function namedFiles(index: ClientIndex, metaFile: IndexedFile): IndexedFile[] {
  const blob = namedSnapshotBlob(index);
  return [metaFile, ...(blob ? [blob] : []), ...namedPacks(index)];
}

/**
 * What the client has committed: client.json and the files it names, each version that a
 * `.child` names (known without a read when the `.child` is a hard link of it) or that
 * client.json lists as pending, and the `.child` files. A `.child` that does not match its
 * `.version` is copied as it is, so that checking the copy names the damage instead of the
 * backup hiding it. Loose copies of packed versions are left out: a compaction may be removing
 * them meanwhile, without the lock.
 */
function committedFiles(index: ClientIndex): CommittedFiles {
  if (index.metaFile === null) return { files: [], links: [], commitPoints: [] };
  const packed = packedVersions(index);
  const idByInode = new Map([...index.versions].map(([id, file]) => [file.ino, id]));
  const versions = new Map<VersionId, IndexedFile>();
  for (const { versionId } of index.meta?.pendingLinks ?? []) {
    const file = index.versions.get(versionId);
    if (file && !packed.ids.has(versionId)) versions.set(versionId, file);
  }
  const links: Array<{ child: IndexedFile; version: IndexedFile }> = [];
  const unmatched: IndexedFile[] = [];
  for (const [parent, child] of index.children) {
    if (packed.parents.has(parent)) continue;
    const id = idByInode.get(child.ino) ?? headerVersionId(child.path);
    const version = id === null ? undefined : index.versions.get(id);
    if (id !== null && version) versions.set(id, version);
    if (version && (version.ino === child.ino || sameBytes(version, child))) links.push({ child, version });
    else unmatched.push(child);
  }
  const commitPoints = [index.metaFile, ...links.map((link) => link.child), ...unmatched];
  return { files: [...namedFiles(index, index.metaFile), ...versions.values(), ...unmatched], links, commitPoints };
}

/**
 * Copies what the client has committed; null for a directory without client.json (nothing
 * committed). Run it under the client's lock, or check afterwards that the client was quiet and
 * the sources unchanged (FileStorage.isQuiet, stillIndexed).
 */
export async function copyClient(index: ClientIndex, destDataDir: string): Promise<CopiedClient | null> {
  const { files, links, commitPoints } = committedFiles(index);
  if (files.length === 0) return null;
  const dest = new ClientPaths(destDataDir, index.clientId);
  const destOf = (file: IndexedFile) => dest.dir + file.path.slice(index.paths.dir.length);
  mkdirSync(dest.dir);
  if (index.hasVersionsDir) mkdirSync(dest.versionsDir);
  const copies = new Map<IndexedFile, IndexedFile>();
  let bytes = 0;
  let kept = 0;
  let count = 0;
  for (const file of files) {
    await yieldSometimes(++count);
    const target = destOf(file);
    const written = await copyBytes(file, target);
    const keep = typeof written !== 'number' && kept + written.byteLength <= KEPT_BYTES;
    const size = typeof written === 'number' ? written : written.byteLength;
    if (keep) kept += size;
    bytes += size;
    copies.set(file, { path: target, ino: BigInt(copies.size + 1), ctimeNs: 0n, nlink: 1, size, ...(keep ? { bytes: written } : {}) });
  }
  for (const { child, version } of links) {
    await yieldSometimes(++count);
    const copy = copies.get(version) as IndexedFile;
    linkSync(copy.path, destOf(child));
    const linked = { ...copy, nlink: copy.nlink + 1 };
    copies.set(version, linked);
    copies.set(child, { ...linked, path: destOf(child) });
  }
  return { index: indexOfCopy(index, dest, copies), commitPoints, files: files.length, bytes };
}

/** The index of a copy: the source's, with each copied file's copy and nothing else. */
function indexOfCopy(source: ClientIndex, paths: ClientPaths, copies: ReadonlyMap<IndexedFile, IndexedFile>): ClientIndex {
  const copied = <K>(entries: ReadonlyMap<K, IndexedFile>) =>
    new Map([...entries].flatMap(([key, file]): Array<[K, IndexedFile]> => {
      const copy = copies.get(file);
      return copy ? [[key, copy]] : [];
    }));
  return {
    clientId: source.clientId,
    paths,
    metaFile: source.metaFile && (copies.get(source.metaFile) ?? null),
    meta: source.meta,
    metaError: source.metaError,
    hasVersionsDir: source.hasVersionsDir,
    versions: copied(source.versions),
    children: copied(source.children),
    snapshotBlobs: source.snapshotBlobs.flatMap((blob) => copies.get(blob) ?? []),
    packFiles: source.packFiles.flatMap((pack) => copies.get(pack) ?? []),
    packTemps: [],
    metaTemps: [],
    relinkTemps: [],
    unknown: [],
  };
}

/**
 * Writes `file`'s bytes to `target`, a new file. A small file is read whole and its bytes are
 * returned; a larger one goes in pieces, and only its size is returned.
 */
async function copyBytes(file: IndexedFile, target: string): Promise<Buffer | number> {
  if (file.bytes !== undefined) {
    writeCopy(target, file.bytes);
    return file.bytes;
  }
  const from = openSync(file.path, 'r');
  try {
    if (file.size <= WHOLE_FILE_MAX) {
      const bytes = readUpTo(from, file.size);
      writeCopy(target, bytes);
      return bytes;
    }
    const piece = Buffer.allocUnsafe(WHOLE_FILE_MAX);
    let size = 0;
    const to = openSync(target, 'wx');
    try {
      for (let n = readSync(from, piece); n > 0; n = readSync(from, piece)) {
        writeAll(to, piece.subarray(0, n));
        size += n;
        // Lets timers (the client lock's refresh) run during a long file.
        await nextTurn();
      }
    } finally {
      closeSync(to);
    }
    return size;
  } finally {
    closeSync(from);
  }
}

/** The file's first `size` bytes, fewer if it is shorter (its check then says so). */
function readUpTo(fd: number, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  let at = 0;
  for (let n = -1; at < size && n !== 0; at += n) n = readSync(fd, bytes, at, size - at, at);
  return at === size ? bytes : bytes.subarray(0, at);
}

/** Creates `target`, which must not exist, with `bytes`; not fsync'd (see above). */
export function writeCopy(target: string, bytes: Uint8Array): void {
  const fd = openSync(target, 'wx');
  try {
    writeAll(fd, bytes);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes every byte or throws: a file system short of space may write part of a request and
 * report the shorter count without an error (see durable-fs.ts writeAll).
 */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.byteLength; ) {
    const n = writeSync(fd, bytes, at, bytes.byteLength - at);
    if (n === 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    at += n;
  }
}
