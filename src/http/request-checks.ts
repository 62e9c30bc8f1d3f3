/** The checks every sync request passes, with the reference server's answers. */
import type { IncomingMessage } from 'node:http';
import type { AccessPolicy } from '../access-policy.js';
import { parseClientId, parseVersionId, type ClientId, type VersionId } from '../ids.js';
import { HttpError } from './http-error.js';

/**
 * The media type compared as the reference compares it: the part before any `;`, trimmed,
 * case-sensitive.
 */
export function requireContentType(req: IncomingMessage, expected: string): void {
  const mediaType = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim();
  if (mediaType !== expected) throw new HttpError(400, 'Bad content-type');
}

/** The canonical X-Client-Id: 400 when missing or not a UUID, 403 when the allow-list excludes it. */
export function requireClientId(req: IncomingMessage, access: AccessPolicy): ClientId {
  // The first header only, as the reference reads it; Node would join repeated ones with ", ".
  let clientId: ClientId;
  try {
    clientId = parseClientId(firstValue(req, 'x-client-id'));
  } catch {
    throw new HttpError(400, 'bad x-client-id');
  }
  if (!access.allows(clientId)) throw new HttpError(403, 'unknown x-client-id');
  return clientId;
}

/** A version id from the path. One that is not a UUID matches no route, as in the reference. */
export function pathVersionId(param: string | null): VersionId {
  try {
    return parseVersionId(param);
  } catch {
    throw new HttpError(404, 'not found');
  }
}

/**
 * A header's first value. Node joins repeated headers with ", " in `headers`; `headersDistinct`
 * keeps them apart but builds arrays of every header at its first use, which cost more than
 * the rest of the check. A value without a comma cannot be a join.
 */
function firstValue(req: IncomingMessage, name: string): string | undefined {
  const joined = req.headers[name];
  return typeof joined === 'string' && !joined.includes(',') ? joined : req.headersDistinct[name]?.[0];
}
