/**
 * A pack: many committed versions of one client in one immutable file, as git packs loose
 * objects, so that a long history costs a few files instead of two names per version.
 *
 *   {"format":"tcsync-pack","version":1,"versions":N}\n     a header line (`head -1` tells)
 *   N records                                                 each one a `.version` file's bytes
 *   N index entries of ENTRY_BYTES, sorted by version id      see below
 *   N uint32 positions into the entries, sorted by parent id
 *   trailer: crc32 of the index (entries and positions), N, "tcsyncix"
 *
 * An entry: version id (16 bytes), parent id (16), the record's offset (6, little-endian, then
 * 2 zero), its length (4), when the version was added (float64 ms since the epoch), 4 reserved.
 * Each record keeps its own header with the segment's size and CRC-32, so a damaged record is
 * found when it is read, and the index's checksum guards the lookups. The index is read in one
 * call from the file's end and kept as it is, a Buffer searched in place: 60 bytes a version.
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { TcsyncError } from '../../errors.js';
import type { VersionId } from '../../ids.js';
import type { Version } from '../storage.js';
import { fsyncDir, fsyncFd, writeAll } from './durable-fs.js';
import { tempPathOf } from './layout.js';
import { decodeVersion } from './version-file.js';

export const PACK_FORMAT = 'tcsync-pack';
export const PACK_VERSION = 1;
const ENTRY_BYTES = 56;
const POSITION_BYTES = 4;
const TRAILER_BYTES = 16;
const MAGIC = Buffer.from('tcsyncix', 'latin1');
/** Offsets are 48-bit: a pack may be up to 256 TiB. */
const OFFSET_BYTES = 6;

/** Index bytes a pack of `versions` versions carries (entries, positions and trailer). */
export function indexBytes(versions: number): number {
  return versions * (ENTRY_BYTES + POSITION_BYTES) + TRAILER_BYTES;
}

export function packHeader(versions: number): Buffer {
  return Buffer.from(JSON.stringify({ format: PACK_FORMAT, version: PACK_VERSION, versions }) + '\n');
}

/** Where a version sits in its pack, and what the index says of it. */
export interface PackEntry {
  readonly versionId: VersionId;
  readonly parentVersionId: VersionId;
  readonly offset: number;
  readonly length: number;
  /** When the version was first stored, in ms since the epoch. */
  readonly addedAt: number;
}

/** A 16-byte id as four unsigned big-endian words, which compare as its bytes do. */
type KeyWords = readonly [number, number, number, number];

/** A version id as PackIndex looks it up: the id, and the 16 bytes an index holds as words. */
export interface IdKey {
  readonly id: VersionId;
  readonly words: KeyWords;
}

/**
 * The key of a canonical id (8-4-4-4-12 hex digits), read from its digits: a Buffer made from the
 * hex and read back cost a walk's every request more (an allocation and a call into C++ each).
 */
export function idKey(id: VersionId): IdKey {
  const hex = (from: number, to: number) => parseInt(id.slice(from, to), 16);
  return {
    id,
    words: [hex(0, 8), hex(9, 13) * 0x10000 + hex(14, 18), hex(19, 23) * 0x10000 + hex(24, 28), hex(28, 36)],
  };
}

function idOf(bytes: Buffer): VersionId {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` as VersionId;
}

/** The index of a pack's records, built from entries in record order (encodeIndex) or read back (PackIndex.parse). */
export function encodeIndex(entries: readonly PackEntry[]): Buffer {
  const n = entries.length;
  const out = Buffer.alloc(indexBytes(n));
  // Canonical ids sort as strings exactly as their bytes do (hex digits, hyphens at fixed places),
  // and strings compare several times faster than Buffers: a merge of 50,000 versions sorts in
  // tens of milliseconds, on the event loop.
  const sorted = [...entries].sort((a, b) => (a.versionId < b.versionId ? -1 : 1));
  sorted.forEach((entry, i) => {
    const at = i * ENTRY_BYTES;
    out.write(entry.versionId.replaceAll('-', ''), at, 16, 'hex');
    out.write(entry.parentVersionId.replaceAll('-', ''), at + 16, 16, 'hex');
    out.writeUIntLE(entry.offset, at + 32, OFFSET_BYTES);
    out.writeUInt32LE(entry.length, at + 40);
    out.writeDoubleLE(entry.addedAt, at + 44);
  });
  const byParent = sorted.map((_, i) => i).sort((a, b) => (sorted[a]!.parentVersionId < sorted[b]!.parentVersionId ? -1 : 1));
  const positions = n * ENTRY_BYTES;
  byParent.forEach((position, i) => out.writeUInt32LE(position, positions + i * POSITION_BYTES));
  const trailer = out.length - TRAILER_BYTES;
  out.writeUInt32LE(crc32(out.subarray(0, trailer)), trailer);
  out.writeUInt32LE(n, trailer + 4);
  MAGIC.copy(out, trailer + 8);
  return out;
}

/** A pack's index, searched in place. */
export class PackIndex {
  readonly #bytes: Buffer;
  readonly versions: number;

  private constructor(bytes: Buffer, versions: number) {
    this.#bytes = bytes;
    this.versions = versions;
  }

  /** What it holds in memory. */
  get byteLength(): number {
    return this.#bytes.byteLength;
  }

  /**
   * Checks and wraps the index at the end of a pack of `fileSize` bytes: `tail` is the file's
   * last bytes, at least the index. `CORRUPT` when it does not hold together.
   */
  static parse(tail: Buffer, fileSize: number, versions: number, file: string): PackIndex {
    const bad = (what: string) => new TcsyncError('CORRUPT', `${file}: ${what}`);
    const length = indexBytes(versions);
    if (tail.byteLength < length) throw bad('shorter than its index');
    const bytes = tail.subarray(tail.byteLength - length);
    const trailer = length - TRAILER_BYTES;
    if (!bytes.subarray(trailer + 8).equals(MAGIC)) throw bad('no index trailer');
    if (bytes.readUInt32LE(trailer + 4) !== versions) throw bad(`index holds ${bytes.readUInt32LE(trailer + 4)} versions, client.json says ${versions}`);
    if (crc32(bytes.subarray(0, trailer)) !== bytes.readUInt32LE(trailer)) throw bad('index checksum mismatch');
    const recordsEnd = fileSize - length;
    for (let at = 0; at < versions * ENTRY_BYTES; at += ENTRY_BYTES) {
      if (bytes.readUIntLE(at + 32, OFFSET_BYTES) + bytes.readUInt32LE(at + 40) > recordsEnd) throw bad('an index entry points past the records');
    }
    return new PackIndex(bytes, versions);
  }

  /** The i-th entry; a lookup's key is the id it found in `field`, so that one is not decoded again. */
  #entryAt(i: number, field: 0 | 16 | null = null, key: IdKey | null = null): PackEntry {
    const at = i * ENTRY_BYTES;
    const b = this.#bytes;
    return {
      versionId: field === 0 && key !== null ? key.id : idOf(b.subarray(at, at + 16)),
      parentVersionId: field === 16 && key !== null ? key.id : idOf(b.subarray(at + 16, at + 32)),
      offset: b.readUIntLE(at + 32, OFFSET_BYTES),
      length: b.readUInt32LE(at + 40),
      addedAt: b.readDoubleLE(at + 44),
    };
  }

  /**
   * The entry's id (field 0) or parent id (16) against the key's four big-endian words: negative
   * when the entry sorts first. Compared in JavaScript: Buffer.compare is a call into C++ with its
   * arguments checked on every step of a search, most of what a lookup cost.
   */
  #compareAt(i: number, field: 0 | 16, key: KeyWords): number {
    const at = i * ENTRY_BYTES + field;
    const b = this.#bytes;
    for (let w = 0; w < 4; w++) {
      const diff = b.readUInt32BE(at + 4 * w) - key[w]!;
      if (diff !== 0) return diff;
    }
    return 0;
  }

  /** The entry of the version whose id is `key`'s, or null. */
  find(key: IdKey): PackEntry | null {
    const i = this.#search(key, 0, (k) => k);
    return i === null ? null : this.#entryAt(i, 0, key);
  }

  /** The entry whose parent's id is `key`'s, or null. */
  findByParent(key: IdKey): PackEntry | null {
    const positions = this.versions * ENTRY_BYTES;
    const i = this.#search(key, 16, (k) => this.#bytes.readUInt32LE(positions + k * POSITION_BYTES));
    return i === null ? null : this.#entryAt(i, 16, key);
  }

  /** Binary search over the entries in the order `nth` gives, comparing `field` with `key`. */
  #search(key: IdKey, field: 0 | 16, nth: (k: number) => number): number | null {
    const { words } = key;
    let lo = 0;
    let hi = this.versions - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const i = nth(mid);
      const cmp = this.#compareAt(i, field, words);
      if (cmp === 0) return i;
      if (cmp < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return null;
  }

  /** Every entry, in record order (as packed: a compaction packs oldest first, an import in its source's order). */
  entries(): PackEntry[] {
    const all: PackEntry[] = [];
    for (let i = 0; i < this.versions; i++) all.push(this.#entryAt(i));
    return all.sort((a, b) => a.offset - b.offset);
  }
}

/** Reads a pack's index: one read of the file's end. */
export function readPackIndex(file: string, fileSize: number, versions: number): PackIndex {
  const length = indexBytes(versions);
  if (fileSize < length) throw new TcsyncError('CORRUPT', `${file}: shorter than its index`);
  const fd = openSync(file, 'r');
  try {
    const tail = Buffer.allocUnsafe(length);
    const n = readSync(fd, tail, 0, length, fileSize - length);
    return PackIndex.parse(tail.subarray(0, n), fileSize, versions, file);
  } finally {
    closeSync(fd);
  }
}

/** One record of an open pack: its bytes (a `.version` file's) and the version they hold, checked. */
export function readRecord(fd: number, file: string, entry: PackEntry): { bytes: Buffer; version: Version } {
  const bytes = readRecordBytes(fd, entry);
  return { bytes, version: checkRecord(bytes, file, entry) };
}

/** A record's bytes as read, unchecked (checkRecord checks them): fewer than its length at the file's end. */
export function readRecordBytes(fd: number, entry: PackEntry): Buffer {
  const buffer = Buffer.allocUnsafe(entry.length);
  return buffer.subarray(0, readSync(fd, buffer, 0, entry.length, entry.offset));
}

/**
 * The version a record's bytes hold, as read (a short read gives fewer bytes than the entry's
 * length): `CORRUPT` unless they are whole, match their checksum and are the version the index names.
 */
export function checkRecord(bytes: Buffer, file: string, entry: PackEntry): Version {
  const where = `${file} at ${entry.offset}`;
  const version = decodeVersion(bytes, where);
  if (version.versionId !== entry.versionId || version.parentVersionId !== entry.parentVersionId) {
    throw new TcsyncError('CORRUPT', `${where}: record is not the version its index names`);
  }
  return version;
}

/** Records are written in batches of about this many bytes, each one hand-off to the threadpool. */
const WRITE_BATCH = 1024 * 1024;
/**
 * A pack being written is flushed every this many bytes. ext4 (data=ordered) writes out the
 * dirty data of every file in a journal commit before that commit ends, so one large flush at
 * the end would make the small commits of replicas that land meanwhile wait for all of it.
 */
const FLUSH_EVERY = 4 * 1024 * 1024;

/**
 * Writes a new pack under a temporary name, record by record, then its index; finish() fsyncs
 * it and renames it into place, durably, so that a client.json may name it. Until then it is a
 * temporary file that nothing reads (layout.ts tempPathOf).
 */
export class PackWriter {
  readonly #file: string;
  readonly #temp: string;
  readonly #fd: number;
  readonly #entries: PackEntry[] = [];
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #unflushed = 0;
  #offset: number;

  private constructor(file: string, temp: string, fd: number, headerBytes: number) {
    this.#file = file;
    this.#temp = temp;
    this.#fd = fd;
    this.#offset = headerBytes;
  }

  /** Starts the pack `file` of `versions` records (their number is in its first line). */
  static create(file: string, versions: number): PackWriter {
    const temp = tempPathOf(file);
    const header = packHeader(versions);
    const writer = new PackWriter(file, temp, openSync(temp, 'wx'), header.byteLength);
    writer.#batch.push(header);
    return writer;
  }

  /** Appends a record: a `.version` file's bytes, checked by the caller. */
  async add(bytes: Buffer, entry: Omit<PackEntry, 'offset' | 'length'>): Promise<void> {
    this.#entries.push({ ...entry, offset: this.#offset, length: bytes.byteLength });
    this.#offset += bytes.byteLength;
    this.#batch.push(bytes);
    this.#batchBytes += bytes.byteLength;
    if (this.#batchBytes >= WRITE_BATCH) await this.#flush();
  }

  async #flush(): Promise<void> {
    const batch = this.#batch;
    this.#unflushed += this.#batchBytes;
    this.#batch = [];
    this.#batchBytes = 0;
    await writeAll(this.#fd, batch);
    if (this.#unflushed >= FLUSH_EVERY) {
      this.#unflushed = 0;
      await fsyncFd(this.#fd, 'pooled');
    }
  }

  /** Writes the index, fsyncs, renames into place and fsyncs the directory; the pack's size. */
  async finish(dir: string, expectedVersions: number): Promise<number> {
    if (this.#entries.length !== expectedVersions) {
      throw new TcsyncError('STORAGE_IO', `${this.#file}: ${this.#entries.length} records written, ${expectedVersions} announced`);
    }
    this.#batch.push(encodeIndex(this.#entries));
    await this.#flush();
    await fsyncFd(this.#fd, 'pooled');
    const { size } = fstatSync(this.#fd);
    const expected = this.#offset + indexBytes(this.#entries.length);
    if (size !== expected) throw new TcsyncError('STORAGE_IO', `${this.#file}: ${size} bytes on disk, ${expected} written`);
    closeSync(this.#fd);
    renameSync(this.#temp, this.#file);
    await fsyncDir(dir);
    return size;
  }

  /** Removes what was written; for a pack given up on. Never throws. */
  abandon(): void {
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed by finish().
    }
    rmSync(this.#temp, { force: true });
    rmSync(this.#file, { force: true });
  }
}
