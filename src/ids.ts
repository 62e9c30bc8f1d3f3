/**
 * Client and version ids: UUIDs, parsed from every spelling the reference server's UUID parser
 * accepts (upper case, braces, no hyphens, `urn:uuid:`) and branded in canonical form (lower
 * case, hyphenated), so a raw string can never reach storage or a file name by mistake.
 */
import { v4 as uuidv4 } from 'uuid';
import { TcsyncError } from './errors.js';

declare const clientIdBrand: unique symbol;
declare const versionIdBrand: unique symbol;

/** A client id in canonical form. Holding it is the client's only credential. */
export type ClientId = string & { readonly [clientIdBrand]: true };
/** A version id in canonical form; {@link NIL_VERSION_ID} means "no version". */
export type VersionId = string & { readonly [versionIdBrand]: true };

export const NIL_UUID = '00000000-0000-0000-0000-000000000000';
/** The parent of the first version, and the latest version of an empty client. */
export const NIL_VERSION_ID = NIL_UUID as VersionId;

const HYPHENATED = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const SIMPLE = /^[0-9a-fA-F]{32}$/;
const CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The last two ids found canonical. A poll checks the same two ids, its client's and its
 * parent version's, five times: from the header and the path, then where each enters storage
 * and where it becomes a file name. The RegExp test costs about 1,400 instructions (callgrind);
 * comparing with these two, a tenth of that, nothing when it is the same string. Only two, so
 * that next to nothing is kept alive. (A loop over the characters cost more than the RegExp.)
 */
const recentlyCanonical: string[] = [NIL_UUID, NIL_UUID];
let oldestRecent = 0;

function isCanonical(s: string): boolean {
  if (s === recentlyCanonical[0] || s === recentlyCanonical[1]) return true;
  if (!CANONICAL.test(s)) return false;
  recentlyCanonical[oldestRecent] = s;
  oldestRecent = 1 - oldestRecent;
  return true;
}

/**
 * The canonical form of `input`, or null when it is not a UUID in a spelling the reference's
 * parser (Rust's `uuid::Uuid::parse_str`) accepts: 32 hex digits, or the hyphenated form alone,
 * in braces `{...}` or after a lower-case `urn:uuid:`; hex digits in either case.
 */
export function canonicalUuid(input: string): string | null {
  // What replicas send: one test, and the string itself rather than a lower-cased copy of it.
  if (isCanonical(input)) return input;
  if (SIMPLE.test(input)) {
    const s = input.toLowerCase();
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  }
  let hyphenated = input;
  if (input.startsWith('urn:uuid:')) hyphenated = input.slice('urn:uuid:'.length);
  else if (input.startsWith('{') && input.endsWith('}')) hyphenated = input.slice(1, -1);
  return HYPHENATED.test(hyphenated) ? hyphenated.toLowerCase() : null;
}

function parseUuid(input: unknown, what: string): string {
  const canonical = typeof input === 'string' ? canonicalUuid(input) : null;
  if (canonical === null) {
    throw new TcsyncError('INVALID_ID', `${what} is not a UUID: ${JSON.stringify(String(input)).slice(0, 60)}`);
  }
  return canonical;
}

/** Parses a client id; throws `INVALID_ID` when it is not a UUID. */
export function parseClientId(input: unknown): ClientId {
  return parseUuid(input, 'client id') as ClientId;
}

/** Parses a version id; throws `INVALID_ID` when it is not a UUID. */
export function parseVersionId(input: unknown): VersionId {
  return parseUuid(input, 'version id') as VersionId;
}

/** True when `s` is already canonical: the only form allowed in file names and metadata. */
export function isCanonicalUuid(s: string): boolean {
  return isCanonical(s);
}

/**
 * Throws `INVALID_ID` unless `id` is a canonical UUID. Ids are branded by a validating parser,
 * but the brand is only a type: a JavaScript caller, or a cast, can hand any string to the
 * storage API, where ids become file names and SQL values. Every storage checks its ids with
 * this where they enter it.
 */
export function assertCanonicalId(id: string, what: string): void {
  if (typeof id !== 'string' || !isCanonical(id)) {
    throw new TcsyncError('INVALID_ID', `${what} is not a canonical UUID: ${JSON.stringify(String(id)).slice(0, 60)}`);
  }
}

/** A fresh random version id. */
export function newVersionId(): VersionId {
  return uuidv4() as VersionId;
}

/** The first 8 characters of a client id: enough to tell clients apart in logs, useless as a credential. */
export function shortId(id: ClientId): string {
  return id.slice(0, 8);
}
