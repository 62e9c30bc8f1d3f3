/**
 * A client's lock: a queue within this process, then a proper-lockfile lock directory shared
 * with every other process on the same data directory.
 *
 * proper-lockfile is a lease, not a fence: the holder refreshes the lock directory's mtime every
 * `staleMs / 2`, and anyone may take over a lock not refreshed for `staleMs`. So a killed
 * holder's lock is taken over between staleMs/2 and staleMs after its death, and a holder whose
 * event loop stalls longer than `staleMs` loses its lock; it must then fail instead of
 * committing, which `assertHeld()` right before each commit point enforces. Local disks only:
 * staleness compares file mtimes with this machine's clock.
 */
import lockfile from 'proper-lockfile';
import { TcsyncError } from '../../errors.js';
import type { ClientId } from '../../ids.js';
import { KeyedMutex } from '../keyed-mutex.js';
import { lockPath } from './layout.js';

export interface LockOptions {
  /**
   * A lock not refreshed for this long is taken over (proper-lockfile's minimum is 2000).
   * @default 8000
   */
  readonly staleMs?: number;
  /**
   * How long `txn()` waits for a lock held by another process before failing with LOCK_TIMEOUT.
   * @default 30000
   */
  readonly waitMs?: number;
}

export interface HeldLock {
  /** Throws `LOCK_LOST` when the lock was taken over while held. */
  assertHeld(): void;
  /** Releases the lock. Never throws. */
  release(): Promise<void>;
}

const POLL_MS = 20;

export class ClientLocks {
  readonly #queue = new KeyedMutex<ClientId>();
  readonly #dataDir: string;
  readonly #staleMs: number;
  readonly #waitMs: number;

  constructor(dataDir: string, options: LockOptions = {}) {
    this.#dataDir = dataDir;
    this.#staleMs = options.staleMs ?? 8000;
    this.#waitMs = options.waitMs ?? 30_000;
  }

  async acquire(clientId: ClientId): Promise<HeldLock> {
    const leaveQueue = await this.#queue.acquire(clientId);
    let lost: unknown = null;
    let unlock: () => Promise<void>;
    try {
      const file = lockPath(this.#dataDir, clientId);
      unlock = await lockfile.lock(file, {
        realpath: false,
        lockfilePath: `${file}.lock`,
        stale: this.#staleMs,
        retries: { retries: Math.ceil(this.#waitMs / POLL_MS), factor: 1, minTimeout: POLL_MS, maxTimeout: POLL_MS, randomize: true },
        onCompromised: (err) => {
          lost = err;
        },
      });
    } catch (err) {
      leaveQueue();
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
        throw new TcsyncError('LOCK_TIMEOUT', `client ${clientId.slice(0, 8)} is locked by another process`, { cause: err });
      }
      throw new TcsyncError('STORAGE_IO', `cannot lock client: ${(err as NodeJS.ErrnoException).code ?? err}`, { cause: err });
    }
    let released = false;
    return {
      assertHeld() {
        if (lost !== null) throw new TcsyncError('LOCK_LOST', 'the client lock was lost while held; nothing was committed', { cause: lost });
      },
      async release() {
        if (released) return;
        released = true;
        try {
          if (lost === null) await unlock();
        } catch {
          // Already released or taken over: either way it is no longer ours.
        } finally {
          leaveQueue();
        }
      },
    };
  }

  async drain(): Promise<void> {
    await this.#queue.drain();
  }
}
