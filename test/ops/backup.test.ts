/** `tcsync backup`: a consistent, verified copy of a live data directory, or nothing at all. */
import { cp, readdir, readFile, stat, unlink, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FileStorage, NIL_VERSION_ID, withTxn, type VersionId } from '../../src/index.js';
import { encodeVersion } from '../../src/storage/file/version-file.js';
import { buildFixture, buildPackedFixture, expectAcknowledgedIn, packedSegment, runCli, spawnWriter, tempDir, until, type Fixture } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  root = await tempDir();
});
afterAll(() => root.cleanup());

test('a backup taken while 8 writers add versions verifies and holds every version acknowledged before it started', async () => {
  const dataDir = path.join(root.dir, 'live');
  await FileStorage.open(dataDir).then((s) => s.close());
  // Two writers per client: they also race each other, as two replicas of one user do.
  const clients = [1, 2, 3, 4].map((n) => `0000000${n}-aaaa-4bbb-8ccc-00000000000${n}`);
  const writers = clients.flatMap((client) => [spawnWriter(dataDir, client), spawnWriter(dataDir, client)]);
  try {
    await until(() => {
      if (writers.some((w) => w.child.exitCode !== null)) throw new Error('a writer died');
      return writers.every((w) => w.acks.length >= 15);
    });
    const acknowledged = writers.map((w, i) => ({ client: clients[Math.floor(i / 2)] as string, versions: [...w.acks] }));
    const dest = path.join(root.dir, 'live-backup');
    const result = await runCli('backup', ['--data-dir', dataDir, dest]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^backup: 4 clients, \d+ files, .* copied to .*live-backup in [\d.]+ s\nsound: 4 clients, \d+ versions/);
    // The writers went on meanwhile: the backup raced real commits.
    expect(writers.some((w, i) => w.acks.length > (acknowledged[i]?.versions.length ?? 0))).toBe(true);

    await expectAcknowledgedIn(dest, acknowledged);
    expect((await runCli('verify', ['--data-dir', dest])).code).toBe(0);
    // verify is safe on the live data directory too: it sees only committed states (and, as
    // harmless, what a compaction under way has written but not named yet, or not removed yet).
    const live = await runCli('verify', ['--data-dir', dataDir]);
    expect(live.stdout).toMatch(/^sound: 4 clients/m);
    expect(live.stdout.split('\n').filter((line) => line !== '' && !line.startsWith('harmless ') && !line.startsWith('sound: '))).toEqual([]);
    expect(live.code).toBe(0);
  } finally {
    for (const w of writers) w.child.kill('SIGTERM');
    await Promise.all(writers.map((w) => w.exited));
  }
});

test('a backup of compacted and pruned histories copies the packs client.json names, and reads back whole', async () => {
  const source = path.join(root.dir, 'packed');
  const fx = await buildPackedFixture(source);
  // Leftovers of a compaction: a pack client.json does not name, a pack being written. Not copied.
  await writeFile(path.join(source, fx.packed, 'pack-aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee.pack'), 'unnamed');
  await writeFile(path.join(source, fx.packed, 'pack-aaaaaaaa-bbbb-4ccc-8ddd-ffffffffffff.pack.42'), 'being written');
  const dest = path.join(root.dir, 'packed-backup');
  const result = await runCli('backup', ['--data-dir', source, dest]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  // 35 versions, and 10 after the pruning; no harmless findings: the leftovers stayed behind.
  expect(result.stdout).toMatch(/\nsound: 2 clients, 45 versions, [\d.]+ KiB \([\d.]+ s\)\n$/);
  const named = (meta: string) => (JSON.parse(meta) as { packs: Array<{ file: string }> }).packs.map((p) => p.file);
  for (const client of [fx.packed, fx.pruned]) {
    const packs = named(await readFile(path.join(source, client, 'client.json'), 'utf8'));
    expect((await readdir(path.join(dest, client))).filter((n) => n.startsWith('pack-')).sort()).toEqual([...packs].sort());
    for (const pack of packs) expect(await readFile(path.join(dest, client, pack))).toEqual(await readFile(path.join(source, client, pack)));
  }

  const backup = await FileStorage.open(dest, { compactAfter: 0 });
  try {
    await withTxn(backup, fx.packed, async (txn) => {
      expect((await txn.getClient())?.latestVersionId).toBe(fx.packedVersions.at(-1));
      let parent: VersionId = NIL_VERSION_ID;
      for (const [i, id] of fx.packedVersions.entries()) {
        const version = await txn.getVersionByParent(parent);
        expect(version?.versionId).toBe(id);
        expect(Buffer.from(version!.historySegment)).toEqual(packedSegment(fx.packed, i));
        parent = id;
      }
    });
    await withTxn(backup, fx.pruned, async (txn) => {
      const ids = fx.prunedVersions;
      expect((await txn.getClient())?.snapshot?.versionId).toBe(ids[14]);
      expect(await txn.getSnapshotData(ids[14]!)).toEqual(new Uint8Array(500).fill(3));
      for (const id of ids.slice(0, 15)) expect(await txn.getVersion(id)).toBeNull();
      for (const [i, id] of ids.entries()) {
        if (i < 15) continue;
        const version = await txn.getVersionByParent(ids[i - 1]!);
        expect(version?.versionId).toBe(id);
        expect(Buffer.from(version!.historySegment)).toEqual(packedSegment(fx.pruned, i));
      }
    });
  } finally {
    await backup.close();
  }
});

describe('a backup of a stopped data directory', () => {
  let source: string;
  let fx: Fixture;
  beforeAll(async () => {
    source = path.join(root.dir, 'source');
    fx = await buildFixture(source);
    // Leftovers of interrupted transactions: not committed, so not copied.
    await writeFile(path.join(source, fx.plain, 'client.json.99'), '');
    await writeFile(path.join(source, fx.plain, 'versions', '99999999-9999-4999-8999-999999999999.version'), 'torn');
  });

  test('holds the committed files only, as copies whose .child/.version pairs are hard links', async () => {
    const dest = path.join(root.dir, 'copy');
    const result = await runCli('backup', ['--data-dir', source, dest]);
    expect(result.code).toBe(0);
    expect((await readdir(dest)).sort()).toEqual([fx.withSnapshot, fx.plain, fx.startsMidway, 'format.json', 'locks', 'tombstones', 'trash'].sort());
    expect(await readdir(path.join(dest, 'tombstones'))).toEqual([fx.deleted]);
    expect(await readdir(path.join(dest, fx.plain))).toEqual(['client.json', 'versions']);
    const versions = path.join(dest, fx.plain, 'versions');
    const names = (await readdir(versions)).sort();
    expect(names).toHaveLength(6);
    for (const name of names) {
      const copy = await stat(path.join(versions, name));
      const original = await stat(path.join(source, fx.plain, 'versions', name));
      expect(copy.ino).not.toBe(original.ino);
      expect(copy.nlink).toBe(2);
      expect(await readFile(path.join(versions, name))).toEqual(await readFile(path.join(source, fx.plain, 'versions', name)));
    }
    // No temporary directory is left beside DEST.
    expect((await readdir(root.dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  describe('of a copy that did not keep hard links (cp -r, fs.cp)', () => {
    let copied: string;
    beforeAll(async () => {
      copied = path.join(root.dir, 'copied-without-links');
      await cp(source, copied, { recursive: true });
    });

    test('copies each version once and hard-links its .child to it; the backup verifies clean', async () => {
      const dest = path.join(root.dir, 'copied-backup');
      const result = await runCli('backup', ['--data-dir', copied, dest]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      // No harmless findings in the copy: its links are hard links again.
      expect(result.stdout).toMatch(/\nsound: 3 clients, 10 versions, [\d.]+ KiB \([\d.]+ s\)\n$/);
      for (const client of [fx.withSnapshot, fx.plain, fx.startsMidway]) {
        const versions = path.join(dest, client, 'versions');
        const names = await readdir(versions);
        expect(names.length).toBeGreaterThan(0);
        for (const name of names) {
          expect((await stat(path.join(versions, name))).nlink, `${client}/${name}`).toBe(2);
          expect(await readFile(path.join(versions, name))).toEqual(await readFile(path.join(copied, client, 'versions', name)));
        }
      }
      const verify = await runCli('verify', ['--data-dir', dest]);
      expect(verify.code).toBe(0);
      expect(verify.stdout).toMatch(/^sound: 3 clients, 10 versions, [\d.]+ KiB \([\d.]+ s\)\n$/);
    });

    test('fails when a .child differs from its .version, instead of hiding it', async () => {
      const damaged = path.join(root.dir, 'copied-damaged');
      await cp(copied, damaged, { recursive: true });
      const [first, second] = fx.plainVersions as [VersionId, VersionId];
      const child = path.join(damaged, fx.plain, 'versions', `${first}.child`);
      await unlink(child);
      await writeFile(child, Buffer.concat(encodeVersion({ versionId: second, parentVersionId: first, historySegment: Buffer.from('other') })));
      const dest = path.join(root.dir, 'copied-damaged-backup');
      const result = await runCli('backup', ['--data-dir', damaged, dest]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`${fx.plain}/versions/${first}.child: differs from ${second}.version`);
      await expect(stat(dest)).rejects.toThrow(/ENOENT/);
    });
  });

  test('refuses an existing DEST, even an empty one, and leaves it alone', async () => {
    const dest = path.join(root.dir, 'exists');
    await mkdir(dest);
    const result = await runCli('backup', ['--data-dir', source, dest]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/exists already|already exists/);
    expect(await readdir(dest)).toEqual([]);
  });

  test('refuses a data directory of a newer format', async () => {
    const newer = path.join(root.dir, 'newer');
    await mkdir(newer);
    await writeFile(path.join(newer, 'format.json'), '{"format":"tcsync","version":3}\n');
    const result = await runCli('backup', ['--data-dir', newer, path.join(root.dir, 'newer-copy')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/data format 3; this tcsync reads format 2/);
  });

  test('of a damaged data directory fails, naming the problems, and creates no DEST', async () => {
    const damaged = path.join(root.dir, 'damaged');
    await buildFixture(damaged).then(async (d) => {
      const meta = path.join(damaged, d.plain, 'client.json');
      await writeFile(meta, (await readFile(meta, 'utf8')).slice(0, 30));
    });
    const dest = path.join(root.dir, 'damaged-copy');
    const result = await runCli('backup', ['--data-dir', damaged, dest]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the copy did not verify');
    expect(result.stderr).toContain('/client.json: not JSON');
    await expect(stat(dest)).rejects.toThrow(/ENOENT/);
  });

  test('bad usage exits 2', async () => {
    expect((await runCli('backup', ['--data-dir', source])).code).toBe(2);
    expect((await runCli('backup', ['--data-dir', source, 'a', 'b'])).code).toBe(2);
  });
});
