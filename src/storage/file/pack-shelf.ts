/**
 * The indexes of the packs this process reads, kept in memory and bounded in bytes as the version
 * memo is, and a few packs kept open, so that reading a packed version costs one positioned read
 * and no other system call. A pack never changes once named (its name is new for every pack
 * written), so neither an index nor an open pack is ever stale: a pack that was merged or pruned
 * away is simply no longer named by client.json, and its open descriptor is closed when forgotten.
 */
import { closeSync, openSync } from 'node:fs';
import type { VersionId } from '../../ids.js';
import type { Version } from '../storage.js';
import { LruMap } from '../lru-map.js';
import type { PackMeta } from './client-meta.js';
import type { ClientPaths } from './layout.js';
import { idBytes, readPackIndex, readRecord, type PackEntry, type PackIndex } from './pack-file.js';

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

export class PackShelf {
  readonly #indexes: LruMap<string, PackIndex>;
  /** Open packs by path, the least recently used first. */
  readonly #open = new Map<string, number>();

  constructor(maxBytes: number) {
    this.#indexes = new LruMap(maxBytes, (index) => index.byteLength + INDEX_OVERHEAD);
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
    const key = idBytes(versionId);
    return this.#search(paths, packs, (index) => index.find(key));
  }

  /** The packed version whose parent is `parentVersionId`. */
  findByParent(paths: ClientPaths, packs: readonly PackMeta[], parentVersionId: VersionId): PackedVersion | null {
    const key = idBytes(parentVersionId);
    return this.#search(paths, packs, (index) => index.findByParent(key));
  }

  #search(paths: ClientPaths, packs: readonly PackMeta[], look: (index: PackIndex) => PackEntry | null): PackedVersion | null {
    for (let i = packs.length - 1; i >= 0; i--) {
      const pack = packs[i]!;
      const entry = look(this.index(paths, pack));
      if (entry !== null) return { file: paths.pack(pack.file), entry };
    }
    return null;
  }

  /** Reads and checks a packed version (readRecord), through a pack kept open. */
  read({ file, entry }: PackedVersion): Version {
    let fd = this.#open.get(file);
    if (fd === undefined) {
      fd = openSync(file, 'r');
      if (this.#open.size >= OPEN_PACKS) this.#close(this.#open.keys().next().value!);
    } else {
      this.#open.delete(file);
    }
    this.#open.set(file, fd);
    return readRecord(fd, file, entry).version;
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
    const fd = this.#open.get(file);
    if (fd === undefined) return;
    this.#open.delete(file);
    closeSync(fd);
  }
}
