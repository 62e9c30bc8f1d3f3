/**
 * compose.postgres.yaml as a user runs it: PostgreSQL, two tcsync replicas on it, Caddy taking
 * turns between them. No registry is reachable: the pinned postgres and caddy tags are stand-ins
 * built from Debian's packages (test/support/container/stand-ins), run as the compose file says;
 * tcsync's image is built from the Dockerfile first. An override publishes each replica's port on
 * loopback, so that the test can talk to one replica and then the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caddyEnvironment, throughCaddy } from '../support/container/caddy-front.js';
import { ComposeProject } from '../support/container/compose-project.js';
import { buildTcsyncImage, ensureComposeStandIns, IMAGE_BUILD_TIMEOUT_MS, removeImageTag } from '../support/container/images.js';
import { containersUnavailable, uniqueName } from '../support/container/podman.js';
import { NIL, ProtocolClient, type Transport } from '../support/protocol-client.js';
import { httpRequest } from '../support/http-request.js';
import { freePorts } from './proxy-checks.js';

const unavailable = await containersUnavailable('the compose.postgres.yaml tests', ['caddy']);
const REPLICAS = ['tcsync-1', 'tcsync-2'] as const;

describe.skipIf(unavailable !== null)('compose.postgres.yaml', () => {
  const image = `localhost/${uniqueName('image')}`;
  let project: ComposeProject;
  let httpsPort: number;
  let front: { url: string; transport: Transport };
  /** Each replica's own http://127.0.0.1:PORT/. */
  let direct: string[];

  /** Up, and every replica and Caddy answering (a replica may restart until PostgreSQL is ready). */
  async function upAndAnswering(): Promise<void> {
    await project.up();
    for (const url of direct) await untilServing(url);
    front = await throughCaddy(project, httpsPort);
  }

  /** The sync protocol requests a replica has logged. */
  async function syncRequests(replica: string): Promise<number> {
    return (await project.logs(replica)).split('\n').filter((line) => line.includes('"route":"/v1/client/')).length;
  }

  beforeAll(async () => {
    await buildTcsyncImage(image);
    await ensureComposeStandIns({ postgres: true });
    const [httpPort, port, ...replicaPorts] = (await freePorts(2 + REPLICAS.length)) as number[];
    httpsPort = port as number;
    direct = replicaPorts.map((replicaPort) => `http://127.0.0.1:${replicaPort}/`);
    project = new ComposeProject('compose.postgres.yaml', {
      ...caddyEnvironment(httpPort as number, httpsPort),
      TCSYNC_IMAGE: image,
      POSTGRES_PASSWORD: uniqueName('password'),
    });
    await project.override({
      services: Object.fromEntries(REPLICAS.map((service, i) => [service, { ports: [`127.0.0.1:${replicaPorts[i]}:8080`] }])),
    });
    await upAndAnswering();
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await project?.destroy();
    await removeImageTag(image);
  }, 120_000);

  let clientId: string;
  let versions: string[];

  it('reads through one replica the versions added through the other', async () => {
    const first = new ProtocolClient(direct[0] as string);
    clientId = first.clientId;
    const other = new ProtocolClient(direct[1] as string, clientId);
    versions = await first.addChain(NIL, 2);
    expect(await other.walk()).toEqual(versions);
    // A conflict is the other replica's answer too: the two share one history.
    expect((await other.addVersion(NIL, 'late')).status).toBe(409);
    versions.push(...(await other.addChain(versions.at(-1) as string, 1)));
    expect(await first.walk()).toEqual(versions);
  });

  it('answers through Caddy, which spreads requests over both replicas', { timeout: 60_000 }, async () => {
    const before = await Promise.all(REPLICAS.map((replica) => syncRequests(replica)));
    const client = new ProtocolClient(front.url, clientId, front.transport);
    // Caddy leaves out a replica whose health check failed (one that was still waiting for
    // PostgreSQL when Caddy started) until its next check passes, 10 s later: a few rounds.
    let reached: boolean[] = [];
    for (const deadline = Date.now() + 35_000; !reached.every(Boolean) || reached.length === 0; ) {
      expect(await client.walk()).toEqual(versions);
      const now = await Promise.all(REPLICAS.map((replica) => syncRequests(replica)));
      reached = now.map((count, i) => count > (before[i] as number));
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(reached).toEqual(REPLICAS.map(() => true));
  });

  it('keeps the data across down and up', async () => {
    await project.down();
    await upAndAnswering();
    expect(await new ProtocolClient(front.url, clientId, front.transport).walk()).toEqual(versions);
  });
});

/** Waits for tcsync's `GET /` at `url`: a replica that found no database yet exits and is restarted. */
async function untilServing(url: string, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; await new Promise((resolve) => setTimeout(resolve, 250))) {
    const answer = await httpRequest(url, { agent: false }).catch(() => null);
    if (answer?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} did not serve within ${timeoutMs} ms`);
  }
}
