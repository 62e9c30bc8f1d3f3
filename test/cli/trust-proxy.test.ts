/** The request log's `addr`: the direct peer, or X-Forwarded-For's client only behind a --trust-proxy. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../support/http-request.js';
import { spawnServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(async () => {
  await removeDir(dir);
});

/** The `addr` logged for a GET / sent with each X-Forwarded-For (undefined: none), in order. */
async function loggedAddresses(args: string[], forwardedFor: readonly (string | undefined)[]): Promise<unknown[]> {
  const server = await spawnServer(dir, { args: ['--log-level', 'info', ...args] });
  try {
    for (const header of forwardedFor) {
      await httpRequest(`${server.url}/`, { headers: header === undefined ? {} : { 'X-Forwarded-For': header } });
    }
  } finally {
    expect(await server.stop()).toBe(0);
  }
  const lines = server.stderr().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  return lines.filter((line) => line.msg === 'request').map((line) => line.addr);
}

const HEADERS = [undefined, '203.0.113.7', '198.51.100.1, 203.0.113.7', 'unknown', '198.51.100.1, 127.0.0.1'] as const;

describe('the address in the request log', () => {
  it('is the direct peer by default, whatever X-Forwarded-For says', async () => {
    expect(await loggedAddresses([], HEADERS)).toEqual(HEADERS.map(() => '127.0.0.1'));
  });

  it('behind a trusted proxy is the nearest hop that is not one: earlier hops were written by the client', async () => {
    expect(await loggedAddresses(['--trust-proxy', '127.0.0.1'], HEADERS)).toEqual(['127.0.0.1', '203.0.113.7', '203.0.113.7', '127.0.0.1', '198.51.100.1']);
  });

  it('goes back through every trusted proxy in the chain, given as addresses or networks', async () => {
    expect(await loggedAddresses(['--trust-proxy', '127.0.0.0/8,203.0.113.7'], HEADERS)).toEqual(['127.0.0.1', '203.0.113.7', '198.51.100.1', '127.0.0.1', '198.51.100.1']);
  });

  it('ignores X-Forwarded-For from a peer that is not trusted', async () => {
    expect(await loggedAddresses(['--trust-proxy', '192.0.2.1'], HEADERS)).toEqual(HEADERS.map(() => '127.0.0.1'));
  });
});
