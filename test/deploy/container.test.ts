/**
 * The container image, built from the repository's Dockerfile with podman (`docker build` here)
 * and run on its defaults: `podman run -p ... -v VOLUME:/data IMAGE` with nothing else.
 */
import { randomUUID } from 'node:crypto';
import { chown, mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerSet, type Started } from '../support/container/containers.js';
import { buildTcsyncImage, IMAGE_BUILD_TIMEOUT_MS, imageSize, NODE_BASE_IMAGE, removeImageTag } from '../support/container/images.js';
import { containersUnavailable, podman, podmanStatus, uniqueName } from '../support/container/podman.js';
import { NIL, ProtocolClient, HISTORY_SEGMENT } from '../support/protocol-client.js';
import { SmallFs, smallFsUnavailable } from '../support/small-fs.js';

const unavailable = (await containersUnavailable('the container image tests')) ?? smallFsUnavailable;
const MiB = 1024 * 1024;
/** The image's user: the official node image's `node`. */
const NODE_UID = 1000;

describe.skipIf(unavailable !== null)('the container image', () => {
  const image = `localhost/${uniqueName('image')}`;
  const set = new ContainerSet(image);
  let volume: string;
  let first: Started;
  const clientId = randomUUID();
  /** Every version the servers acknowledged, in order. */
  const acknowledged: string[] = [];

  beforeAll(async () => {
    await buildTcsyncImage(image);
    volume = set.volume('data');
    first = await set.start('serve', ['--volume', `${volume}:/data`]);
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await set.removeAll();
    await removeImageTag(image);
  }, 120_000);

  const clientOf = (server: Started) => new ProtocolClient(server.url, clientId);

  it('serves the sync protocol on its defaults', async () => {
    const replica = clientOf(first);
    acknowledged.push(...(await replica.addChain(NIL, 3)));
    expect(await replica.walk()).toEqual(acknowledged);
    expect((await replica.addSnapshot(acknowledged[2] as string, 'snapshot')).status).toBe(200);
    const snapshot = await replica.getSnapshot();
    expect([snapshot.status, snapshot.headers['x-version-id'], snapshot.text]).toEqual([200, acknowledged[2], 'snapshot']);
  });

  it('runs as a user other than root, who owns the files in the volume', async () => {
    const { stdout } = await podman([
      'exec', first.name, 'sh', '-c',
      `stat -c %u /proc/1; find /data/${clientId} -type f | wc -l; find /data ! -user node`,
    ]);
    const [processUid, clientFiles, ...notNodes] = stdout.trim().split('\n');
    expect(Number(processUid)).toBe(NODE_UID);
    expect(Number(clientFiles)).toBeGreaterThan(3);
    expect(notNodes).toEqual([]);
  });

  it('is healthy by podman healthcheck run', async () => {
    expect(await podmanStatus(['healthcheck', 'run', first.name])).toMatchObject({ code: 0 });
  });

  // A read-only volume cannot be served at all (serve refuses EROFS at start): the file system
  // under a running container is made read-only instead, a small ext4 bind-mounted as /data.
  it('is unhealthy once its data volume turns read-only', async () => {
    const fs = SmallFs.create(48);
    try {
      // A directory of its own: serve refuses a data directory holding ext4's lost+found.
      const data = path.join(fs.dir, 'data');
      await mkdir(data);
      await chown(data, NODE_UID, NODE_UID);
      const server = await set.start('read-only', ['--volume', `${data}:/data`]);
      expect(await podmanStatus(['healthcheck', 'run', server.name])).toMatchObject({ code: 0 });
      fs.remount('ro');
      const check = await podmanStatus(['healthcheck', 'run', server.name]);
      expect(check.code).not.toBe(0);
      expect(check.output).toContain('unhealthy');
      const health = (await podman(['inspect', '--format', '{{json .State.Health.Log}}', server.name])).stdout;
      expect(health).toContain('read-only file system');
      await set.remove(server.name);
    } finally {
      fs.destroy();
    }
  });

  it("takes serve's settings from environment variables, and its health check follows LISTEN", async () => {
    const allowed = randomUUID();
    const server = await set.start(
      'environment',
      ['--volume', `${set.volume('environment')}:/data`, '--env', `CLIENT_ID=${allowed}`, '--env', 'LISTEN=0.0.0.0:9090', '--env', 'SNAPSHOT_VERSIONS=1'],
      9090,
    );
    expect((await new ProtocolClient(server.url).addVersion(NIL, 'x')).status).toBe(403);
    const second = await new ProtocolClient(server.url, allowed).addChain(NIL, 2);
    // SNAPSHOT_VERSIONS=1: two versions without a snapshot are high urgency (the default asks at 100).
    const third = await new ProtocolClient(server.url, allowed).addVersion(second[1] as string, 'y');
    expect(third.headers['x-snapshot-request']).toBe('urgency=high');
    expect(await podmanStatus(['healthcheck', 'run', server.name])).toMatchObject({ code: 0 });
    await set.remove(server.name);
  });

  it('stops on SIGTERM (podman stop) with exit 0, after finishing a request in flight', async () => {
    const url = new URL(`v1/client/add-version/${acknowledged.at(-1)}`, first.url);
    const body = Buffer.from('the last version, sent in two halves');
    const request = http.request(url, {
      method: 'POST',
      agent: false,
      headers: { 'Content-Type': HISTORY_SEGMENT, 'Content-Length': body.length, 'X-Client-Id': clientId },
    });
    const answer = new Promise<{ status: number; version: string }>((resolve, reject) => {
      request.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, version: String(res.headers['x-version-id']) }));
      });
      request.on('error', reject);
    });
    request.write(body.subarray(0, 10));
    await headersDelivered(request);
    const started = Date.now();
    const stopped = podman(['stop', first.name], { timeoutMs: 30_000 });
    await until(async () => (await set.logs(first.name)).includes('shutting down'));
    request.end(body.subarray(10));
    const { status, version } = await answer;
    await stopped;
    expect(status).toBe(200);
    acknowledged.push(version);
    expect(await set.exitCode(first.name)).toBe(0);
    // Well within podman's 10 s before SIGKILL: tcsync stopped by itself.
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('serves, from a new container on the same volume, everything the first one acknowledged', async () => {
    const next = clientOf(await set.start('restart', ['--volume', `${volume}:/data`]));
    expect(await next.walk()).toEqual(acknowledged);
    expect((await next.getSnapshot()).text).toBe('snapshot');
  });

  it('runs verify and backup with podman run --rm on the volume', async () => {
    const verified = await set.once(['--volume', `${volume}:/data`], ['verify']);
    expect(verified).toMatchObject({ code: 0 });
    expect(verified.output).toContain('sound: 1 client, 4 versions');
    const backups = set.volume('backup');
    const backedUp = await set.once(['--volume', `${volume}:/data`, '--volume', `${backups}:/backup`], ['backup', '/backup/copy']);
    expect(backedUp).toMatchObject({ code: 0 });
    const copy = await set.once(['--volume', `${backups}:/backup`], ['verify', '--data-dir', '/backup/copy']);
    expect(copy.output).toContain('sound: 1 client, 4 versions');
  });

  it('holds no sources, tests, dev dependencies or compilers, and stays within 80 MiB of its base', async () => {
    const listing = await set.once(['--entrypoint', 'sh'], [
      '-c',
      'ls -A /app; ls -A /app/node_modules /app/node_modules/@types 2>&1; ' +
        // TypeScript sources of tcsync's own (some dependencies ship theirs, such as pg-protocol).
        'find /app -path /app/node_modules -prune -o -name "*.ts" -print; ' +
        'for c in cc gcc g++ make python3 tsc vitest; do command -v $c; done; true',
    ]);
    const entries = listing.output.split(/\s+/);
    expect(entries).toEqual(expect.arrayContaining(['dist', 'node_modules', 'package.json', 'better-sqlite3', 'pg']));
    for (const absent of ['src', 'test', 'tsconfig.json', 'typescript', 'vitest', 'playwright-core', 'undici', 'graphql-http', '@vitest']) {
      expect(entries).not.toContain(absent);
    }
    expect(listing.output).toContain("'/app/node_modules/@types': No such file or directory");
    expect(listing.output).not.toMatch(/\.ts$|\/bin\/(cc|gcc|g\+\+|make|python3|tsc|vitest)$/m);

    const [size, base] = [await imageSize(image), await imageSize(NODE_BASE_IMAGE)];
    console.log(`tcsync image: ${(size / MiB).toFixed(1)} MiB, ${((size - base) / MiB).toFixed(1)} MiB above the base image's ${(base / MiB).toFixed(1)} MiB`);
    expect(size - base).toBeLessThanOrEqual(80 * MiB);
  });
});

/**
 * Resolves once the request's headers and first bytes have gone out, and a moment more for the
 * server to have read them: the request is then in flight. (tcsync logs a request only when it
 * ends, so nothing in its log tells.)
 */
async function headersDelivered(request: http.ClientRequest): Promise<void> {
  await new Promise<void>((resolve) => request.once('socket', (socket) => (socket.connecting ? socket.once('connect', () => resolve()) : resolve())));
  await new Promise((resolve) => setTimeout(resolve, 500));
}

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await condition()); ) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
