/** Id spellings: exactly those the reference's UUID parser (Rust uuid::Uuid::parse_str) takes. */
import { describe, expect, it } from 'vitest';
import { isTcsyncError } from '../src/errors.js';
import { canonicalUuid, parseClientId } from '../src/ids.js';

const CANONICAL = 'a1b2c3d4-0000-4000-8000-00000000000a';

describe('canonicalUuid', () => {
  it.each([
    ['hyphenated', CANONICAL],
    ['upper case', CANONICAL.toUpperCase()],
    ['simple (no hyphens)', CANONICAL.replaceAll('-', '')],
    ['simple, upper case', CANONICAL.replaceAll('-', '').toUpperCase()],
    ['braced', `{${CANONICAL}}`],
    ['urn', `urn:uuid:${CANONICAL}`],
    ['urn with upper-case digits', `urn:uuid:${CANONICAL.toUpperCase()}`],
  ])('accepts %s', (_, spelling) => {
    expect(canonicalUuid(spelling)).toBe(CANONICAL);
  });

  it.each([
    ['braced simple', `{${CANONICAL.replaceAll('-', '')}}`],
    ['urn simple', `urn:uuid:${CANONICAL.replaceAll('-', '')}`],
    ['upper-case urn prefix', `URN:UUID:${CANONICAL}`],
    ['hyphens in the wrong places', 'a1b2c3d40-000-4000-8000-00000000000a'],
    ['too short', CANONICAL.slice(1)],
    ['non-hex', CANONICAL.replace('a', 'g')],
    ['spaces around', ` ${CANONICAL} `],
    ['empty', ''],
    ['a path', '../../etc/passwd'],
  ])('refuses %s', (_, spelling) => {
    expect(canonicalUuid(spelling)).toBeNull();
  });

  it('parseClientId throws INVALID_ID for a bad id and brands a good one canonically', () => {
    expect(parseClientId(`{${CANONICAL.toUpperCase()}}`)).toBe(CANONICAL);
    let err: unknown;
    try {
      parseClientId('nope');
    } catch (e) {
      err = e;
    }
    expect(isTcsyncError(err, 'INVALID_ID')).toBe(true);
  });
});
