/**
 * What a client directory holds, by name and inode, without reading any file but client.json.
 * That is enough to tell committed files from leftovers (see file-storage.ts): a `.version`
 * counts only when a `.child` link is the same inode or client.json lists it as a pending link,
 * a snapshot blob only when client.json names it; write-file-atomic's temporary files never count.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import path from 'node:path';
import { TcsyncError } from '../errors.js';
import { isCanonicalUuid, type ClientId, type VersionId } from '../ids.js';
import { parseMeta, type ClientMeta } from '../storage/file/client-meta.js';
import { CHILD_SUFFIX, CLIENT_META, ClientPaths, SNAPSHOT_BLOB, VERSION_SUFFIX, VERSIONS_DIR } from '../storage/file/layout.js';

export interface IndexedFile {
  readonly path: string;
  readonly ino: bigint;
  readonly size: number;
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
  /** write-file-atomic's temporary files `client.json.<number>`: leftovers of an interrupted rewrite. */
  readonly metaTemps: readonly IndexedFile[];
  /** Entries whose name or type the format does not define. */
  readonly unknown: ReadonlyArray<{ readonly path: string; readonly what: string }>;
}

/** write-file-atomic names its temporary file `<target>.<uint32>`. */
export function isTempOf(name: string, target: string): boolean {
  return name.startsWith(target + '.') && /^\d+$/.test(name.slice(target.length + 1));
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
  return { path: file, ino: st.ino, size: Number(st.size) };
}

/** Indexes a client's directory. Run it under the client's lock to see a committed state. */
export async function indexClient(dataDir: string, clientId: ClientId): Promise<ClientIndex> {
  const paths = new ClientPaths(dataDir, clientId);
  const unknown: Array<{ path: string; what: string }> = [];
  const snapshotBlobs: IndexedFile[] = [];
  const metaTemps: IndexedFile[] = [];
  let metaFile: IndexedFile | null = null;
  let hasVersionsDir = false;

  for (const entry of readdirSync(paths.dir, { withFileTypes: true })) {
    const file = path.join(paths.dir, entry.name);
    if (entry.name === VERSIONS_DIR && entry.isDirectory()) {
      hasVersionsDir = true;
      continue;
    }
    const known = entry.name === CLIENT_META || SNAPSHOT_BLOB.test(entry.name) || isTempOf(entry.name, CLIENT_META);
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
    else metaTemps.push(found);
  }

  const versions = new Map<VersionId, IndexedFile>();
  const children = new Map<VersionId, IndexedFile>();
  if (hasVersionsDir) {
    let count = 0;
    for (const entry of readdirSync(paths.versionsDir, { withFileTypes: true })) {
      await yieldSometimes(++count);
      const file = path.join(paths.versionsDir, entry.name);
      const versionId = uuidBefore(entry.name, VERSION_SUFFIX);
      const parentId = uuidBefore(entry.name, CHILD_SUFFIX);
      if (versionId === null && parentId === null) {
        unknown.push({ path: file, what: 'a name the format does not define' });
      } else if (!entry.isFile()) {
        unknown.push({ path: file, what: 'not a regular file' });
      } else {
        const found = indexed(file);
        if (found === null) continue;
        if (versionId !== null) versions.set(versionId, found);
        else children.set(parentId as VersionId, found);
      }
    }
  }

  let meta: ClientMeta | null = null;
  let metaError: TcsyncError | null = null;
  if (metaFile !== null) {
    try {
      meta = parseMeta(readFileSync(metaFile.path, 'utf8'), CLIENT_META);
    } catch (err) {
      if (!(err instanceof TcsyncError)) throw err;
      metaError = err;
    }
  }
  return { clientId, paths, metaFile, meta, metaError, hasVersionsDir, versions, children, snapshotBlobs, metaTemps, unknown };
}

/** The snapshot blob client.json names, if it is present. */
export function namedSnapshotBlob(index: ClientIndex): IndexedFile | null {
  const name = index.meta?.snapshot?.file;
  return index.snapshotBlobs.find((blob) => path.basename(blob.path) === name) ?? null;
}

/** Every committed file of the client: what a backup copies. Empty for a directory without client.json. */
export function committedFiles(index: ClientIndex): IndexedFile[] {
  if (index.metaFile === null) return [];
  const linked = new Set([...index.children.values()].map((c) => c.ino));
  const pending = new Set(index.meta?.pendingLinks.map((l) => l.versionId));
  const blob = namedSnapshotBlob(index);
  return [
    index.metaFile,
    ...(blob ? [blob] : []),
    ...index.children.values(),
    ...[...index.versions].filter(([id, f]) => linked.has(f.ino) || pending.has(id)).map(([, f]) => f),
  ];
}
