/**
 * Snapshot rules over HTTP: which snapshots are kept (the 5-step walk and every reason to ignore
 * one, each still answered 200) and when add-version asks for one (X-Snapshot-Request).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClientId, parseVersionId } from '../../src/ids.js';
import { withTxn } from '../../src/storage/storage.js';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';

const DAY_MS = 86_400_000;

describe('which snapshots are kept', () => {
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcessServer();
  });
  afterAll(() => server.close());

  async function clientWithChain(length: number) {
    const c = new ProtocolClient(server.url);
    return { c, chain: await c.addChain(NIL, length) };
  }

  async function snapshotVersion(c: ProtocolClient): Promise<string | null> {
    const answer = await c.getSnapshot();
    return answer.status === 200 ? (answer.headers['x-version-id'] as string) : null;
  }

  it('keeps a snapshot of any of the 5 newest versions, counting the latest', async () => {
    for (let back = 0; back < 5; back++) {
      const { c, chain } = await clientWithChain(7);
      const target = chain[chain.length - 1 - back] as string;
      expect((await c.addSnapshot(target, `state at -${back}`)).status).toBe(200);
      expect(await snapshotVersion(c)).toBe(target);
    }
  });

  it('ignores a snapshot of the 6th newest version (too old), still answering 200', async () => {
    const { c, chain } = await clientWithChain(7);
    expect((await c.addSnapshot(chain[1] as string, 'too old')).status).toBe(200);
    expect(await snapshotVersion(c)).toBeNull();
  });

  it('ignores a snapshot of the version already snapshotted, keeping the first bytes', async () => {
    const { c, chain } = await clientWithChain(2);
    await c.addSnapshot(chain[1] as string, 'first');
    expect((await c.addSnapshot(chain[1] as string, 'second')).status).toBe(200);
    expect((await c.getSnapshot()).text).toBe('first');
  });

  it('ignores a snapshot older than the current one: the walk meets the current snapshot first', async () => {
    const { c, chain } = await clientWithChain(4);
    await c.addSnapshot(chain[3] as string, 'newest');
    expect((await c.addSnapshot(chain[2] as string, 'older')).status).toBe(200);
    expect(await snapshotVersion(c)).toBe(chain[3]);
  });

  it('replaces the snapshot with one of a newer version', async () => {
    const { c, chain } = await clientWithChain(2);
    await c.addSnapshot(chain[0] as string, 'old');
    const [v3] = await c.addChain(chain[1] as string, 1);
    expect((await c.addSnapshot(v3 as string, 'new')).status).toBe(200);
    const answer = await c.getSnapshot();
    expect(answer.headers['x-version-id']).toBe(v3);
    expect(answer.text).toBe('new');
  });

  it('ignores a snapshot whose version the walk does not find before reaching nil', async () => {
    const { c } = await clientWithChain(2);
    expect((await c.addSnapshot(randomUUID(), 'unknown')).status).toBe(200);
    expect((await c.addSnapshot(NIL, 'nil')).status).toBe(200);
    expect(await snapshotVersion(c)).toBeNull();
  });

  it('ignores a snapshot when the walk meets a missing version', async () => {
    const c = new ProtocolClient(server.url);
    // A client whose latest version was never stored (as after a migration from elsewhere).
    const latest = parseVersionId(randomUUID());
    await withTxn(server.storage, parseClientId(c.clientId), (txn) => txn.newClient(latest));
    expect((await c.addSnapshot(randomUUID(), 'behind a gap')).status).toBe(200);
    expect(await snapshotVersion(c)).toBeNull();
  });
});

describe('snapshot urgency by versions', () => {
  let four: InProcessServer;
  let five: InProcessServer;
  beforeAll(async () => {
    [four, five] = await Promise.all([startInProcessServer({ snapshotVersions: 4 }), startInProcessServer({ snapshotVersions: 5 })]);
  });
  afterAll(() => Promise.all([four.close(), five.close()]));

  /** The X-Snapshot-Request of each of `count` adds after a snapshot of the latest version. */
  async function urgencies(server: InProcessServer, count: number): Promise<Array<string | undefined>> {
    const c = new ProtocolClient(server.url);
    const [v1] = await c.addChain(NIL, 1);
    await c.addSnapshot(v1 as string, 'snap');
    let parent = v1 as string;
    const seen: Array<string | undefined> = [];
    for (let i = 0; i < count; i++) {
      const answer = await c.addVersion(parent, `v${i}`);
      parent = answer.headers['x-version-id'] as string;
      seen.push(answer.headers['x-snapshot-request'] as string | undefined);
    }
    return seen;
  }

  it('asks urgently while the client has no snapshot', async () => {
    const c = new ProtocolClient(four.url);
    const answers = [await c.addVersion(NIL, 'a')];
    answers.push(await c.addVersion(answers[0]!.headers['x-version-id'] as string, 'b'));
    expect(answers.map((a) => a.headers['x-snapshot-request'])).toEqual(['urgency=high', 'urgency=high']);
  });

  it('asks low from N versions since the snapshot and high from N*3/2, counting before the add', async () => {
    // N = 4: the k-th add sees k-1 versions since the snapshot.
    expect(await urgencies(four, 7)).toEqual([undefined, undefined, undefined, undefined, 'urgency=low', 'urgency=low', 'urgency=high']);
  });

  it('uses integer division for N*3/2 (5*3/2 = 7)', async () => {
    expect(await urgencies(five, 8)).toEqual([
      undefined, undefined, undefined, undefined, undefined, 'urgency=low', 'urgency=low', 'urgency=high',
    ]);
  });
});

describe('snapshot urgency by age', () => {
  let now = Date.now();
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcessServer({ snapshotDays: 5, now: () => new Date(now) });
  });
  afterAll(() => server.close());

  it('asks low from N whole days after the snapshot and high from N*3/2 days (5*3/2 = 7)', async () => {
    const c = new ProtocolClient(server.url);
    const [v1] = await c.addChain(NIL, 1);
    const taken = now;
    await c.addSnapshot(v1 as string, 'snap');
    let parent = v1 as string;
    const seen: Record<string, string | undefined> = {};
    for (const days of [4.99, 5, 6.99, 7]) {
      now = taken + days * DAY_MS;
      const answer = await c.addVersion(parent, `day ${days}`);
      parent = answer.headers['x-version-id'] as string;
      seen[days] = answer.headers['x-snapshot-request'] as string | undefined;
    }
    expect(seen).toEqual({ '4.99': undefined, '5': 'urgency=low', '6.99': 'urgency=low', '7': 'urgency=high' });
  });
});
