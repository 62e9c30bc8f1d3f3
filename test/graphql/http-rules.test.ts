/**
 * GraphQL over HTTP as tcsync serves it: JSON POSTs only (CSRF-safe), GET for queries only,
 * bodies up to 16 MiB, no caching, no batching, no cross-origin reads.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LIMITS } from '../../src/graphql/limits.js';
import { BodyBudget } from '../../src/http/body-budget.js';
import { NIL_VERSION_ID, parseClientId } from '../../src/ids.js';
import { expectData } from './support/expect-error.js';
import { startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { NIL, newClientId } from './support/ops.js';

let server: TestServer;
beforeAll(async () => {
  server = await startGraphqlServer();
});
afterAll(() => server.close());

const QUERY = '{ server { version } }';
const post = (body: BodyInit, headers: Record<string, string>) => fetch(server.url, { method: 'POST', headers, body });

describe('POST', () => {
  test.each([
    'application/json',
    'application/json; charset=utf-8',
    // Media types are case-insensitive (RFC 9110); yoga's parser is not, the handler spells it for it.
    'APPLICATION/JSON',
    'Application/Json; charset=utf-8',
    'application/json ; charset=UTF-8',
  ])('with Content-Type %s is served', async (contentType) => {
    const res = await post(JSON.stringify({ query: QUERY }), { 'content-type': contentType });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/(graphql-response\+)?json/);
    expect((await res.json()).data.server.version).toEqual(expect.any(String));
  });

  test('a mutation with an upper-case JSON Content-Type runs', async () => {
    const id = newClientId();
    const res = await post(JSON.stringify({ query: `mutation { createClient(id: "${id}") { id } }` }), { 'content-type': 'APPLICATION/JSON' });
    expect((await res.json()).data.createClient.id).toBe(id);
  });

  test.each([
    ['application/x-www-form-urlencoded', `query=${encodeURIComponent(QUERY)}`],
    ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: QUERY })}\r\n--x--\r\n`],
    ['text/plain', JSON.stringify({ query: QUERY })],
    ['application/graphql', QUERY],
    ['application/graphql+json', JSON.stringify({ query: QUERY })],
    ['application/jsonx', JSON.stringify({ query: QUERY })],
    ['TEXT/PLAIN', JSON.stringify({ query: QUERY })],
    ['Application/X-WWW-Form-Urlencoded', `query=${encodeURIComponent(QUERY)}`],
    ['application/json, text/plain', JSON.stringify({ query: QUERY })],
  ])('with Content-Type %s is refused with 415', async (contentType, body) => {
    const res = await post(body, { 'content-type': contentType });
    expect(res.status).toBe(415);
    expect((await res.json()).errors[0].extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  test('without a Content-Type is refused with 415', async () => {
    const res = await fetch(server.url, { method: 'POST', body: new Uint8Array(Buffer.from(JSON.stringify({ query: QUERY }))) });
    expect(res.status).toBe(415);
  });

  test('a mutation from a form cannot run: nothing is created', async () => {
    const id = newClientId();
    const mutation = `mutation { createClient(id: "${id}") { id } }`;
    expect((await post(`query=${encodeURIComponent(mutation)}`, { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect(expectData(await server.gql(`{ client(id: "${id}") { id } }`)).client).toBeNull();
  });

  test('a batch (JSON array) is refused with 400', async () => {
    const res = await post(JSON.stringify([{ query: QUERY }, { query: QUERY }]), { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
  });
});

describe('GET', () => {
  test('runs a query', async () => {
    const res = await fetch(`${server.url}?query=${encodeURIComponent(QUERY)}`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect((await res.json()).data.server.version).toEqual(expect.any(String));
  });

  test.each([
    ['variables', 'notjson'],
    ['variables', '{'],
    ['extensions', 'bad'],
  ])('with %s=%s that is not JSON is 400 BAD_REQUEST, like a POST body that is not JSON', async (name, value) => {
    const res = await fetch(`${server.url}?query=${encodeURIComponent(QUERY)}&${name}=${encodeURIComponent(value)}`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('cache-control')).toBe('no-store, max-age=0');
    const error = (await res.json()).errors[0];
    expect(error.extensions).toEqual({ code: 'BAD_REQUEST' });
    expect(error.message).toContain(name);
    const badPost = await post('{', { 'content-type': 'application/json' });
    expect(badPost.status).toBe(400);
    expect((await badPost.json()).errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  test('refuses a mutation with 405 and runs nothing', async () => {
    const id = newClientId();
    const mutation = `mutation { createClient(id: "${id}") { id } }`;
    const res = await fetch(`${server.url}?query=${encodeURIComponent(mutation)}`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toMatch(/POST/);
    expect(expectData(await server.gql(`{ client(id: "${id}") { id } }`)).client).toBeNull();
  });
});

describe('hostile or broken requests', () => {
  test('a client that goes away mid-body leaves the server serving', async () => {
    await new Promise<void>((resolve) => {
      const req = request(server.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '100000' } });
      req.on('error', () => resolve());
      req.write('{"query":"{ server { version } }", "pad": "', () => setTimeout(() => {
        req.destroy();
        resolve();
      }, 50));
    });
    expectData(await server.gql(QUERY));
  });

  test('a Host header that is not a host name does not matter', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ query: QUERY });
      const req = request(server.url, { method: 'POST', headers: { host: 'evil/../[x', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(200);
  });
});

describe('headers', () => {
  test('every answer says Cache-Control: no-store, max-age=0', async () => {
    const answers = [
      await post(JSON.stringify({ query: QUERY }), { 'content-type': 'application/json' }),
      await post('x', { 'content-type': 'text/plain' }),
      await fetch(`${server.url}?query=${encodeURIComponent('mutation { deleteClient(id: "0") }')}`),
      await fetch(server.url, { headers: { accept: 'text/html' } }),
    ];
    for (const res of answers) expect(res.headers.get('cache-control')).toBe('no-store, max-age=0');
  });

  test('no CORS headers: a page on another origin cannot read answers', async () => {
    const preflight = await fetch(server.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const res = await post(JSON.stringify({ query: QUERY }), { 'content-type': 'application/json', origin: 'https://evil.example' });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('body size', () => {
  /** A JSON addVersion request of exactly `size` bytes. */
  function addVersionBody(size: number): Buffer {
    const template = (segment: string) =>
      JSON.stringify({
        query: 'mutation($c: UUID!, $p: UUID!, $s: Base64!) { addVersion(clientId: $c, parentVersionId: $p, historySegment: $s) { __typename ... on VersionAdded { version { size } } } }',
        variables: { c: newClientId(), p: NIL, s: segment },
      });
    const overhead = Buffer.byteLength(template(''));
    const base64Length = Math.floor((size - overhead) / 4) * 4;
    // Pad with spaces outside the JSON value to hit the exact size.
    const json = template('A'.repeat(base64Length));
    return Buffer.concat([Buffer.from(json), Buffer.alloc(size - json.length, ' ')]);
  }

  test('exactly 16 MiB is accepted', async () => {
    const body = addVersionBody(LIMITS.maxBodyBytes);
    expect(body.length).toBe(16 * 1024 * 1024);
    const res = await post(new Uint8Array(body), { 'content-type': 'application/json' });
    const json = await res.json();
    expect(res.status, JSON.stringify(json).slice(0, 500)).toBe(200);
    expect(json.errors).toBeUndefined();
    expect(json.data.addVersion.version.size).toBeGreaterThan(12_000_000);
  });

  test('16 MiB + 1 byte is refused with 413', async () => {
    const res = await post(new Uint8Array(addVersionBody(LIMITS.maxBodyBytes + 1)), { 'content-type': 'application/json' });
    expect(res.status).toBe(413);
  });

  test('a chunked body without Content-Length is cut off at 16 MiB with 413', async () => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 20) return controller.close();
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });

  test('a Content-Length above the cap is answered with 413 before the body is sent', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(server.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(1024 ** 3) } }, (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        req.destroy();
      });
      req.on('error', reject);
      req.write('{"query":');
    });
    expect(status).toBe(413);
  });
});

describe('the budget for bodies held in memory, shared with the sync protocol', () => {
  test('a body that does not fit is refused with 503, Retry-After and SERVICE_UNAVAILABLE, and its bytes come back', async () => {
    const budget = new BodyBudget(700); // a GraphQL body costs four times its size
    const small = await startGraphqlServer({ bodyBudget: budget });
    try {
      const fits = await fetch(small.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: QUERY }) });
      expect(fits.status).toBe(200);
      const res = await fetch(small.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: QUERY, variables: { pad: 'x'.repeat(200) } }) });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.headers.get('cache-control')).toBe('no-store, max-age=0');
      expect((await res.json()).errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
      expect(budget.held).toBe(0);

      // An answer counts too, until the client has taken it: the request takes about 520 bytes
      // of the 700, so a 20-byte segment's answer fits and a 750-byte one's does not.
      const page = (id: string) =>
        fetch(small.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: `{ client(id: "${id}") { versions(first: 1) { edges { node { historySegment } } } } }` }),
        });
      const [smallId, bigId] = [newClientId(), newClientId()];
      await small.sync.addVersion(parseClientId(smallId), NIL_VERSION_ID, new Uint8Array(20).fill(1));
      await small.sync.addVersion(parseClientId(bigId), NIL_VERSION_ID, new Uint8Array(750).fill(1));
      const fine = await page(smallId);
      expect(fine.status).toBe(200);
      expect((await fine.json()).data.client.versions.edges).toHaveLength(1);
      const big = await page(bigId);
      expect(big.status).toBe(503);
      expect((await big.json()).errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
      expect(budget.held).toBe(0);
    } finally {
      await small.close();
    }
  });
});
