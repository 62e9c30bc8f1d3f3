/**
 * The indexes of the packs this process reads, kept in memory and bounded in bytes as the version
 * memo is, and a few packs kept open, so that reading a packed version costs one positioned read
 * and no other system call, and a walk through a pack in record order (the chain's order, oldest
 * first) one read per window of records (ReadWindow). A pack never changes once named (its name
 * is new for every pack written), so neither an index, nor an open pack, nor a window of its
 * bytes is ever stale: a pack that was merged or pruned away is simply no longer named by
 * client.json, and its open descriptor is closed when forgotten.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { VersionId } from '../../ids.js';
import type { Version } from '../storage.js';
import { LruMap } from '../lru-map.js';
import type { PackMeta } from './client-meta.js';
import type { ClientPaths } from './layout.js';
import { checkRecord, idKey, readPackIndex, readRecordBytes, type PackEntry, type PackIndex } from './pack-file.js';

/** A version found in a pack: the pack's path and the entry. */
export interface PackedVersion {
  readonly file: string;
  readonly entry: PackEntry;
}

/** What an index costs beside its bytes: the Buffer, the map entry and its key. */
const INDEX_OVERHEAD = 256;

/**
 * Packs kept open. Few: a walk through one client's history reads its packs over and over, while
 * file descriptors are a limited resource of the process (and an open pack that another process
 * removed keeps its blocks until it is closed).
 */
const OPEN_PACKS = 32;

/**
 * Versions whose pack is remembered (#servedBy): one per reader walking a history at a time is
 * what is used, so a few hundred names (about 200 bytes each) cover many walks at once.
 */
const SERVED_VERSIONS = 256;

/**
 * Bytes read at once from a pack whose records are read in order: about 55 records of 1 KiB, for
 * the price of one positioned read of one (a read is most of what serving a packed version costs).
 */
const WINDOW_BYTES = 64 * 1024;

/** Windows kept together take at most this share of the shelf's bytes, and at most one per open pack. */
const WINDOW_SHARE = 1 / 16;

/** A pack kept open. */
interface OpenPack {
  readonly fd: number;
  /** Where the record after the last one read from it starts: a read there is a walk's next step. */
  next: number;
}

/**
 * Bytes of a pack from `at`, read ahead of a walk. Never overwritten: a version served from it is
 * a view of these bytes, as one read alone is a view of its own buffer.
 */
interface ReadWindow {
  readonly at: number;
  readonly bytes: Buffer;
}

export class PackShelf {
  readonly #indexes: LruMap<string, PackIndex>;
  /** Open packs by path, the least recently used first. */
  readonly #open = new Map<string, OpenPack>();
  #newestOpen: string | undefined = undefined;
  readonly #windows: LruMap<string, ReadWindow>;
  /** What the windows may take together: none are read when not even one fits. */
  readonly #windowBytes: number;
  /**
   * The pack (its name) each version found lately was found in. A pack holds a stretch of the
   * chain in order, so the child of a version found in a pack is most often in that pack too: a
   * walk asks that pack first, one search instead of one per pack, newest first, until the pack
   * that holds most of a long history, the oldest. Only the order of the search changes: a parent
   * has one child, whichever pack holds it.
   */
  readonly #servedBy = new LruMap<VersionId, string>(SERVED_VERSIONS);

  /** Keeps at most `maxBytes` of indexes and read windows together. */
  constructor(maxBytes: number) {
    this.#windowBytes = Math.min(OPEN_PACKS * WINDOW_BYTES, Math.floor(maxBytes * WINDOW_SHARE));
    this.#indexes = new LruMap(maxBytes - this.#windowBytes, (index) => index.byteLength + INDEX_OVERHEAD);
    this.#windows = new LruMap(this.#windowBytes, (window) => window.bytes.byteLength);
  }

  /** What is kept now: indexes and read windows, in bytes as counted against the shelf's bytes, and open packs; for tests and monitoring. */
  get usage(): { readonly indexBytes: number; readonly windowBytes: number; readonly openPacks: number } {
    return { indexBytes: this.#indexes.weight, windowBytes: this.#windows.weight, openPacks: this.#open.size };
  }

  /** The index of one pack, read from its file unless remembered. */
  index(paths: ClientPaths, pack: PackMeta): PackIndex {
    // Named in client.json, which checked the name when it was read: no need to check it again.
    const file = `${paths.dir}/${pack.file}`;
    let index = this.#indexes.get(file);
    if (index === undefined) {
      index = readPackIndex(paths.pack(pack.file), pack.size, pack.versions);
      this.#indexes.set(file, index);
    }
    return index;
  }

  /** The packed version with this id, newest pack first. */
  find(paths: ClientPaths, packs: readonly PackMeta[], versionId: VersionId): PackedVersion | null {
    const key = idKey(versionId);
    return this.#search(paths, packs, -1, (index) => index.find(key));
  }

  /** The packed version whose parent is `parentVersionId`: first in the pack that held the parent, if known. */
  findByParent(paths: ClientPaths, packs: readonly PackMeta[], parentVersionId: VersionId): PackedVersion | null {
    const key = idKey(parentVersionId);
    // Used once: the child found next takes its place, so a walk keeps one name here, not SERVED_VERSIONS.
    const servedBy = this.#servedBy.get(parentVersionId);
    if (servedBy !== undefined) this.#servedBy.delete(parentVersionId);
    const first = servedBy === undefined ? -1 : packs.findIndex((pack) => pack.file === servedBy);
    return this.#search(paths, packs, first, (index) => index.findByParent(key));
  }

  /** Looks in packs[first] (unless -1), then in the others, newest first. */
  #search(paths: ClientPaths, packs: readonly PackMeta[], first: number, look: (index: PackIndex) => PackEntry | null): PackedVersion | null {
    if (first >= 0) {
      const found = this.#lookIn(paths, packs[first]!, look);
      if (found !== null) return found;
    }
    for (let i = packs.length - 1; i >= 0; i--) {
      if (i === first) continue;
      const found = this.#lookIn(paths, packs[i]!, look);
      if (found !== null) return found;
    }
    return null;
  }

  #lookIn(paths: ClientPaths, pack: PackMeta, look: (index: PackIndex) => PackEntry | null): PackedVersion | null {
    const entry = look(this.index(paths, pack));
    if (entry === null) return null;
    this.#servedBy.set(entry.versionId, pack.file);
    return { file: paths.pack(pack.file), entry };
  }

  /**
   * Reads and checks a packed version through a pack kept open: from the pack's read window when
   * it holds the record, else with one read, of a whole window when the record is the one after
   * the last read from the pack (a walk), of the record alone otherwise. Each record is checked
   * (checkRecord) whichever read brought its bytes.
   */
  read({ file, entry }: PackedVersion): Version {
    const pack = this.#openPack(file);
    const end = entry.offset + entry.length;
    const window = this.#windows.get(file);
    let bytes: Buffer;
    if (window !== undefined && entry.offset >= window.at && end <= window.at + window.bytes.byteLength) {
      bytes = window.bytes.subarray(entry.offset - window.at, end - window.at);
    } else if (entry.offset === pack.next && entry.length < WINDOW_BYTES && this.#windowBytes >= WINDOW_BYTES) {
      const ahead = Buffer.allocUnsafe(WINDOW_BYTES);
      const read = ahead.subarray(0, readSync(pack.fd, ahead, 0, WINDOW_BYTES, entry.offset));
      this.#windows.set(file, { at: entry.offset, bytes: read });
      bytes = read.subarray(0, entry.length);
    } else {
      bytes = readRecordBytes(pack.fd, entry);
    }
    pack.next = end;
    return checkRecord(bytes, file, entry);
  }

  /** The pack at `file`, opened unless kept open, and made the most recently used. */
  #openPack(file: string): OpenPack {
    let pack = this.#open.get(file);
    // A walk reads one pack many times in a row: it stays where it is.
    if (pack !== undefined && file === this.#newestOpen) return pack;
    if (pack === undefined) {
      pack = { fd: openSync(file, 'r'), next: -1 };
      if (this.#open.size >= OPEN_PACKS) this.#close(this.#open.keys().next().value!);
    } else {
      this.#open.delete(file);
    }
    this.#open.set(file, pack);
    this.#newestOpen = file;
    return pack;
  }

  /** Forgets a pack that is no longer named: its index, and its descriptor, which keeps its blocks. */
  forget(file: string): void {
    this.#indexes.delete(file);
    this.#close(file);
  }

  /** Closes every pack kept open. */
  close(): void {
    for (const file of [...this.#open.keys()]) this.#close(file);
  }

  #close(file: string): void {
    const pack = this.#open.get(file);
    this.#windows.delete(file);
    if (pack === undefined) return;
    if (file === this.#newestOpen) this.#newestOpen = undefined;
    this.#open.delete(file);
    closeSync(pack.fd);
  }
}
