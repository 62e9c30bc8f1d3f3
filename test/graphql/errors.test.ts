/**
 * Faults are masked: callers get INTERNAL_SERVER_ERROR with no message, stack or path; the
 * operator's log names the fault without the client id. Typed storage faults that a caller can
 * act on keep a code (SERVICE_UNAVAILABLE for a busy client).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TcsyncError } from '../../src/errors.js';
import type { ClientId } from '../../src/ids.js';
import { InMemoryStorage } from '../../src/storage/memory-storage.js';
import type { StorageTxn } from '../../src/storage/storage.js';
import { expectErrorCode } from './support/expect-error.js';
import { recordingLogger, startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { ADD_VERSION, NIL } from './support/ops.js';

const CRASHING = 'c0000000-0000-4000-8000-000000000001';
const IO_FAULT = 'c0000000-0000-4000-8000-000000000002';
const BUSY = 'c0000000-0000-4000-8000-000000000003';

/** Fails transactions on chosen clients the ways a real storage can. */
class FaultyStorage extends InMemoryStorage {
  override async txn(clientId: ClientId): Promise<StorageTxn> {
    const path = `/var/lib/tcsync/data/${clientId}/client.json`;
    if (clientId === CRASHING) throw new TypeError(`Cannot read properties of undefined (reading 'x') at ${path}`);
    if (clientId === IO_FAULT) throw new TcsyncError('STORAGE_IO', `EIO: i/o error, open '${path}'`);
    if (clientId === BUSY) throw new TcsyncError('LOCK_TIMEOUT', `lock of ${path} not acquired`);
    return super.txn(clientId);
  }
}

const logger = recordingLogger();
let server: TestServer;
beforeAll(async () => {
  server = await startGraphqlServer({ storage: new FaultyStorage(), logger });
});
afterAll(() => server.close());

test.each([
  ['an unexpected exception', CRASHING],
  ['a storage I/O fault', IO_FAULT],
])('%s is masked for the caller and logged without the client id', async (_what, id) => {
  logger.lines.length = 0;
  for (const res of [await server.gql(`{ client(id: "${id}") { id } }`), await server.gql(ADD_VERSION, { clientId: id, parent: NIL, segment: 'AQ==' })]) {
    const error = expectErrorCode(res, 'INTERNAL_SERVER_ERROR');
    expect(error.message).toBe('Unexpected error.');
    const text = JSON.stringify(res.body);
    for (const secret of [id, '/var/lib', 'stack', 'EIO', 'TypeError', 'originalError']) expect(text).not.toContain(secret);
  }
  expect(logger.lines).toHaveLength(2);
  const logged = JSON.stringify(logger.lines);
  expect(logged).not.toContain(id);
  expect(logged).not.toContain('/var/lib');
  expect(logger.lines[0]?.details).toMatchObject({ path: 'client' });
});

test('masking holds whatever NODE_ENV says', async () => {
  const previous = process.env['NODE_ENV'];
  process.env['NODE_ENV'] = 'development';
  try {
    const text = JSON.stringify((await server.gql(`{ client(id: "${CRASHING}") { id } }`)).body);
    expect(text).not.toContain('stack');
    expect(text).not.toContain('TypeError');
  } finally {
    process.env['NODE_ENV'] = previous;
  }
});

test('a busy client is SERVICE_UNAVAILABLE: nothing was committed, the caller may retry', async () => {
  const error = expectErrorCode(await server.gql(ADD_VERSION, { clientId: BUSY, parent: NIL, segment: 'AQ==' }), 'SERVICE_UNAVAILABLE');
  expect(error.extensions.reason).toBe('LOCK_TIMEOUT');
  expect(error.message).not.toContain('/var/lib');
});

test('a syntax error is reported to the caller as such', async () => {
  const res = await server.gql('{ server { version }');
  expect(res.body.errors[0].message).toMatch(/Syntax Error/);
  expect(res.body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
});
