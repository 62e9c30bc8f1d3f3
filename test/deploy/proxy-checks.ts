/** What every documented reverse proxy must do in front of tcsync, shared by nginx's and Caddy's tests. */
import https from 'node:https';
import net from 'node:net';
import { expect, it } from 'vitest';
import { httpRequest, type HttpAnswer } from '../support/http-request.js';
import { NIL, ProtocolClient } from '../support/protocol-client.js';

/** `count` distinct free ports: all held open together, since a port just closed may be handed out again. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => net.createServer());
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Waits until `url` answers at all; `failure` says why a proxy that exited or never answered did so. */
export async function untilAnswered(url: string, failure: () => Promise<string | null>): Promise<void> {
  for (let tries = 0; ; tries++) {
    const why = await failure();
    if (why !== null) throw new Error(why);
    if (await httpRequest(url).then(() => true, () => false)) return;
    if (tries > 100) throw new Error(`${url} did not answer`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A protocol session: what a replica does first, ending in a snapshot; each answer's status, media type and X-* headers. */
async function protocolSession(base: string): Promise<unknown[]> {
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

/** The checks, as tests of the calling describe; `where` gives tcsync's own URL and the proxy's https:// one once started. */
export function describeProxyChecks(where: () => { readonly direct: string; readonly proxy: string }): void {
  it.each(['/', '/tasks/'])('answers the protocol at %s over HTTPS as tcsync does directly', async (prefix) => {
    const { direct, proxy } = where();
    const answers = await protocolSession(direct);
    expect(answers.map((answer) => (answer as { status: number }).status)).toEqual([200, 409, 200, 404, 404, 200, 200, 400]);
    expect(await protocolSession(`${proxy}${prefix}`)).toEqual(answers);
  });

  it.each(['/graphql', '/tasks/graphql'])('loads GraphiQL at %s', async (pathname) => {
    const page = await httpRequest(`${where().proxy}${pathname}`, { headers: { Accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('GraphiQL');
  });

  it.each(['/metrics', '/tasks/metrics'])('serves %s to this machine only', async (pathname) => {
    const url = `${where().proxy}${pathname}`;
    const local = await httpRequest(url);
    expect(local.status).toBe(200);
    expect(local.text).toContain('# TYPE');
    // Another address on loopback stands for the world (the proxy is reached at 127.0.0.1).
    const remote = await httpRequest(url, { agent: new https.Agent({ rejectUnauthorized: false }), localAddress: '127.0.0.2' });
    expect(remote.status).toBe(403);
  });
}
