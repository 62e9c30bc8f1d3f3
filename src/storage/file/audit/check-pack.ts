/**
 * Checks one pack that client.json names (pack-file.ts) the way the storage reads it, and says
 * which versions it holds, as far as they can be told, for the chain checks (check-client.ts).
 *
 * A pack is sound when it is as long as client.json says; its first line is the pack header of
 * as many versions as client.json says; its index (at the end of those bytes, as the storage
 * finds it) passes its checksum; its entries, in offset order, tile the bytes between the header
 * and the index exactly; each entry is found by its id and by its parent, as reads look it up;
 * and each record read through its entry (readRecord) is the version the entry names, whole
 * (size and CRC-32 of its header).
 *
 * Which versions it holds comes from the index when it reads, so that a damaged record still
 * has its id and parent for the chain; otherwise from the records, read one after another from
 * the header on (each record's header gives its length) up to the first that does not parse.
 * Synchronous calls, for the reason client-index.ts gives.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { TcsyncError } from '../../../errors.js';
import type { VersionId } from '../../../ids.js';
import type { PackMeta } from '../client-meta.js';
import { idKey, indexBytes, packHeader, PackIndex, readRecord, type PackEntry } from '../pack-file.js';
import { MAX_HEADER, parseHeader } from '../version-file.js';
import { yieldSometimes, type IndexedFile } from './client-index.js';

export interface PackedVersion {
  readonly versionId: VersionId;
  readonly parentVersionId: VersionId;
  /** The storage reads it from this pack as it is: the index and the record are sound. */
  readonly intact: boolean;
}

export interface PackCheck {
  /** What the pack holds, in record order (oldest first). */
  readonly versions: readonly PackedVersion[];
  /** What is wrong with it, each a problem about the pack file. */
  readonly problems: readonly string[];
}

/** A version found by reading the records without their index; `whole` when its segment checks. */
interface ScannedVersion extends PackedVersion {
  readonly whole: boolean;
}

const NEWLINE = 0x0a;

/** A storage error's message names the file (and offset) first; the finding names the pack already. */
function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^[^:]*: /, '');
}

/**
 * The versions of a run of records, for a message: how many, and the first and last (a pack
 * holds a stretch of the chain, oldest first, so that names them all).
 */
function describeRun(versions: readonly ScannedVersion[]): string {
  if (versions.length === 0) return 'no version that can be told';
  const first = versions[0]!;
  const last = versions[versions.length - 1]!;
  const damaged = versions.filter((v) => !v.whole).length;
  const run = versions.length === 1 ? `1 version, ${first.versionId}` : `${versions.length} versions, ${first.versionId} (whose parent is ${first.parentVersionId}) to ${last.versionId}`;
  return damaged > 0 ? `${run} (${damaged} of them damaged)` : run;
}

function readAt(fd: number, length: number, position: number): Buffer {
  const buffer = Buffer.alloc(Math.max(0, length));
  return buffer.subarray(0, length > 0 ? readSync(fd, buffer, 0, length, position) : 0);
}

/** Checks the pack `file`, listed in client.json as `pack`; `found` is its directory entry, null when it is missing. */
export async function checkPack(file: string, pack: PackMeta, found: IndexedFile | null): Promise<PackCheck> {
  if (found === null) return { versions: [], problems: [`missing, but client.json names it as a pack of ${pack.versions} versions`] };
  const fd = openSync(file, 'r');
  try {
    return await checkOpenPack(fd, file, pack, found.size);
  } finally {
    closeSync(fd);
  }
}

async function checkOpenPack(fd: number, file: string, pack: PackMeta, size: number): Promise<PackCheck> {
  const problems: string[] = [];
  if (size < pack.size) problems.push(`truncated: ${size} bytes, client.json says ${pack.size}`);
  else if (size > pack.size) problems.push(`${size} bytes, client.json says ${pack.size}`);

  const header = packHeader(pack.versions);
  const head = readAt(fd, MAX_HEADER, 0);
  let recordsStart = header.byteLength;
  if (!head.subarray(0, header.byteLength).equals(header)) {
    problems.push(`its first line is not ${JSON.stringify(header.toString('utf8').trimEnd())}`);
    recordsStart = head.indexOf(NEWLINE) + 1;
  }
  const recordsEnd = pack.size - indexBytes(pack.versions);

  let index: PackIndex | null = null;
  if (size >= pack.size) {
    const length = Math.min(indexBytes(pack.versions), pack.size);
    try {
      index = PackIndex.parse(readAt(fd, length, pack.size - length), pack.size, pack.versions, file);
    } catch (err) {
      if (!(err instanceof TcsyncError)) throw err;
      problems.push(`its index: ${reason(err)}`);
    }
  }
  if (index !== null) return { versions: await checkRecords(fd, file, index, recordsStart, recordsEnd, problems), problems };

  // Without an index, no version in the pack can be read: name what its records hold.
  const scanned = recordsStart > 0 ? await scanRecords(fd, file, recordsStart, Math.min(size, recordsEnd > recordsStart ? recordsEnd : size)) : [];
  problems.push(`the storage cannot read any of its ${pack.versions} versions; its records hold ${describeRun(scanned)}`);
  return { versions: scanned, problems };
}

/** Reads every record through the index, and checks that the index agrees with the records. */
async function checkRecords(fd: number, file: string, index: PackIndex, recordsStart: number, recordsEnd: number, problems: string[]): Promise<PackedVersion[]> {
  const entries = index.entries();
  const versions: PackedVersion[] = [];
  let disagrees: string | null = null;
  let expectedOffset = recordsStart;
  let n = 0;
  for (const entry of entries) {
    await yieldSometimes(++n);
    if (disagrees === null && entry.offset !== expectedOffset) disagrees = `the record of version ${entry.versionId} is at ${entry.offset}, where ${expectedOffset} was expected`;
    expectedOffset = entry.offset + entry.length;
    // Not found by a lookup, the version is not read from this pack at all.
    let intact = lookupsFind(index, entry);
    if (disagrees === null && !intact) disagrees = `looking up version ${entry.versionId} by its id or its parent does not find its entry`;
    try {
      readRecord(fd, file, entry);
    } catch (err) {
      if (!(err instanceof TcsyncError)) throw err;
      intact = false;
      problems.push(`the record of version ${entry.versionId} (at ${entry.offset}, ${entry.length} bytes): ${reason(err)}`);
    }
    versions.push({ versionId: entry.versionId, parentVersionId: entry.parentVersionId, intact });
  }
  if (disagrees === null && expectedOffset !== recordsEnd) disagrees = `its records end at ${expectedOffset}, its index starts at ${recordsEnd}`;
  if (disagrees !== null) problems.push(`its index disagrees with its records: ${disagrees}`);
  return versions;
}

/** Whether the index finds `entry` as a read would: by its id, and by its parent (a parent has one child). */
function lookupsFind(index: PackIndex, entry: PackEntry): boolean {
  const byId = index.find(idKey(entry.versionId));
  const byParent = index.findByParent(idKey(entry.parentVersionId));
  return byId?.offset === entry.offset && byParent?.parentVersionId === entry.parentVersionId;
}

/** The records from `start`, one after another, up to `end` or the first whose header does not parse. */
async function scanRecords(fd: number, file: string, start: number, end: number): Promise<ScannedVersion[]> {
  const versions: ScannedVersion[] = [];
  for (let offset = start; offset < end; ) {
    await yieldSometimes(versions.length + 1);
    let entry: PackEntry;
    try {
      const { header, bodyStart } = parseHeader(readAt(fd, Math.min(MAX_HEADER, end - offset), offset), file);
      entry = { versionId: header.versionId, parentVersionId: header.parentVersionId, offset, length: bodyStart + header.size, addedAt: 0 };
    } catch (err) {
      if (err instanceof TcsyncError) break;
      throw err;
    }
    if (offset + entry.length > end) break;
    let whole = true;
    try {
      readRecord(fd, file, entry);
    } catch (err) {
      if (!(err instanceof TcsyncError)) throw err;
      whole = false;
    }
    // Never intact: without its index, the storage reads none of them.
    versions.push({ versionId: entry.versionId, parentVersionId: entry.parentVersionId, intact: false, whole });
    offset += entry.length;
  }
  return versions;
}
