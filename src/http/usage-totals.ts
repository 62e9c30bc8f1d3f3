/**
 * What every client together takes up, for /metrics: totals only, never per client (client ids
 * are credentials). Adding up means reading every client's usage (on files an open, a stat and a
 * read per version: `tcsync usage`'s cost), far too much for each scrape of a server with
 * thousands of clients. So a scrape only reads the totals of the last walk over the clients, and
 * starts a new walk in the background when that one began more than `intervalMs` ago: one walk
 * at a time, one client at a time, and none at all on a server nobody scrapes.
 */
import { allIds } from '../storage/client-export.js';
import type { Storage } from '../storage/storage.js';

export interface UsageTotalsOptions {
  /** How old the totals may get before a scrape starts a new walk over every client. @default 600000 (10 minutes) */
  readonly intervalMs?: number;
}

export interface Totals {
  readonly clients: number;
  readonly versions: number;
  readonly bytes: number;
  /** When the walk that found them ended. */
  readonly at: Date;
}

export class UsageTotals {
  readonly #storage: Storage;
  readonly #intervalMs: number;
  #latest: Totals | null = null;
  #walk: Promise<void> | null = null;
  #lastStart = -Infinity;
  #stopped = false;
  readonly #onTotals: (totals: Totals) => void;

  /** `onTotals` hears of each walk's totals as it ends. */
  constructor(storage: Storage, onTotals: (totals: Totals) => void, options: UsageTotalsOptions = {}) {
    this.#storage = storage;
    this.#onTotals = onTotals;
    this.#intervalMs = options.intervalMs ?? 10 * 60 * 1000;
  }

  /** The last walk's totals; null until one has ended. */
  get latest(): Totals | null {
    return this.#latest;
  }

  /** Starts a walk unless one runs, or the last one began less than the interval ago. Never waits for it. */
  refresh(): void {
    if (this.#stopped || this.#walk !== null || performance.now() - this.#lastStart < this.#intervalMs) return;
    this.#lastStart = performance.now();
    this.#walk = this.#add().then(
      (totals) => {
        if (totals === null) return;
        this.#latest = totals;
        this.#onTotals(totals);
      },
      // A walk that failed (the database went away) leaves the last totals, whose time shows their age.
      () => undefined,
    ).finally(() => {
      this.#walk = null;
    });
  }

  /** Stops walking, once the client being read is done: for a server shutting down, before its storage closes. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#walk;
  }

  /** The totals now, or null when stopped meanwhile. A client deleted since it was listed counts for nothing. */
  async #add(): Promise<Totals | null> {
    let clients = 0;
    let versions = 0;
    let bytes = 0;
    for await (const id of allIds((after, limit) => this.#storage.listClients(after, limit))) {
      if (this.#stopped) return null;
      const usage = await this.#storage.clientUsage(id);
      if (usage === null) continue;
      clients++;
      versions += usage.versions;
      bytes += usage.bytes;
    }
    return { clients, versions, bytes, at: new Date() };
  }
}
