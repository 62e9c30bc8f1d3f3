/**
 * Who may do what, for every transport alike: which clients exist for this server (the
 * allow-list), whether unknown clients are created, and whether a request carries the admin token.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { ClientId } from './ids.js';

export interface AccessOptions {
  /** Only these clients may sync; null allows every client. @default null */
  readonly allowClientIds: ReadonlySet<ClientId> | null;
  /** Create unknown clients on their first add-version. @default true */
  readonly createClients: boolean;
  /** The admin token for admin GraphQL operations; null disables them. @default null */
  readonly adminToken: string | null;
}

export class AccessPolicy {
  readonly #allow: ReadonlySet<ClientId> | null;
  readonly #adminDigest: Buffer | null;
  readonly createClients: boolean;

  constructor(options: AccessOptions) {
    this.#allow = options.allowClientIds;
    this.createClients = options.createClients;
    this.#adminDigest = options.adminToken ? digest(options.adminToken) : null;
  }

  /** True when the client may use this server at all. */
  allows(clientId: ClientId): boolean {
    return this.#allow === null || this.#allow.has(clientId);
  }

  /** True when an `Authorization` header value is `Bearer <admin token>`; compared in constant time. */
  isAdmin(authorization: string | null | undefined): boolean {
    if (this.#adminDigest === null || !authorization) return false;
    const match = /^Bearer (.+)$/i.exec(authorization.trim());
    // Hashing first makes the comparison length-independent as well as constant-time.
    return match !== null && timingSafeEqual(digest(match[1] ?? ''), this.#adminDigest);
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
