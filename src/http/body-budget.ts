/**
 * The bytes of request and answer bodies held in memory at once, across every request. Each body
 * is capped (100 MiB for the protocol, 16 MiB for GraphQL), but without a bound on their sum a
 * handful of concurrent uploads, or downloads their clients never read, could take all the memory
 * of a small home server and get it killed.
 */
import type { ServerResponse } from 'node:http';
import { HttpError } from './http-error.js';

/** Two bodies at the protocol's cap read at once; far above what Taskwarrior replicas send at once. */
export const DEFAULT_BODY_BUDGET_BYTES = 512 * 1024 * 1024;

/** What a protocol body costs in memory per byte while read: its chunks, then one contiguous copy. */
export const PROTOCOL_BODY_WEIGHT = 2;
/** A GraphQL body: that, plus the JSON text, the parsed value and the decoded Base64. */
export const GRAPHQL_BODY_WEIGHT = 4;

export class BodyBudget {
  readonly limit: number;
  #free: number;

  constructor(limit: number) {
    this.limit = limit;
    this.#free = limit;
  }

  /** Bytes held now (for tests and metrics). */
  get held(): number {
    return this.limit - this.#free;
  }

  /**
   * A holder for one request's body, whose bytes are given back when the response closes
   * (answered, refused or cut off), since the body stays in memory until its transaction is over.
   * `weight` is what one byte of it costs in memory: a body read in chunks is copied once into one
   * buffer (2); a GraphQL body is also held as text, parsed, and its Base64 decoded (4).
   */
  holderFor(res: ServerResponse, weight: number): BodyHold {
    let held = 0;
    // `on`: a response closes once (once's wrapper would cost on every request).
    res.on('close', () => {
      this.#free += held;
      held = 0;
    });
    return {
      take: (bytes) => {
        // A response already closed gives nothing back later: take nothing for it.
        if (res.closed) return true;
        const cost = bytes * weight;
        if (cost > this.#free) return false;
        this.#free -= cost;
        held += cost;
        return true;
      },
    };
  }
}

export interface BodyHold {
  /** Takes `bytes` more for this body; false when that would pass the budget. */
  take(bytes: number): boolean;
}

/** The refusal when the budget is spent: the server is busy, not the request wrong. */
export function budgetSpent(): HttpError {
  return new HttpError(503, 'too many request and answer bodies in flight; retry shortly', { headers: { 'Retry-After': '1' } });
}
