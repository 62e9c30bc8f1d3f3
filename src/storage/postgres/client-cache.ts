/**
 * What one PostgresStorage remembers of clients' rows between transactions, so that an
 * optimistic transaction (TxnOptions) reads its client with no round trip. An entry is a row as
 * a transaction under the client's lock read it, or as a commit of this process left it; it may
 * be stale (another process commits too), which the commit's compare-and-set detects. Bounded:
 * the least recently used entry goes first.
 */
import type { ClientId } from '../../ids.js';
import type { LruMap } from '../lru-map.js';
import type { ClientRow } from './rows.js';

export type ClientCache = LruMap<ClientId, ClientRow>;
