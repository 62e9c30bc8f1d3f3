/**
 * client.json: a checkpoint of the client's metadata. The latest version is not stored here on
 * every commit (that would cost a second fsync'd rename per commit); the checkpoint names the
 * latest version when it was written, and every later version is found by following
 * `versions/<id>.child` links from it. `snapshot.versionsSince` counts up to the checkpoint;
 * each link followed adds one.
 *
 * `pendingLinks` lists the `.child` links of a multi-part commit whose commit point was the
 * rename of this file; whoever loads it first re-creates any that a crash left missing.
 *
 * `packs` lists the pack files (pack-file.ts) holding the older part of the history, oldest
 * first; `loose` counts the versions at or before the checkpoint that are still loose files, so
 * that a writer knows when to compact without looking. A client.json that lists packs says
 * format 2, so that a tcsync that knows no packs refuses it instead of missing versions.
 */
import { TcsyncError } from '../../errors.js';
import { isCanonicalUuid, type VersionId } from '../../ids.js';
import { PACK_FILE, SNAPSHOT_BLOB } from './layout.js';

/** Without packs; a client.json written by every tcsync so far reads as it is. */
const PLAIN_FORMAT = 1;
export const META_FORMAT = 2;

export interface SnapshotMeta {
  readonly versionId: VersionId;
  readonly timestamp: Date;
  /** Versions added between the snapshot and the checkpoint. */
  readonly versionsSince: number;
  /** The blob's file name in the client directory. */
  readonly file: string;
  readonly size: number;
  readonly crc32: number;
}

export interface PendingLink {
  readonly parentVersionId: VersionId;
  readonly versionId: VersionId;
}

export interface PackMeta {
  /** The pack's file name in the client directory. */
  readonly file: string;
  readonly versions: number;
  /** Its size in bytes: where its index starts is known without a stat. */
  readonly size: number;
}

export interface ClientMeta {
  readonly checkpointVersionId: VersionId;
  readonly snapshot: SnapshotMeta | null;
  readonly pendingLinks: readonly PendingLink[];
  readonly packs: readonly PackMeta[];
  /** Loose versions up to the checkpoint; null when not known (written by an older tcsync). */
  readonly loose: number | null;
}

export function serializeMeta(meta: ClientMeta): string {
  const { checkpointVersionId, snapshot, pendingLinks, packs, loose } = meta;
  return JSON.stringify(
    {
      format: packs.length > 0 ? META_FORMAT : PLAIN_FORMAT,
      checkpointVersionId,
      snapshot: snapshot && { ...snapshot, timestamp: snapshot.timestamp.toISOString() },
      ...(pendingLinks.length > 0 ? { pendingLinks } : {}),
      ...(packs.length > 0 ? { packs } : {}),
      ...(loose !== null ? { loose } : {}),
    },
    null,
    2,
  ) + '\n';
}

const isUuid = (v: unknown): v is VersionId => typeof v === 'string' && isCanonicalUuid(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * The empty list, one for every client.json without pending links or packs: most clients a
 * server remembers (client-cache.ts) have neither, and an array each cost 10,000 polled clients
 * about 0.3 MiB of heap.
 */
export const NONE: readonly never[] = Object.freeze([]);

/** Parses client.json strictly: a torn or foreign file is `CORRUPT`, a newer format `UNSUPPORTED_FORMAT`. */
export function parseMeta(text: string, file: string): ClientMeta {
  const bad = (what: string) => new TcsyncError('CORRUPT', `${file}: ${what}`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw bad('not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  if (raw.format !== META_FORMAT && raw.format !== PLAIN_FORMAT) {
    if (isCount(raw.format) && raw.format > META_FORMAT) {
      throw new TcsyncError('UNSUPPORTED_FORMAT', `${file}: format ${raw.format} is newer than this tcsync understands`);
    }
    throw bad('missing or unknown format');
  }
  if (!isUuid(raw.checkpointVersionId)) throw bad('checkpointVersionId is not a UUID');
  let snapshot: SnapshotMeta | null = null;
  if (raw.snapshot !== null) {
    const s = raw.snapshot as Record<string, unknown> | undefined;
    if (typeof s !== 'object' || s === null) throw bad('snapshot is not an object');
    const timestamp = typeof s.timestamp === 'string' ? new Date(s.timestamp) : new Date(NaN);
    if (
      !isUuid(s.versionId) || Number.isNaN(timestamp.getTime()) || !isCount(s.versionsSince) ||
      typeof s.file !== 'string' || !SNAPSHOT_BLOB.test(s.file) || !isCount(s.size) ||
      !isCount(s.crc32) || s.crc32 > 0xffffffff
    ) {
      throw bad('snapshot has missing or malformed fields');
    }
    snapshot = { versionId: s.versionId, timestamp, versionsSince: s.versionsSince, file: s.file, size: s.size, crc32: s.crc32 };
  }
  const links = raw.pendingLinks ?? [];
  if (!Array.isArray(links)) throw bad('pendingLinks is not an array');
  const pendingLinks = links.length === 0 ? NONE : links.map((l: Record<string, unknown> | null) => {
    if (typeof l !== 'object' || l === null || !isUuid(l.parentVersionId) || !isUuid(l.versionId)) {
      throw bad('pendingLinks has a malformed entry');
    }
    return { parentVersionId: l.parentVersionId, versionId: l.versionId };
  });
  const packList = raw.packs ?? [];
  if (!Array.isArray(packList)) throw bad('packs is not an array');
  const packs = packList.length === 0 ? NONE : packList.map((p: Record<string, unknown> | null) => {
    if (typeof p !== 'object' || p === null || typeof p.file !== 'string' || !PACK_FILE.test(p.file) || !isCount(p.versions) || p.versions === 0 || !isCount(p.size)) {
      throw bad('packs has a malformed entry');
    }
    return { file: p.file, versions: p.versions, size: p.size };
  });
  if (packs.length > 0 && raw.format !== META_FORMAT) throw bad(`lists packs but says format ${String(raw.format)}`);
  const loose = raw.loose === undefined ? null : raw.loose;
  if (loose !== null && !isCount(loose)) throw bad('loose is not a count');
  return { checkpointVersionId: raw.checkpointVersionId, snapshot, pendingLinks, packs, loose };
}
