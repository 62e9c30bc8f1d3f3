/**
 * What a FileStorage remembers of the clients it has seen, so that a transaction on a client
 * whose files nobody else can have changed needs no I/O to know its state.
 */
import type { BigIntStats } from 'node:fs';
import type { ClientId, VersionId } from '../../ids.js';
import type { LruMap } from '../lru-map.js';
import type { ClientMeta } from './client-meta.js';
import type { Incarnation } from './version-memo.js';

/** A client's committed state as last seen by this process. */
export interface ClientState {
  /** Identity of client.json when loaded; a different one means another process rewrote it. */
  readonly identity: string;
  readonly meta: ClientMeta;
  /** The latest version: the checkpoint, then `steps` links further. */
  readonly latest: VersionId;
  readonly steps: number;
  /** The lease under which this was last known true; while it lasts, nobody else can change it. */
  readonly leaseId: number;
  /**
   * Shared by the states that follow one another while this process knows the client's history
   * to be the same one (nothing deleted it since): versions are remembered under it (version-memo.ts).
   */
  readonly incarnation: Incarnation;
}

/** Client states by id, the least recently used forgotten first. */
export type ClientCache = LruMap<ClientId, ClientState>;

export function identityOf(st: BigIntStats): string {
  return `${st.ino}:${st.mtimeNs}:${st.ctimeNs}:${st.size}`;
}
