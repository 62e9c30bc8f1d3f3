/** Id spellings: exactly those the reference's UUID parser (Rust uuid::Uuid::parse_str) takes. */
import { describe, expect, it } from 'vitest';
import { isTcsyncError } from '../src/errors.js';
import { assertCanonicalId, canonicalUuid, isCanonicalUuid, parseClientId } from '../src/ids.js';

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

describe('isCanonicalUuid', () => {
  // It remembers the ids it accepted last: whatever it saw before, it must accept and refuse
  // exactly what this RegExp does.
  const PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  // Every position of the canonical form, given each character around the hex ranges, the
  // hyphen, upper case, a non-ASCII one, and the string cut, lengthened or ended by a newline.
  const AROUND = ['/', '0', '9', ':', '`', 'a', 'f', 'g', 'A', 'F', '-', '\0', '\n', '\u0660', '\uff10', 'é'];
  const spellings = [CANONICAL, `${CANONICAL}\n`, `${CANONICAL}0`, CANONICAL.slice(0, -1), `0${CANONICAL}`, ''];
  for (let i = 0; i < CANONICAL.length; i++) {
    for (const c of AROUND) spellings.push(CANONICAL.slice(0, i) + c + CANONICAL.slice(i + 1));
  }

  it('agrees with the canonical pattern on every spelling tried', () => {
    for (const s of spellings) expect([s, isCanonicalUuid(s)]).toEqual([s, PATTERN.test(s)]);
    expect(spellings.filter((s) => isCanonicalUuid(s)).length).toBeGreaterThan(100);
  });

  it('refuses what is not a string where ids enter storage', () => {
    for (const id of [undefined, null, 36, { length: 36 }, [CANONICAL]]) {
      expect(() => assertCanonicalId(id as unknown as string, 'id')).toThrow(/not a canonical UUID/);
    }
  });
});
