/**
 * What a client directory holds, by name, inode and link count, without reading any file but
 * client.json. Which `.version` files are committed takes reading the `.child` files (see
 * file-storage.ts): a `.version` counts only when its parent's `.child` names it or client.json
 * lists it as a pending link, a snapshot blob or a pack only when client.json names it;
 * temporary files never count.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import path from 'node:path';
import { TcsyncError } from '../../../errors.js';
import { isCanonicalUuid, type ClientId, type VersionId } from '../../../ids.js';
import { parseMeta, type ClientMeta } from '../client-meta.js';
import { readPackIndex } from '../pack-file.js';
import { isErrno } from '../durable-fs.js';
import { CHILD_SUFFIX, CLIENT_META, ClientPaths, isTempOf, PACK_FILE, SNAPSHOT_BLOB, VERSION_SUFFIX, VERSIONS_DIR } from '../layout.js';

export interface IndexedFile {
  readonly path: string;
  readonly ino: bigint;
  /** When the inode last changed: with `ino`, tells a file replaced since it was indexed (inode numbers are reused). */
  readonly ctimeNs: bigint;
  /** Hard links to it: a torn `.version` with one is the leftover of a crash mid-write, with more it is damage. */
  readonly nlink: number;
  readonly size: number;
  /** Its bytes, when they were read already (client.json; a copy's files as written): see readIndexed. */
  readonly bytes?: Buffer;
}

export interface ClientIndex {
  readonly clientId: ClientId;
  readonly paths: ClientPaths;
  /** client.json, or null when the directory has none (the leftover of an interrupted creation). */
  readonly metaFile: IndexedFile | null;
  /** client.json parsed; null when missing or when it does not parse (then `metaError` says why). */
  readonly meta: ClientMeta | null;
  readonly metaError: TcsyncError | null;
  /** Whether versions/ exists (as a directory). */
  readonly hasVersionsDir: boolean;
  /** `versions/<id>.version`, by version id. */
  readonly versions: ReadonlyMap<VersionId, IndexedFile>;
  /** `versions/<parent>.child`, by parent version id. */
  readonly children: ReadonlyMap<VersionId, IndexedFile>;
  /** Every `snapshot-<uuid>.bin`, named by client.json or not. */
  readonly snapshotBlobs: readonly IndexedFile[];
  /** Every `pack-<uuid>.pack`, named by client.json or not. */
  readonly packFiles: readonly IndexedFile[];
  /** `pack-<uuid>.pack.<number>`: a pack being written, or the leftover of one a crash interrupted (tempPathOf). */
  readonly packTemps: readonly IndexedFile[];
  /** Temporary files `client.json.<number>` (layout.ts tempPathOf): leftovers of an interrupted rewrite. */
  readonly metaTemps: readonly IndexedFile[];
  /** `versions/<parent>.child.<number>`: temporary links of an interrupted `verify --repair` (tempPathOf). */
  readonly relinkTemps: readonly IndexedFile[];
  /** Entries whose name or type the format does not define. */
  readonly unknown: ReadonlyArray<{ readonly path: string; readonly what: string }>;
}

function isPackTemp(name: string): boolean {
  const target = name.slice(0, name.lastIndexOf('.'));
  return PACK_FILE.test(target) && isTempOf(name, target);
}

function isRelinkTemp(name: string): boolean {
  const target = name.slice(0, name.lastIndexOf('.'));
  return uuidBefore(target, CHILD_SUFFIX) !== null && isTempOf(name, target);
}

function uuidBefore(name: string, suffix: string): VersionId | null {
  if (!name.endsWith(suffix)) return null;
  const id = name.slice(0, -suffix.length);
  return isCanonicalUuid(id) ? (id as VersionId) : null;
}

/** Files handled between two yields to the event loop. */
export const YIELD_EVERY = 256;

/** Lets timers (the client lock's refresh) run during a long synchronous walk. */
export async function yieldSometimes(count: number): Promise<void> {
  if (count % YIELD_EVERY === 0) await nextTurn();
}

function indexed(file: string): IndexedFile | null {
  const st = lstatSync(file, { bigint: true, throwIfNoEntry: false });
  // Vanished since readdir (only possible without the client lock, e.g. a leftover removed meanwhile).
  if (st === undefined) return null;
  return { path: file, ino: st.ino, ctimeNs: st.ctimeNs, nlink: Number(st.nlink), size: Number(st.size) };
}

/** The file's bytes: those the index holds, or read now. */
export function readIndexed(file: IndexedFile): Buffer {
  return file.bytes ?? readFileSync(file.path);
}

/**
 * Whether every file of `files` is still the one indexed (same inode, unchanged since): with
 * FileStorage.isQuiet, what tells a read made without the lock from one that met a commit.
 */
export function stillIndexed(files: Iterable<IndexedFile>): boolean {
  for (const file of files) {
    const st = lstatSync(file.path, { bigint: true, throwIfNoEntry: false });
    if (st === undefined || st.ino !== file.ino || st.ctimeNs !== file.ctimeNs) return false;
  }
  return true;
}

/** Indexes a client's directory. Run it under the client's lock to see a committed state. */
export async function indexClient(dataDir: string, clientId: ClientId): Promise<ClientIndex> {
  const paths = new ClientPaths(dataDir, clientId);
  const unknown: Array<{ path: string; what: string }> = [];
  const snapshotBlobs: IndexedFile[] = [];
  const packFiles: IndexedFile[] = [];
  const packTemps: IndexedFile[] = [];
  const metaTemps: IndexedFile[] = [];
  let metaFile: IndexedFile | null = null;
  let hasVersionsDir = false;

  for (const entry of readdirSync(paths.dir, { withFileTypes: true })) {
    // Concatenated: path.join normalises the whole string, a cost per file (see layout.ts under).
    const file = `${paths.dir}/${entry.name}`;
    if (entry.name === VERSIONS_DIR && entry.isDirectory()) {
      hasVersionsDir = true;
      continue;
    }
    const known = entry.name === CLIENT_META || SNAPSHOT_BLOB.test(entry.name) || PACK_FILE.test(entry.name) || isPackTemp(entry.name) || isTempOf(entry.name, CLIENT_META);
    if (!known) {
      unknown.push({ path: file, what: 'a name the format does not define' });
      continue;
    }
    if (!entry.isFile()) {
      unknown.push({ path: file, what: 'not a regular file' });
      continue;
    }
    const found = indexed(file);
    if (found === null) continue;
    if (entry.name === CLIENT_META) metaFile = found;
    else if (SNAPSHOT_BLOB.test(entry.name)) snapshotBlobs.push(found);
    else if (PACK_FILE.test(entry.name)) packFiles.push(found);
    else if (isPackTemp(entry.name)) packTemps.push(found);
    else metaTemps.push(found);
  }

  const versions = new Map<VersionId, IndexedFile>();
  const children = new Map<VersionId, IndexedFile>();
  const relinkTemps: IndexedFile[] = [];
  if (hasVersionsDir) {
    let count = 0;
    for (const entry of readdirSync(paths.versionsDir, { withFileTypes: true })) {
      await yieldSometimes(++count);
      const file = `${paths.versionsDir}/${entry.name}`;
      const versionId = uuidBefore(entry.name, VERSION_SUFFIX);
      const parentId = uuidBefore(entry.name, CHILD_SUFFIX);
      const relinkTemp = isRelinkTemp(entry.name);
      if (versionId === null && parentId === null && !relinkTemp) {
        unknown.push({ path: file, what: 'a name the format does not define' });
      } else if (!entry.isFile()) {
        unknown.push({ path: file, what: 'not a regular file' });
      } else {
        const found = indexed(file);
        if (found === null) continue;
        if (versionId !== null) versions.set(versionId, found);
        else if (parentId !== null) children.set(parentId, found);
        else relinkTemps.push(found);
      }
    }
  }

  let meta: ClientMeta | null = null;
  let metaError: TcsyncError | null = null;
  if (metaFile !== null) {
    // Kept: a copy of the client writes these very bytes.
    const bytes = readFileSync(metaFile.path);
    metaFile = { ...metaFile, bytes };
    try {
      meta = parseMeta(bytes.toString('utf8'), CLIENT_META);
    } catch (err) {
      if (!(err instanceof TcsyncError)) throw err;
      metaError = err;
    }
  }
  return { clientId, paths, metaFile, meta, metaError, hasVersionsDir, versions, children, snapshotBlobs, packFiles, packTemps, metaTemps, relinkTemps, unknown };
}

/** The packs client.json names that are present, in its order. */
export function namedPacks(index: ClientIndex): IndexedFile[] {
  const byName = new Map(index.packFiles.map((file) => [path.basename(file.path), file]));
  return (index.meta?.packs ?? []).flatMap((pack) => byName.get(pack.file) ?? []);
}

/**
 * The versions that the packs client.json names hold, by id, and the parents of those versions,
 * from the packs' indexes (a pack whose index does not read counts for nothing). A loose file of
 * such a version is a copy a compaction has yet to remove, possibly at this moment: a compaction
 * removes them after its commit without the client's lock, as a pruning does before its commit.
 */
export function packedVersions(index: ClientIndex): { readonly ids: ReadonlySet<VersionId>; readonly parents: ReadonlySet<VersionId> } {
  const ids = new Set<VersionId>();
  const parents = new Set<VersionId>();
  for (const pack of index.meta?.packs ?? []) {
    try {
      for (const entry of readPackIndex(index.paths.pack(pack.file), pack.size, pack.versions).entries()) {
        ids.add(entry.versionId);
        parents.add(entry.parentVersionId);
      }
    } catch (err) {
      if (!(err instanceof TcsyncError) && !isErrno(err, 'ENOENT')) throw err;
    }
  }
  return { ids, parents };
}

/** The snapshot blob client.json names, if it is present. */
export function namedSnapshotBlob(index: ClientIndex): IndexedFile | null {
  const name = index.meta?.snapshot?.file;
  return index.snapshotBlobs.find((blob) => path.basename(blob.path) === name) ?? null;
}

/**
 * Whether two files hold the same bytes. A `.child` and its `.version` that are not one file
 * (a copy that did not keep hard links) are sound when they do.
 */
export function sameBytes(a: IndexedFile, b: IndexedFile): boolean {
  return a.size === b.size && readIndexed(a).equals(readIndexed(b));
}
