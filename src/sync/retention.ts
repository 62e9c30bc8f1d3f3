/**
 * Retention in the background (`serve --prune-days N`): a client is pruned soon after it stored
 * a snapshot, and every client is swept now and then for versions that have aged past the cut
 * since. The rule itself is Storage.pruneVersions'.
 *
 * One client at a time, whatever asked for it: pruning takes a client's lock (on PostgreSQL one
 * batch at a time), so it never holds more than one client away from requests, and a client
 * that just stored a snapshot goes before the rest of a sweep. Faults are logged, never thrown:
 * retention must not stop a server that syncs fine.
 */
import type { ClientId } from '../ids.js';
import { allIds } from '../storage/client-export.js';
import type { Storage } from '../storage/storage.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** See RetentionOptions.delayMs. */
const DEFAULT_DELAY_MS = 2000;
/** Clients in a row whose pruning failed before a sweep gives up until the next one. */
const SWEEP_FAILURES = 3;

/** Where the runner reports (the server's pino logger fits). */
export interface RetentionLog {
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface RetentionOptions {
  /** Versions added more than this many days ago go; 0: everything the snapshot covers. */
  readonly days: number;
  /**
   * How long after a snapshot its client is pruned: the clients of the snapshots stored within
   * that time are pruned together, after the requests that stored them were answered. Short,
   * because nothing is gained by waiting: the snapshot is committed, and the versions it
   * covers may go. @default 2000
   */
  readonly delayMs?: number;
  /** From the end of one sweep over every client to the start of the next; the first starts `delayMs` after start(). @default 3600000 */
  readonly sweepEveryMs?: number;
  readonly log: RetentionLog;
  /** Hears how many versions each pruning deleted (serve counts them in /metrics). @default none */
  readonly onPruned?: (versions: number) => void;
  /** The clock. @default () => new Date() */
  readonly now?: () => Date;
}

/** A sweep under way: where it is in the listing, and what it did so far. */
interface Sweep {
  readonly ids: AsyncIterator<ClientId>;
  readonly started: number;
  clients: number;
  pruned: number;
  /** Clients in a row whose pruning failed. */
  failures: number;
}

export class RetentionRunner {
  readonly #storage: Storage;
  readonly #options: Readonly<RetentionOptions>;
  readonly #now: () => Date;
  /** Clients whose snapshot came in since the wait timer started. */
  #waiting = new Set<ClientId>();
  /** Clients to prune next, before the rest of a sweep. */
  readonly #due = new Set<ClientId>();
  #sweep: Sweep | null = null;
  #waitTimer: NodeJS.Timeout | null = null;
  #sweepTimer: NodeJS.Timeout | null = null;
  /** The worker, while it runs. */
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(storage: Storage, options: RetentionOptions) {
    this.#storage = storage;
    this.#options = Object.freeze({ ...options });
    this.#now = options.now ?? (() => new Date());
  }

  /** Schedules the first sweep. */
  start(): void {
    this.#scheduleSweep(this.#options.delayMs ?? DEFAULT_DELAY_MS);
  }

  /** Called when the client stored a snapshot: it is pruned within `delayMs` or so. */
  snapshotAccepted(clientId: ClientId): void {
    if (this.#closed) return;
    this.#waiting.add(clientId);
    if (this.#waitTimer !== null) return;
    this.#waitTimer = setTimeout(() => {
      this.#waitTimer = null;
      for (const id of this.#waiting) this.#due.add(id);
      this.#waiting = new Set();
      this.#kick();
    }, this.#options.delayMs ?? DEFAULT_DELAY_MS);
    this.#waitTimer.unref();
  }

  /** Stops the timers and waits for the pruning under way; what was waiting is left for the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of [this.#waitTimer, this.#sweepTimer]) if (timer !== null) clearTimeout(timer);
    await this.#running;
  }

  #scheduleSweep(delayMs: number): void {
    if (this.#closed) return;
    this.#sweepTimer = setTimeout(() => {
      this.#sweepTimer = null;
      const ids = allIds((after, limit) => this.#storage.listClients(after, limit))[Symbol.asyncIterator]();
      this.#sweep = { ids, clients: 0, pruned: 0, failures: 0, started: Date.now() };
      this.#kick();
    }, delayMs);
    this.#sweepTimer.unref();
  }

  /** Starts the worker unless it runs; it restarts itself for work that came in as it stopped. */
  #kick(): void {
    if (this.#running !== null || this.#closed) return;
    this.#running = this.#work().finally(() => {
      this.#running = null;
      if (this.#due.size > 0 || this.#sweep !== null) this.#kick();
    });
  }

  async #work(): Promise<void> {
    while (!this.#closed) {
      const [due] = this.#due;
      if (due !== undefined) {
        this.#due.delete(due);
        await this.#prune(due).catch((err: unknown) => this.#options.log.error(fault(err, due), 'retention: pruning a client failed'));
        continue;
      }
      const sweep = this.#sweep;
      if (sweep === null) return;
      if (await this.#sweepNext(sweep)) continue;
      this.#sweep = null;
      this.#scheduleSweep(this.#options.sweepEveryMs ?? 60 * 60 * 1000);
    }
  }

  /** Prunes the sweep's next client; false when the sweep is over (done, or given up). */
  async #sweepNext(sweep: Sweep): Promise<boolean> {
    let next: IteratorResult<ClientId>;
    try {
      next = await sweep.ids.next();
    } catch (err) {
      this.#options.log.error({ ...fault(err, null), clients: sweep.clients }, 'retention: sweep stopped, listing clients failed');
      return false;
    }
    if (next.done === true) {
      const { clients, pruned } = sweep;
      this.#options.log.info({ clients, pruned, ms: Date.now() - sweep.started }, 'retention: swept every client');
      return false;
    }
    sweep.clients += 1;
    try {
      sweep.pruned += await this.#prune(next.value);
      sweep.failures = 0;
      return true;
    } catch (err) {
      this.#options.log.error(fault(err, next.value), 'retention: pruning a client failed');
      // A storage that is away fails every client: a few lines, not one per client.
      if (++sweep.failures < SWEEP_FAILURES) return true;
      this.#options.log.error({ clients: sweep.clients }, `retention: sweep stopped after ${SWEEP_FAILURES} failures in a row`);
      return false;
    }
  }

  /** Prunes one client at the cut `days` before now; returns how many versions went. */
  async #prune(clientId: ClientId): Promise<number> {
    // Clamped: a cut before 1970 prunes nothing, where one beyond Date's range would be invalid.
    const cut = new Date(Math.max(0, this.#now().getTime() - this.#options.days * DAY_MS));
    const pruned = await this.#storage.pruneVersions(clientId, cut);
    if (pruned > 0) {
      this.#options.log.debug({ client: shortId(clientId), pruned }, 'retention: pruned versions');
      this.#options.onPruned?.(pruned);
    }
    return pruned;
  }
}

/** A client id as the request log shows it: a client's id is its credential. */
function shortId(clientId: ClientId): string {
  return clientId.slice(0, 8);
}

function fault(err: unknown, clientId: ClientId | null): object {
  return {
    ...(clientId === null ? {} : { client: shortId(clientId) }),
    code: (err as { code?: unknown }).code,
    err: err instanceof Error ? err.message : String(err),
  };
}
