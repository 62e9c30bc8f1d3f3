/**
 * Processes killed with SIGKILL at random moments while committing: the storage must reopen to a
 * committed prefix holding every acknowledged commit, show nothing staged, and take over the
 * dead process's lock by itself.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { parseClientId, parseVersionId, type ClientId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { withTxn } from '../../src/storage/storage.js';
import { readChain } from '../support/storage-chain.js';
import { spawnWriter, type Writer } from '../support/storage-writer.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir = '';
afterEach(() => removeDir(dir));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function killAfterAcks(writer: Writer, minAcks: number, extraMs: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (writer.acks.length < minAcks && writer.child.exitCode === null && Date.now() < deadline) await sleep(5);
  await sleep(extraMs);
  writer.child.kill('SIGKILL');
  await writer.exited;
}

/** Opens the storage and checks the client against everything the killed writers acknowledged. */
async function checkRecovered(clientId: ClientId, acked: string[], staleMs: number): Promise<number> {
  const storage = await FileStorage.open(dir, { staleMs });
  try {
    const started = Date.now();
    const { chain, latest } = await readChain(storage, clientId);
    const lockWait = Date.now() - started;
    const position = new Map(chain.map((id, i) => [id as string, i]));
    for (const id of acked) expect(position.has(id), `acknowledged version ${id} lost`).toBe(true);
    const ackPositions = acked.map((id) => position.get(id)!);
    expect([...ackPositions].sort((a, b) => a - b)).toEqual(ackPositions);
    if (chain.length > 0) expect(latest).toBe(chain.at(-1));
    // Nothing staged is visible: every version file on disk that is not in the chain reads as absent.
    const versionsDir = path.join(dir, clientId, 'versions');
    const files = await readdir(versionsDir).catch(() => [] as string[]);
    await withTxn(storage, clientId, async (txn) => {
      if (latest !== null) expect(await txn.getVersionByParent(latest)).toBeNull();
      for (const file of files.filter((f) => f.endsWith('.version'))) {
        const id = parseVersionId(file.slice(0, -'.version'.length));
        const version = await txn.getVersion(id);
        expect(version === null).toBe(!position.has(id));
      }
      const client = await txn.getClient();
      if (client?.snapshot) await txn.getSnapshotData(client.snapshot.versionId);
    });
    return lockWait;
  } finally {
    await storage.close();
  }
}

it('SIGKILL at random moments, 20 times: every acknowledged commit survives, nothing staged is visible', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const staleMs = 2000;
  const acked: string[] = [];
  for (let round = 0; round < 20; round++) {
    const writer = spawnWriter('crash', dir, clientId, 100_000, staleMs);
    await killAfterAcks(writer, 1, Math.floor(Math.random() * 60));
    acked.push(...writer.acks);
    const lockWait = await checkRecovered(clientId, acked, staleMs);
    // The dead writer's lock is taken over by itself once stale: well within 10 s.
    expect(lockWait).toBeLessThan(10_000);
  }
  expect(acked.length).toBeGreaterThan(20);
}, 240_000);

it('with the default lease, a killed holder\'s lock is taken over within 10 s', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const writer = spawnWriter('append', dir, clientId, 100_000);
  await killAfterAcks(writer, 3, 0);
  const storage = await FileStorage.open(dir);
  const killedAt = Date.now();
  const { chain } = await readChain(storage, clientId);
  const waited = Date.now() - killedAt;
  await storage.close();
  expect(chain.length).toBeGreaterThanOrEqual(writer.acks.length);
  expect(waited).toBeLessThan(10_000);
}, 30_000);
