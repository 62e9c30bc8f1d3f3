/**
 * Copies one client's committed files (see file-storage.ts) into another data directory. Files
 * are copied, never linked to the source: a backup must not share inodes with the live data.
 * Each `.version` is copied once and its `.child` hard-linked to the copy, whether or not the
 * source pair was hard-linked (a data directory copied with `cp -r` is not).
 * Synchronous calls, for the reason client-index.ts gives.
 */
import { closeSync, constants, copyFileSync, linkSync, mkdirSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { TcsyncError } from '../../../errors.js';
import type { VersionId } from '../../../ids.js';
import { ClientPaths } from '../layout.js';
import { MAX_HEADER, parseHeader } from '../version-file.js';
import { namedPacks, namedSnapshotBlob, packedVersions, sameBytes, yieldSometimes, type ClientIndex, type IndexedFile } from './client-index.js';

export interface CopiedFiles {
  /** New files, each to be fsync'd before the backup counts. */
  readonly files: string[];
  /** Directories that got new entries, to be fsync'd after the files. */
  readonly dirs: string[];
  readonly bytes: number;
}

interface CommittedFiles {
  /** Files to copy. */
  readonly files: IndexedFile[];
  /** Each `.child` that is its `.version` (one file, or the same bytes), to re-create as a hard link. */
  readonly links: ReadonlyArray<{ readonly child: IndexedFile; readonly version: IndexedFile }>;
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
 * What the client has committed: client.json, its snapshot blob, each version that a `.child`
 * names (known without a read when the `.child` is a hard link of it) or that client.json lists
 * as pending, and the `.child` files. A `.child` that does not match its `.version` is copied as
 * it is, so that verifying the copy names the damage instead of the backup hiding it.
 * And the packs client.json names, as they are (verifying the copy reads every record), without
 * the loose copies of their versions that a compaction may be removing meanwhile.
 */
function committedFiles(index: ClientIndex): CommittedFiles {
  if (index.metaFile === null) return { files: [], links: [] };
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
  const blob = namedSnapshotBlob(index);
  return { files: [index.metaFile, ...(blob ? [blob] : []), ...namedPacks(index), ...versions.values(), ...unmatched], links };
}

/** Copies what the client has committed; nothing for a directory without client.json. */
export async function copyClient(index: ClientIndex, destDataDir: string): Promise<CopiedFiles> {
  const { files, links } = committedFiles(index);
  const copied: CopiedFiles = { files: [], dirs: [], bytes: 0 };
  if (files.length === 0) return copied;
  const dest = new ClientPaths(destDataDir, index.clientId);
  const destOf = (file: IndexedFile) => path.join(dest.dir, path.relative(index.paths.dir, file.path));
  mkdirSync(dest.dir);
  copied.dirs.push(dest.dir);
  if (index.hasVersionsDir) {
    mkdirSync(dest.versionsDir);
    copied.dirs.push(dest.versionsDir);
  }
  let bytes = 0;
  let count = 0;
  for (const file of files) {
    await yieldSometimes(++count);
    const target = destOf(file);
    // No COPYFILE_FICLONE: a shared extent would tie the backup to the live disk's blocks.
    copyFileSync(file.path, target, constants.COPYFILE_EXCL);
    copied.files.push(target);
    bytes += file.size;
  }
  for (const { child, version } of links) {
    await yieldSometimes(++count);
    linkSync(destOf(version), destOf(child));
  }
  return { ...copied, bytes };
}
