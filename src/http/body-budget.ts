/**
 * The bytes of request bodies held in memory at once, across every request. Each body is capped
 * (100 MiB for the protocol, 16 MiB for GraphQL), but without a bound on their sum a handful of
 * concurrent uploads could take all the memory of a small home server and get it killed.
 */
import type { ServerResponse } from 'node:http';

/** Five bodies at the protocol's cap; far above what any number of Taskwarrior replicas sends at once. */
export const DEFAULT_BODY_BUDGET_BYTES = 512 * 1024 * 1024;

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
   * A holder for one request's body: its bytes are given back when the response closes (answered,
   * refused or cut off), since the body stays in memory until its transaction is over.
   */
  holderFor(res: ServerResponse): BodyHold {
    let held = 0;
    res.once('close', () => {
      this.#free += held;
      held = 0;
    });
    return {
      take: (bytes) => {
        // A response already closed gives nothing back later: take nothing for it.
        if (res.closed) return true;
        if (bytes > this.#free) return false;
        this.#free -= bytes;
        held += bytes;
        return true;
      },
    };
  }
}

export interface BodyHold {
  /** Takes `bytes` more for this body; false when that would pass the budget. */
  take(bytes: number): boolean;
}

/** The answer when the budget is spent: the server is busy, not the request wrong. */
export const BUDGET_SPENT_MESSAGE = 'too many request bodies in flight; retry shortly';
