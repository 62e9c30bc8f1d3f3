/**
 * The schema's custom scalars. Input that does not fit is refused with BAD_USER_INPUT, never
 * repaired: a lenient Base64 decoder would store different bytes than the caller meant.
 */
import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { canonicalUuid } from '../ids.js';
import { userError } from './errors.js';

/** Builds a scalar whose input is a string literal or variable, checked by `parse`. */
function stringScalar<Internal>(config: {
  name: string;
  expected: string;
  parse: (input: string) => Internal | null;
  serialize: (value: unknown) => string;
}): GraphQLScalarType<Internal, string> {
  const parseValue = (input: unknown): Internal => {
    const parsed = typeof input === 'string' ? config.parse(input) : null;
    if (parsed === null) throw userError('BAD_USER_INPUT', `${config.name} must be ${config.expected}.`);
    return parsed;
  };
  return new GraphQLScalarType<Internal, string>({
    name: config.name,
    serialize: config.serialize,
    parseValue,
    parseLiteral: (ast: ValueNode) => parseValue(ast.kind === Kind.STRING ? ast.value : undefined),
  });
}

/** Every spelling the HTTP protocol's X-Client-Id accepts; always answered canonically. */
export const UuidScalar = stringScalar<string>({
  name: 'UUID',
  expected: 'a UUID (hyphenated, 32 hex digits, braced or urn:uuid:)',
  parse: canonicalUuid,
  serialize: (value) => {
    const canonical = typeof value === 'string' ? canonicalUuid(value) : null;
    if (canonical === null) throw new TypeError('UUID field resolved to a non-UUID');
    return canonical;
  },
});

// RFC 3339 date-time with a mandatory offset; the fraction is optional.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

function parseRfc3339(input: string): Date | null {
  const match = RFC3339.exec(input);
  if (match === null) return null;
  const [year, month, day] = match.slice(1, 4).map(Number) as [number, number, number];
  // Date would roll 2024-02-31 over into March; a day that is not in its month is refused.
  if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) return null;
  const date = new Date(input);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Answered in UTC with a `Z`; input in any RFC 3339 offset. */
export const DateTimeScalar = stringScalar<Date>({
  name: 'DateTime',
  expected: 'an RFC 3339 date-time with an offset, such as 2024-01-31T12:00:00Z',
  parse: parseRfc3339,
  serialize: (value) => {
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError('DateTime field resolved to a non-date');
    return value.toISOString();
  },
});

// Standard alphabet with at most two `=` at the end. No repeated group: a regex group repeated
// once per 4 characters overflows V8's backtracking stack on a 16 MiB input.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict RFC 4648 base64 decoding, or null. */
export function decodeBase64Strict(input: string): Uint8Array | null {
  if (input.length % 4 !== 0 || !BASE64_CHARS.test(input)) return null;
  const bytes = Buffer.from(input, 'base64');
  // Re-encoding catches the rest: padding that does not match the length, and non-zero bits
  // before the padding (another spelling of the same bytes; only the canonical one is accepted).
  return bytes.toString('base64') === input ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : null;
}

/** Opaque bytes (history segments, snapshots) as standard base64 with padding. */
export const Base64Scalar = stringScalar<Uint8Array>({
  name: 'Base64',
  expected: 'standard base64 (RFC 4648) with padding and no whitespace',
  parse: decodeBase64Strict,
  serialize: (value) => {
    if (!(value instanceof Uint8Array)) throw new TypeError('Base64 field resolved to non-bytes');
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  },
});
