/**
 * When a client is due for compaction (CompactionSchedule): after a pause once it has enough loose
 * versions, at once when it has very many. Timers are vitest's fake ones, so a pause is exactly
 * what the test says, however loaded the machine.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import type { ClientId } from '../../src/ids.js';
import { CompactionSchedule } from '../../src/storage/file/compaction-schedule.js';

const A = '6f1c1fd8-8d63-4c47-9d52-2a1f6c0f3d11' as ClientId;
const B = '0b5f3a52-7c1e-4d2a-9f00-1d2c3b4a5e6f' as ClientId;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function schedule(quietMs = 1000) {
  const due: ClientId[] = [];
  return { due, schedule: new CompactionSchedule({ after: 64, quietMs, busyAfter: 4096 }, (id) => due.push(id)) };
}

it('a client with enough loose versions is due once it has made no commit for quietMs', () => {
  const { due, schedule: s } = schedule();
  s.committed(A, 63);
  vi.advanceTimersByTime(5000);
  expect(due).toEqual([]);
  s.committed(A, 64);
  vi.advanceTimersByTime(999);
  expect(due).toEqual([]);
  vi.advanceTimersByTime(1);
  expect(due).toEqual([A]);
  vi.advanceTimersByTime(5000);
  expect(due).toEqual([A]);
});

it('every commit puts the pause off again, and clients pause on their own', () => {
  const { due, schedule: s } = schedule();
  for (let loose = 64; loose < 100; loose++) {
    s.committed(A, loose);
    vi.advanceTimersByTime(900);
  }
  s.committed(B, 70);
  expect(due).toEqual([]);
  vi.advanceTimersByTime(100);
  expect(due).toEqual([A]);
  vi.advanceTimersByTime(900);
  expect(due).toEqual([A, B]);
});

it('a client that never pauses is due at busyAfter, and packs only that many until it pauses', () => {
  const { due, schedule: s } = schedule();
  s.committed(A, 4095);
  expect(due).toEqual([]);
  s.committed(A, 4096);
  expect(due).toEqual([A]);
  // Versions added while that compaction runs wait for the pause.
  expect(s.minLoose(A)).toBe(4096);
  vi.advanceTimersByTime(1000);
  expect(due).toEqual([A, A]);
  expect(s.minLoose(A)).toBe(64);
});

it('a client whose loose versions are not known (an older client.json) is due at once', () => {
  const { due, schedule: s } = schedule();
  s.committed(A, null);
  expect(due).toEqual([A]);
});

it('without a pause to wait for, a client is due as soon as it has enough', () => {
  const { due, schedule: s } = schedule(0);
  s.committed(A, 64);
  expect(due).toEqual([A]);
  expect(s.minLoose(A)).toBe(64);
  expect(vi.getTimerCount()).toBe(0);
});

it('compactAfter 0 never makes a client due', () => {
  const due: ClientId[] = [];
  const s = new CompactionSchedule({ after: 0, quietMs: 1000, busyAfter: 0 }, (id) => due.push(id));
  s.committed(A, 10_000);
  s.committed(A, null);
  vi.advanceTimersByTime(5000);
  expect(due).toEqual([]);
});

it('close forgets the clients waiting for their pause', () => {
  const { due, schedule: s } = schedule();
  s.committed(A, 64);
  s.committed(B, 64);
  s.close();
  vi.advanceTimersByTime(5000);
  expect(due).toEqual([]);
  expect(vi.getTimerCount()).toBe(0);
});
