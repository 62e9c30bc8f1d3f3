/**
 * Versions this process read lately, by parent, so that the replicas of a client fetching the
 * same versions, or a new replica walking a history others walked, are answered without opening
 * a file: a read of a page-cached version costs three system calls and a decode, about an eighth
 * of a get-child-version's time in the server. Commits do not fill it: most versions are fetched
 * by few replicas or none, and a writer should not pay memory for readers that may never come.
 * Nor do packed versions (pack-shelf.ts): read again, one costs about what remembering it does.
 *
 * A committed version never changes, nor does the child of a parent; only a deletion, and a new
 * client created under the same id after its tombstone is lifted, gives a parent another child.
 * So a version is remembered for an `incarnation` of its client (client-cache.ts ClientState):
 * a token that lives while this process knows the client's state to be current, and that every
 * deletion, every outside rewrite of client.json and every doubt replaces. A version remembered
 * under a token that has been replaced is never used again; it ages out.
 */
import type { ClientId, VersionId } from '../../ids.js';
import { LruMap } from '../lru-map.js';
import type { Version } from '../storage.js';

/** A client's incarnation as this process knows it (see ClientState.incarnation). */
export type Incarnation = number;

let lastIncarnation = 0;

/** A token no incarnation had before in this process: a number, kept inline in a client's state. */
export function newIncarnation(): Incarnation {
  return ++lastIncarnation;
}

interface Remembered {
  readonly incarnation: Incarnation;
  readonly version: Version;
}

/** What an entry costs beside its bytes, measured: objects, ids, key, the buffer's own overhead. */
const ENTRY_OVERHEAD = 1024;

export class VersionMemo {
  readonly #entries: LruMap<string, Remembered>;

  /** Keeps versions of at most `maxBytes` together (history segments and bookkeeping). */
  constructor(maxBytes: number) {
    this.#entries = new LruMap(maxBytes, ({ version }) => version.historySegment.byteLength + ENTRY_OVERHEAD);
  }

  /** The committed child of `parent` in this incarnation of the client, when remembered. */
  childOf(clientId: ClientId, incarnation: Incarnation, parent: VersionId): Version | null {
    const entry = this.#entries.get(keyOf(clientId, parent));
    return entry?.incarnation === incarnation ? entry.version : null;
  }

  /** Remembers `version`, which must be committed in this incarnation of the client. */
  remember(clientId: ClientId, incarnation: Incarnation, version: Version): void {
    this.#entries.set(keyOf(clientId, version.parentVersionId), { incarnation, version });
  }
}

function keyOf(clientId: ClientId, parent: VersionId): string {
  return `${clientId}/${parent}`;
}
