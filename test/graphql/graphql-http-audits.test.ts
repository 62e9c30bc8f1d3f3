/**
 * graphql-http's server audits (the GraphQL-over-HTTP spec's MUSTs, SHOULDs and MAYs) against
 * /graphql over a real socket: every one passes, warnings included.
 */
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startGraphqlServer, type TestServer } from './support/graphql-server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startGraphqlServer();
});
afterAll(() => server.close());

describe('graphql-http server audits', () => {
  for (const audit of serverAudits({ url: () => server.url, fetchFn: fetch })) {
    test(`${audit.id} ${audit.name}`, async () => {
      const result = await audit.fn();
      expect(result.status, result.status === 'ok' ? '' : result.reason).toBe('ok');
    });
  }
});
