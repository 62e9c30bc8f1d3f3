/**
 * What one PostgresStorage remembers of clients' rows between transactions, so that an
 * optimistic transaction (TxnOptions) reads its client with no round trip. An entry is a row as
 * a transaction under the client's lock read it, or as a commit of this process left it; it may
 * be stale (another process commits too), which the commit's compare-and-set detects. Bounded:
 * the least recently used entry goes first.
 */
import type { ClientId } from '../../ids.js';
import type { ClientRow } from './rows.js';

export class ClientCache {
  readonly #rows = new Map<ClientId, ClientRow>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get(clientId: ClientId): ClientRow | undefined {
    const row = this.#rows.get(clientId);
    if (row !== undefined) {
      // A Map iterates in insertion order: re-inserted, the entry is the most recently used.
      this.#rows.delete(clientId);
      this.#rows.set(clientId, row);
    }
    return row;
  }

  /** Remembers `row` (forgets the client when null: the cache holds only clients that exist). */
  set(clientId: ClientId, row: ClientRow | null): void {
    this.#rows.delete(clientId);
    if (row === null || this.#capacity <= 0) return;
    this.#rows.set(clientId, row);
    if (this.#rows.size > this.#capacity) this.#rows.delete(this.#rows.keys().next().value!);
  }

  delete(clientId: ClientId): void {
    this.#rows.delete(clientId);
  }

  get size(): number {
    return this.#rows.size;
  }
}
