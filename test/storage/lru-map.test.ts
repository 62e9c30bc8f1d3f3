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

it('keeps the order right through runs on one key, and after that key is deleted or set again', () => {
  const map = new LruMap<string, number>(3);
  map.set('a', 1);
  map.set('b', 2);
  map.get('a');
  map.get('a');
  map.set('c', 3);
  map.set('d', 4); // evicts b, the least recently used
  expect(map.get('b')).toBeUndefined();
  map.delete('d');
  map.get('a');
  map.set('e', 5);
  map.set('f', 6); // evicts c
  expect(map.get('c')).toBeUndefined();
  map.set('a', 7);
  map.get('e');
  map.set('g', 8); // evicts f
  expect([map.get('f'), map.get('a'), map.get('e'), map.get('g')]).toEqual([undefined, 7, 5, 8]);
});

it('counts the order of use from half full on; before, entries age in the order they were set', () => {
  const map = new LruMap<string, number>(6);
  map.set('a', 1);
  map.set('b', 2);
  map.get('a'); // a third full: no move, a is still older than b
  map.set('c', 3);
  map.set('d', 4);
  map.get('c'); // two thirds full: c is the most recently used
  map.set('e', 5);
  map.set('f', 6);
  map.set('g', 7); // evicts a, which exact LRU would have kept over b
  expect(map.get('a')).toBeUndefined();
  map.set('h', 8); // evicts b
  map.set('i', 9); // evicts d, the least recently used since half full, not c
  expect(keys(map, ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'])).toEqual(['c', 'e', 'f', 'g', 'h', 'i']);
});
