/** Every row of the protocol's table, over a real socket, with the exact headers a client reads. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NIL_VERSION_ID, parseClientId } from '../../src/ids.js';
import { withTxn } from '../../src/storage/storage.js';
import { HISTORY_SEGMENT, NIL, ProtocolClient, SNAPSHOT } from '../support/protocol-client.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';

let server: InProcessServer;
beforeAll(async () => {
  server = await startInProcessServer();
});
afterAll(() => server.close());

const client = () => new ProtocolClient(server.url);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('add-version', () => {
  it('creates an unknown client, answers 200 with a new X-Version-Id and asks for a snapshot urgently', async () => {
    const answer = await client().addVersion(NIL, 'first');
    expect(answer.status).toBe(200);
    expect(answer.headers['x-version-id']).toMatch(UUID);
    expect(answer.headers['x-version-id']).not.toBe(NIL);
    expect(answer.headers['x-snapshot-request']).toBe('urgency=high');
    expect(answer.headers['x-parent-version-id']).toBeUndefined();
    expect(answer.body).toHaveLength(0);
  });

  it('answers 409 with the expected parent in X-Parent-Version-Id when the parent is not the latest', async () => {
    const c = client();
    const [v1, v2] = await c.addChain(NIL, 2);
    const answer = await c.addVersion(v1 as string, 'stale');
    expect(answer.status).toBe(409);
    expect(answer.headers['x-parent-version-id']).toBe(v2);
    expect(answer.headers['x-version-id']).toBeUndefined();
    expect(await c.walk()).toEqual([v1, v2]);
  });

  it('accepts any parent while the client has no version, and nil only then', async () => {
    const c = client();
    const first = await c.addVersion('11111111-2222-3333-4444-555555555555', 'from another server');
    expect(first.status).toBe(200);
    const nilAgain = await c.addVersion(NIL, 'second first');
    expect(nilAgain.status).toBe(409);
    expect(nilAgain.headers['x-parent-version-id']).toBe(first.headers['x-version-id']);
  });
});

describe('get-child-version', () => {
  it('answers 200 with the segment byte for byte, X-Version-Id, X-Parent-Version-Id and the exact content type', async () => {
    const c = client();
    const segment = Buffer.from([0x01, 0x00, 0xff, 0x7f, 0x80, 0x0a, 0x0d]);
    const added = await c.addVersion(NIL, segment);
    const answer = await c.getChildVersion(NIL);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe(HISTORY_SEGMENT);
    expect(answer.headers['x-version-id']).toBe(added.headers['x-version-id']);
    expect(answer.headers['x-parent-version-id']).toBe(NIL);
    expect(answer.body.equals(segment)).toBe(true);
  });

  it('answers 404 for the child of the latest version: nothing newer, an add-version would succeed', async () => {
    const c = client();
    const [v1] = await c.addChain(NIL, 1);
    const answer = await c.getChildVersion(v1 as string);
    expect(answer.status).toBe(404);
    expect(answer.headers['x-version-id']).toBeUndefined();
  });

  it('answers 410 for a parent that is neither in the history nor the latest', async () => {
    const c = client();
    await c.addChain(NIL, 2);
    const answer = await c.getChildVersion('99999999-8888-4777-8666-555555555555');
    expect(answer.status).toBe(410);
    expect(answer.headers['x-version-id']).toBeUndefined();
    expect(answer.headers['x-parent-version-id']).toBeUndefined();
  });

  it('answers 404, not 410, for any parent while the client exists without a version', async () => {
    const c = client();
    await withTxn(server.storage, parseClientId(c.clientId), (txn) => txn.newClient(NIL_VERSION_ID));
    expect((await c.getChildVersion(NIL)).status).toBe(404);
    expect((await c.getChildVersion('99999999-8888-4777-8666-555555555555')).status).toBe(404);
  });

  it('answers 404 for an unknown client', async () => {
    expect((await client().getChildVersion(NIL)).status).toBe(404);
  });
});

describe('add-snapshot and snapshot', () => {
  it('stores a snapshot of the latest version and serves it with X-Version-Id and the exact content type', async () => {
    const c = client();
    const [, v2] = await c.addChain(NIL, 2);
    const data = Buffer.from('snapshot bytes \x00\x01');
    const added = await c.addSnapshot(v2 as string, data);
    expect(added.status).toBe(200);
    expect(added.body).toHaveLength(0);
    const answer = await c.getSnapshot();
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe(SNAPSHOT);
    expect(answer.headers['x-version-id']).toBe(v2);
    expect(answer.body.equals(data)).toBe(true);
  });

  it('answers 200 for a snapshot it ignores, and keeps serving 404 when there is none', async () => {
    const c = client();
    await c.addChain(NIL, 1);
    expect((await c.addSnapshot('99999999-8888-4777-8666-555555555555', 'unknown version')).status).toBe(200);
    expect((await c.getSnapshot()).status).toBe(404);
  });

  it('answers 404 for the snapshot of an unknown client, and for add-snapshot of one (as the reference)', async () => {
    const c = client();
    expect((await c.getSnapshot()).status).toBe(404);
    expect((await c.addSnapshot(NIL, 'x')).status).toBe(404);
  });
});

it('answers GET / with one line naming the server and its version', async () => {
  const { httpRequest } = await import('../support/http-request.js');
  const answer = await httpRequest(server.url + '/');
  expect(answer.status).toBe(200);
  expect(answer.text).toMatch(/^tcsync v\d+\.\d+\.\d+.*\n$/);
  expect(answer.text.trimEnd().split('\n')).toHaveLength(1);
});
