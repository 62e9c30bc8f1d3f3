/**
 * The data directory's own entries (layout.ts): which ids have a client directory, a tombstone
 * or trash, and what does not belong there.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { isCanonicalUuid, type ClientId } from '../../../ids.js';
import { Findings } from '../../finding.js';
import { isErrno } from '../durable-fs.js';
import { FORMAT_FILE, isTempOf, LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR } from '../layout.js';

/** Files of the data directory that belong to one client id, besides its directory. */
export interface IdEntries {
  readonly hasDir: boolean;
  readonly hasTombstone: boolean;
  /** Temporary files of the tombstone (layout.ts tempPathOf). */
  readonly tombstoneTemps: string[];
  /** `trash/<client>.<suffix>`: a deleted client whose removal, or a new client whose creation, was interrupted. */
  readonly trash: string[];
}

export interface DataDirScan {
  /** Every id with a directory, tombstone or trash, ascending. */
  readonly ids: ClientId[];
  readonly entries: ReadonlyMap<ClientId, IdEntries>;
  /** Findings about entries that belong to no client. */
  readonly findings: Findings;
}

async function listOrEmpty(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

export async function scanDataDir(dataDir: string): Promise<DataDirScan> {
  const findings = new Findings(null, (file) => path.relative(dataDir, file));
  const entries = new Map<ClientId, IdEntries>();
  const of = (id: string): IdEntries => {
    let found = entries.get(id as ClientId);
    if (!found) {
      found = { hasDir: false, hasTombstone: false, tombstoneTemps: [], trash: [] };
      entries.set(id as ClientId, found);
    }
    return found;
  };

  for (const entry of await readdir(dataDir, { withFileTypes: true })) {
    const file = path.join(dataDir, entry.name);
    // Dotfiles (.gitkeep, an editor's files) are the operator's, not the format's.
    if (entry.name.startsWith('.') || entry.name === FORMAT_FILE || entry.name === LOCKS_DIR) continue;
    if (entry.name === TOMBSTONES_DIR || entry.name === TRASH_DIR) {
      if (!entry.isDirectory()) findings.problem(file, 'not a directory');
    } else if (isTempOf(entry.name, FORMAT_FILE)) {
      findings.harmless(file, `a temporary file of an interrupted ${FORMAT_FILE} creation`, { kind: 'remove', path: file });
    } else if (isCanonicalUuid(entry.name) && entry.isDirectory()) {
      entries.set(entry.name as ClientId, { ...of(entry.name), hasDir: true });
    } else {
      findings.problem(file, isCanonicalUuid(entry.name) ? 'not a directory' : 'a name the format does not define');
    }
  }

  for (const entry of await listOrEmpty(path.join(dataDir, TOMBSTONES_DIR))) {
    const file = path.join(dataDir, TOMBSTONES_DIR, entry.name);
    const [id = '', suffix] = entry.name.split(/\.(.*)/);
    if (!isCanonicalUuid(id) || !entry.isFile()) findings.problem(file, 'a name the format does not define');
    else if (suffix === undefined) entries.set(id as ClientId, { ...of(id), hasTombstone: true });
    else if (isTempOf(entry.name, id)) of(id).tombstoneTemps.push(file);
    else findings.problem(file, 'a name the format does not define');
  }

  for (const entry of await listOrEmpty(path.join(dataDir, TRASH_DIR))) {
    const file = path.join(dataDir, TRASH_DIR, entry.name);
    const id = entry.name.slice(0, 36);
    if (isCanonicalUuid(id)) of(id).trash.push(file);
    else findings.harmless(file, 'trash: a deleted client on its way out (swept when a server opens the data directory)', { kind: 'remove', path: file });
  }

  return { ids: [...entries.keys()].sort(), entries, findings };
}
