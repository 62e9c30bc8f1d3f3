/**
 * When a commit may wait for the disk on the event loop (CommitPacing). Which threads really make
 * the calls is checked under strace in commit-syscalls.test.ts; this checks the choice.
 */
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { CommitPacing } from '../../src/storage/file/commit-pacing.js';
import type { Wait } from '../../src/storage/file/durable-fs.js';
import { removeDir } from '../support/temp-dir.js';

let dir = '';
afterEach(() => removeDir(dir));

/** A pacing on a clock the test moves: a commit takes exactly what it says, however loaded the machine. */
function clocked() {
  let now = 0;
  const pacing = new CommitPacing({ now: () => now });
  const commitTaking = (ms: number) =>
    pacing.run(async (wait: Wait) => {
      now += ms;
      return wait;
    });
  const failTaking = (ms: number) =>
    pacing.run(async () => {
      now += ms;
      throw new Error('EIO');
    });
  return { pacing, commitTaking, failTaking };
}

it('waits inline only while its transaction is the only one open', async () => {
  const { pacing, commitTaking } = clocked();
  pacing.opened();
  expect(await commitTaking(0)).toBe('inline');
  pacing.opened();
  expect(await commitTaking(0)).toBe('pooled');
  pacing.closed();
  expect(await commitTaking(0)).toBe('inline');
});

it('counts a transaction whose request arrives while the commit lets the event loop poll', async () => {
  // A commit runs in an I/O callback (the poll phase), like the one that read its request. A
  // request that arrives meanwhile is read in the next poll, and one setImmediate turn from the
  // poll phase ends in this loop iteration's check phase, before that poll: only a second turn
  // sees the request. Here it is data written to a Unix socket, which is in its peer's buffer by
  // the time write() returns, read by a 'data' handler that opens the transaction.
  dir = await mkdtemp(path.join(os.tmpdir(), 'tcsync-pacing-'));
  const { pacing, commitTaking } = clocked();
  pacing.opened();
  const server = net.createServer();
  const socketPath = path.join(dir, 'requests.sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const accepted = new Promise<void>((resolve) => {
    let connections = 0;
    server.on('connection', () => ++connections === 2 && resolve());
  });
  const committed = new Promise<Wait>((resolve) => {
    server.on('connection', (socket) =>
      socket.on('data', (data) => {
        if (data.toString() !== 'commit') {
          pacing.opened();
          return;
        }
        request.write('request');
        resolve(commitTaking(0));
      }),
    );
  });
  const connect = () => new Promise<net.Socket>((resolve) => {
    const socket = net.connect(socketPath, () => resolve(socket));
  });
  const [trigger, request] = await Promise.all([connect(), connect()]);
  await accepted;
  try {
    trigger.write('commit');
    expect(await committed).toBe('pooled');
  } finally {
    trigger.destroy();
    request.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

it('uses the pool once commits are slow as a rule, not after one slow commit, and times failed commits too', async () => {
  const { pacing, commitTaking, failTaking } = clocked();
  pacing.opened();
  // The moving average, in ms, after each commit: 2, then 1.8.
  expect(await commitTaking(20)).toBe('inline');
  expect(await commitTaking(0)).toBe('inline');
  // 2.12: a failed commit counts, and its error is what run() throws.
  await expect(failTaking(5)).rejects.toThrow('EIO');
  // 2.71, 3.24, 3.71, 4.14 (with the failed commit left out, 4.34 only after a fifth), then pooled.
  const waits: Wait[] = [];
  for (let i = 0; i < 8; i++) waits.push(await commitTaking(8));
  expect(waits).toEqual(['inline', 'inline', 'inline', 'inline', 'pooled', 'pooled', 'pooled', 'pooled']);
  // 5.47 after those; fast commits bring it to 4.92, 4.43, 3.99: back inline.
  waits.length = 0;
  for (let i = 0; i < 4; i++) waits.push(await commitTaking(0));
  expect(waits).toEqual(['pooled', 'pooled', 'pooled', 'inline']);
});
