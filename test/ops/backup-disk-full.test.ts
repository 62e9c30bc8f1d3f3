/** `tcsync backup` onto a disk that fills up fails cleanly: exit 1, a message, and nothing left on DEST's disk. */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SmallFs, smallFsUnavailable } from '../support/small-fs.js';
import { buildLargeDataDir, runCli, tempDir } from './support.js';

describe.skipIf(smallFsUnavailable !== null)('a backup onto a disk that fills up', () => {
  let root: { dir: string; cleanup: () => Promise<void> };
  let fs: SmallFs;
  let source: string;
  beforeAll(async () => {
    root = await tempDir();
    fs = SmallFs.create(16);
    source = path.join(root.dir, 'source');
    await buildLargeDataDir(source);
  });
  afterAll(async () => {
    fs.destroy();
    await root.cleanup();
  });

  test('exits 1 with a message and removes its partial copy', async () => {
    fs.leaveFree(1024 * 1024);
    const result = await runCli('backup', ['--data-dir', source, path.join(fs.dir, 'backup')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tcsync backup: .*(ENOSPC|no space)/i);
    expect((await readdir(fs.dir)).filter((n) => !n.startsWith('.filler') && n !== 'lost+found')).toEqual([]);
    // With the space back, the same backup succeeds.
    fs.release();
    expect((await runCli('backup', ['--data-dir', source, path.join(fs.dir, 'backup')])).code).toBe(0);
  });
});
