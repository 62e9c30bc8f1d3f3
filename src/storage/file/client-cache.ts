/**
 * What a FileStorage remembers of the clients it has seen, so that a transaction on a client
 * whose files nobody else can have changed needs no I/O to know its state.
 */
import type { BigIntStats } from 'node:fs';
import type { ClientId, VersionId } from '../../ids.js';
import type { LruMap } from '../lru-map.js';
import { NONE, type ClientMeta } from './client-meta.js';
import type { Incarnation } from './version-memo.js';

/** A client's committed state as last seen by this process. */
export interface ClientState {
  /** Identity of client.json when loaded; a different one means another process rewrote it. */
  readonly identity: string;
  readonly meta: ClientMeta;
  /** The latest version: the checkpoint, then `steps` links further. */
  readonly latest: VersionId;
  readonly steps: number;
  /**
   * The lease under which this was last known true; while it lasts, nobody else can change it.
   * NO_LEASE for what a transaction without the lock saw: a starting point to check, never proof.
   */
  readonly leaseId: number;

  /**
   * Shared by the states that follow one another while this process knows the client's history
   * to be the same one (nothing deleted it since): versions are remembered under it (version-memo.ts).
   */
  readonly incarnation: Incarnation;
}

/** Client states by id, the least recently used forgotten first. */
export type ClientCache = LruMap<ClientId, ClientState>;

/**
 * The state once the links client.json lists as pending are known to exist: followed as files,
 * they need no list, and a remembered client is smaller without it (client-meta.ts NONE).
 */
export function withLinksMade(state: ClientState): ClientState {
  return state.meta.pendingLinks.length === 0 ? state : { ...state, meta: { ...state.meta, pendingLinks: NONE } };
}

/** A lease id no lease has: see ClientState.leaseId. */
export const NO_LEASE = 0;

/**
 * What a cached client costs in memory, in bytes, as counted for the cache's bound: the map
 * entry, its key, the state and its metadata with their strings. Measured on the heap after a
 * collection over 20,000 entries of these shapes: about 300 bytes for a client without a
 * snapshot or pending links, about 170 more per pending link; a snapshot's metadata (an object,
 * a Date, two strings) is counted at 300. Rounded up, as the bound is a promise.
 */
export function clientStateBytes(state: ClientState): number {
  return 400 + (state.meta.snapshot === null ? 0 : 300) + 200 * state.meta.pendingLinks.length;
}

/**
 * client.json's identity: its inode, modification and change times and size. A replacement is a
 * new file renamed into place: another inode, or one freed a moment ago and reused, which the
 * times then tell apart. Times move in clock ticks of a few ms here, so both count: a file whose
 * write and rename fell in two ticks differs in its modification time from one written and
 * renamed in the later tick. In base 36, as every remembered client keeps one: 34-odd characters
 * instead of 51, 16 bytes of heap less a client.
 */
export function identityOf(st: BigIntStats): string {
  // join builds one flat string; a template literal builds a tree of parts, which a remembered
  // client would keep (about 44 bytes more each).
  return [st.ino.toString(36), st.mtimeNs.toString(36), st.ctimeNs.toString(36), st.size.toString(36)].join(':');
}
