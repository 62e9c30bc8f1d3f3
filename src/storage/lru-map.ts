/**
 * A Map of at most `capacity` entries, or of entries weighing at most `capacity` together, that
 * forgets the least recently used first (of those used since it was half full; before, in the
 * order they were set): what each storage remembers of the clients it has seen
 * (see file/client-cache.ts, postgres/client-cache.ts) and of their versions (file/version-memo.ts).
 * A capacity of 0 remembers nothing.
 */
export class LruMap<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #capacity: number;
  readonly #weigh: (value: V) => number;
  #weight = 0;
  /** The most recently used key: using it again changes no order, so a run on one key moves nothing. */
  #newest: K | undefined = undefined;

  /** `weigh` tells what an entry counts against the capacity; by default each counts 1. */
  constructor(capacity: number, weigh: (value: V) => number = () => 1) {
    this.#capacity = capacity;
    this.#weigh = weigh;
  }

  /**
   * Below half its capacity, nothing is near being forgotten, and a hit changes no order: the
   * order of use counts from half full on. A move is a delete and a set, and every delete leaves
   * a slot in the Map's table until V8 rebuilds it, so moving on every hit kept the table of
   * 10,000 polled clients at twice the size their entries need (about 0.46 MiB).
   */
  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined && key !== this.#newest && this.#weight * 2 > this.#capacity) {
      // A Map iterates in insertion order: re-inserted, the entry is the most recently used.
      this.#entries.delete(key);
      this.#entries.set(key, value);
      this.#newest = key;
    }
    return value;
  }

  set(key: K, value: V): void {
    this.delete(key);
    const weight = this.#weigh(value);
    if (weight > this.#capacity) return;
    this.#entries.set(key, value);
    this.#newest = key;
    this.#weight += weight;
    // Only when over: an iterator made for nothing is a good part of a set's cost.
    if (this.#weight <= this.#capacity) return;
    for (const [oldest, old] of this.#entries) {
      if (this.#weight <= this.#capacity) break;
      this.#entries.delete(oldest);
      this.#weight -= this.#weigh(old);
    }
  }

  delete(key: K): void {
    const value = this.#entries.get(key);
    if (value === undefined) return;
    if (key === this.#newest) this.#newest = undefined;
    this.#entries.delete(key);
    this.#weight -= this.#weigh(value);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** What the entries weigh together, as counted against the capacity. */
  get weight(): number {
    return this.#weight;
  }
}
