/**
 * Several `tcsync serve --connection` processes on one PostgreSQL database: per client they stay
 * sequentially consistent (one linear chain, whatever server each writer talks to), a conflict is
 * 409 and never a 5xx, and a server killed with SIGKILL mid-load costs no acknowledged version.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { httpRequest } from '../support/http-request.js';
import { describePostgres, freshSchema } from '../support/postgres.js';
import { ProtocolClient } from '../support/protocol-client.js';
import { expectChainHolds, racingWriter } from '../support/racing-writer.js';
import { spawnServer, type SpawnedServer } from '../support/spawn-server.js';

describePostgres('serve --connection, several processes on one database', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let servers: SpawnedServer[] = [];
  const serve = () => spawnServer({ connection: schema.uri });

  beforeAll(async () => {
    schema = await freshSchema();
    // One at a time first, so that all three also meet an already laid out schema.
    servers = [await serve()];
    servers.push(...(await Promise.all([serve(), serve()])));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    await schema?.drop();
  });

  const server = (i: number) => servers[i % servers.length] as SpawnedServer;

  it('racing writers on one client through three servers build exactly one linear chain, with no 5xx', async () => {
    const clientId = randomUUID();
    const seen = new Map<number, number>();
    const acks = await Promise.all(
      Array.from({ length: 6 }, (_, i) => racingWriter(new ProtocolClient(server(i).url, clientId), `writer ${i}`, 40, { seen })),
    );
    expect([...seen.keys()].sort()).toEqual(seen.has(409) ? [200, 409] : [200]);
    for (let i = 0; i < servers.length; i++) {
      const chain = await new ProtocolClient(server(i).url, clientId).walk();
      expect(chain).toHaveLength(6 * 40);
      expectChainHolds(chain, acks);
    }
  }, 120_000);

  it('many clients in parallel, each through every server in turn, all complete', async () => {
    const clients = Array.from({ length: 48 }, () => randomUUID());
    const seen = new Map<number, number>();
    const acks = await Promise.all(
      clients.map(async (clientId, c) => {
        // Two replicas per client, on different servers.
        const writers = [0, 1].map((r) => racingWriter(new ProtocolClient(server(c + r).url, clientId), `client ${c}/${r}`, 10, { seen }));
        return Promise.all(writers);
      }),
    );
    expect([...seen.keys()].filter((status) => status >= 500)).toEqual([]);
    for (const [c, clientId] of clients.entries()) {
      const chain = await new ProtocolClient(server(c + 2).url, clientId).walk();
      expect(chain).toHaveLength(20);
      expectChainHolds(chain, acks[c]!);
    }
  }, 180_000);

  it('/healthz asks the database, and /metrics shows the pool instead of a data directory', async () => {
    expect((await httpRequest(`${server(0).url}/healthz`)).status).toBe(200);
    const metrics = (await httpRequest(`${server(0).url}/metrics`)).text;
    for (const name of ['tcsync_storage_pool_size', 'tcsync_storage_pool_idle', 'tcsync_storage_pool_waiting']) {
      expect(metrics).toMatch(new RegExp(`^${name} \\d+$`, 'm'));
    }
    // The load of the tests above waited for connections.
    expect(Number(/^tcsync_storage_pool_wait_seconds_count (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toContain('# TYPE tcsync_storage_database_errors_total counter');
    expect(metrics).not.toContain('tcsync_data_dir_free_bytes');
    expect(metrics).not.toContain('tcsync_storage_cached_clients');
  });

  it('a server killed with SIGKILL mid-load loses no acknowledged version', async () => {
    const victim = await serve();
    const clientId = randomUUID();
    const survivor = server(0);
    // One list per writer: only each writer's own acknowledgements are ordered.
    const viaVictim: string[][] = [[], []];
    const viaSurvivor: string[] = [];
    const victimWriters = viaVictim.map((acked, i) =>
      racingWriter(new ProtocolClient(victim.url, clientId), `victim writer ${i}`, 1000, { acked }).catch((err: Error) => err),
    );
    const survivorWriter = racingWriter(new ProtocolClient(survivor.url, clientId), 'survivor writer', 60, { acked: viaSurvivor });
    while (viaVictim.flat().length < 30) await setTimeout(5);
    await victim.stop('SIGKILL');
    // Writers on the killed server fail on their connections; every id they were acknowledged must be stored.
    for (const outcome of await Promise.all(victimWriters)) expect(outcome).toBeInstanceOf(Error);
    await survivorWriter;
    const chain = await new ProtocolClient(survivor.url, clientId).walk();
    expectChainHolds(chain, [...viaVictim, viaSurvivor]);
    // Nothing of the killed process's last transaction is half there: the chain ends at the latest.
    const tail = await new ProtocolClient(survivor.url, clientId).addVersion(chain.at(-1)!, 'after the kill');
    expect(tail.status).toBe(200);
  }, 120_000);
});
