/**
 * compose.yaml as a user runs it: `podman-compose up` (docker compose here) of tcsync on a named
 * volume behind Caddy. No registry is reachable: Caddy's pinned tag is a stand-in built from
 * Debian's caddy (test/support/container/stand-ins/caddy), and tcsync's image is built from the
 * Dockerfile first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../support/http-request.js';
import { caddyEnvironment, throughCaddy } from '../support/container/caddy-front.js';
import { ComposeProject } from '../support/container/compose-project.js';
import { buildTcsyncImage, ensureComposeStandIns, IMAGE_BUILD_TIMEOUT_MS, removeImageTag } from '../support/container/images.js';
import { containersUnavailable, uniqueName } from '../support/container/podman.js';
import { NIL, ProtocolClient, type Transport } from '../support/protocol-client.js';
import { freePorts } from './proxy-checks.js';

const unavailable = await containersUnavailable('the compose.yaml tests', ['caddy']);

describe.skipIf(unavailable !== null)('compose.yaml', () => {
  const image = `localhost/${uniqueName('image')}`;
  let project: ComposeProject;
  let httpsPort: number;
  let front: { url: string; transport: Transport };

  beforeAll(async () => {
    await buildTcsyncImage(image);
    await ensureComposeStandIns({ postgres: false });
    const [httpPort, port] = (await freePorts(2)) as [number, number];
    httpsPort = port;
    project = new ComposeProject('compose.yaml', { ...caddyEnvironment(httpPort, httpsPort), TCSYNC_IMAGE: image });
    await project.up();
    front = await throughCaddy(project, httpsPort);
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await project?.destroy();
    await removeImageTag(image);
  }, 120_000);

  let client: ProtocolClient;
  let versions: string[];

  it("reaches tcsync over HTTPS with a certificate from Caddy's internal CA, at / and /tasks/", async () => {
    client = new ProtocolClient(front.url, undefined, front.transport);
    versions = await client.addChain(NIL, 2);
    expect(await client.walk()).toEqual(versions);
    const underTasks = new ProtocolClient(`${front.url}tasks/`, client.clientId, front.transport);
    expect(await underTasks.walk()).toEqual(versions);
  });

  it('keeps /metrics from the internet', async () => {
    expect((await httpRequest(`${front.url}metrics`, front.transport)).status).toBe(403);
  });

  it('keeps the data across down and up', async () => {
    await project.down();
    await project.up();
    const again = await throughCaddy(project, httpsPort);
    expect(await new ProtocolClient(again.url, client.clientId, again.transport).walk()).toEqual(versions);
  });
});
