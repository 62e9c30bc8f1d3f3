/**
 * A read changes nothing on disk (issue 20): get-child-version (found and not found), the
 * snapshot and a GraphQL read of a client and its versions, served by a real `serve` under
 * strace, make no mkdir, rmdir, unlink, rename, link, utime, write or fsync under the data
 * directory and open nothing there for writing: no lock directory, no want marker. The server is
 * started on clients made by another server before, so the reads find nothing cached (the cold
 * path), then again at once (the cached path), then after the time an idle lock would linger.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it } from 'vitest';
import { httpRequest } from '../support/http-request.js';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { CLI, spawnServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const hasStrace = spawnSync('strace', ['-V']).status === 0;
const TOKEN = 'read-syscalls-admin';
let dir = '';
afterEach(() => removeDir(dir));

/** Calls that change a file system's names, contents or times. */
const CHANGING = ['mkdir', 'mkdirat', 'rmdir', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'symlink', 'symlinkat',
  'utime', 'utimes', 'utimensat', 'futimesat', 'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2', 'fsync', 'fdatasync', 'ftruncate', 'truncate'];
/** Opening, to tell a read from a write; `read` for the markers the test sends. */
const TRACED = [...CHANGING, 'open', 'openat', 'creat', 'read'];

/** What strace -f -y printed for one completed call (unfinished calls are joined with their rest). */
function callsOf(text: string): { name: string; args: string }[] {
  const pending = new Map<string, string>();
  const calls: { name: string; args: string }[] = [];
  for (const raw of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const [, pid, rest] = m as unknown as [string, string, string];
    if (rest.endsWith('<unfinished ...>')) {
      pending.set(pid, rest.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    const line = resumed ? (pending.get(pid) ?? '') + resumed[1] : rest;
    const call = /^(\w+)\((.*)\)\s+=\s+/.exec(line);
    if (call) calls.push({ name: call[1]!, args: call[2]! });
  }
  return calls;
}

it.skipIf(!hasStrace)('reads of a client make no write, lock or metadata change under the data directory, cold or cached', async () => {
  // On tmpfs where there is one, as commit-syscalls.test.ts: the calls are the same.
  dir = await mkdtemp('/dev/shm/tcsync-test-').catch(() => makeTempDir());
  const dataDir = path.join(dir, 'data');
  const args = ['--admin-token', TOKEN];

  // Clients made by one server, which then stops: it keeps no lock and the next one knows nothing.
  const setup = await spawnServer(dataDir, { args });
  const client = new ProtocolClient(setup.url);
  const versions = await client.addChain(NIL, 3);
  expect((await client.addSnapshot(versions[2]!, 'a snapshot')).status).toBe(200);
  await new ProtocolClient(setup.url).addChain(NIL, 1);
  await setup.stop();

  const log = path.join(dir, 'trace.log');
  const server = await spawnServer(dataDir, {
    args,
    command: ['strace', '-f', '-qq', '-y', '-o', log, '-e', `trace=${TRACED.join(',')}`, process.execPath, CLI],
    // libuv may route file operations through io_uring, which strace cannot see.
    env: { UV_USE_IO_URING: '0' },
  });
  const reader = new ProtocolClient(server.url, client.clientId);
  const graphql = () =>
    httpRequest(new URL('/graphql', server.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ query: `{ client(id: "${client.clientId}") { latestVersionId snapshot { versionId } versions(first: 10) { edges { node { id size } } } } }` }),
    });
  async function readAll(): Promise<void> {
    expect((await reader.getChildVersion(NIL)).status).toBe(200);
    expect((await reader.getChildVersion(versions[1]!)).headers['x-version-id']).toBe(versions[2]);
    expect((await reader.getChildVersion(versions[2]!)).status).toBe(404);
    const snapshot = await reader.getSnapshot();
    expect([snapshot.status, snapshot.text]).toEqual([200, 'a snapshot']);
    const answer = await graphql();
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text).data.client.versions.edges).toHaveLength(3);
  }
  try {
    // The markers are requests whose first bytes strace shows in the server's read(2).
    await httpRequest(new URL('/trace-begin', server.url).href);
    await readAll(); // nothing known
    await readAll(); // known
    await sleep(100); // past any lock's linger (25 ms), had one been taken
    await readAll();
    await httpRequest(new URL('/trace-end', server.url).href);
  } finally {
    // strace keeps running while its command does, and takes no SIGTERM: the server is told.
    const [pid] = spawnSync('pgrep', ['-P', String(server.child.pid)], { encoding: 'utf8' }).stdout.split('\n');
    if (pid) process.kill(Number(pid), 'SIGTERM');
    else server.child.kill('SIGKILL');
    await server.exited;
  }

  const calls = callsOf(await readFile(log, 'utf8'));
  const begin = calls.findIndex((c) => c.name === 'read' && c.args.includes('"GET /trace-begin'));
  const end = calls.findIndex((c) => c.name === 'read' && c.args.includes('"GET /trace-end'));
  expect(begin, 'the begin marker was traced').toBeGreaterThan(-1);
  expect(end).toBeGreaterThan(begin);
  const phase = calls.slice(begin, end).filter((c) => c.args.includes(dataDir));
  const opens = phase.filter((c) => c.name === 'open' || c.name === 'openat' || c.name === 'creat');
  const problems = phase.filter(
    (c) => CHANGING.includes(c.name) || c.name === 'creat' || (opens.includes(c) && /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(c.args)),
  );
  expect(problems.map((c) => `${c.name}(${c.args})`)).toEqual([]);
  // The reads were traced: they opened version files and the snapshot to read them.
  expect(opens.some((c) => c.args.includes('.version') || c.args.includes('.child'))).toBe(true);
  expect(opens.some((c) => c.args.includes('snapshot-'))).toBe(true);
}, 60_000);
