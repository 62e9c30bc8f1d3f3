/**
 * When a commit may wait for the disk on the event loop (CommitPacing). Which threads really make
 * the calls is checked under strace in commit-syscalls.test.ts; this checks the choice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { CommitPacing } from '../../src/storage/file/commit-pacing.js';
import type { Wait } from '../../src/storage/file/durable-fs.js';

const waitOf = (pacing: CommitPacing, work: () => Promise<void> = async () => undefined) =>
  pacing.run(async (wait: Wait) => {
    await work();
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

it('uses the pool after an inline commit was slow, and keeps its error', async () => {
  const pacing = new CommitPacing();
  pacing.opened();
  await expect(pacing.run(async () => {
    await sleep(20);
    throw new Error('EIO');
  })).rejects.toThrow('EIO');
  expect(await waitOf(pacing)).toBe('pooled');
});
