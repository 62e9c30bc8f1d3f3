/**
 * contrib/nginx/tcsync.conf in front of a spawned tcsync, over HTTPS with a throwaway self-signed
 * certificate: the documented file, changed only in its ports and certificate paths.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../support/http-request.js';
import { NIL } from '../support/protocol-client.js';
import { spawnServer, type SpawnedServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';
import { describeProxyChecks, freePorts, untilAnswered } from './proxy-checks.js';

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
    const log = async () => `${stderr}${await readFile(`${dir}/error.log`, 'utf8').catch(() => '')}`;
    await untilAnswered(`${proxy}/`, async () => (nginx.exitCode === null ? null : `nginx exited with ${nginx.exitCode}: ${await log()}`));
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

  describeProxyChecks(() => ({ direct: tcsync.url, proxy }));

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

  it('redirects plain HTTP to HTTPS', async () => {
    const answer = await httpRequest(`http://127.0.0.1:${plainPort}/v1/client/snapshot`);
    expect(answer.status).toBe(301);
    expect(answer.headers.location).toBe('https://127.0.0.1/v1/client/snapshot');
  });
});
