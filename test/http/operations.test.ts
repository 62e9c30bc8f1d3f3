/**
 * Everything around the protocol: Cache-Control on every answer, the banner, /healthz, /metrics,
 * the GraphQL mount, and faults answered with short texts and no stack.
 */
import { randomUUID } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TcsyncError, type ErrorCode } from '../../src/errors.js';
import type { ClientId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { dataDirHealth, ServerMetrics } from '../../src/http/index.js';
import { InMemoryStorage } from '../../src/storage/memory-storage.js';
import type { StorageTxn } from '../../src/storage/storage.js';
import { httpRequest } from '../support/http-request.js';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const CACHE_CONTROL = 'no-store, max-age=0';

/** In-memory storage whose transactions fail with a chosen code while `failWith` is set. */
class FaultyStorage extends InMemoryStorage {
  failWith: ErrorCode | null = null;

  override async txn(clientId: ClientId): Promise<StorageTxn> {
    if (this.failWith !== null) throw new TcsyncError(this.failWith, `injected ${this.failWith} at /secret/path/${clientId}`);
    return super.txn(clientId);
  }
}

describe('answers on every route', () => {
  let server: InProcessServer;
  const faulty = new FaultyStorage();
  beforeAll(async () => {
    server = await startInProcessServer({
      storage: faulty,
      graphql: async (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"data":{}}');
      },
    });
  });
  afterAll(() => server.close());
  afterEach(() => {
    faulty.failWith = null;
  });

  it('sends Cache-Control: no-store, max-age=0 on success, refusal, 404, 405, 410, 500 and GraphQL answers', async () => {
    const c = new ProtocolClient(server.url);
    const answers = [
      await c.addVersion(NIL, 'x'),
      await c.getChildVersion(NIL),
      await c.getChildVersion(randomUUID()),
      await c.getSnapshot(),
      await httpRequest(`${server.url}/`),
      await httpRequest(`${server.url}/healthz`),
      await httpRequest(`${server.url}/metrics`),
      await httpRequest(`${server.url}/no/such/path`),
      await httpRequest(`${server.url}/v1/client/snapshot`, { method: 'DELETE' }),
      await httpRequest(`${server.url}/v1/client/snapshot`),
      await httpRequest(`${server.url}/graphql`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' }),
      await httpRequest(`${server.url}/graphql/anything`),
    ];
    faulty.failWith = 'STORAGE_IO';
    answers.push(await c.getSnapshot());
    expect(answers.map((a) => a.status)).toEqual([200, 200, 410, 404, 200, 200, 200, 404, 405, 400, 200, 200, 500]);
    for (const answer of answers) expect(answer.headers['cache-control']).toBe(CACHE_CONTROL);
  });

  it.each(['STORAGE_IO', 'CORRUPT', 'UNSUPPORTED_FORMAT'] as const)('answers a %s fault with 500 and a short text', async (code) => {
    faulty.failWith = code;
    const answer = await new ProtocolClient(server.url).addVersion(NIL, 'x');
    expect(answer.status).toBe(500);
    expect(answer.text).toBe('storage error\n');
  });

  it.each(['LOCK_TIMEOUT', 'LOCK_LOST', 'TXN_STALE', 'OUT_OF_FILES'] as const)('answers %s, which passes and committed nothing, with 503 and Retry-After, without details', async (code) => {
    faulty.failWith = code;
    const answer = await new ProtocolClient(server.url).getChildVersion(NIL);
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('1');
    expect(answer.text).not.toMatch(/secret|at |\.ts|\.js/);
  });

  it('keeps answering after a fault', async () => {
    faulty.failWith = 'STORAGE_IO';
    await new ProtocolClient(server.url).getSnapshot();
    faulty.failWith = null;
    expect((await new ProtocolClient(server.url).addVersion(NIL, 'x')).status).toBe(200);
  });
});

describe('connections', () => {
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcessServer();
  });
  afterAll(() => server.close());

  /** Sends raw bytes on one connection and collects everything until the server closes it or `until` matches. */
  function raw(bytes: string, until: RegExp): Promise<string> {
    const { port } = new URL(server.url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(bytes));
      let received = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`timed out; got ${JSON.stringify(received)}`));
      }, 5000);
      socket.setEncoding('utf8').on('data', (s: string) => {
        received += s;
        if (until.test(received)) socket.end();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(received);
      });
    });
  }

  it('keeps a connection alive across requests', async () => {
    const c = new ProtocolClient(server.url);
    const get = `GET /v1/client/snapshot HTTP/1.1\r\nHost: x\r\nX-Client-Id: ${c.clientId}\r\n\r\n`;
    const received = await raw(get + get + get, /(HTTP\/1\.1 404[^]*){3}/);
    expect(received.match(/HTTP\/1\.1 404 /g)).toHaveLength(3);
    expect(received).not.toMatch(/Connection: close/i);
  });

  it('handles pipelined requests one at a time, so a client that reads no answers holds at most one', async () => {
    const c = new ProtocolClient(server.url);
    const big = 16 * 1024 * 1024; // more than the kernel's socket buffers on both ends take
    expect((await c.addVersion(NIL, Buffer.alloc(big, 7))).status).toBe(200);
    const transactions = async () =>
      (await server.metrics.lockWaitSeconds.get()).values.find((v) => v.metricName === 'tcsync_storage_lock_wait_seconds_count')?.value ?? 0;
    const before = await transactions();

    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    const get = `GET /v1/client/get-child-version/${NIL} HTTP/1.1\r\nHost: x\r\nX-Client-Id: ${c.clientId}\r\n\r\n`;
    socket.write(get.repeat(20));
    socket.pause();
    await new Promise((r) => setTimeout(r, 500));
    // Without the one-at-a-time rule Node starts all 20, and holds 20 answers of 16 MiB.
    expect((await transactions()) - before).toBeLessThanOrEqual(2);

    // Reading lets the rest through, in order, each answered in full.
    let received = 0;
    const answered = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= 20 * big) resolve();
      });
    });
    socket.resume();
    await answered;
    expect((await transactions()) - before).toBe(20);
    socket.destroy();
  });

  it('closes a connection on which nothing moves, such as one whose client stopped reading its answer', async () => {
    const quick = await startInProcessServer({ http: { socketIdleTimeoutMs: 300 } });
    try {
      const c = new ProtocolClient(quick.url);
      expect((await c.addVersion(NIL, Buffer.alloc(16 * 1024 * 1024, 7))).status).toBe(200);
      const { port } = new URL(quick.url);
      const socket = net.connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(`GET /v1/client/get-child-version/${NIL} HTTP/1.1\r\nHost: x\r\nX-Client-Id: ${c.clientId}\r\n\r\n`);
      socket.pause();
      await new Promise((r) => setTimeout(r, 1500));
      // By now the server has cut the connection: reading gets what the kernel held, not the answer.
      let received = 0;
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.resume();
      await closed;
      expect(received).toBeLessThan(16 * 1024 * 1024);
    } finally {
      await quick.close();
    }
  });

  it('answers a request it cannot parse with 400 and Cache-Control', async () => {
    const received = await raw('NOT HTTP AT ALL\r\n\r\n', /\r\n\r\n/);
    expect(received).toMatch(/^HTTP\/1\.1 400 /);
    expect(received).toContain(`Cache-Control: ${CACHE_CONTROL}\r\n`);
  });

  it.each(['CONNECT / HTTP/1.1', 'CONNECT localhost:80 HTTP/1.1'])('answers %j with 400 and Cache-Control, not a dropped connection', async (line) => {
    const received = await raw(`${line}\r\nHost: x\r\n\r\n`, /\r\n\r\n/);
    expect(received).toMatch(/^HTTP\/1\.1 400 /);
    expect(received).toContain(`Cache-Control: ${CACHE_CONTROL}\r\n`);
  });

  it('serves a request asking to upgrade the protocol as a plain request', async () => {
    const received = await raw('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', /\r\n\r\n[^]*\n/);
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toContain(`Cache-Control: ${CACHE_CONTROL}\r\n`);
  });
});

describe('without a GraphQL handler', () => {
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcessServer();
  });
  afterAll(() => server.close());

  it('answers /graphql with 404', async () => {
    const answer = await httpRequest(`${server.url}/graphql`);
    expect(answer.status).toBe(404);
    expect(answer.headers['cache-control']).toBe(CACHE_CONTROL);
  });
});

describe('/healthz', () => {
  let root = '';
  let server: InProcessServer;
  afterEach(async () => {
    await server?.close();
    await removeDir(root);
  });

  it('is 200 while the data directory takes durable writes and 503 once it does not', async () => {
    root = await makeTempDir();
    const dataDir = path.join(root, 'data');
    const storage = await FileStorage.open(dataDir);
    server = await startInProcessServer({ storage, health: dataDirHealth(dataDir) });
    const health = async () => (await httpRequest(`${server.url}/healthz`)).status;
    expect(await health()).toBe(200);

    // Root ignores permissions, so take the directory away: a file in its place cannot hold files.
    await rename(dataDir, `${dataDir}.away`);
    await writeFile(dataDir, 'not a directory');
    expect(await health()).toBe(503);
    await rm(dataDir);
    expect(await health()).toBe(503);

    await rename(`${dataDir}.away`, dataDir);
    expect(await health()).toBe(200);
  });
});

describe('/metrics', () => {
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcessServer();
  });
  afterAll(() => server.close());

  it('serves Prometheus text with requests by route template and status, latency, lock wait and commit figures', async () => {
    const c = new ProtocolClient(server.url);
    const [v1] = await c.addChain(NIL, 3);
    await c.addVersion(v1 as string, 'conflict');
    await c.getChildVersion(NIL);
    const answer = await httpRequest(`${server.url}/metrics`);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);

    const samples = parsePrometheusText(answer.text);
    const value = (name: string, labels: Record<string, string>) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    const addVersion = { method: 'POST', route: '/v1/client/add-version/{parentVersionId}' };
    expect(value('tcsync_http_requests_total', { ...addVersion, status: '200' })).toBe(3);
    expect(value('tcsync_http_requests_total', { ...addVersion, status: '409' })).toBe(1);
    expect(value('tcsync_http_request_duration_seconds_count', addVersion)).toBe(4);
    expect(value('tcsync_storage_commit_duration_seconds_count', { outcome: 'ok' })).toBe(3);
    expect(value('tcsync_storage_lock_wait_seconds_count', {})).toBeGreaterThanOrEqual(5);
    // Client ids are credentials: not even their short form may appear.
    expect(answer.text).not.toContain(c.clientId.slice(0, 8));
  });
});

describe('/metrics: stored totals', () => {
  it('adds up every client in the background, shows totals without client ids, and walks again only after the interval', async () => {
    const storage = new InMemoryStorage();
    const metrics = new ServerMetrics({ processMetrics: false });
    metrics.watchUsage(storage, { intervalMs: 60_000 });
    const server = await startInProcessServer({ storage, metrics });
    try {
      const a = new ProtocolClient(server.url);
      const b = new ProtocolClient(server.url);
      const chainA = await a.addChain(NIL, 3);
      await b.addChain(NIL, 2);
      const scrape = async () => parsePrometheusText((await httpRequest(`${server.url}/metrics`)).text);
      const value = (samples: Sample[], name: string) => samples.find((s) => s.name === name)?.value;

      // The first scrape starts the walk; until it ends there are no totals, and the time is 0.
      const first = await scrape();
      expect(value(first, 'tcsync_storage_bytes')).toBeUndefined();
      let samples = first;
      for (let i = 0; i < 100 && value(samples, 'tcsync_storage_bytes') === undefined; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        samples = await scrape();
      }
      const bytes = (await storage.clientUsage(a.clientId as ClientId))!.bytes + (await storage.clientUsage(b.clientId as ClientId))!.bytes;
      expect(value(samples, 'tcsync_storage_clients')).toBe(2);
      expect(value(samples, 'tcsync_storage_versions')).toBe(5);
      expect(value(samples, 'tcsync_storage_bytes')).toBe(bytes);
      expect(value(samples, 'tcsync_storage_usage_timestamp_seconds')).toBeGreaterThan(0);
      const text = (await httpRequest(`${server.url}/metrics`)).text;
      for (const id of [a.clientId, b.clientId]) expect(text).not.toContain(id.slice(0, 8));

      // Within the interval a scrape serves the same totals: no walk per scrape.
      expect((await a.addVersion(chainA.at(-1)!, 'one more')).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(value(await scrape(), 'tcsync_storage_versions')).toBe(5);
    } finally {
      await metrics.stop();
      await server.close();
    }
  });
});

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** A strict reader of the Prometheus text exposition format (0.0.4): throws on any line it does not know. */
function parsePrometheusText(text: string): Sample[] {
  expect(text.endsWith('\n')).toBe(true);
  const samples: Sample[] = [];
  const typed = new Map<string, string>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3]);
        typed.set(meta[2] as string, meta[3] as string);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|NaN|\+Inf|-Inf))(?: \d+)?$/.exec(line);
    if (!sample) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const labelText = sample[2] ?? '';
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    let consumed = 0;
    for (const m of labelText.matchAll(labelPattern)) {
      labels[m[1] as string] = m[2] as string;
      consumed += m[0].length;
    }
    if (consumed !== labelText.length) throw new Error(`bad labels: ${JSON.stringify(line)}`);
    const name = sample[1] as string;
    const family = name.replace(/_(bucket|sum|count)$/, '');
    if (!typed.has(name) && !typed.has(family)) throw new Error(`sample without TYPE: ${name}`);
    samples.push({ name, labels, value: Number(sample[3]) });
  }
  return samples;
}
