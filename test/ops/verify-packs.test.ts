/**
 * `tcsync verify` on packed histories: a history is its packed versions and its loose ones; a
 * damaged pack is named with the versions it holds (and the storage answers CORRUPT for them,
 * never their bytes); what a crashed compaction leaves is harmless, and `--repair` removes it
 * without touching anything committed.
 */
import { mkdir, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FileStorage, NIL_VERSION_ID, newVersionId, withTxn, type ClientId, type VersionId } from '../../src/index.js';
import { encodeIndex, indexBytes, PackIndex, type PackEntry } from '../../src/storage/file/pack-file.js';
import { buildPackedFixture, copyDir, packedSegment, runCli, tempDir, verifyJson as verifyReport, type PackedFixture } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
let template: string;
let fx: PackedFixture;
let copies = 0;

beforeAll(async () => {
  root = await tempDir();
  template = path.join(root.dir, 'template');
  fx = await buildPackedFixture(template);
});
afterAll(() => root.cleanup());

function freshCopy(): string {
  const dir = path.join(root.dir, `copy-${++copies}`);
  copyDir(template, dir);
  return dir;
}

/** `verify --json` on a packed history: it always reads through, whatever it finds, without a word on stderr. */
async function verifyJson(dataDir: string, ...flags: string[]) {
  const { code, report, stderr } = await verifyReport(dataDir, ...flags);
  expect(stderr).toBe('');
  return { code, report };
}

/** The packs client.json names, oldest first, with their paths. */
async function packsOf(dataDir: string, client: ClientId): Promise<Array<{ file: string; path: string; versions: number; size: number }>> {
  const meta = JSON.parse(await readFile(path.join(dataDir, client, 'client.json'), 'utf8')) as { packs: Array<{ file: string; versions: number; size: number }> };
  return meta.packs.map((pack) => ({ ...pack, path: path.join(dataDir, client, pack.file) }));
}

/** Every version of a client by id and by parent through FileStorage, as a replica would read them. */
async function readAll(dataDir: string, client: ClientId, ids: readonly VersionId[], first = 0): Promise<void> {
  const storage = await FileStorage.open(dataDir, { compactAfter: 0 });
  try {
    await withTxn(storage, client, async (txn) => {
      expect((await txn.getClient())?.latestVersionId).toBe(ids.at(-1));
      for (const [i, id] of ids.entries()) {
        const version = await txn.getVersion(id);
        expect(Buffer.from(version!.historySegment).toString()).toBe(packedSegment(client, first + i).toString());
        expect((await txn.getVersionByParent(version!.parentVersionId))?.versionId).toBe(id);
      }
    });
  } finally {
    await storage.close();
  }
}

/** What the storage answers for one version: its id, or the error code. */
async function readOne(dataDir: string, client: ClientId, id: VersionId): Promise<string> {
  const storage = await FileStorage.open(dataDir, { compactAfter: 0 });
  try {
    return await withTxn(storage, client, async (txn) => (await txn.getVersion(id))?.versionId ?? 'null');
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    await storage.close();
  }
}

test('a packed history verifies as sound, its packed and loose versions all on the chain', async () => {
  const result = await runCli('verify', ['--data-dir', template]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  // 35 versions, and 10 left after the pruning (its chain starts at the pruned snapshot's version).
  expect(result.stdout).toMatch(/^sound: 2 clients, 45 versions, [\d.]+ KiB \([\d.]+ s\)\n$/);
  expect(await packsOf(template, fx.packed)).toMatchObject([{ versions: 20 }, { versions: 10 }]);
});

describe('a damaged pack is a problem naming it and the versions it holds, and is never read as good bytes', () => {
  const problemsOf = async (dataDir: string) => {
    const { code, report } = await verifyJson(dataDir);
    expect(code).toBe(1);
    expect(report.sound).toBe(false);
    return report.findings.filter((f) => f.severity === 'problem').map(({ file, message }) => ({ file, message }));
  };

  test('a missing pack', async () => {
    const dataDir = freshCopy();
    const [older] = await packsOf(dataDir, fx.packed);
    await unlink(older!.path);
    expect(await problemsOf(dataDir)).toEqual([{ file: `${fx.packed}/${older!.file}`, message: 'missing, but client.json names it as a pack of 20 versions' }]);
    expect(await readOne(dataDir, fx.packed, fx.packedVersions[3]!)).toBe('CORRUPT');
  });

  test('a truncated pack: what its records still hold is named', async () => {
    const dataDir = freshCopy();
    const [older] = await packsOf(dataDir, fx.packed);
    // Cuts into the 8th record: 7 whole ones are left before it.
    const bytes = await readFile(older!.path);
    await truncate(older!.path, bytes.indexOf(packedSegment(fx.packed, 7)));
    const problems = await problemsOf(dataDir);
    const file = `${fx.packed}/${older!.file}`;
    expect(problems).toContainEqual({ file, message: expect.stringMatching(new RegExp(`^truncated: \\d+ bytes, client\\.json says ${older!.size}$`)) });
    expect(problems).toContainEqual({
      file,
      message: `the storage cannot read any of its 20 versions; its records hold 7 versions, ${fx.packedVersions[0]} (whose parent is ${NIL_VERSION_ID}) to ${fx.packedVersions[6]}`,
    });
    expect(await readOne(dataDir, fx.packed, fx.packedVersions[3]!)).toBe('CORRUPT');
  });

  test('a flipped byte in a record fails its checksum: that version is named', async () => {
    const dataDir = freshCopy();
    const [older] = await packsOf(dataDir, fx.packed);
    const bytes = await readFile(older!.path);
    const at = bytes.indexOf(packedSegment(fx.packed, 5)) + 2;
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(older!.path, bytes);
    expect(await problemsOf(dataDir)).toEqual([
      { file: `${fx.packed}/${older!.file}`, message: expect.stringMatching(new RegExp(`^the record of version ${fx.packedVersions[5]} \\(at \\d+, \\d+ bytes\\): segment checksum mismatch$`)) },
    ]);
    expect(await readOne(dataDir, fx.packed, fx.packedVersions[5]!)).toBe('CORRUPT');
    expect(await readOne(dataDir, fx.packed, fx.packedVersions[4]!)).toBe(fx.packedVersions[4]);
  });

  test('a flipped byte in the index fails the index checksum: every version it holds is named', async () => {
    const dataDir = freshCopy();
    const [, newer] = await packsOf(dataDir, fx.packed);
    const bytes = await readFile(newer!.path);
    // An entry's addedAt: a lookup would still work, the checksum tells.
    const at = bytes.length - indexBytes(10) + 50;
    bytes[at] = bytes[at]! ^ 0x40;
    await writeFile(newer!.path, bytes);
    expect(await problemsOf(dataDir)).toEqual([
      { file: `${fx.packed}/${newer!.file}`, message: 'its index: index checksum mismatch' },
      {
        file: `${fx.packed}/${newer!.file}`,
        message: `the storage cannot read any of its 10 versions; its records hold 10 versions, ${fx.packedVersions[20]} (whose parent is ${fx.packedVersions[19]}) to ${fx.packedVersions[29]}`,
      },
    ]);
    expect(await readOne(dataDir, fx.packed, fx.packedVersions[25]!)).toBe('CORRUPT');
  });

  test('an index that disagrees with its records (its checksum right)', async () => {
    const dataDir = freshCopy();
    const [older] = await packsOf(dataDir, fx.packed);
    const bytes = await readFile(older!.path);
    const length = indexBytes(20);
    const entries = PackIndex.parse(bytes, bytes.length, 20, older!.path).entries();
    // Versions 3 and 4 swap records: each entry points at the other's.
    const swap = (a: PackEntry, b: PackEntry): PackEntry => ({ ...a, offset: b.offset, length: b.length });
    const [three, four] = [entries[3]!, entries[4]!];
    entries[3] = swap(three, four);
    entries[4] = swap(four, three);
    await writeFile(older!.path, Buffer.concat([bytes.subarray(0, bytes.length - length), encodeIndex(entries)]));
    const problems = await problemsOf(dataDir);
    const file = `${fx.packed}/${older!.file}`;
    for (const i of [3, 4]) {
      expect(problems).toContainEqual({ file, message: expect.stringMatching(new RegExp(`^the record of version ${fx.packedVersions[i]} \\(at \\d+, \\d+ bytes\\): record is not the version its index names$`)) });
    }
    expect(problems).toHaveLength(2);
    expect(await readOne(dataDir, fx.packed, fx.packedVersions[3]!)).toBe('CORRUPT');
  });

  test('a client directory with packs but no client.json is damage, and --repair keeps it', async () => {
    const dataDir = freshCopy();
    await unlink(path.join(dataDir, fx.pruned, 'client.json'));
    await rm(path.join(dataDir, fx.pruned, 'versions'), { recursive: true });
    await mkdir(path.join(dataDir, fx.pruned, 'versions'));
    expect(await problemsOf(dataDir)).toEqual([{ file: `${fx.pruned}/client.json`, message: 'missing, but the directory holds committed versions or other files' }]);
    await verifyJson(dataDir, '--repair');
    expect((await readdir(path.join(dataDir, fx.pruned))).filter((name) => name.endsWith('.pack'))).toHaveLength(1);
  });
});

describe('what a compaction interrupted by a crash leaves', () => {
  const client = 'cccccccc-3333-4333-8333-333333333333' as ClientId;

  /**
   * A client of 12 versions compacted into one pack, with the loose files the compaction would
   * have removed put back (a crash after client.json's rename), a pack that client.json does not
   * name (a crash before it), and a pack being written (a temporary file).
   */
  async function crashedCompaction(): Promise<{ dataDir: string; ids: VersionId[]; leftovers: string[] }> {
    const dataDir = path.join(root.dir, `crash-${++copies}`);
    const storage = await FileStorage.open(dataDir, { compactAfter: 0 });
    const ids: VersionId[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        const id = newVersionId();
        await withTxn(storage, client, async (txn) => {
          if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
          await txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, packedSegment(client, i));
        });
        ids.push(id);
      }
      const versionsDir = path.join(dataDir, client, 'versions');
      const before = path.join(root.dir, `loose-${copies}`);
      copyDir(versionsDir, before);
      expect(await storage.compact(client)).toEqual({ packed: 12, merged: 0 });
      expect(await readdir(versionsDir)).toEqual([]);
      // cp -a keeps each .child a hard link of its .version, as the compaction left them.
      copyDir(`${before}/.`, versionsDir);
    } finally {
      await storage.close();
    }
    const [pack] = await packsOf(dataDir, client);
    const unnamed = path.join(dataDir, client, `pack-${crypto.randomUUID()}.pack`);
    await writeFile(unnamed, await readFile(pack!.path));
    const temp = path.join(dataDir, client, `pack-${crypto.randomUUID()}.pack.123456`);
    await writeFile(temp, '{"format":"tcsync-pack","version":1,"versions":3}\n');
    const loose = (await readdir(path.join(dataDir, client, 'versions'))).map((name) => path.join(dataDir, client, 'versions', name));
    // 12 .version files and 12 .child links (the first's parent is nil).
    expect(loose).toHaveLength(24);
    return { dataDir, ids, leftovers: [unnamed, temp, ...loose].map((file) => path.relative(dataDir, file)).sort() };
  }

  test('is harmless (exit 0), and --repair removes it, leaving every version readable', async () => {
    const { dataDir, ids, leftovers } = await crashedCompaction();
    const before = await verifyJson(dataDir);
    expect(before.code).toBe(0);
    expect(before.report).toMatchObject({ sound: true, clients: 1, versions: 12 });
    expect(before.report.findings.map((f) => f.file).sort()).toEqual(leftovers);
    expect(before.report.findings.every((f) => f.severity === 'harmless' && !f.repaired)).toBe(true);
    expect(before.report.findings.find((f) => f.file.endsWith(`${ids[4]}.version`))?.message).toMatch(
      new RegExp(`^a loose copy of version ${ids[4]}, which pack-[0-9a-f-]+\\.pack holds: left by a compaction \\(interrupted, or removing it now\\)$`),
    );

    const repaired = await verifyJson(dataDir, '--repair');
    expect(repaired.code).toBe(0);
    expect(repaired.report.findings.every((f) => f.repaired)).toBe(true);
    expect(await readdir(path.join(dataDir, client, 'versions'))).toEqual([]);
    expect((await readdir(path.join(dataDir, client))).filter((name) => name.startsWith('pack-'))).toHaveLength(1);

    const after = await verifyJson(dataDir);
    expect(after.report).toMatchObject({ sound: true, versions: 12, findings: [] });
    await readAll(dataDir, client, ids);
  });

  test('a loose copy of a version whose packed record is damaged is kept: it may be the only good copy', async () => {
    const { dataDir, ids } = await crashedCompaction();
    const [pack] = await packsOf(dataDir, client);
    const bytes = await readFile(pack!.path);
    const at = bytes.indexOf(packedSegment(client, 6)) + 1;
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(pack!.path, bytes);

    const { code, report } = await verifyJson(dataDir, '--repair');
    expect(code).toBe(1);
    expect(report.findings.filter((f) => f.severity === 'problem').map((f) => f.message)).toEqual([
      expect.stringMatching(new RegExp(`^the record of version ${ids[6]} \\(at \\d+, \\d+ bytes\\): segment checksum mismatch$`)),
    ]);
    const kept = report.findings.filter((f) => f.severity === 'warning');
    expect(kept.map((f) => f.file).sort()).toEqual([`${client}/versions/${ids[5]}.child`, `${client}/versions/${ids[6]}.version`].sort());
    expect(kept[0]!.message).toMatch(new RegExp(`^a loose copy of version ${ids[6]}, whose record in pack-[0-9a-f-]+\\.pack cannot be read: kept, as it may be the only good copy$`));
    expect((await readdir(path.join(dataDir, client, 'versions'))).sort()).toEqual([`${ids[5]}.child`, `${ids[6]}.version`].sort());
  });
});
