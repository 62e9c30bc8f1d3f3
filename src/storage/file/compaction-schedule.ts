/**
 * When a client is due for compaction (compaction.ts): once it has `after` loose versions and has
 * made no commit for `quietMs`, or at once when it has `busyAfter` of them.
 *
 * Why wait for a quiet client: a compaction's flushes, renames and removals share the disk and
 * the file system's metadata with the commits made meanwhile, and a replica pushing versions
 * back to back waits for them. Compacting every 64 versions of such a stream slowed one in ten of its commits
 * (add-version p99 1.8x at 50,000 versions); a replica pauses after each sync (TaskChampion sends
 * one version a sync), so nearly every compaction runs in a pause. `busyAfter` bounds the loose
 * files of a client that never pauses, such as a bulk import over the protocol.
 */
import type { ClientId } from '../../ids.js';

export interface CompactionScheduleOptions {
  /** Loose versions that make a quiet client due; 0 never compacts. */
  readonly after: number;
  /** How long a client must have made no commit; 0 compacts as soon as it has `after`. */
  readonly quietMs: number;
  /** Loose versions that make a client due at once, quiet or not. */
  readonly busyAfter: number;
}

export class CompactionSchedule {
  readonly #options: CompactionScheduleOptions;
  readonly #due: (clientId: ClientId) => void;
  /** Clients with `after` loose versions or more whose last commit is under `quietMs` old, each with its timer. */
  readonly #waiting = new Map<ClientId, NodeJS.Timeout>();

  constructor(options: CompactionScheduleOptions, due: (clientId: ClientId) => void) {
    this.#options = options;
    this.#due = due;
  }

  /** A commit of the client left it with `loose` loose versions (null: client.json did not say, an older tcsync wrote it). */
  committed(clientId: ClientId, loose: number | null): void {
    const { after, quietMs, busyAfter } = this.#options;
    if (after <= 0 || (loose !== null && loose < after)) return;
    if (quietMs > 0) this.#awaitPause(clientId);
    // Unknown counts are found out by a compaction, which records them (compactClient).
    if (quietMs <= 0 || loose === null || loose >= busyAfter) this.#due(clientId);
  }

  /**
   * The loose versions a compaction of the client due now needs: `busyAfter` while it is still
   * committing, so that the versions it added during a compaction are not packed right after it
   * but in its next pause.
   */
  minLoose(clientId: ClientId): number {
    return this.#waiting.has(clientId) ? this.#options.busyAfter : this.#options.after;
  }

  #awaitPause(clientId: ClientId): void {
    const timer = this.#waiting.get(clientId);
    if (timer !== undefined) {
      timer.refresh();
      return;
    }
    const quiet = setTimeout(() => {
      this.#waiting.delete(clientId);
      this.#due(clientId);
    }, this.#options.quietMs);
    // A client waiting for its pause keeps no process alive.
    quiet.unref();
    this.#waiting.set(clientId, quiet);
  }

  /** Forgets every client waiting for its pause. */
  close(): void {
    for (const timer of this.#waiting.values()) clearTimeout(timer);
    this.#waiting.clear();
  }
}
