/**
 * The checks before a transaction, in the reference server's order: path id (404), content type
 * (400), X-Client-Id (400), allow-list (403), body (400); ids in every spelling upstream accepts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, parseClientId } from '../../src/ids.js';
import { withTxn } from '../../src/storage/storage.js';
import { httpRequest } from '../support/http-request.js';
import { HISTORY_SEGMENT, NIL, ProtocolClient, SNAPSHOT } from '../support/protocol-client.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';

const ALLOWED = '7b7f1f9a-3c1e-4d57-9a43-1f0a2b3c4d5e';
let open: InProcessServer;
let allowList: InProcessServer;
let noCreate: InProcessServer;

beforeAll(async () => {
  [open, allowList, noCreate] = await Promise.all([
    startInProcessServer(),
    startInProcessServer({ allowClientIds: [parseClientId(ALLOWED)] }),
    startInProcessServer({ createClients: false }),
  ]);
});
afterAll(() => Promise.all([open.close(), allowList.close(), noCreate.close()]));

function post(server: InProcessServer, path: string, headers: Record<string, string>, body: string | Buffer = 'segment') {
  return httpRequest(server.url + path, { method: 'POST', headers, body });
}

describe('content type', () => {
  const path = `/v1/client/add-version/${NIL}`;

  it.each([
    ['missing', undefined],
    ['another type', 'application/octet-stream'],
    ['the snapshot type', SNAPSHOT],
    ['different case', 'Application/vnd.taskchampion.history-segment'],
  ])('refuses a history segment with %s content type: 400', async (_, type) => {
    const headers: Record<string, string> = { 'X-Client-Id': randomUUID() };
    if (type !== undefined) headers['Content-Type'] = type;
    const answer = await post(open, path, headers);
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('Bad content-type');
  });

  it('compares only the part before ";", trimmed, as the reference does', async () => {
    const answer = await post(open, path, { 'X-Client-Id': randomUUID(), 'Content-Type': `${HISTORY_SEGMENT} ; charset=utf-8` });
    expect(answer.status).toBe(200);
  });

  it('wants the snapshot type on add-snapshot', async () => {
    const c = new ProtocolClient(open.url);
    const [v1] = await c.addChain(NIL, 1);
    const wrong = await post(open, `/v1/client/add-snapshot/${v1}`, { 'X-Client-Id': c.clientId, 'Content-Type': HISTORY_SEGMENT });
    expect(wrong.status).toBe(400);
    const right = await post(open, `/v1/client/add-snapshot/${v1}`, { 'X-Client-Id': c.clientId, 'Content-Type': SNAPSHOT });
    expect(right.status).toBe(200);
  });
});

describe('check order', () => {
  it('answers a bad path id before a bad content type: 404', async () => {
    expect((await post(open, '/v1/client/add-version/not-a-uuid', { 'Content-Type': 'text/plain' })).status).toBe(404);
  });

  it('answers a bad content type before a bad client id: 400 Bad content-type', async () => {
    const answer = await post(open, `/v1/client/add-version/${NIL}`, { 'Content-Type': 'text/plain', 'X-Client-Id': 'nope' });
    expect(answer.text).toContain('Bad content-type');
  });

  it('answers a client outside the allow-list before an empty body: 403', async () => {
    const answer = await post(allowList, `/v1/client/add-version/${NIL}`, { 'Content-Type': HISTORY_SEGMENT, 'X-Client-Id': randomUUID() }, '');
    expect(answer.status).toBe(403);
  });

  it('answers an empty body of an allowed client: 400', async () => {
    const answer = await post(allowList, `/v1/client/add-version/${NIL}`, { 'Content-Type': HISTORY_SEGMENT, 'X-Client-Id': ALLOWED }, '');
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('Empty body');
    const snapshot = await post(allowList, `/v1/client/add-snapshot/${NIL}`, { 'Content-Type': SNAPSHOT, 'X-Client-Id': ALLOWED }, '');
    expect(snapshot.status).toBe(400);
  });

  it('answers a known path with the wrong method 405 with Allow, even with a malformed id', async () => {
    for (const path of [`/v1/client/add-version/${NIL}`, '/v1/client/add-version/not-a-uuid']) {
      const answer = await httpRequest(open.url + path, { headers: { 'X-Client-Id': randomUUID() } });
      expect(answer.status).toBe(405);
      expect(answer.headers.allow).toBe('POST');
    }
    expect((await httpRequest(open.url + '/v1/client/snapshot', { method: 'POST', body: 'x' })).status).toBe(405);
  });
});

describe('client ids', () => {
  const base = randomUUID();
  const spellings = [
    base.toUpperCase(),
    `{${base}}`,
    base.replaceAll('-', ''),
    `urn:uuid:${base}`,
    `urn:uuid:${base.toUpperCase()}`,
  ];

  it.each(spellings)('treats X-Client-Id %s as the canonical client', async (spelling) => {
    const canonical = new ProtocolClient(open.url, base);
    const versions = await canonical.walk();
    const parent = versions.at(-1) ?? NIL;
    const added = await new ProtocolClient(open.url, spelling).addVersion(parent, 'by spelling');
    expect(added.status).toBe(200);
    expect(await canonical.walk()).toEqual([...versions, added.headers['x-version-id']]);
  });

  it('accepts path ids in every spelling and answers in canonical form', async () => {
    const c = new ProtocolClient(open.url);
    const [v1, v2] = await c.addChain(NIL, 2);
    for (const spelling of [v1!.toUpperCase(), `{${v1}}`, v1!.replaceAll('-', ''), `urn:uuid:${v1}`]) {
      const answer = await c.getChildVersion(encodeURIComponent(spelling));
      expect(answer.status).toBe(200);
      expect(answer.headers['x-version-id']).toBe(v2);
      expect(answer.headers['x-parent-version-id']).toBe(v1);
    }
  });

  it.each([
    ['missing', undefined],
    ['not a UUID', 'not-a-uuid'],
    ['too short', base.slice(0, 35)],
    ['not hex', 'g'.repeat(32)],
    ['with spaces inside', `${base.slice(0, 8)} ${base.slice(9)}`],
    ['braced without hyphens (the reference refuses it too)', `{${base.replaceAll('-', '')}}`],
    ['an upper-case urn prefix (the reference refuses it too)', `URN:UUID:${base}`],
  ])('refuses an X-Client-Id that is %s: 400 on every endpoint', async (_, id) => {
    const headers: Record<string, string> = id === undefined ? {} : { 'X-Client-Id': id };
    const answers = await Promise.all([
      post(open, `/v1/client/add-version/${NIL}`, { ...headers, 'Content-Type': HISTORY_SEGMENT }),
      httpRequest(`${open.url}/v1/client/get-child-version/${NIL}`, { headers }),
      post(open, `/v1/client/add-snapshot/${NIL}`, { ...headers, 'Content-Type': SNAPSHOT }),
      httpRequest(`${open.url}/v1/client/snapshot`, { headers }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([400, 400, 400, 400]);
  });

  it('reads only the first of repeated X-Client-Id headers', async () => {
    const first = randomUUID();
    const answer = await httpRequest(`${open.url}/v1/client/add-version/${NIL}`, {
      method: 'POST',
      headers: { 'Content-Type': HISTORY_SEGMENT, 'X-Client-Id': [first, randomUUID()] as unknown as string },
      body: 'x',
    });
    expect(answer.status).toBe(200);
    expect(await new ProtocolClient(open.url, first).walk()).toEqual([answer.headers['x-version-id']]);
  });

  it('treats the nil UUID as a client like any other', async () => {
    const nilClient = new ProtocolClient(open.url, NIL);
    expect((await nilClient.addVersion(NIL, 'nil client')).status).toBe(200);
  });

  it.each([
    ['not a UUID', '/v1/client/get-child-version/not-a-uuid'],
    ['empty', '/v1/client/get-child-version/'],
    ['followed by more', `/v1/client/get-child-version/${NIL}/more`],
    ['a bad escape', '/v1/client/get-child-version/%zz'],
  ])('matches no route when the path id is %s: 404', async (_, path) => {
    expect((await httpRequest(open.url + path, { headers: { 'X-Client-Id': randomUUID() } })).status).toBe(404);
  });
});

describe('allow-list', () => {
  it('lets a listed client sync in any spelling, and refuses others with 403 on every endpoint', async () => {
    expect((await new ProtocolClient(allowList.url, ALLOWED.toUpperCase()).addVersion(NIL, 'x')).status).toBe(200);
    const stranger = new ProtocolClient(allowList.url);
    const answers = await Promise.all([
      stranger.addVersion(NIL, 'x'),
      stranger.getChildVersion(NIL),
      stranger.addSnapshot(NIL, 'x'),
      stranger.getSnapshot(),
    ]);
    expect(answers.map((a) => a.status)).toEqual([403, 403, 403, 403]);
  });
});

describe('client creation', () => {
  it('answers 404 to an unknown client with creation off, and serves a client that exists', async () => {
    const unknown = new ProtocolClient(noCreate.url);
    expect((await unknown.addVersion(NIL, 'x')).status).toBe(404);
    expect((await unknown.getChildVersion(NIL)).status).toBe(404);
    expect(await noCreate.storage.listClients(null, 10)).toEqual([]);

    const known = new ProtocolClient(noCreate.url);
    await withTxn(noCreate.storage, parseClientId(known.clientId), (txn) => txn.newClient(NIL_VERSION_ID));
    expect((await known.addVersion(NIL, 'x')).status).toBe(200);
  });

  it('refuses a deleted client with 403 instead of creating it again', async () => {
    const c = new ProtocolClient(open.url);
    await c.addChain(NIL, 1);
    await open.storage.deleteClient(parseClientId(c.clientId));
    const answer = await c.addVersion(NIL, 'again');
    expect(answer.status).toBe(403);
    expect((await c.getChildVersion(NIL)).status).toBe(404);
  });
});
