/**
 * Conditions an operator must fix (a full disk, a read-only mount, a database gone) are met by
 * every request while they last. The log says so once when one begins and once when it ends,
 * instead of once per request; the answers say it every time.
 */
import type { Logger } from 'pino';
import { TcsyncError, type ErrorCode } from '../errors.js';

export class ConditionLog {
  readonly #logger: Logger;
  readonly #current = new Map<string, string>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Sets what `topic` (such as "commits" or "health check") meets now; null when all is well. */
  set(topic: string, condition: string | null, details: Record<string, unknown> = {}): void {
    const was = this.#current.get(topic) ?? null;
    if (was === condition) return;
    if (condition === null) {
      this.#current.delete(topic);
      this.#logger.info({ ...details, was }, `${topic}: ${was} is over`);
    } else {
      this.#current.set(topic, condition);
      this.#logger.error(details, `${topic}: ${condition}`);
    }
  }
}

const CONDITIONS: Partial<Record<ErrorCode, string>> = {
  DISK_FULL: 'disk full',
  READ_ONLY: 'read-only file system',
  STORAGE_UNAVAILABLE: 'database unreachable',
};

/** The operator's condition a storage fault reports, or null for any other error. */
export function conditionOfError(err: unknown): string | null {
  return err instanceof TcsyncError ? (CONDITIONS[err.code] ?? null) : null;
}
