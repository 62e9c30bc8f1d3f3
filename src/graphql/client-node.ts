/**
 * A client as GraphQL hands it to the Client type's resolvers: its id, and its metadata loaded
 * at most once per request, so the fields of one Client agree with each other.
 */
import { TcsyncError } from '../errors.js';
import type { ClientId } from '../ids.js';
import { withTxn, type Client, type Storage } from '../storage/storage.js';

export class ClientNode {
  readonly id: ClientId;
  readonly #storage: Storage;
  #meta: Promise<Client | null> | null;
  readonly #listed: boolean;

  /**
   * `meta` when the caller already holds it (a client just created); loaded on first use
   * otherwise. A `listed` client is one of a page: the storage need not remember it (TxnOptions.passing).
   */
  constructor(storage: Storage, id: ClientId, meta: Client | null = null, { listed = false } = {}) {
    this.#storage = storage;
    this.id = id;
    this.#meta = meta === null ? null : Promise.resolve(meta);
    this.#listed = listed;
  }

  /** The client's metadata, or null when it does not exist. */
  load(): Promise<Client | null> {
    this.#meta ??= withTxn(this.#storage, this.id, (txn) => txn.getClient(), { passing: this.#listed });
    return this.#meta;
  }

  /** The client's metadata; `NO_SUCH_CLIENT` when it was deleted since it was listed. */
  async meta(): Promise<Client> {
    const meta = await this.load();
    if (meta === null) throw new TcsyncError('NO_SUCH_CLIENT', 'no such client');
    return meta;
  }
}
