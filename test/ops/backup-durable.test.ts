/**
 * `tcsync backup` makes its copy durable with one sync of DEST's file system, before DEST appears
 * and before it exits 0; a failed sync fails the backup; without `sync -f` every file is fsync'd.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backupDataDir } from '../../src/ops/backup.js';
import { buildFixture, runCli, tempDir } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
let source: string;
beforeAll(async () => {
  root = await tempDir();
  source = path.join(root.dir, 'source');
  await buildFixture(source);
});
afterAll(() => root.cleanup());

/** A directory holding only a `sync` that runs `script` (sh), to put first on PATH. */
async function fakeSync(name: string, script: string): Promise<string> {
  const bin = path.join(root.dir, name);
  await mkdir(bin);
  await writeFile(path.join(bin, 'sync'), `#!/bin/sh\n${script}\n`);
  await chmod(path.join(bin, 'sync'), 0o755);
  return bin;
}

const leftovers = async () => (await readdir(root.dir)).filter((n) => n.includes('.tmp-'));

describe.skipIf(process.platform !== 'linux')('with sync -f', () => {
  const realSync = process.platform === 'linux' ? execFileSync('sh', ['-c', 'command -v sync'], { encoding: 'utf8' }).trim() : '';

  test('syncs the file system of the copy once, while it still has its temporary name, and exits 0 after', async () => {
    const log = path.join(root.dir, 'sync.log');
    // Records how it was called and what was beside DEST then, and syncs for real.
    const bin = await fakeSync('logging-sync', `printf '%s\\n' "$*" >> "$SYNC_LOG"\nls -a "$(dirname "$2")" >> "$SYNC_LOG"\nexec ${realSync} "$@"`);
    const dest = path.join(root.dir, 'synced');
    const result = await runCli('backup', ['--data-dir', source, dest], { PATH: `${bin}:${process.env.PATH}`, SYNC_LOG: log });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const [call, ...listing] = (await readFile(log, 'utf8')).trim().split('\n');
    expect(call).toMatch(new RegExp(`^-f ${root.dir}/\\.synced\\.tmp-[0-9a-f]+$`));
    expect(listing).toContain(path.basename((call as string).slice(3)));
    expect(listing).not.toContain('synced');
    expect((await stat(dest)).isDirectory()).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  test('a failed sync fails the backup: exit 1 with its message, and nothing is left', async () => {
    const bin = await fakeSync('failing-sync', `echo "sync: error syncing '$2': Input/output error" >&2\nexit 1`);
    const dest = path.join(root.dir, 'unsynced');
    const result = await runCli('backup', ['--data-dir', source, dest], { PATH: `${bin}:${process.env.PATH}` });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tcsync backup: sync -f .* failed: .*Input\/output error/);
    await expect(stat(dest)).rejects.toThrow(/ENOENT/);
    expect(await leftovers()).toEqual([]);
  });
});

test('where there is no sync -f, every file of the copy is fsync\'d instead', async () => {
  const empty = path.join(root.dir, 'no-sync');
  await mkdir(empty);
  const saved = process.env.PATH;
  process.env.PATH = empty;
  try {
    const report = await backupDataDir(source, path.join(root.dir, 'fsynced'));
    expect(report.syncedBy).toBe('fsync');
    expect(report.verify.sound).toBe(true);
  } finally {
    process.env.PATH = saved;
  }
});
