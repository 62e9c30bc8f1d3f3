/**
 * contrib/nginx/tcsync.conf in front of a spawned tcsync, over HTTPS with a throwaway self-signed
 * certificate: the documented file, changed only in its ports and certificate paths.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest, type HttpAnswer } from '../support/http-request.js';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { spawnServer, type SpawnedServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const run = promisify(execFile);
const NGINX = '/usr/sbin/nginx';
const CONFIG = fileURLToPath(new URL('../../contrib/nginx/tcsync.conf', import.meta.url));

const missing = (
  await Promise.all(
    [NGINX, '/usr/bin/openssl'].map((program) =>
      access(program).then(
        () => null,
        () => program,
      ),
    ),
  )
).filter((program) => program !== null);
const unavailable = missing.length === 0 ? null : `${missing.join(' and ')} missing (apt-get install nginx openssl)`;
if (unavailable !== null) {
  if (process.env.CI === 'true') throw new Error(`the reverse proxy tests must run on CI: ${unavailable}`);
  console.warn(`SKIPPED: nginx in front of tcsync (test/deploy/nginx.test.ts): ${unavailable}`);
}

/** `count` distinct free ports: all held open together, since a port just closed may be handed out again. */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => net.createServer());
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Replaces `from` by `to` where it occurs, and fails when the documented file no longer has it. */
function replaceAll(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`contrib/nginx/tcsync.conf no longer contains ${JSON.stringify(from)}`);
  return text.split(from).join(to);
}

let dir: string;
let tcsync: SpawnedServer;
let nginx: ChildProcess;
let proxy: string;
let plainPort: number;

describe.skipIf(unavailable !== null)('nginx with contrib/nginx/tcsync.conf', () => {
  beforeAll(async () => {
    dir = await makeTempDir('tcsync-nginx-');
    tcsync = await spawnServer(path.join(dir, 'data'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert]);
    const [http = 0, tls = 0] = await freePorts(2);
    plainPort = http;
    let site = await readFile(CONFIG, 'utf8');
    site = replaceAll(site, 'server 127.0.0.1:8080;', `server ${new URL(tcsync.url).host};`);
    site = replaceAll(site, 'listen 80;', `listen 127.0.0.1:${http};`);
    site = replaceAll(site, 'listen [::]:80;', `listen [::1]:${http};`);
    site = replaceAll(site, 'listen 443 ssl;', `listen 127.0.0.1:${tls} ssl;`);
    site = replaceAll(site, 'listen [::]:443 ssl;', `listen [::1]:${tls} ssl;`);
    site = replaceAll(site, '/etc/letsencrypt/live/tasks.example.org/fullchain.pem', cert);
    site = replaceAll(site, '/etc/letsencrypt/live/tasks.example.org/privkey.pem', key);
    await writeFile(path.join(dir, 'tcsync.conf'), site);
    // What Debian's /etc/nginx/nginx.conf would wrap the site in, kept inside the temporary prefix.
    await writeFile(
      path.join(dir, 'nginx.conf'),
      `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  include ${dir}/tcsync.conf;\n}\n`,
    );
    nginx = spawn(NGINX, ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    nginx.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    proxy = `https://127.0.0.1:${tls}`;
    for (let tries = 0; ; tries++) {
      if (nginx.exitCode !== null) throw new Error(`nginx exited with ${nginx.exitCode}: ${stderr}${await readFile(`${dir}/error.log`, 'utf8').catch(() => '')}`);
      const up = await httpRequest(`${proxy}/`).then(
        () => true,
        () => false,
      );
      if (up) break;
      if (tries > 100) throw new Error(`nginx did not answer: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  afterAll(async () => {
    if (nginx !== undefined && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx.once('exit', resolve));
      nginx.kill('SIGQUIT');
      await exited;
    }
    if (tcsync !== undefined) await tcsync.stop();
    if (dir !== undefined) await removeDir(dir);
  });

  /** A protocol session: what a replica does first, ending in a snapshot; each answer's status, media type and X-* headers. */
  async function session(base: string): Promise<unknown[]> {
    const client = new ProtocolClient(base);
    const answers: HttpAnswer[] = [];
    const add = async (answer: Promise<HttpAnswer>) => {
      answers.push(await answer);
      return answers.at(-1) as HttpAnswer;
    };
    const first = await add(client.addVersion(NIL, 'first'));
    const v1 = first.headers['x-version-id'] as string;
    await add(client.addVersion(NIL, 'conflict'));
    await add(client.getChildVersion(NIL));
    await add(client.getChildVersion(v1));
    await add(client.getSnapshot());
    await add(client.addSnapshot(v1, 'snapshot'));
    await add(client.getSnapshot());
    await add(new ProtocolClient(base, 'not-a-uuid').addVersion(NIL, 'x'));
    return answers.map((answer) => ({
      status: answer.status,
      type: answer.headers['content-type'],
      cache: answer.headers['cache-control'],
      // Names and their shape: the ids differ between the two sessions.
      x: Object.entries(answer.headers)
        .filter(([name]) => name.startsWith('x-'))
        .map(([name, value]) => [name, String(value).replace(/^[0-9a-f-]{36}$/, '<uuid>')])
        .sort(),
    }));
  }

  it.each(['/', '/tasks/'])('answers the protocol at %s over HTTPS as tcsync does directly', async (prefix) => {
    const direct = await session(tcsync.url);
    expect(direct.map((answer) => (answer as { status: number }).status)).toEqual([200, 409, 200, 404, 404, 200, 200, 400]);
    expect(await session(`${proxy}${prefix}`)).toEqual(direct);
  });

  it.each(['/', '/tasks/'])('refuses a body over 100 MiB at %s before it is sent', async (prefix) => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(`${proxy}${prefix}v1/client/add-version/${NIL}`, {
        method: 'POST',
        agent: false,
        rejectUnauthorized: false,
        headers: { 'X-Client-Id': randomUUID(), 'Content-Type': 'application/vnd.taskchampion.history-segment', 'Content-Length': 100 * 1024 * 1024 + 1 },
      });
      req.on('response', (res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write('x');
    });
    expect(status).toBe(413);
  });

  it.each(['/graphql', '/tasks/graphql'])('loads GraphiQL at %s', async (pathname) => {
    const page = await httpRequest(`${proxy}${pathname}`, { headers: { Accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('GraphiQL');
  });

  it.each(['/metrics', '/tasks/metrics'])('serves %s to this machine only', async (pathname) => {
    const local = await httpRequest(`${proxy}${pathname}`);
    expect(local.status).toBe(200);
    expect(local.text).toContain('# TYPE');
    // Another address on loopback stands for the world.
    const remote = await httpRequest(`${proxy}${pathname}`, { agent: new https.Agent({ rejectUnauthorized: false }), localAddress: '127.0.0.2' });
    expect(remote.status).toBe(403);
  });

  it('redirects plain HTTP to HTTPS', async () => {
    const answer = await httpRequest(`http://127.0.0.1:${plainPort}/v1/client/snapshot`);
    expect(answer.status).toBe(301);
    expect(answer.headers.location).toBe('https://127.0.0.1/v1/client/snapshot');
  });
});
