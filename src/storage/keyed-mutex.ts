/**
 * Mutual exclusion per key within one process: waiters on a key run one after another in
 * arrival order, different keys never wait for each other.
 */
export class KeyedMutex<K> {
  readonly #tails = new Map<K, Promise<void>>();

  /** Waits for `key`, then resolves to a function that releases it (idempotent). */
  async acquire(key: K): Promise<() => void> {
    const previous = this.#tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A free key (the common case) has nothing to chain to or wait for.
    const tail = previous === undefined ? mine : previous.then(() => mine);
    this.#tails.set(key, tail);
    if (previous !== undefined) await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      // Forget the key once nobody queued behind us, so the map does not grow with every client seen.
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
  }

  /** True while someone holds `key` or waits for it. */
  isBusy(key: K): boolean {
    return this.#tails.has(key);
  }

  /** Resolves once every holder and waiter present now has released. */
  async drain(): Promise<void> {
    await Promise.all([...this.#tails.values()]);
  }
}
