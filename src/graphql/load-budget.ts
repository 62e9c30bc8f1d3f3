/**
 * What one request may load from storage. Page sizes alone do not bound a request: aliases and
 * nesting multiply pages, and variables are unknown until execution, so every page draws on a
 * budget shared by the whole request.
 */
import { userError } from './errors.js';
import { LIMITS } from './limits.js';

export class LoadBudget {
  #nodes: number;
  #bytes: number;

  constructor(nodes: number = LIMITS.maxNodesPerRequest, bytes: number = LIMITS.maxBytesPerRequest) {
    this.#nodes = nodes;
    this.#bytes = bytes;
  }

  /** Validates a page's `first`, reserves that many nodes and returns it; BAD_USER_INPUT when it cannot. */
  reservePage(first: number | null): number {
    // An explicit null replaces the argument's default, so it must be refused here.
    if (first === null) throw userError('BAD_USER_INPUT', '`first` must be a number from 0 to 1000, not null.');
    if (first < 0) throw userError('BAD_USER_INPUT', '`first` must not be negative.');
    if (first > LIMITS.maxPageSize) {
      throw userError('BAD_USER_INPUT', `\`first\` must be at most ${LIMITS.maxPageSize}.`);
    }
    if (first > this.#nodes) {
      throw userError('BAD_USER_INPUT', `This request would load more than ${LIMITS.maxNodesPerRequest} nodes.`);
    }
    this.#nodes -= first;
    return first;
  }

  /** Charges bytes loaded from storage; BAD_USER_INPUT once the request has loaded too much. */
  chargeBytes(count: number): void {
    this.#bytes -= count;
    if (this.#bytes < 0) {
      throw userError('BAD_USER_INPUT', `This request would load more than ${LIMITS.maxBytesPerRequest} bytes.`);
    }
  }
}
