/**
 * What a FileStorage remembers of the clients it has seen, so that a transaction on a client
 * whose files nobody else can have changed needs no I/O to know its state.
 */
import type { BigIntStats } from 'node:fs';
import type { ClientId, VersionId } from '../../ids.js';
import type { ClientMeta } from './client-meta.js';

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
}

export class ClientCache {
  readonly #entries = new Map<ClientId, ClientState>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get(id: ClientId): ClientState | undefined {
    return this.#entries.get(id);
  }

  set(id: ClientId, state: ClientState): void {
    this.#entries.delete(id);
    this.#entries.set(id, state);
    if (this.#entries.size > this.#max) {
      // Maps iterate in insertion order, so the first key is the least recently stored.
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  delete(id: ClientId): void {
    this.#entries.delete(id);
  }
}

export function identityOf(st: BigIntStats): string {
  return `${st.ino}:${st.mtimeNs}:${st.ctimeNs}:${st.size}`;
}
