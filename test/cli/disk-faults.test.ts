/**
 * `tcsync serve` on a real small ext4 file system that fills up or turns read-only while it
 * serves: writes are refused with 503 + Retry-After (GraphQL: their own codes), reads go on,
 * /healthz says why before commits start to fail, the log says it once, and service resumes
 * without a restart.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADD_VERSION, NIL } from '../graphql/support/ops.js';
import { httpRequest } from '../support/http-request.js';
import { ProtocolClient } from '../support/protocol-client.js';
import { SmallFs, smallFsUnavailable } from '../support/small-fs.js';
import { CLI, spawnServer, type SpawnedServer } from '../support/spawn-server.js';

const MiB = 1024 * 1024;
let fs: SmallFs;
let dataDir: string;
let server: SpawnedServer;

const health = async () => {
  const answer = await httpRequest(`${server.url}/healthz`);
  return `${answer.status} ${answer.text.trim()}`;
};

async function graphqlAddVersion(clientId: string, parent: string) {
  const answer = await httpRequest(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query: ADD_VERSION, variables: { clientId, parent, segment: Buffer.from('x').toString('base64') } }),
  });
  return JSON.parse(answer.text) as { data: unknown; errors?: Array<{ message: string; extensions: { code: string } }> };
}

const logLines = (pattern: RegExp) => server.stderr().split('\n').filter((line) => pattern.test(line));

describe.skipIf(smallFsUnavailable !== null)('serve on a small real file system', () => {
  beforeEach(async () => {
    fs = SmallFs.create(48);
    dataDir = path.join(fs.dir, 'data');
    server = await spawnServer(dataDir, { args: ['--log-level', 'info'] });
  });
  afterEach(async () => {
    await server.stop();
    fs.destroy();
  });

  it('on a full disk refuses writes with 503 + Retry-After, keeps serving reads, logs it once, and resumes when space returns', async () => {
    const c = new ProtocolClient(server.url);
    const ids = await c.addChain(NIL, 3);
    expect((await c.addSnapshot(ids[2] as string, 'snapshot')).status).toBe(200);
    expect(await health()).toBe('200 ok');

    fs.leaveFree(0);
    expect(await health()).toBe('503 disk full');
    for (let i = 0; i < 3; i++) {
      const refused = await c.addVersion(ids[2] as string, `more ${i}`);
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBeDefined();
      expect(refused.text).toContain('disk full');
    }
    const viaGraphql = await graphqlAddVersion(c.clientId, ids[2] as string);
    expect(viaGraphql.errors?.[0]?.extensions.code).toBe('STORAGE_FULL');

    expect(await c.walk()).toEqual(ids);
    const snapshot = await c.getSnapshot();
    expect([snapshot.status, snapshot.text]).toEqual([200, 'snapshot']);
    expect(logLines(/commits: disk full/)).toHaveLength(1);

    fs.release();
    expect((await c.addVersion(ids[2] as string, 'after')).status).toBe(200);
    expect(await health()).toBe('200 ok');
    expect(logLines(/commits: disk full is over/)).toHaveLength(1);
  });

  it('has /healthz say "disk full" below the reserve, before commits start to fail', async () => {
    const c = new ProtocolClient(server.url);
    fs.leaveFree(4 * MiB);
    expect(await health()).toBe('503 disk full');
    expect((await c.addVersion(NIL, 'still fits')).status).toBe(200);
    expect(logLines(/health check: disk full/)).toHaveLength(1);
  });

  it('on a read-only remount refuses writes with 503, serves reads, and writes again once read-write', async () => {
    const c = new ProtocolClient(server.url);
    const ids = await c.addChain(NIL, 2);
    // Past the lock's linger (25 ms): a lock directory left behind by the remount would be
    // waited for until it is stale (8 s) before reads go on without it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    fs.remount('ro');
    expect(await health()).toBe('503 read-only file system');
    const refused = await c.addVersion(ids[1] as string, 'refused');
    expect([refused.status, refused.text.trim()]).toEqual([503, 'storage is read-only, retry later']);
    expect((await graphqlAddVersion(c.clientId, ids[1] as string)).errors?.[0]?.extensions.code).toBe('STORAGE_READ_ONLY');
    expect(await c.walk()).toEqual(ids);

    fs.remount('rw');
    expect((await c.addVersion(ids[1] as string, 'accepted')).status).toBe(200);
    expect(await health()).toBe('200 ok');
  });

  it('lets tcsync verify check a read-only copy', async () => {
    await new ProtocolClient(server.url).addChain(NIL, 3);
    expect(await server.stop()).toBe(0);
    fs.remount('ro');
    const run = spawnSync(process.execPath, [CLI, 'verify', '--data-dir', dataDir], { encoding: 'utf8' });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    fs.remount('rw');
  });
});
