/** Checks every client-addressed field makes before touching storage. */
import type { AccessPolicy } from '../../access-policy.js';
import { parseClientId, type ClientId } from '../../ids.js';
import { userError } from '../errors.js';

/** The client id, when the server's allow-list admits it; FORBIDDEN otherwise. */
export function allowedClientId(access: AccessPolicy, raw: string): ClientId {
  const id = parseClientId(raw);
  if (!access.allows(id)) throw userError('FORBIDDEN', 'This client is not allowed on this server.');
  return id;
}

/** Bytes a transaction must not be given empty, as the HTTP protocol refuses an empty body. */
export function nonEmpty(bytes: Uint8Array, what: string): Uint8Array {
  if (bytes.byteLength === 0) throw userError('BAD_USER_INPUT', `${what} must not be empty.`);
  return bytes;
}
