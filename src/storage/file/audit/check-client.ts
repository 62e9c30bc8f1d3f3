/**
 * Checks one client directory against the format (see file-storage.ts and layout.ts).
 *
 * A client is sound when:
 * - client.json parses and is of the format this tcsync writes;
 * - every `<parent>.child` holds a whole version (header, size and CRC-32 check) whose parent is
 *   `<parent>`, and is that version's `.version` file: the same inode, or the same bytes (a copy
 *   that did not keep hard links, which the storage reads alike; harmless, `--repair` re-links it);
 * - the chain from the latest version (the checkpoint in client.json, then `.child` links)
 *   back through each version's parent is linked at every step, and ends either at the nil
 *   version or at its start: a version id that is not stored. Such a start is legal: a client
 *   may be created with a latest version that was never stored, and while the latest version is
 *   nil the first version may name any parent. (Deleting a whole first version together with
 *   its link looks the same, and cannot be told apart.)
 * - every committed version is on that chain;
 * - the snapshot's blob is present with the size and CRC-32 client.json records. Its version
 *   should be on the chain or be its start (the protocol's AddSnapshot checks this, but the
 *   storage API does not), so anything else is a warning, not a problem.
 *
 * Leftovers of interrupted transactions are harmless: `.version` files no `.child` names (whole,
 * or torn with a single link: a crash mid-write; torn with more links is damage, as the storage
 * reads it), snapshot blobs client.json does not name, temporary files, a directory without
 * client.json or committed versions, and missing links client.json lists as pending.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { NIL_VERSION_ID, type VersionId } from '../../../ids.js';
import { decodeVersion, type VersionHeader } from '../version-file.js';
import { namedSnapshotBlob, sameBytes, yieldSometimes, type ClientIndex, type IndexedFile } from './client-index.js';
import { Findings, type Finding } from '../../finding.js';

export interface ClientCheck {
  readonly findings: readonly Finding[];
  /** False for a directory without client.json: not a client, at most a leftover. */
  readonly exists: boolean;
  /** Versions on the chain from the latest back to its start. */
  readonly versions: number;
  /** Bytes of the client's committed files. */
  readonly bytes: number;
}

/** What the chain checks need of a version; decodeVersion has checked its size and CRC-32. */
type Header = Pick<VersionHeader, 'versionId' | 'parentVersionId'>;
type Decoded = { readonly header: Header } | { readonly error: string };

/** A storage error's message names the file first; the finding names it already. */
function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^[^:]*: /, '');
}

export async function checkClient(dataDir: string, index: ClientIndex): Promise<ClientCheck> {
  const { paths } = index;
  const f = new Findings(index.clientId, (file) => path.relative(dataDir, file));
  for (const { path: file, what } of index.unknown) f.problem(file, what);

  if (index.metaFile === null) {
    if (index.children.size > 0 || index.unknown.length > 0) {
      f.problem(paths.meta, 'missing, but the directory holds committed versions or other files');
    } else {
      f.harmless(paths.dir, 'a directory without client.json: the leftover of an interrupted client creation', { kind: 'remove', path: paths.dir });
    }
    return { findings: f.list, exists: false, versions: 0, bytes: 0 };
  }
  if (index.metaError !== null) f.problem(paths.meta, reason(index.metaError));
  if (!index.hasVersionsDir) f.problem(paths.versionsDir, 'missing');

  // Hard-linked files share an inode: read and check each once.
  const decodedByInode = new Map<bigint, Decoded>();
  let reads = 0;
  const decode = async (file: IndexedFile): Promise<Decoded> => {
    let found = decodedByInode.get(file.ino);
    if (found === undefined) {
      await yieldSometimes(++reads);
      try {
        const { versionId, parentVersionId } = decodeVersion(readFileSync(file.path), file.path);
        found = { header: { versionId, parentVersionId } };
      } catch (err) {
        found = { error: reason(err) };
      }
      decodedByInode.set(file.ino, found);
    }
    return found;
  };

  // Each .child: a whole version, whose parent is the one the name says, the same file as its .version.
  // A .version sharing the inode of a .child has its damage reported with the .child.
  const linkedInodes = new Set<bigint>();
  const committed = new Map<VersionId, Header>();
  const childOf = new Map<VersionId, VersionId>();
  for (const [parent, child] of index.children) {
    linkedInodes.add(child.ino);
    const decoded = await decode(child);
    if ('error' in decoded) {
      f.problem(child.path, decoded.error);
      continue;
    }
    const { header } = decoded;
    if (header.parentVersionId !== parent) {
      f.problem(child.path, `holds version ${header.versionId}, whose parent is ${header.parentVersionId}, not ${parent}`);
      continue;
    }
    committed.set(header.versionId, header);
    childOf.set(parent, header.versionId);
    const version = index.versions.get(header.versionId);
    if (!version) {
      f.problem(child.path, `links version ${header.versionId}, but ${header.versionId}.version is missing`);
    } else if (version.ino !== child.ino) {
      if (!sameBytes(version, child)) f.problem(child.path, `differs from ${header.versionId}.version (neither the same file nor the same bytes)`);
      else f.harmless(child.path, `the same bytes as ${header.versionId}.version, but not hard-linked to it (e.g. copied without keeping hard links)`, { kind: 'relink', existing: version.path, path: child.path });
    }
  }

  const meta = index.meta;
  if (meta === null) {
    // Without client.json nothing tells committed from leftover: report only what is certain.
    return { findings: f.list, exists: true, versions: 0, bytes: 0 };
  }

  // Pending links: committed by client.json's rename; the next transaction creates them.
  const pending = new Set<VersionId>();
  for (const { parentVersionId, versionId } of meta.pendingLinks) {
    pending.add(versionId);
    const version = index.versions.get(versionId);
    const link = index.children.get(parentVersionId);
    if (link !== undefined) {
      if (childOf.get(parentVersionId) !== versionId && !('error' in (await decode(link)))) {
        f.problem(link.path, `links version ${childOf.get(parentVersionId)}, but client.json's pendingLinks says ${versionId}`);
      }
      continue;
    }
    if (!version) {
      f.problem(paths.version(versionId), "missing, but client.json's pendingLinks names it");
      continue;
    }
    const decoded = await decode(version);
    if ('error' in decoded) f.problem(version.path, decoded.error);
    else if (decoded.header.versionId !== versionId || decoded.header.parentVersionId !== parentVersionId) {
      f.problem(version.path, `holds version ${decoded.header.versionId} of parent ${decoded.header.parentVersionId}, not what pendingLinks says`);
    } else {
      committed.set(versionId, decoded.header);
      childOf.set(parentVersionId, versionId);
      f.harmless(paths.child(parentVersionId), `missing link to ${versionId}.version, listed in client.json's pendingLinks (the next transaction re-creates it)`, {
        kind: 'link',
        existing: version.path,
        newPath: paths.child(parentVersionId),
      });
    }
  }

  // The latest version, found as the storage finds it: the checkpoint, then links.
  let latest = meta.checkpointVersionId;
  for (let steps = 0; childOf.has(latest) && steps <= childOf.size; steps++) latest = childOf.get(latest) as VersionId;

  // Walk back from the latest version to the chain's start.
  const onChain = new Set<VersionId>();
  let start: VersionId | null = null;
  for (let id = latest; ; ) {
    if (id === NIL_VERSION_ID) break;
    if (onChain.has(id)) {
      f.problem(paths.meta, `the chain of versions loops at ${id}`);
      break;
    }
    const file = index.versions.get(id);
    let header = committed.get(id);
    if (header === undefined) {
      if (!file) {
        start = id;
        break;
      }
      // On the chain but linked by nothing: its parent's link is gone.
      const decoded = await decode(file);
      if ('error' in decoded) {
        // A linked file was reported with its link already.
        if (!linkedInodes.has(file.ino)) f.problem(file.path, `${decoded.error} (version ${id} is on the chain)`);
        break;
      }
      header = decoded.header;
      const link = index.children.get(header.parentVersionId);
      f.problem(
        link?.path ?? paths.child(header.parentVersionId),
        link ? `links another version than ${id}, which is on the chain from the latest version` : `missing: version ${id} is on the chain from the latest version, but nothing links it to its parent`,
      );
    }
    if (file && header.versionId !== id) f.problem(file.path, `holds version ${header.versionId}`);
    onChain.add(id);
    id = header.parentVersionId;
  }

  // Committed versions off the chain: a link on the chain is broken. Name each orphaned run once.
  const orphans = [...committed.keys()].filter((id) => !onChain.has(id));
  const orphanSet = new Set(orphans);
  for (const id of orphans) {
    const header = committed.get(id) as Header;
    if (orphanSet.has(header.parentVersionId)) continue;
    let after = 0;
    for (let next = childOf.get(id); next !== undefined && orphanSet.has(next) && after < orphans.length; next = childOf.get(next)) after++;
    const file = index.versions.get(id)?.path ?? index.children.get(header.parentVersionId)?.path ?? paths.version(id);
    f.problem(file, `committed${after > 0 ? ` (with ${after} later versions)` : ''}, but not on the chain from the latest version ${latest}`);
  }

  // The rest no .child names: leftovers, unless the storage would call them damage when asked for them.
  for (const [id, file] of index.versions) {
    if (committed.has(id) || pending.has(id) || onChain.has(id) || linkedInodes.has(file.ino)) continue;
    const decoded = await decode(file);
    if ('error' in decoded) {
      // A committed version is fsync'd before it is linked: only an unlinked one can be torn by a crash.
      if (file.nlink > 1) f.problem(file.path, `${decoded.error} (with ${file.nlink} links, not the leftover of a crash mid-write)`);
      else f.harmless(file.path, 'a torn uncommitted version: the leftover of a crash mid-write', { kind: 'remove', path: file.path });
    } else if (decoded.header.versionId !== id) {
      f.problem(file.path, `holds version ${decoded.header.versionId}`);
    } else {
      f.harmless(file.path, 'an uncommitted version (no .child names it): the leftover of an interrupted transaction', { kind: 'remove', path: file.path });
    }
  }

  const blob = namedSnapshotBlob(index);
  if (meta.snapshot !== null) {
    const { versionId, size, crc32: expectedCrc } = meta.snapshot;
    const file = path.join(paths.dir, meta.snapshot.file);
    if (blob === null) {
      f.problem(file, `missing, but client.json names it as the snapshot of version ${versionId}`);
    } else {
      const bytes = readFileSync(blob.path);
      if (bytes.byteLength !== size) f.problem(file, `is ${bytes.byteLength} bytes, client.json says ${size}`);
      else if (crc32(bytes) !== expectedCrc) f.problem(file, 'checksum does not match client.json');
    }
    if (!onChain.has(versionId) && versionId !== start) {
      f.warning(paths.meta, `the snapshot is of version ${versionId}, which is not on the chain from the latest version`);
    }
  }
  for (const other of index.snapshotBlobs) {
    if (other !== blob) f.harmless(other.path, 'a snapshot blob client.json does not name: the leftover of an interrupted or superseded snapshot', { kind: 'remove', path: other.path });
  }
  for (const temp of index.metaTemps) {
    f.harmless(temp.path, 'a temporary file of an interrupted client.json rewrite', { kind: 'remove', path: temp.path });
  }
  for (const temp of index.relinkTemps) {
    f.harmless(temp.path, 'a temporary link of an interrupted verify --repair', { kind: 'remove', path: temp.path });
  }

  const committedInodes = new Map<bigint, number>([[index.metaFile.ino, index.metaFile.size]]);
  if (blob) committedInodes.set(blob.ino, blob.size);
  for (const child of index.children.values()) committedInodes.set(child.ino, child.size);
  for (const id of pending) {
    const file = index.versions.get(id);
    if (file) committedInodes.set(file.ino, file.size);
  }
  const bytes = [...committedInodes.values()].reduce((a, b) => a + b, 0);
  return { findings: f.list, exists: true, versions: onChain.size, bytes };
}
