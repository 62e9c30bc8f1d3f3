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
 *   storage API does not), so anything else is a warning, not a problem;
 * - every pack client.json names is present and sound (check-pack.ts); its versions are
 *   committed, and on the chain like the loose ones: a history is its packed versions (the
 *   older part) and its loose ones.
 *
 * Leftovers of interrupted transactions are harmless: `.version` files no `.child` names (whole,
 * or torn with a single link: a crash mid-write; torn with more links is damage, as the storage
 * reads it), snapshot blobs and packs client.json does not name, temporary files, a directory
 * without client.json or committed versions, and missing links client.json lists as pending.
 * So is a loose `.version` or `.child` of a version that a named pack holds: a compaction
 * names its pack before it removes the loose files, and reads look in the packs first. Such a
 * copy is removed by `--repair` only while its pack reads soundly; otherwise it may be the only
 * good copy, and is kept (a warning).
 *
 * A `.version` file no `.child` names is not a leftover when it is provably committed: the
 * checkpoint, or the parent of a committed version (a version is only ever added on top of a
 * committed one, so every stored ancestor of a committed version is committed). Its link was
 * lost, which is damage; `--repair` re-creates such a link only where the chain forward from the
 * latest version leaves no choice, and never removes the version. (A lost link to the last
 * version with no later one and past the checkpoint leaves nothing to tell it from a leftover.)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { NIL_VERSION_ID, type VersionId } from '../../../ids.js';
import { decodeVersion, type VersionHeader } from '../version-file.js';
import { checkPack } from './check-pack.js';
import { namedPacks, namedSnapshotBlob, readIndexed, sameBytes, yieldSometimes, type ClientIndex, type IndexedFile } from './client-index.js';
import { Findings, type Finding } from '../../finding.js';
import type { ClientMeta } from '../client-meta.js';

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

/** What the checks of one client share: the index, the findings, and what earlier checks found. */
class ClientChecker {
  readonly index: ClientIndex;
  readonly f: Findings;
  /** Hard-linked files share an inode: each is read and checked once. */
  readonly #decodedByInode = new Map<bigint, Decoded>();
  #reads = 0;
  /** Inodes some `.child` names: their damage is reported with the `.child`. */
  readonly linkedInodes = new Set<bigint>();
  /** Committed versions (linked, or pending in client.json), by id. */
  readonly committed = new Map<VersionId, Header>();
  /** Committed child by parent. */
  readonly childOf = new Map<VersionId, VersionId>();
  /** Versions client.json lists as pending links. */
  readonly pending = new Set<VersionId>();
  /** Versions in the packs client.json names, by id: the pack's path, and whether it reads soundly. */
  readonly packed = new Map<VersionId, { readonly pack: string; readonly intact: boolean }>();
  /** Packed child by parent: a loose `.child` of such a parent is a copy. */
  readonly packedChildOf = new Map<VersionId, VersionId>();
  /** Children by parent as the storage follows them to find the latest version: loose links and pending ones. */
  readonly linkedChildOf = new Map<VersionId, VersionId>();
  /**
   * Committed versions that no `.child` links (see findProvenVersions), each with why it is
   * committed; whether a torn one's file holds anything is not known.
   */
  readonly proven = new Map<VersionId, string>();
  readonly onChain = new Set<VersionId>();
  latest: VersionId = NIL_VERSION_ID;
  /** The version id the chain ends at when it is not nil: one that is not stored. */
  start: VersionId | null = null;

  constructor(dataDir: string, index: ClientIndex) {
    this.index = index;
    this.f = new Findings(index.clientId, (file) => path.relative(dataDir, file));
  }

  async decode(file: IndexedFile): Promise<Decoded> {
    let found = this.#decodedByInode.get(file.ino);
    if (found === undefined) {
      await yieldSometimes(++this.#reads);
      try {
        const { versionId, parentVersionId } = decodeVersion(readIndexed(file), file.path);
        found = { header: { versionId, parentVersionId } };
      } catch (err) {
        found = { error: reason(err) };
      }
      this.#decodedByInode.set(file.ino, found);
    }
    return found;
  }

  /**
   * decode(), or null when the file is gone: a loose copy of a packed version may be removed
   * without the lock by the compaction that packed it (after its commit) or by a pruning.
   */
  async decodeIfThere(file: IndexedFile): Promise<Decoded | null> {
    if (!existsSync(file.path)) return null;
    const decoded = await this.decode(file);
    return 'error' in decoded && !existsSync(file.path) ? null : decoded;
  }
}

/**
 * The packs client.json names: each checked (check-pack.ts), its versions committed. Packs it
 * does not name are leftovers of a compaction or pruning (written but never named, or replaced
 * by the pack that was named), as are temporary files of packs being written.
 */
async function checkPacks(c: ClientChecker, meta: ClientMeta): Promise<void> {
  const { index, f, committed, childOf } = c;
  const present = new Map(namedPacks(index).map((file) => [path.basename(file.path), file]));
  for (const pack of meta.packs) {
    const file = index.paths.pack(pack.file);
    const check = await checkPack(file, pack, present.get(pack.file) ?? null);
    for (const problem of check.problems) f.problem(file, problem);
    for (const { versionId, parentVersionId, intact } of check.versions) {
      const other = c.packed.get(versionId);
      if (other !== undefined) {
        f.problem(file, `holds version ${versionId}, which ${path.basename(other.pack)} holds too`);
        continue;
      }
      const sibling = childOf.get(parentVersionId);
      if (sibling !== undefined) {
        f.problem(file, `holds version ${versionId} of parent ${parentVersionId}, which has another packed child, ${sibling}: the history forks`);
        continue;
      }
      c.packed.set(versionId, { pack: file, intact });
      committed.set(versionId, { versionId, parentVersionId });
      childOf.set(parentVersionId, versionId);
      c.packedChildOf.set(parentVersionId, versionId);
    }
  }
  const named = new Set(meta.packs.map((pack) => pack.file));
  for (const pack of index.packFiles) {
    if (named.has(path.basename(pack.path))) continue;
    f.harmless(pack.path, 'a pack client.json does not name: left by a compaction or pruning (interrupted, or under way) or replaced by one', { kind: 'remove', path: pack.path });
  }
  for (const temp of index.packTemps) {
    f.harmless(temp.path, 'a temporary file of a pack being written, or of one that was interrupted', { kind: 'remove', path: temp.path });
  }
}

/**
 * A loose `.version` or `.child` file of a version that a named pack holds. The storage never
 * reads it (reads look in the packs first), so it is a harmless copy while it holds that very
 * version and the pack reads soundly; while the pack does not, it is kept, as it may be the only
 * good copy. One that holds something else is damage.
 */
async function checkLooseCopy(c: ClientChecker, file: IndexedFile, packedId: VersionId): Promise<void> {
  const { f } = c;
  const decoded = await c.decodeIfThere(file);
  if (decoded === null) return;
  const packed = c.packed.get(packedId)!;
  const pack = path.basename(packed.pack);
  const expected = c.committed.get(packedId)!;
  if ('error' in decoded) {
    f.problem(file.path, `${decoded.error} (a loose copy of version ${packedId}, which ${pack} holds)`);
  } else if (decoded.header.versionId !== packedId || decoded.header.parentVersionId !== expected.parentVersionId) {
    f.problem(file.path, `holds version ${decoded.header.versionId} of parent ${decoded.header.parentVersionId}, but ${pack} holds version ${packedId} of parent ${expected.parentVersionId} here`);
  } else if (!packed.intact) {
    f.warning(file.path, `a loose copy of version ${packedId}, whose record in ${pack} cannot be read: kept, as it may be the only good copy`);
  } else {
    f.harmless(file.path, `a loose copy of version ${packedId}, which ${pack} holds: left by a compaction (interrupted, or removing it now)`, { kind: 'remove', path: file.path });
  }
}

/** Each `.child`: a whole version, whose parent is the one the name says, the same file as its `.version`. */
async function checkLinks(c: ClientChecker): Promise<void> {
  const { index, f } = c;
  for (const [parent, child] of index.children) {
    const packedChild = c.packedChildOf.get(parent);
    if (packedChild !== undefined) {
      await checkLooseCopy(c, child, packedChild);
      continue;
    }
    c.linkedInodes.add(child.ino);
    const decoded = await c.decode(child);
    if ('error' in decoded) {
      f.problem(child.path, decoded.error);
      continue;
    }
    const { header } = decoded;
    if (header.parentVersionId !== parent) {
      f.problem(child.path, `holds version ${header.versionId}, whose parent is ${header.parentVersionId}, not ${parent}`);
      continue;
    }
    if (c.packed.has(header.versionId)) {
      f.problem(child.path, `links version ${header.versionId}, which ${path.basename(c.packed.get(header.versionId)!.pack)} holds as the child of ${c.committed.get(header.versionId)!.parentVersionId}`);
      continue;
    }
    c.committed.set(header.versionId, header);
    c.childOf.set(parent, header.versionId);
    c.linkedChildOf.set(parent, header.versionId);
    const version = index.versions.get(header.versionId);
    if (!version) {
      f.problem(child.path, `links version ${header.versionId}, but ${header.versionId}.version is missing`);
    } else if (version.ino !== child.ino) {
      if (!sameBytes(version, child)) f.problem(child.path, `differs from ${header.versionId}.version (neither the same file nor the same bytes)`);
      else f.harmless(child.path, `the same bytes as ${header.versionId}.version, but not hard-linked to it (e.g. copied without keeping hard links)`, { kind: 'relink', existing: version.path, path: child.path });
    }
  }
}

/** Pending links: committed by client.json's rename; the next transaction creates them. */
async function checkPendingLinks(c: ClientChecker, meta: ClientMeta): Promise<void> {
  const { index, f } = c;
  const { paths } = index;
  for (const { parentVersionId, versionId } of meta.pendingLinks) {
    // Made and then packed: a compaction's client.json lists no pending links, an older one may.
    if (c.packedChildOf.get(parentVersionId) === versionId) continue;
    c.pending.add(versionId);
    const version = index.versions.get(versionId);
    const link = index.children.get(parentVersionId);
    if (link !== undefined) {
      if (c.childOf.get(parentVersionId) !== versionId && !('error' in (await c.decode(link)))) {
        f.problem(link.path, `links version ${c.childOf.get(parentVersionId)}, but client.json's pendingLinks says ${versionId}`);
      }
      continue;
    }
    if (!version) {
      f.problem(paths.version(versionId), "missing, but client.json's pendingLinks names it");
      continue;
    }
    const decoded = await c.decode(version);
    if ('error' in decoded) f.problem(version.path, decoded.error);
    else if (decoded.header.versionId !== versionId || decoded.header.parentVersionId !== parentVersionId) {
      f.problem(version.path, `holds version ${decoded.header.versionId} of parent ${decoded.header.parentVersionId}, not what pendingLinks says`);
    } else {
      c.committed.set(versionId, decoded.header);
      c.childOf.set(parentVersionId, versionId);
      c.linkedChildOf.set(parentVersionId, versionId);
      f.harmless(paths.child(parentVersionId), `missing link to ${versionId}.version, listed in client.json's pendingLinks (the next transaction re-creates it)`, {
        kind: 'link',
        existing: version.path,
        newPath: paths.child(parentVersionId),
      });
    }
  }
}

/**
 * The `.version` files that are committed although no `.child` links them: the checkpoint, and
 * every stored ancestor of a committed version (linked, pending or found here), followed by the
 * parent ids in their headers. A walk stops at a version that is missing or does not decode.
 */
async function findProvenVersions(c: ClientChecker, meta: ClientMeta): Promise<void> {
  const { index, committed, proven } = c;
  const starts: Array<[VersionId, string]> = [[meta.checkpointVersionId, 'client.json names it as the checkpoint']];
  for (const header of committed.values()) starts.push([header.parentVersionId, `committed version ${header.versionId} names it as its parent`]);
  for (const [first, why] of starts) {
    for (let id = first, because = why; id !== NIL_VERSION_ID && !committed.has(id) && !proven.has(id); ) {
      const file = index.versions.get(id);
      // Not stored: the chain's start, or a missing version the chain check names.
      if (!file) break;
      proven.set(id, because);
      const decoded = await c.decode(file);
      if ('error' in decoded || decoded.header.versionId !== id) break;
      because = `committed version ${id} names it as its parent`;
      id = decoded.header.parentVersionId;
    }
  }
}

/**
 * The latest version, found as the storage finds it (the checkpoint, then links), and the walk
 * back from it to the chain's start. A version on the chain that nothing links is a broken link.
 */
async function checkChain(c: ClientChecker, meta: ClientMeta): Promise<void> {
  const { index, f, committed, linkedChildOf, onChain } = c;
  const { paths } = index;
  // Packs hold versions up to the checkpoint at most: what follows it is linked.
  let latest = meta.checkpointVersionId;
  for (let steps = 0; linkedChildOf.has(latest) && steps <= linkedChildOf.size; steps++) latest = linkedChildOf.get(latest) as VersionId;
  c.latest = latest;
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
        c.start = id;
        break;
      }
      // On the chain but linked by nothing: its parent's link is gone.
      const decoded = await c.decode(file);
      // Damage is named by checkUnlinkedVersions: a version on the chain is proven committed.
      if ('error' in decoded) break;
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
}

/** Committed versions off the chain: a link on the chain is broken. Each orphaned run is named once. */
function checkOrphans(c: ClientChecker): void {
  const { index, f, committed, childOf, onChain } = c;
  const orphans = [...committed.keys()].filter((id) => !onChain.has(id));
  const orphanSet = new Set(orphans);
  for (const id of orphans) {
    const header = committed.get(id) as Header;
    if (orphanSet.has(header.parentVersionId)) continue;
    let after = 0;
    for (let next = childOf.get(id); next !== undefined && orphanSet.has(next) && after < orphans.length; next = childOf.get(next)) after++;
    const file = c.packed.get(id)?.pack ?? index.versions.get(id)?.path ?? index.children.get(header.parentVersionId)?.path ?? index.paths.version(id);
    f.problem(file, `committed${after > 0 ? ` (with ${after} later versions)` : ''}, but not on the chain from the latest version ${c.latest}`);
  }
}

/**
 * Proven committed versions off the chain, whose link was lost: damage. The link is re-created by
 * `--repair` only when it extends the chain from the latest version without a choice: the
 * parent has no `.child` at all and exactly one proven child. After it, the chain's tip moves on
 * through the links that were cut off, and the next lost link may be repaired the same way.
 */
async function checkLostLinks(c: ClientChecker): Promise<void> {
  const { index, f, childOf, onChain } = c;
  const { paths } = index;
  const byParent = new Map<VersionId, Array<{ readonly header: Header; readonly file: IndexedFile; readonly why: string }>>();
  for (const [id, why] of c.proven) {
    const file = index.versions.get(id);
    if (onChain.has(id) || file === undefined) continue;
    const decoded = await c.decode(file);
    // A version that does not decode, or holds another id, is named by checkUnlinkedVersions.
    if ('error' in decoded || decoded.header.versionId !== id) continue;
    const siblings = byParent.get(decoded.header.parentVersionId) ?? [];
    siblings.push({ header: decoded.header, file, why });
    byParent.set(decoded.header.parentVersionId, siblings);
  }
  const relinkable = new Set<VersionId>();
  const seen = new Set<VersionId>();
  for (let tip = c.latest; !seen.has(tip); ) {
    seen.add(tip);
    const next = byParent.get(tip);
    if (next?.length !== 1 || index.children.has(tip)) break;
    tip = next[0]!.header.versionId;
    relinkable.add(tip);
    for (let steps = 0; childOf.has(tip) && steps <= childOf.size; steps++) tip = childOf.get(tip) as VersionId;
  }
  for (const [parent, versions] of byParent) {
    const link = index.children.get(parent);
    for (const { header, file, why } of versions) {
      const id = header.versionId;
      if (link !== undefined) f.problem(link.path, `links another version than ${id}, which is committed (${why})`);
      else if (!relinkable.has(id)) f.problem(paths.child(parent), `missing: version ${id} is committed (${why}), but nothing links it to its parent, and which version follows ${parent} is not certain`);
      else f.problem(paths.child(parent), `missing: version ${id} is committed (${why}), but nothing links it to its parent`, { kind: 'link', existing: file.path, newPath: paths.child(parent) });
    }
  }
}

/** The `.version` files no `.child` names: leftovers, unless the storage would call them damage when asked for them. */
async function checkUnlinkedVersions(c: ClientChecker): Promise<void> {
  const { index, f } = c;
  for (const [id, file] of index.versions) {
    if (c.packed.has(id)) {
      await checkLooseCopy(c, file, id);
      continue;
    }
    if (c.committed.has(id) || c.pending.has(id) || c.linkedInodes.has(file.ino)) continue;
    const why = c.proven.get(id);
    if (why !== undefined) {
      // Never a leftover; a whole one is named by the chain or the lost-link check.
      const decoded = await c.decode(file);
      if ('error' in decoded) f.problem(file.path, `${decoded.error} (version ${id} is committed: ${why})`);
      // One on the chain that holds another id was named by the chain check.
      else if (decoded.header.versionId !== id && !c.onChain.has(id)) f.problem(file.path, `holds version ${decoded.header.versionId} (version ${id} is committed: ${why})`);
      continue;
    }
    if (c.onChain.has(id)) continue;
    const decoded = await c.decode(file);
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
}

/** The snapshot blob client.json names, with its size and CRC-32; other blobs are leftovers. */
function checkSnapshot(c: ClientChecker, meta: ClientMeta): IndexedFile | null {
  const { index, f } = c;
  const blob = namedSnapshotBlob(index);
  if (meta.snapshot !== null) {
    const { versionId, size, crc32: expectedCrc } = meta.snapshot;
    const file = path.join(index.paths.dir, meta.snapshot.file);
    if (blob === null) {
      f.problem(file, `missing, but client.json names it as the snapshot of version ${versionId}`);
    } else {
      const bytes = readIndexed(blob);
      if (bytes.byteLength !== size) f.problem(file, `is ${bytes.byteLength} bytes, client.json says ${size}`);
      else if (crc32(bytes) !== expectedCrc) f.problem(file, 'checksum does not match client.json');
    }
    if (!c.onChain.has(versionId) && versionId !== c.start) {
      f.warning(index.paths.meta, `the snapshot is of version ${versionId}, which is not on the chain from the latest version`);
    }
  }
  for (const other of index.snapshotBlobs) {
    if (other !== blob) f.harmless(other.path, 'a snapshot blob client.json does not name: the leftover of an interrupted or superseded snapshot', { kind: 'remove', path: other.path });
  }
  return blob;
}

/** Temporary files of interrupted client.json rewrites and of an interrupted `verify --repair`. */
function checkTemporaryFiles(c: ClientChecker): void {
  for (const temp of c.index.metaTemps) {
    c.f.harmless(temp.path, 'a temporary file of an interrupted client.json rewrite', { kind: 'remove', path: temp.path });
  }
  for (const temp of c.index.relinkTemps) {
    c.f.harmless(temp.path, 'a temporary link of an interrupted verify --repair', { kind: 'remove', path: temp.path });
  }
}

/** Bytes of the committed files, each inode counted once; loose copies of packed versions are not. */
function committedBytes(c: ClientChecker, metaFile: IndexedFile, blob: IndexedFile | null): number {
  const committedInodes = new Map<bigint, number>([[metaFile.ino, metaFile.size]]);
  if (blob) committedInodes.set(blob.ino, blob.size);
  for (const pack of namedPacks(c.index)) committedInodes.set(pack.ino, pack.size);
  for (const [parent, child] of c.index.children) if (!c.packedChildOf.has(parent)) committedInodes.set(child.ino, child.size);
  for (const id of [...c.pending, ...c.proven.keys()]) {
    const file = c.index.versions.get(id);
    if (file) committedInodes.set(file.ino, file.size);
  }
  return [...committedInodes.values()].reduce((a, b) => a + b, 0);
}

export async function checkClient(dataDir: string, index: ClientIndex): Promise<ClientCheck> {
  const c = new ClientChecker(dataDir, index);
  const { paths } = index;
  const { f } = c;
  for (const { path: file, what } of index.unknown) f.problem(file, what);

  if (index.metaFile === null) {
    // A pack is only ever written for a client that exists: one without client.json is damage.
    if (index.children.size > 0 || index.packFiles.length > 0 || index.unknown.length > 0) {
      f.problem(paths.meta, 'missing, but the directory holds committed versions or other files');
    } else {
      f.harmless(paths.dir, 'a directory without client.json: the leftover of an interrupted client creation', { kind: 'remove', path: paths.dir });
    }
    return { findings: f.list, exists: false, versions: 0, bytes: 0 };
  }
  if (index.metaError !== null) f.problem(paths.meta, reason(index.metaError));
  if (!index.hasVersionsDir) f.problem(paths.versionsDir, 'missing');

  const meta = index.meta;
  if (meta !== null) await checkPacks(c, meta);
  await checkLinks(c);
  // Without client.json nothing tells committed from leftover: report only what is certain.
  if (meta === null) return { findings: f.list, exists: true, versions: 0, bytes: 0 };
  await checkPendingLinks(c, meta);
  await findProvenVersions(c, meta);
  await checkChain(c, meta);
  checkOrphans(c);
  await checkLostLinks(c);
  await checkUnlinkedVersions(c);
  const blob = checkSnapshot(c, meta);
  checkTemporaryFiles(c);
  return { findings: f.list, exists: true, versions: c.onChain.size, bytes: committedBytes(c, index.metaFile, blob) };
}
