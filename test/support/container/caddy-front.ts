/**
 * Reaching tcsync through the compose files' Caddy as a client on the internet would: HTTPS to
 * the published port, for the host name Caddy was given (SNI and Host), trusting only the root
 * certificate of Caddy's internal CA (CADDY_GLOBAL_OPTIONS=local_certs: no ACME here). Node checks
 * the certificate against that root and the host name, so an answer proves both.
 */
import https from 'node:https';
import type { ComposeProject } from './compose-project.js';
import { podman } from './podman.js';
import type { Transport } from '../protocol-client.js';
import { httpRequest } from '../http-request.js';

/** The test's host name for Caddy's certificate. */
export const TEST_HOST = 'tasks.tcsync.test';

/** The variables compose.yaml and compose.postgres.yaml need, for Caddy on loopback ports. */
export function caddyEnvironment(httpPort: number, httpsPort: number): Record<string, string> {
  return {
    TCSYNC_HOST: TEST_HOST,
    CADDY_GLOBAL_OPTIONS: 'local_certs',
    HTTP_PORT: `127.0.0.1:${httpPort}`,
    HTTPS_PORT: `127.0.0.1:${httpsPort}`,
  };
}

/**
 * Waits until Caddy answers `GET /` from tcsync over verified HTTPS, and returns the transport
 * for more requests. The root certificate exists once Caddy has started its internal CA.
 */
export async function throughCaddy(project: ComposeProject, httpsPort: number, timeoutMs = 60_000): Promise<{ url: string; transport: Transport }> {
  const url = `https://127.0.0.1:${httpsPort}/`;
  const deadline = Date.now() + timeoutMs;
  for (let last = ''; ; await new Promise((resolve) => setTimeout(resolve, 250))) {
    if (Date.now() > deadline) throw new Error(`Caddy did not serve tcsync at ${url}: ${last}\n${await project.logs('caddy').catch(() => '')}`);
    try {
      const root = (await podman(['exec', project.container('caddy'), 'cat', '/data/caddy/pki/authorities/local/root.crt'])).stdout;
      const transport = { agent: new https.Agent({ ca: root, keepAlive: true }), headers: { Host: TEST_HOST } };
      const answer = await httpRequest(url, transport);
      if (answer.status === 200 && answer.text.startsWith('tcsync')) return { url, transport };
      last = `${answer.status} ${answer.text.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
  }
}
