/**
 * End to end through `tcsync serve`: replicas of one task database sync as the taskchampion
 * client does (pull, push, retry on conflict, snapshot when asked), and a new replica starts
 * from the snapshot instead of the whole history.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { spawnServer, type SpawnedServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

/** A replica whose database is a set of operations; each version carries a batch of them. */
class Replica {
  readonly #client: ProtocolClient;
  #base = NIL;
  #ops = new Set<string>();
  #pending: string[] = [];
  /** How many versions this replica has downloaded. */
  pulled = 0;
  snapshotsSent = 0;

  constructor(client: ProtocolClient) {
    this.#client = client;
  }

  get ops(): string[] {
    return [...this.#ops].sort();
  }

  record(op: string): void {
    this.#ops.add(op);
    this.#pending.push(op);
  }

  /** An empty replica takes the server's snapshot, if there is one, as its starting point. */
  async start(): Promise<boolean> {
    const answer = await this.#client.getSnapshot();
    if (answer.status === 404) return false;
    expect(answer.status).toBe(200);
    this.#ops = new Set(JSON.parse(answer.text) as string[]);
    this.#base = answer.headers['x-version-id'] as string;
    return true;
  }

  async sync(): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      await this.#pull();
      if (this.#pending.length === 0) return;
      // Versions are opaque to the server: encrypt-like bytes around the batch.
      const body = Buffer.concat([Buffer.from([1]), randomBytes(12), Buffer.from(JSON.stringify(this.#pending))]);
      const answer = await this.#client.addVersion(this.#base, body);
      if (answer.status === 409) continue;
      expect(answer.status).toBe(200);
      this.#base = answer.headers['x-version-id'] as string;
      this.#pending = [];
      if (answer.headers['x-snapshot-request'] !== undefined) {
        expect((await this.#client.addSnapshot(this.#base, JSON.stringify(this.ops))).status).toBe(200);
        this.snapshotsSent++;
      }
      return;
    }
    throw new Error('no progress after 50 attempts');
  }

  async #pull(): Promise<void> {
    for (;;) {
      const answer = await this.#client.getChildVersion(this.#base);
      if (answer.status === 404) return;
      expect(answer.status).toBe(200);
      for (const op of JSON.parse(answer.body.subarray(13).toString('utf8')) as string[]) this.#ops.add(op);
      this.#base = answer.headers['x-version-id'] as string;
      this.pulled++;
    }
  }
}

let dir = '';
let server: SpawnedServer;
beforeAll(async () => {
  dir = await makeTempDir();
  server = await spawnServer(dir, { args: ['--snapshot-versions', '100'] });
});
afterAll(async () => {
  await server.stop('SIGKILL');
  await removeDir(dir);
});

it('two replicas exchange versions through the server, and a third starts from the snapshot', async () => {
  const clientId = crypto.randomUUID();
  const laptop = new Replica(new ProtocolClient(server.url, clientId));
  const phone = new Replica(new ProtocolClient(server.url, clientId.toUpperCase()));
  expect(await laptop.start()).toBe(false);

  laptop.record('add: buy milk');
  await laptop.sync();
  // The first version of a client without a snapshot asks for one urgently; the laptop sent it.
  expect(laptop.snapshotsSent).toBe(1);

  for (let round = 0; round < 5; round++) {
    laptop.record(`laptop ${round}`);
    phone.record(`phone ${round}`);
    // Both edit offline, then sync: the second to push meets a conflict, pulls, and retries.
    await Promise.all([laptop.sync(), phone.sync()]);
  }
  await laptop.sync();
  await phone.sync();
  expect(phone.ops).toEqual(laptop.ops);
  expect(laptop.ops).toHaveLength(11);

  const tablet = new Replica(new ProtocolClient(server.url, `{${clientId}}`));
  expect(await tablet.start()).toBe(true);
  await tablet.sync();
  expect(tablet.ops).toEqual(laptop.ops);
  const history = await new ProtocolClient(server.url, clientId).walk();
  // It downloaded only the versions after the snapshot, not the whole history.
  expect(tablet.pulled).toBe(history.length - 1);
});

it('with --prune-days 0, a new replica starts from the snapshot after the history it covers is pruned, and syncs on', async () => {
  const pruningDir = await makeTempDir();
  const pruning = await spawnServer(pruningDir, { args: ['--prune-days', '0', '--snapshot-versions', '100'] });
  try {
    const clientId = crypto.randomUUID();
    const laptop = new Replica(new ProtocolClient(pruning.url, clientId));
    for (let round = 0; round < 12; round++) {
      laptop.record(`laptop ${round}`);
      await laptop.sync();
    }
    // The first version asked for a snapshot, which covers it; the laptop's own replica went on.
    expect(laptop.snapshotsSent).toBe(1);
    const probe = new ProtocolClient(pruning.url, clientId);
    await expect.poll(async () => (await probe.getChildVersion(NIL)).status, { timeout: 15_000 }).toBe(410);
    const phone = new Replica(new ProtocolClient(pruning.url, clientId));
    expect(await phone.start()).toBe(true);
    await phone.sync();
    expect(phone.ops).toEqual(laptop.ops);
    phone.record('phone 0');
    await phone.sync();
    await laptop.sync();
    expect(laptop.ops).toEqual(phone.ops);
  } finally {
    await pruning.stop('SIGKILL');
    await removeDir(pruningDir);
  }
});
