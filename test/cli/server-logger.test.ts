/** The server's logger: whole JSON lines in order, and a failing destination silences it, never the server. */
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serverLogger } from '../../src/cli/server-logger.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map(removeDir)));

async function tempDir(): Promise<string> {
  const dir = await makeTempDir();
  dirs.push(dir);
  return dir;
}

describe('serverLogger', () => {
  it('writes every line whole and in order, long and non-ASCII ones included', async () => {
    const file = path.join(await tempDir(), 'log');
    const logger = serverLogger('info', file);
    const long = 'é'.repeat(100_000);
    for (let i = 0; i < 100; i++) logger.info({ i, text: i % 10 === 0 ? long : 'short' }, 'line');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { i: number; text: string });
    expect(lines.map((l) => l.i)).toEqual([...Array(100).keys()]);
    expect(lines[10]?.text).toBe(long);
  });

  it('falls silent when its destination fails, without throwing', async () => {
    const fd = openSync(path.join(await tempDir(), 'log'), 'a');
    const logger = serverLogger('info', fd);
    closeSync(fd);
    expect(() => logger.info('into a closed descriptor')).not.toThrow();
    expect(logger.level).toBe('silent');
  });
});
