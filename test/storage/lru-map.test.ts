import { expect, it } from 'vitest';
import { LruMap } from '../../src/storage/lru-map.js';

const keys = (map: LruMap<string, number>, candidates: string[]) => candidates.filter((k) => map.get(k) !== undefined);

it('keeps at most `capacity` entries, forgetting the least recently used', () => {
  const map = new LruMap<string, number>(2);
  map.set('a', 1);
  map.set('b', 2);
  expect(map.get('a')).toBe(1);
  map.set('c', 3);
  expect(map.get('b')).toBeUndefined();
  expect(keys(map, ['a', 'c'])).toEqual(['a', 'c']);
});

it('with a weight, keeps entries weighing at most `capacity` together', () => {
  const map = new LruMap<string, number>(10, (n) => n);
  map.set('a', 4);
  map.set('b', 4);
  map.set('c', 4);
  expect(map.size).toBe(2);
  expect(map.get('a')).toBeUndefined();
  // Replacing an entry counts its new weight only; one heavier than all is not kept at all.
  map.set('b', 6);
  expect(keys(map, ['b', 'c'])).toEqual(['b', 'c']);
  map.set('d', 11);
  expect(map.get('d')).toBeUndefined();
  expect(map.size).toBe(2);
  map.delete('b');
  map.set('e', 6);
  expect(keys(map, ['c', 'e'])).toEqual(['c', 'e']);
});

it('a capacity of 0 remembers nothing', () => {
  const map = new LruMap<string, number>(0);
  map.set('a', 1);
  expect(map.get('a')).toBeUndefined();
});
