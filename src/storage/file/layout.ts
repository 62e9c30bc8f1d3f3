/**
 * Where things live in a data directory. Every name is built here from canonical ids, so no
 * input can name a path outside DATA_DIR/<client-uuid>/.
 *
 *   DATA_DIR/format.json                      the data directory's format version
 *   DATA_DIR/locks/<client>.lock/             a held client lock (proper-lockfile; transient)
 *   DATA_DIR/tombstones/<client>              a deleted client's tombstone (JSON: when)
 *   DATA_DIR/trash/<client>.<uuid>/           a deleted client on its way out (transient)
 *   DATA_DIR/trash/<client>.new-<uuid>/       a new or imported client being built, renamed to DATA_DIR/<client> (transient)
 *   DATA_DIR/<client>/client.json             the client's metadata (a checkpoint, see meta.ts)
 *   DATA_DIR/<client>/snapshot-<uuid>.bin     the snapshot's bytes, named in client.json
 *   DATA_DIR/<client>/pack-<uuid>.pack        older versions in one file (pack-file.ts), named in client.json
 *   DATA_DIR/<client>/versions/<id>.version   a version: one JSON header line, then the segment
 *   DATA_DIR/<client>/versions/<parent>.child a hard link to the version whose parent is <parent>
 */
import { randomInt, randomUUID } from 'node:crypto';
import { TcsyncError } from '../../errors.js';
import { assertCanonicalId, isCanonicalUuid, type ClientId, type VersionId } from '../../ids.js';

export const FORMAT_FILE = 'format.json';
export const LOCKS_DIR = 'locks';
export const TOMBSTONES_DIR = 'tombstones';
export const TRASH_DIR = 'trash';
export const CLIENT_META = 'client.json';
export const VERSIONS_DIR = 'versions';
export const VERSION_SUFFIX = '.version';
export const CHILD_SUFFIX = '.child';
export const SNAPSHOT_BLOB = /^snapshot-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.bin$/;
export const PACK_FILE = /^pack-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.pack$/;

function checked(id: string): string {
  assertCanonicalId(id, 'a file name\'s id');
  return id;
}

/**
 * `dir/name` for a single path segment `name` (a checked id or one of the names above), with
 * `dir` as given: FileStorage resolves its data directory once, when it opens it. Built by hand
 * because path.join normalises the whole string every time, which was the largest single cost
 * of beginning a transaction (about a tenth of a get-child-version's instructions).
 */
function under(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/**
 * Paths of one client's files. Below the data directory they are joined without under(): the
 * client's directory ends with its id, never with a slash, and a poll builds three of them.
 */
export class ClientPaths {
  readonly dir: string;
  readonly meta: string;
  readonly versionsDir: string;

  /** `suffix` names a directory built elsewhere before it becomes the client's (newClientPaths). */
  constructor(dataDir: string, clientId: ClientId, suffix = '') {
    this.dir = under(dataDir, checked(clientId) + suffix);
    this.meta = `${this.dir}/${CLIENT_META}`;
    this.versionsDir = `${this.dir}/${VERSIONS_DIR}`;
  }

  version(versionId: VersionId): string {
    return `${this.versionsDir}/${checked(versionId)}${VERSION_SUFFIX}`;
  }

  child(parentVersionId: VersionId): string {
    return `${this.versionsDir}/${checked(parentVersionId)}${CHILD_SUFFIX}`;
  }

  snapshotBlob(name: string): string {
    if (!SNAPSHOT_BLOB.test(name)) throw new TcsyncError('CORRUPT', `bad snapshot file name ${JSON.stringify(name)}`);
    return `${this.dir}/${name}`;
  }

  pack(name: string): string {
    if (!PACK_FILE.test(name)) throw new TcsyncError('CORRUPT', `bad pack file name ${JSON.stringify(name)}`);
    return `${this.dir}/${name}`;
  }
}

/**
 * Where a new client's directory is built, whole, before its rename to DATA_DIR/<client> makes it
 * a client: in trash/, which no reader lists, so that a crash leaves nothing but trash.
 */
export function newClientPaths(dataDir: string, clientId: ClientId): ClientPaths {
  return new ClientPaths(under(dataDir, TRASH_DIR), clientId, `.new-${randomUUID()}`);
}

/** The client a trash entry (trash/<client>.<suffix>) was or was to be, or null for a name no tcsync makes. */
export function clientOfTrash(name: string): ClientId | null {
  const id = name.slice(0, 36);
  return name[36] === '.' && isCanonicalUuid(id) ? (id as ClientId) : null;
}

export function tombstonePath(dataDir: string, clientId: ClientId): string {
  return under(under(dataDir, TOMBSTONES_DIR), checked(clientId));
}

export function lockPath(dataDir: string, clientId: ClientId): string {
  return under(under(dataDir, LOCKS_DIR), checked(clientId));
}

/**
 * A temporary name beside `file` for writing it: `<file>.<uint32>`, as write-file-atomic (which
 * wrote client.json in earlier versions) names them, so that verify recognises a crash's leftover
 * by one rule, whichever version wrote it.
 */
export function tempPathOf(file: string): string {
  return `${file}.${randomInt(2 ** 32)}`;
}

/** Whether `name` is a temporary file of `target` (see tempPathOf). */
export function isTempOf(name: string, target: string): boolean {
  return name.startsWith(target + '.') && /^\d+$/.test(name.slice(target.length + 1));
}
