/** `node dist/cli.js` as a user runs it: startup lines, exit codes, logs, signals. */
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../support/http-request.js';
import { HISTORY_SEGMENT, NIL, ProtocolClient } from '../support/protocol-client.js';
import { CLI, cleanEnv, spawnServer, type SpawnedServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dirs: string[] = [];
let servers: SpawnedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  await Promise.all(dirs.map(removeDir));
  dirs = [];
  servers = [];
});

async function tempDir(): Promise<string> {
  const dir = await makeTempDir();
  dirs.push(dir);
  return dir;
}

async function serve(dataDir: string, options: Parameters<typeof spawnServer>[1] = {}): Promise<SpawnedServer> {
  const server = await spawnServer(dataDir, options);
  servers.push(server);
  return server;
}

/** Runs the CLI to completion. */
function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('command line', () => {
  it('answers an unknown command with the usage and exit 2', async () => {
    const { code, stderr } = await runCli(['serv']);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown command "serv"');
    expect(stderr).toContain('usage: tcsync <command>');
  });

  it('answers no command with the usage and exit 2', async () => {
    const { code, stderr } = await runCli([]);
    expect(code).toBe(2);
    expect(stderr).toContain('usage: tcsync <command>');
  });

  it('documents every serve option and variable in --help, exit 0', async () => {
    const { code, stdout } = await runCli(['serve', '--help']);
    expect(code).toBe(0);
    for (const word of ['--data-dir', 'DATA_DIR', '--listen', 'LISTEN', '--allow-client-id', 'CLIENT_ID', '--no-create-clients', 'CREATE_CLIENTS',
      '--snapshot-versions', 'SNAPSHOT_VERSIONS', '--snapshot-days', 'SNAPSHOT_DAYS', '--admin-token', 'ADMIN_TOKEN', '--log-level',
      '--prune-days', 'PRUNE_DAYS', '--no-compact', 'COMPACT']) {
      expect(stdout).toContain(word);
    }
  });

  it.each([
    [['serve', '--listen', 'nowhere'], {}, '--listen'],
    [['serve', '--snapshot-days', 'soon'], {}, '--snapshot-days'],
    [['serve', '--prune-days', '-3'], {}, '--prune-days'],
    [['serve', '--bogus'], {}, 'bogus'],
    [['serve'], { CREATE_CLIENTS: 'perhaps' }, 'CREATE_CLIENTS'],
  ])('refuses %j %j with a clear message and exit 2, printing nothing on stdout', async (args, env, word) => {
    const { code, stdout, stderr } = await runCli(args, env as Record<string, string>);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(word);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 1 with a message when the address is taken', async () => {
    const dir = await tempDir();
    const first = await serve(dir);
    const { code, stderr } = await runCli(['serve', '--data-dir', dir, '--listen', first.url.slice('http://'.length)]);
    expect(code).toBe(1);
    expect(stderr).toContain('cannot listen');
  });

  it('exits 1 with a message when the data directory cannot be created', async () => {
    const { code, stdout, stderr } = await runCli(['serve', '--data-dir', '/proc/tcsync-cannot-exist', '--listen', '127.0.0.1:0']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('/proc/tcsync-cannot-exist');
  });
});

describe('serving', () => {
  let shared: SpawnedServer;
  let sharedDir = '';
  beforeAll(async () => {
    sharedDir = await makeTempDir();
    shared = await spawnServer(sharedDir, { args: ['--log-level', 'info'] });
  });
  afterAll(async () => {
    await shared.stop('SIGKILL');
    await removeDir(sharedDir);
  });

  it('creates the data dir, prints one "listening on" line per address with the real port, and serves each', async () => {
    const dataDir = path.join(await tempDir(), 'new', 'data');
    const server = await serve(dataDir, { args: ['--listen', '127.0.0.1:0', '--listen', 'localhost:0'], addresses: 2 });
    expect(server.urls).toHaveLength(2);
    expect(server.urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(server.urls[1]).toMatch(/^http:\/\/localhost:[1-9]\d*$/);
    for (const url of server.urls) expect((await httpRequest(`${url}/`)).status).toBe(200);
    expect((await stat(dataDir)).isDirectory()).toBe(true);
  });

  it('shows on /metrics how many clients the file storage remembers, and their bytes', async () => {
    const server = await serve(await tempDir());
    const gauge = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec((await httpRequest(`${server.url}/metrics`)).text)?.[1]);
    expect(await gauge('tcsync_storage_cached_clients')).toBe(0);
    for (let i = 0; i < 3; i++) {
      const c = new ProtocolClient(server.url);
      const [latest] = await c.addChain(NIL, 1);
      expect((await c.getChildVersion(latest!)).status).toBe(404);
    }
    expect(await gauge('tcsync_storage_cached_clients')).toBe(3);
    expect(await gauge('tcsync_storage_cached_client_bytes')).toBeGreaterThan(0);
  });

  it('listens on IPv6 addresses written in brackets', async (ctx) => {
    const probe = http.createServer();
    const ipv6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(0, '::1', () => probe.close(() => resolve(true)));
    });
    if (!ipv6) return ctx.skip();
    const server = await serve(await tempDir(), { args: ['--listen', '[::1]:0'] });
    expect(server.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await httpRequest(`${server.url}/`)).status).toBe(200);
  });

  it('takes its configuration from the environment', async () => {
    const server = await serve(await tempDir(), { env: { CREATE_CLIENTS: 'false', LISTEN: '127.0.0.1:0' }, args: [] });
    expect((await new ProtocolClient(server.url).addVersion(NIL, 'x')).status).toBe(404);
  });

  it('mounts GraphQL on /graphql', async () => {
    const answer = await httpRequest(`${shared.url}/graphql`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ data: { __typename: 'Query' } });
    expect(answer.headers['cache-control']).toBe('no-store, max-age=0');
  });

  it('logs one line per request on stderr with route template, status, time and an 8-character client id; 404 and 409 are not errors', async () => {
    const c = new ProtocolClient(shared.url);
    const [v1] = await c.addChain(NIL, 2);
    await c.addVersion(v1 as string, 'conflict');
    await c.getChildVersion('0f0f0f0f-0000-4000-8000-000000000000');
    await c.getSnapshot();
    const server = shared;
    await server.stop();
    const lines = server.stderr().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const requests = lines.filter((l) => l.msg === 'request' && String(l.route).startsWith('/v1/'));
    expect(requests.map((l) => [l.method, l.route, l.status])).toEqual([
      ['POST', '/v1/client/add-version/{parentVersionId}', 200],
      ['POST', '/v1/client/add-version/{parentVersionId}', 200],
      ['POST', '/v1/client/add-version/{parentVersionId}', 409],
      ['GET', '/v1/client/get-child-version/{parentVersionId}', 410],
      ['GET', '/v1/client/snapshot', 404],
    ]);
    for (const line of requests) {
      expect(line.level).toBe(30);
      expect(line.client).toBe(c.clientId.slice(0, 8));
      expect(typeof line.ms).toBe('number');
    }
    expect(server.stderr()).not.toContain(c.clientId);
  });
});

describe('stopping', () => {
  it('on SIGTERM finishes the request in flight, releases the locks and exits 0', async () => {
    const dataDir = await tempDir();
    const server = await serve(dataDir);
    const c = new ProtocolClient(server.url);
    const { port } = new URL(server.url);
    // A request whose body is still arriving when the signal comes.
    const inFlight = new Promise<{ status: number; version: string }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path: `/v1/client/add-version/${NIL}`, agent: false,
          headers: { 'Content-Type': HISTORY_SEGMENT, 'X-Client-Id': c.clientId, 'Content-Length': 10 } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, version: res.headers['x-version-id'] as string }));
        },
      );
      req.on('error', reject);
      req.write('first');
      setTimeout(() => req.end('-last'), 400);
    });
    await new Promise((r) => setTimeout(r, 150));
    const exited = server.stop('SIGTERM');
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(await exited).toBe(0);
    await expect(httpRequest(`${server.url}/`, { agent: false })).rejects.toThrow(/ECONNREFUSED/);

    // The data is there and no lock was left behind: a new server takes the client at once.
    const next = await serve(dataDir);
    const started = Date.now();
    expect(await new ProtocolClient(next.url, c.clientId).walk()).toEqual([answer.version]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('on SIGINT exits 0', async () => {
    const server = await serve(await tempDir());
    expect(await server.stop('SIGINT')).toBe(0);
  });

  it('keeps file descriptors for commits when flooded with connections: new ones wait, nothing fails with 500', async () => {
    // 3/4 of 400 descriptors for connections: 300; the flood opens 450.
    const server = await serve(await tempDir(), { fileLimit: 400 });
    const { port } = new URL(server.url);
    const flood = Array.from({ length: 450 }, () => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\n'));
      socket.on('error', () => undefined);
      return socket;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const open = flood.filter((s) => !s.destroyed && s.readyState === 'open');
    expect(open.length).toBeLessThanOrEqual(305);
    // Room for one more connection; its commit finds the descriptors it needs.
    open.slice(0, 5).forEach((s) => s.destroy());
    await new Promise((r) => setTimeout(r, 200));
    const answer = await new ProtocolClient(server.url).addVersion(NIL, 'after the flood');
    expect(answer.status).toBe(200);
    flood.forEach((s) => s.destroy());
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('on %s exits 0 even when whoever read its logs has gone (stderr a broken pipe)', async (signal) => {
    // As in `tcsync serve 2>&1 >log | head -1`: the reader of stderr exits, and the next log
    // line, the shutdown's, meets a broken pipe. The logger once retried that write for ever.
    const server = await serve(await tempDir(), { args: ['--log-level', 'info'] });
    server.child.stderr?.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const timeout = new Promise((r) => setTimeout(() => r('still running after 5 s'), 5000));
    expect(await Promise.race([server.stop(signal), timeout])).toBe(0);
  });
});
