/**
 * The indexes of the packs this process reads, kept in memory and bounded in bytes as the version
 * memo is, so that finding a packed version costs no I/O and reading it one positioned read. A
 * pack never changes once named (its name is new for every pack written), so an index is never
 * stale: a pack that was merged or pruned away is simply no longer named by client.json.
 */
import type { VersionId } from '../../ids.js';
import { LruMap } from '../lru-map.js';
import type { PackMeta } from './client-meta.js';
import type { ClientPaths } from './layout.js';
import { idBytes, readPackIndex, type PackEntry, type PackIndex } from './pack-file.js';

/** A version found in a pack: the pack's path and the entry. */
export interface PackedVersion {
  readonly file: string;
  readonly entry: PackEntry;
}

/** What an index costs beside its bytes: the Buffer, the map entry and its key. */
const INDEX_OVERHEAD = 256;

export class PackShelf {
  readonly #indexes: LruMap<string, PackIndex>;

  constructor(maxBytes: number) {
    this.#indexes = new LruMap(maxBytes, (index) => index.byteLength + INDEX_OVERHEAD);
  }

  /** The index of one pack, read from its file unless remembered. */
  index(paths: ClientPaths, pack: PackMeta): PackIndex {
    const file = paths.pack(pack.file);
    let index = this.#indexes.get(file);
    if (index === undefined) {
      index = readPackIndex(file, pack.size, pack.versions);
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
}
