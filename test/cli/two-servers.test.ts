/**
 * Two `tcsync serve` processes on one data directory: client locks are shared between the
 * processes, so 4 concurrent writers retrying on 409 still build exactly one linear chain.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProtocolClient } from '../support/protocol-client.js';
import { expectChainHolds, racingWriter } from '../support/racing-writer.js';
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

it(`${WRITERS} writers on two server processes build one linear chain of ${WRITERS * VERSIONS_EACH} versions`, async () => {
  const clientId = crypto.randomUUID();
  const acks = await Promise.all(
    Array.from({ length: WRITERS }, (_, i) => racingWriter(new ProtocolClient((servers[i % 2] as SpawnedServer).url, clientId), `writer ${i}`, VERSIONS_EACH)),
  );

  for (const server of servers) {
    const chain = await new ProtocolClient(server.url, clientId).walk();
    expect(chain).toHaveLength(WRITERS * VERSIONS_EACH);
    expectChainHolds(chain, acks);
  }
}, 120_000);
