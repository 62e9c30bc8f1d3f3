import { afterEach, expect, it } from 'vitest';
import { parseClientId } from '../../src/ids.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { readChain } from '../support/storage-chain.js';
import { spawnWriter } from '../support/storage-writer.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

let dir = '';
afterEach(() => removeDir(dir));

it('4 processes adding 100 versions each to one client build one linear chain of 400', async () => {
  dir = await makeTempDir();
  const clientId = parseClientId(crypto.randomUUID());
  const writers = Array.from({ length: 4 }, () => spawnWriter('append', dir, clientId, 100));
  const codes = await Promise.all(writers.map((w) => w.exited));
  expect(codes, writers.map((w) => w.stderr()).join('\n')).toEqual([0, 0, 0, 0]);

  const storage = await FileStorage.open(dir);
  const { chain, latest } = await readChain(storage, clientId);
  await storage.close();
  expect(chain).toHaveLength(400);
  expect(new Set(chain).size).toBe(400);
  expect(latest).toBe(chain.at(-1));
  // Every acknowledged version is in the chain, and each writer's own acks appear in order.
  const position = new Map(chain.map((id, i) => [id as string, i]));
  for (const writer of writers) {
    expect(writer.acks).toHaveLength(100);
    const positions = writer.acks.map((id) => position.get(id));
    expect(positions.every((p) => p !== undefined)).toBe(true);
    expect([...positions].sort((a, b) => a! - b!)).toEqual(positions);
  }
}, 120_000);
