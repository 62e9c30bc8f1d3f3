/**
 * When a commit may wait for the disk on the event loop (CommitPacing). Which threads really make
 * the calls is checked under strace in commit-syscalls.test.ts; this checks the choice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { CommitPacing } from '../../src/storage/file/commit-pacing.js';
import type { Wait } from '../../src/storage/file/durable-fs.js';

const waitOf = (pacing: CommitPacing, takesMs = 0) =>
  pacing.run(async (wait: Wait) => {
    if (takesMs > 0) await sleep(takesMs);
    return wait;
  });

it('waits inline only while its transaction is the only one open', async () => {
  const pacing = new CommitPacing();
  pacing.opened();
  expect(await waitOf(pacing)).toBe('inline');
  pacing.opened();
  expect(await waitOf(pacing)).toBe('pooled');
  pacing.closed();
  expect(await waitOf(pacing)).toBe('inline');
});

it('counts a transaction that opens while the commit lets the event loop poll', async () => {
  const pacing = new CommitPacing();
  pacing.opened();
  // A request that was waiting in its socket: it gets read once the loop polls.
  setImmediate(() => pacing.opened());
  expect(await waitOf(pacing)).toBe('pooled');
});

it('uses the pool once commits are slow as a rule, not after one slow commit, and keeps errors', async () => {
  const pacing = new CommitPacing();
  pacing.opened();
  expect(await waitOf(pacing, 20)).toBe('inline');
  expect(await waitOf(pacing)).toBe('inline');
  await expect(pacing.run(async () => {
    await sleep(5);
    throw new Error('EIO');
  })).rejects.toThrow('EIO');
  for (let i = 0; i < 10; i++) await waitOf(pacing, 8);
  expect(await waitOf(pacing)).toBe('pooled');
});
