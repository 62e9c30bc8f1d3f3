/**
 * Two `tcsync serve` processes on one data directory: client locks are shared between the
 * processes, so 4 concurrent writers retrying on 409 still build exactly one linear chain.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { spawnServer, type SpawnedServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const WRITERS = 4;
const VERSIONS_EACH = 100;

let dir = '';
let servers: SpawnedServer[] = [];
beforeAll(async () => {
  dir = await makeTempDir();
  servers = await Promise.all([spawnServer(dir), spawnServer(dir)]);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  await removeDir(dir);
});

/** Adds `count` versions, each on the latest it knows of, learning the latest from every 409. */
async function writer(client: ProtocolClient, name: string, count: number): Promise<string[]> {
  const acked: string[] = [];
  let parent = NIL;
  for (let attempt = 0; acked.length < count; attempt++) {
    if (attempt > count * 50) throw new Error(`${name} made no progress`);
    const answer = await client.addVersion(parent, `${name} #${acked.length}`);
    if (answer.status === 409) {
      parent = answer.headers['x-parent-version-id'] as string;
      continue;
    }
    if (answer.status !== 200) throw new Error(`${name}: add-version answered ${answer.status} ${answer.text}`);
    parent = answer.headers['x-version-id'] as string;
    acked.push(parent);
  }
  return acked;
}

it(`${WRITERS} writers on two server processes build one linear chain of ${WRITERS * VERSIONS_EACH} versions`, async () => {
  const clientId = crypto.randomUUID();
  const acks = await Promise.all(
    Array.from({ length: WRITERS }, (_, i) => writer(new ProtocolClient((servers[i % 2] as SpawnedServer).url, clientId), `writer ${i}`, VERSIONS_EACH)),
  );

  for (const server of servers) {
    const chain = await new ProtocolClient(server.url, clientId).walk();
    expect(chain).toHaveLength(WRITERS * VERSIONS_EACH);
    expect(new Set(chain).size).toBe(chain.length);
    const position = new Map(chain.map((id, i) => [id, i]));
    for (const acked of acks) {
      const positions = acked.map((id) => position.get(id) ?? -1);
      expect(positions).not.toContain(-1);
      // Each writer's versions appear in the order it added them.
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    }
  }
}, 120_000);
