/**
 * A client's lock: a queue within this process, then a proper-lockfile lock directory shared
 * with every other process on the same data directory.
 *
 * proper-lockfile is a lease, not a fence: the holder refreshes the lock directory's mtime every
 * `staleMs / 2`, and anyone may take over a lock not refreshed for `staleMs`. So a killed
 * holder's lock is taken over between staleMs/2 and staleMs after its death, and a holder whose
 * event loop stalls longer than `staleMs` loses its lock; it must then fail instead of
 * committing, which `assertHeld()` right before each commit point enforces. proper-lockfile only
 * notices a takeover when its next refresh runs, which a stalled event loop or a threadpool busy
 * with slow fsyncs delays; so assertHeld also looks at the lock directory itself: it fails when
 * the directory is no longer the one this process made, or when its mtime is old enough that a
 * takeover may be near (FENCE_FRACTION of staleMs). Local disks only: staleness compares file
 * mtimes with this machine's clock.
 *
 * Taking and dropping the lock directory costs a mkdir, a stat and a rmdir (see lock-fs.ts), as
 * much as half a commit's fsyncs on some disks. So a process keeps the lock for `lingerMs` after
 * a transaction ends, and the next transaction on that client reuses it, knowing that nobody else
 * can have changed the client meanwhile (`leaseId` tells it so). Another process that finds the
 * lock taken touches a "want" marker while it waits; a holder that sees a fresh marker drops the
 * lock at once and stays away for a moment, so a busy process cannot starve the others.
 *
 * A lock directory cannot be made on a file system that is full or mounted read-only. Then no
 * other process can take the lock either (mkdir would fail for it too: an existing lock is
 * EEXIST before it is ENOSPC), so nothing can be committed and reading without the lock sees
 * committed state: every commit has one atomic commit point. Such a transaction gets a lock that
 * is not `exclusive`, whose `assertHeld()` fails any commit with the file system's refusal.
 */
import { mkdirSync, rmdirSync, statSync, utimesSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { unlink, writeFile } from 'node:fs/promises';
import lockfile from 'proper-lockfile';
import { TcsyncError } from '../../errors.js';
import { shortId, type ClientId } from '../../ids.js';
import { KeyedMutex } from '../keyed-mutex.js';
import { ioError, refusesWrites } from './durable-fs.js';
import { LockFs } from './lock-fs.js';
import { LOCKS_DIR, lockPath, tempPathOf } from './layout.js';

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
  /**
   * How long an idle lock is kept for the next transaction on the same client.
   * @default 25
   */
  readonly lingerMs?: number;
}

export interface HeldLock {
  /**
   * False when the lock could not be taken because the file system refuses writes (full or
   * read-only): the transaction may read committed state but must neither commit nor repair.
   */
  readonly exclusive: boolean;
  /**
   * Equal for transactions during which the lock was held without a break: state read under an
   * earlier transaction with the same leaseId is still current.
   */
  readonly leaseId: number;
  /**
   * Throws `LOCK_LOST` when the lock was taken over while held, or may be soon: its lease was not
   * refreshed in time (see FENCE_FRACTION).
   */
  assertHeld(): void;
  /**
   * True when the lock is another's now, so that this transaction must leave every file alone,
   * even its own leftovers: the new holder may already see or use them. Never throws.
   */
  takenOver(): boolean;
  /** Ends this transaction's use of the lock. Never throws. */
  release(): Promise<void>;
}

interface Lease {
  readonly id: number;
  /** The lock directory's path. */
  readonly lockDir: string;
  /** The lock directory this process made; another one there means the lock was taken over. */
  dir: DirIdentity | null;
  unlock: () => Promise<void>;
  lost: unknown;
  /** True between a transaction's end and the next one's start. */
  idle: boolean;
  /**
   * Drops the lock once it has been idle for lingerMs. Made once and refreshed at each release, as
   * a new timer for every transaction costs more; firing while the lock is in use, it does nothing.
   */
  lingerTimer: NodeJS.Timeout | null;
  /** When the want marker was last looked at (ms since the epoch). */
  wantCheckedAt: number;
}

/**
 * A lock whose directory was last refreshed longer ago than this share of staleMs is not trusted
 * for a commit: refreshed every staleMs / 2, it is that old only when its refresh is late, and it
 * can be taken over at staleMs. The rest is the time a commit point itself may take.
 */
const FENCE_FRACTION = 0.75;
/** proper-lockfile's least stale time, which it uses for any smaller one. */
const MIN_STALE_MS = 2000;

/** Waiters poll this often; a want marker older than a few polls belongs to nobody. */
const POLL_MS = 20;
const WANT_FRESH_MS = 3 * POLL_MS;
/** Waiters touch the marker every poll, so looking more often than this would find nothing new. */
const WANT_CHECK_MS = POLL_MS / 2;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ClientLocks {
  readonly #queue = new KeyedMutex<ClientId>();
  readonly #leases = new Map<ClientId, Lease>();
  /**
   * Lock directories this process is removing, each done when its rmdir is. No transaction uses
   * them any more, but until then this process's next `#take` would find its own directory there
   * and wait as if another process held it.
   */
  readonly #dropping = new Map<ClientId, Promise<void>>();
  /** Clients this process just handed over: it stays away until then, so the waiter gets in. */
  readonly #yieldUntil = new Map<ClientId, number>();
  readonly #dataDir: string;
  readonly #staleMs: number;
  readonly #waitMs: number;
  readonly #lingerMs: number;
  /** proper-lockfile's file system, whose stats are inline (lock-fs.ts). */
  readonly #fs = new LockFs();
  #nextLeaseId = 1;
  /** Whether stat reports a birth time that a refresh does not move (see #birthTimesHold). */
  #birthTimes: boolean | null = null;

  constructor(dataDir: string, options: LockOptions = {}) {
    this.#dataDir = dataDir;
    this.#staleMs = options.staleMs ?? 8000;
    this.#waitMs = options.waitMs ?? 30_000;
    this.#lingerMs = options.lingerMs ?? 25;
  }

  async acquire(clientId: ClientId): Promise<HeldLock> {
    const leaveQueue = await this.#queue.acquire(clientId);
    let lease = this.#leases.get(clientId);
    try {
      if (lease !== undefined && lease.lost === null) {
        lease.idle = false;
      } else {
        this.#leases.delete(clientId);
        const taken = await this.#take(clientId);
        if (taken instanceof TcsyncError) return this.#readOnly(taken, leaveQueue);
        lease = taken;
        this.#leases.set(clientId, lease);
      }
    } catch (err) {
      leaveQueue();
      throw err;
    }
    const held = lease;
    const trustedForMs = Math.max(this.#staleMs, MIN_STALE_MS) * FENCE_FRACTION;
    /** Why the lock cannot be trusted now, or null. */
    const doubt = (): FenceBreach | null => {
      if (held.lost !== null) return { error: held.lost, takenOver: true };
      const breach = fenceBreach(held.lockDir, held.dir, trustedForMs);
      // Taken over: the lock is another's now, and unlocking would remove theirs. A late refresh
      // only fails this commit: the lock is still ours, and proper-lockfile settles the rest.
      if (breach?.takenOver) held.lost = breach.error;
      return breach;
    };
    let released = false;
    return {
      exclusive: true,
      leaseId: held.id,
      assertHeld() {
        const breach = doubt();
        if (breach !== null) {
          throw new TcsyncError('LOCK_LOST', 'the client lock was lost or may be taken over; nothing was committed', { cause: breach.error });
        }
      },
      takenOver: () => doubt()?.takenOver ?? false,
      release: async () => {
        if (released) return;
        released = true;
        try {
          await this.#afterUse(clientId, held);
        } finally {
          leaveQueue();
        }
      },
    };
  }

  /**
   * Whether this file system keeps directories' birth times: where stat(2) stands in for statx(2)
   * (old kernels, some container sandboxes), Node reports the change time as birth time, which
   * every refresh of a lock moves. Found out once, on a directory of its own.
   */
  #birthTimesHold(): boolean {
    if (this.#birthTimes !== null) return this.#birthTimes;
    const probe = tempPathOf(path.join(this.#dataDir, LOCKS_DIR, '.birth-time-probe'));
    try {
      mkdirSync(probe);
      const before = statSync(probe, { bigint: true });
      const past = new Date(Date.now() - 60_000);
      utimesSync(probe, past, past);
      const after = statSync(probe, { bigint: true });
      this.#birthTimes = before.birthtimeNs !== 0n && before.birthtimeNs === after.birthtimeNs;
    } catch {
      // A full or read-only disk: the inode alone for now, and another look at the next lock.
      return false;
    } finally {
      try {
        rmdirSync(probe);
      } catch {
        // Not made, or already gone.
      }
    }
    return this.#birthTimes;
  }

  /**
   * The lease under which this process keeps the client's lock while no transaction of its own
   * uses or waits for it, or null. While it lasts nobody can commit to the client: what was
   * remembered under it is current.
   */
  idleLeaseId(clientId: ClientId): number | null {
    if (this.#queue.isBusy(clientId)) return null;
    const lease = this.#leases.get(clientId);
    return lease !== undefined && lease.idle && lease.lost === null ? lease.id : null;
  }

  /** True while a transaction of this process holds or waits for the client's lock. */
  busy(clientId: ClientId): boolean {
    return this.#queue.isBusy(clientId);
  }

  /**
   * True when no commit to the client can be under way now, in this process or another: none of
   * this process's transactions holds or waits for the lock, and the lock directory is absent or
   * this process's idle lease. Everything visible at such an instant is committed and durable: a
   * commit makes its commit point visible before its fsyncs, and takes it back if they fail, all
   * under the lock.
   */
  quiet(clientId: ClientId): boolean {
    if (this.#queue.isBusy(clientId)) return false;
    if (this.idleLeaseId(clientId) !== null) return true;
    return statSync(lockDirOf(lockPath(this.#dataDir, clientId)), { throwIfNoEntry: false }) === undefined;
  }

  /** Waits for every transaction to end, then drops every lock this process keeps. */
  async close(): Promise<void> {
    await this.#queue.drain();
    await Promise.all([...this.#leases].map(([clientId, lease]) => this.#drop(clientId, lease)));
    await Promise.all(this.#dropping.values());
  }

  /** A lock for reading only, while the file system refuses the lock directory (`refusal`). */
  #readOnly(refusal: TcsyncError, leaveQueue: () => void): HeldLock {
    let released = false;
    return {
      exclusive: false,
      // Never equal to a lease under which anything was cached: this one proves nothing.
      leaseId: this.#nextLeaseId++,
      assertHeld() {
        throw refusal;
      },
      takenOver: () => false,
      release: async () => {
        if (released) return;
        released = true;
        leaveQueue();
      },
    };
  }

  /** Takes the lock directory, or says why the file system refuses to create it. */
  async #take(clientId: ClientId): Promise<Lease | TcsyncError> {
    const file = lockPath(this.#dataDir, clientId);
    const want = `${file}.want`;
    await this.#dropping.get(clientId);
    const yieldFor = (this.#yieldUntil.get(clientId) ?? 0) - Date.now();
    if (yieldFor > 0) await sleep(yieldFor);
    this.#yieldUntil.delete(clientId);
    const deadline = Date.now() + this.#waitMs;
    let waited = false;
    for (;;) {
      const lease: Lease = { id: this.#nextLeaseId++, lockDir: lockDirOf(file), dir: null, unlock: async () => undefined, lost: null, idle: false, lingerTimer: null, wantCheckedAt: Date.now() };
      try {
        this.#fs.keepStats(lease.lockDir);
        lease.unlock = await lockfile.lock(file, {
          realpath: false,
          lockfilePath: lease.lockDir,
          stale: this.#staleMs,
          fs: this.#fs,
          onCompromised: (err) => {
            lease.lost = err;
          },
        });
        // The stat proper-lockfile took right after its mkdir tells which directory it made.
        const made = this.#fs.takeStat(lease.lockDir) ?? statSync(lease.lockDir, { bigint: true });
        lease.dir = dirIdentityOf(made, this.#birthTimesHold());
        // Only a marker this wait wrote is ours to remove: one another waiter wrote is its wish,
        // which this holder grants at its release.
        if (waited) await dropWant(want);
        return lease;
      } catch (err) {
        this.#fs.takeStat(lease.lockDir);
        const code = (err as NodeJS.ErrnoException).code;
        if (refusesWrites(err)) return ioError('cannot lock client', err);
        if (code !== 'ELOCKED') {
          throw ioError('cannot lock client', err);
        }
        if (Date.now() > deadline) {
          throw new TcsyncError('LOCK_TIMEOUT', `client ${shortId(clientId)} is locked by another process`, { cause: err });
        }
        // Tell the holder someone is waiting, then poll again (jittered, so waiters interleave).
        waited = true;
        await writeFile(want, '').catch(() => undefined);
        await sleep(POLL_MS * (0.5 + Math.random()));
      }
    }
  }

  async #afterUse(clientId: ClientId, lease: Lease): Promise<void> {
    if (lease.lost !== null) {
      if (this.#leases.get(clientId) === lease) this.#leases.delete(clientId);
      return;
    }
    if (this.#isWanted(clientId, lease)) {
      await this.#drop(clientId, lease);
      this.#yieldUntil.set(clientId, Date.now() + 2 * POLL_MS);
      return;
    }
    lease.idle = true;
    if (lease.lingerTimer !== null) {
      lease.lingerTimer.refresh();
      return;
    }
    lease.lingerTimer = setTimeout(() => {
      if (lease.idle) void this.#dropIdle(clientId, lease);
    }, this.#lingerMs);
    lease.lingerTimer.unref();
  }

  /**
   * Drops an idle lease, holding the queue only to take the lease out of use: a transaction of
   * this process that came while the lock directory is removed would otherwise count as one at
   * the client (busy), and a reader without the lock would take the lock for nothing, even
   * after the directory is gone. A transaction that wants the lock meanwhile waits for the
   * removal in #take.
   */
  async #dropIdle(clientId: ClientId, lease: Lease): Promise<void> {
    const leaveQueue = await this.#queue.acquire(clientId);
    let dropped: Promise<void> | null = null;
    try {
      // A transaction that took the queue meanwhile reused the lease (and refreshed the timer).
      if (this.#leases.get(clientId) === lease && lease.idle) dropped = this.#drop(clientId, lease);
    } finally {
      leaveQueue();
    }
    await dropped;
  }

  /** Takes the lease out of use at once (before its first await), then removes its lock directory. */
  async #drop(clientId: ClientId, lease: Lease): Promise<void> {
    if (lease.lingerTimer !== null) clearTimeout(lease.lingerTimer);
    lease.idle = false;
    if (this.#leases.get(clientId) === lease) this.#leases.delete(clientId);
    if (lease.lost !== null) return;
    // Rejected when already released or taken over: either way it is no longer ours.
    const removed = lease.unlock().catch(() => undefined);
    this.#dropping.set(clientId, removed);
    await removed;
    if (this.#dropping.get(clientId) === removed) this.#dropping.delete(clientId);
  }

  #isWanted(clientId: ClientId, lease: Lease): boolean {
    const now = Date.now();
    if (now - lease.wantCheckedAt < WANT_CHECK_MS) return false;
    lease.wantCheckedAt = now;
    // Synchronous: a stat of a name in a cached directory costs less than a threadpool round trip.
    try {
      const st = statSync(`${lockPath(this.#dataDir, clientId)}.want`, { throwIfNoEntry: false });
      return st !== undefined && st.mtimeMs > Date.now() - WANT_FRESH_MS;
    } catch {
      return false;
    }
  }
}

function lockDirOf(file: string): string {
  return `${file}.lock`;
}

interface FenceBreach {
  readonly error: unknown;
  /** True when the directory is gone or another's; false when it is only late in being refreshed. */
  readonly takenOver: boolean;
}

/**
 * A directory as made: its inode, and its birth time where the file system keeps one (a directory
 * made again right after a removal often gets the same inode).
 */
interface DirIdentity {
  readonly ino: bigint;
  readonly birthtimeNs: bigint | null;
}

function dirIdentityOf(st: BigIntStats, withBirthTime: boolean): DirIdentity {
  return { ino: st.ino, birthtimeNs: withBirthTime ? st.birthtimeNs : null };
}

/** Why the lock directory no longer proves the lock is ours (see FENCE_FRACTION), or null. */
function fenceBreach(lockDir: string, made: DirIdentity | null, trustedForMs: number): FenceBreach | null {
  let st;
  try {
    st = statSync(lockDir, { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    return { error: err as Error, takenOver: false };
  }
  if (st === undefined) return { error: new Error(`${lockDir} was removed`), takenOver: true };
  if (made !== null && (st.ino !== made.ino || (made.birthtimeNs !== null && st.birthtimeNs !== made.birthtimeNs))) {
    return { error: new Error(`${lockDir} was made again by another holder`), takenOver: true };
  }
  const age = Date.now() - Number(st.mtimeMs);
  if (age > trustedForMs) return { error: new Error(`${lockDir} was last refreshed ${Math.round(age)} ms ago`), takenOver: false };
  return null;
}

/**
 * Removes the want marker a waiter wrote, once it holds the lock. Another waiter's wish goes with
 * it (there is one marker per client), and comes back at its next poll. A marker written just
 * after the removal stays: its waiter is then still waiting, and the holder yields. On the
 * threadpool, as a lock directory's removal (lock-fs.ts): freeing an inode may wait for the disk.
 */
async function dropWant(want: string): Promise<void> {
  await unlink(want).catch(() => undefined);
}
