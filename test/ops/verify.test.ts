/** `tcsync verify`: a sound data directory passes; each kind of damage is named; leftovers are harmless and repairable. */
import { cp, link, readdir, readFile, rm, stat, truncate, unlink, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newVersionId, type VersionId } from '../../src/index.js';
import { parseMeta, serializeMeta } from '../../src/storage/file/client-meta.js';
import { encodeVersion } from '../../src/storage/file/version-file.js';
import { buildFixture, copyDir, runCli, tempDir, verifyJson, type Fixture } from './support.js';

let root: { dir: string; cleanup: () => Promise<void> };
let template: string;
let fx: Fixture;
let copies = 0;

beforeAll(async () => {
  root = await tempDir();
  template = path.join(root.dir, 'template');
  fx = await buildFixture(template);
});
afterAll(() => root.cleanup());

/** A fresh copy of the sound fixture, to damage. */
function freshCopy(): string {
  const dir = path.join(root.dir, `copy-${++copies}`);
  copyDir(template, dir);
  return dir;
}


const versionsDir = (dataDir: string, client: string) => path.join(dataDir, client, 'versions');

/** A whole version file's bytes. */
const versionBytes = (versionId: VersionId, parentVersionId: VersionId, segment: string) =>
  Buffer.concat(encodeVersion({ versionId, parentVersionId, historySegment: Buffer.from(segment) }));

test('a sound data directory exits 0 with a one-line summary', async () => {
  const result = await runCli('verify', ['--data-dir', template]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  // Three clients: 5 + 3 + 2 versions; one of them starts at a version that was never stored.
  expect(result.stdout).toMatch(/^sound: 3 clients, 10 versions, [\d.]+ KiB \([\d.]+ s\)\n$/);
});

test('--json reports the counts and every finding with severity, client, file and message', async () => {
  const dataDir = freshCopy();
  await writeFile(path.join(dataDir, fx.plain, 'client.json.123456'), '{"torn');
  const { code, report } = await verifyJson(dataDir);
  expect(code).toBe(0);
  expect(report).toEqual({
    dataDir,
    sound: true,
    clients: 3,
    versions: 10,
    bytes: expect.any(Number),
    durationMs: expect.any(Number),
    findings: [
      {
        severity: 'harmless',
        client: fx.plain,
        file: `${fx.plain}/client.json.123456`,
        message: 'a temporary file of an interrupted client.json rewrite',
        repaired: false,
      },
    ],
  });
});

describe('damage is named precisely, with a non-zero exit', () => {
  const cases: Array<{ name: string; damage: (dataDir: string) => Promise<void>; file: () => string; message: () => RegExp }> = [
    {
      name: 'a truncated snapshot blob',
      damage: async (d) => {
        const blob = (await readdir(path.join(d, fx.withSnapshot))).find((n) => n.startsWith('snapshot-')) as string;
        await truncate(path.join(d, fx.withSnapshot, blob), 100);
      },
      file: () => `${fx.withSnapshot}/snapshot-`,
      message: () => /^is 100 bytes, client\.json says 2000$/,
    },
    {
      name: 'a truncated version',
      damage: (d) => truncate(path.join(versionsDir(d, fx.plain), `${fx.plainVersions[1]}.version`), 60),
      file: () => `${fx.plain}/versions/${fx.plainVersions[0]}.child`,
      message: () => /no header line|segment is \d+ bytes, header says \d+/,
    },
    {
      name: 'a broken parent link (a .child removed mid-chain)',
      damage: (d) => unlink(path.join(versionsDir(d, fx.withSnapshot), `${fx.withSnapshotVersions[1]}.child`)),
      file: () => `${fx.withSnapshot}/versions/${fx.withSnapshotVersions[1]}.child`,
      message: () => new RegExp(`^missing: version ${fx.withSnapshotVersions[2]}`),
    },
    {
      name: 'missing metadata',
      damage: (d) => unlink(path.join(d, fx.plain, 'client.json')),
      file: () => `${fx.plain}/client.json`,
      message: () => /^missing, but the directory holds committed versions/,
    },
    {
      name: 'a snapshot without its blob',
      damage: async (d) => {
        const blob = (await readdir(path.join(d, fx.withSnapshot))).find((n) => n.startsWith('snapshot-')) as string;
        await unlink(path.join(d, fx.withSnapshot, blob));
      },
      file: () => `${fx.withSnapshot}/snapshot-`,
      message: () => new RegExp(`^missing, but client\\.json names it as the snapshot of version `),
    },
    {
      name: 'a file whose name the format does not define',
      damage: (d) => writeFile(path.join(versionsDir(d, fx.plain), 'notes.txt'), 'hello'),
      file: () => `${fx.plain}/versions/notes.txt`,
      message: () => /^a name the format does not define$/,
    },
    {
      name: 'a .child that is not the same inode as its .version, and holds other bytes',
      damage: async (d) => {
        const child = path.join(versionsDir(d, fx.plain), `${fx.plainVersions[0]}.child`);
        // A whole version of the same ids, so that only the difference from the .version is wrong.
        await unlink(child);
        await writeFile(child, versionBytes(fx.plainVersions[1] as VersionId, fx.plainVersions[0] as VersionId, 'another segment'));
      },
      file: () => `${fx.plain}/versions/${fx.plainVersions[0]}.child`,
      message: () => new RegExp(`^differs from ${fx.plainVersions[1]}\\.version \\(neither the same file nor the same bytes\\)$`),
    },
    {
      name: 'a torn version file with a second link (not what a crash mid-write leaves)',
      damage: async (d) => {
        const torn = path.join(versionsDir(d, fx.plain), `${newVersionId()}.version`);
        await writeFile(torn, '{"versionId":"');
        await link(torn, `${d}-extra-link`);
      },
      file: () => `${fx.plain}/versions/`,
      message: () => /^no header line \(with 2 links, not the leftover of a crash mid-write\)$/,
    },
    {
      name: 'client.json that is not JSON',
      damage: (d) => writeFile(path.join(d, fx.startsMidway, 'client.json'), '{"format": 1, "checkpoint'),
      file: () => `${fx.startsMidway}/client.json`,
      message: () => /^not JSON$/,
    },
    {
      name: 'a tombstone that is not JSON',
      damage: (d) => writeFile(path.join(d, 'tombstones', fx.deleted), 'garbage'),
      file: () => `tombstones/${fx.deleted}`,
      message: () => /^not a tombstone/,
    },
    {
      name: 'a stray file in the data directory',
      damage: (d) => writeFile(path.join(d, 'backup.tar'), ''),
      file: () => 'backup.tar',
      message: () => /^a name the format does not define$/,
    },
  ];

  for (const { name, damage, file, message } of cases) {
    test(name, async () => {
      const dataDir = freshCopy();
      await damage(dataDir);
      const { code, report } = await verifyJson(dataDir);
      expect(code).toBe(1);
      expect(report.sound).toBe(false);
      const problems = report.findings.filter((f) => f.severity === 'problem');
      expect(problems.some((f) => f.file.startsWith(file()) && message().test(f.message)), JSON.stringify(problems, null, 2)).toBe(true);
    });
  }

  test('the text output names client, file and problem, and says NOT SOUND', async () => {
    const dataDir = freshCopy();
    await unlink(path.join(versionsDir(dataDir, fx.withSnapshot), `${fx.withSnapshotVersions[1]}.child`));
    const result = await runCli('verify', ['--data-dir', dataDir]);
    expect(result.code).toBe(1);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toContain(
      `problem  ${fx.withSnapshot}/versions/${fx.withSnapshotVersions[1]}.child: missing: version ${fx.withSnapshotVersions[2]} is on the chain from the latest version, but nothing links it to its parent`,
    );
    expect(lines.at(-1)).toMatch(/^NOT SOUND: \d+ problems?; checked 3 clients/);
  });

  test('a committed version off the chain (the checkpoint before a broken link) is named', async () => {
    const dataDir = freshCopy();
    // plain's checkpoint is its first version: removing the next link cuts off the rest.
    await unlink(path.join(versionsDir(dataDir, fx.plain), `${fx.plainVersions[0]}.child`));
    const { code, report } = await verifyJson(dataDir);
    expect(code).toBe(1);
    expect(report.findings).toContainEqual(
      expect.objectContaining({
        severity: 'problem',
        file: `${fx.plain}/versions/${fx.plainVersions[2]}.version`,
        message: `committed, but not on the chain from the latest version ${fx.plainVersions[0]}`,
      }),
    );
  });
});

describe('a lost .child in the middle of the committed chain', () => {
  /** The `.version` files of a client, to show --repair removed none of them. */
  const versionFiles = async (dataDir: string, client: string) => (await readdir(versionsDir(dataDir, client))).filter((n) => n.endsWith('.version')).sort();

  test('names the cut-off version as committed (exit 1), and --repair re-links it without removing any version', async () => {
    const dataDir = freshCopy();
    const [first, second, third] = fx.plainVersions as [VersionId, VersionId, VersionId];
    // plain's checkpoint is its first version: its link to the second is in the middle of the chain.
    await unlink(path.join(versionsDir(dataDir, fx.plain), `${first}.child`));
    const files = await versionFiles(dataDir, fx.plain);
    expect(files).toEqual([first, second, third].map((id) => `${id}.version`).sort());

    const before = await verifyJson(dataDir);
    expect(before.code).toBe(1);
    expect(before.report.sound).toBe(false);
    expect(before.report.findings).toContainEqual(
      expect.objectContaining({
        severity: 'problem',
        file: `${fx.plain}/versions/${first}.child`,
        message: `missing: version ${second} is committed (committed version ${third} names it as its parent), but nothing links it to its parent`,
      }),
    );
    expect(before.report.findings.filter((f) => f.severity !== 'problem')).toEqual([]);

    const repaired = await verifyJson(dataDir, '--repair');
    expect(repaired.code).toBe(1);
    expect(repaired.report.findings).toContainEqual(expect.objectContaining({ file: `${fx.plain}/versions/${first}.child`, repaired: true }));
    expect(await versionFiles(dataDir, fx.plain)).toEqual(files);
    const after = await runCli('verify', ['--data-dir', dataDir]);
    expect(after.stdout).toMatch(/^sound: 3 clients, 10 versions, /);
    expect(after.code).toBe(0);
  });

  test('when another version holds the link, the cut-off ones are named and --repair leaves every version in place', async () => {
    const dataDir = freshCopy();
    const [first, second, third] = fx.plainVersions as [VersionId, VersionId, VersionId];
    const dir = versionsDir(dataDir, fx.plain);
    await unlink(path.join(dir, `${first}.child`));
    // A version committed on top of the first after its link was lost: which chain is right is not certain.
    const other = newVersionId();
    await writeFile(path.join(dir, `${other}.version`), versionBytes(other, first, 'committed meanwhile'));
    await link(path.join(dir, `${other}.version`), path.join(dir, `${first}.child`));
    const files = await versionFiles(dataDir, fx.plain);

    const before = await verifyJson(dataDir);
    expect(before.code).toBe(1);
    expect(before.report.findings).toContainEqual(
      expect.objectContaining({
        severity: 'problem',
        file: `${fx.plain}/versions/${first}.child`,
        message: `links another version than ${second}, which is committed (committed version ${third} names it as its parent)`,
      }),
    );
    expect(before.report.findings.filter((f) => f.severity === 'harmless')).toEqual([]);

    const repaired = await verifyJson(dataDir, '--repair');
    expect(repaired.code).toBe(1);
    expect(repaired.report.findings.some((f) => f.repaired)).toBe(false);
    expect(await versionFiles(dataDir, fx.plain)).toEqual(files);
  });
});

describe('leftovers of interrupted transactions', () => {
  test('are harmless (exit 0), and --repair removes them or completes pending links', async () => {
    const dataDir = freshCopy();
    const plainVersions = versionsDir(dataDir, fx.plain);
    // An uncommitted version: written whole on top of the latest, never linked.
    const stray: VersionId = newVersionId();
    await writeFile(path.join(plainVersions, `${stray}.version`), versionBytes(stray, fx.plainVersions[2] as VersionId, 'never committed'));
    // A superseded snapshot blob, a temporary client.json, a half-created client.
    await writeFile(path.join(dataDir, fx.withSnapshot, 'snapshot-aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee.bin'), 'old');
    await writeFile(path.join(dataDir, fx.plain, 'client.json.42'), '');
    const halfCreated = '55555555-5555-4555-8555-555555555555';
    await mkdir(path.join(dataDir, halfCreated, 'versions'), { recursive: true });
    await writeFile(path.join(dataDir, halfCreated, 'versions', `${newVersionId()}.version`), 'x');
    // A client.json that committed the last two versions at once lists their links as pending,
    // and a crash right after it may lose them: as such a commit leaves plain, with one lost.
    const [first, second, third] = fx.plainVersions as [VersionId, VersionId, VersionId];
    const metaFile = path.join(dataDir, fx.plain, 'client.json');
    const meta = parseMeta(await readFile(metaFile, 'utf8'), metaFile);
    const pendingLinks = [{ versionId: second, parentVersionId: first }, { versionId: third, parentVersionId: second }];
    await writeFile(metaFile, serializeMeta({ ...meta, checkpointVersionId: third, pendingLinks }));
    await unlink(path.join(plainVersions, `${first}.child`));

    const before = await verifyJson(dataDir);
    expect(before.code).toBe(0);
    expect(before.report.sound).toBe(true);
    expect(before.report.versions).toBe(10);
    const harmless = before.report.findings.filter((f) => f.severity === 'harmless');
    expect(harmless.map((f) => f.file).sort()).toEqual(
      [
        `${fx.plain}/versions/${stray}.version`,
        `${fx.withSnapshot}/snapshot-aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee.bin`,
        `${fx.plain}/client.json.42`,
        halfCreated,
        `${fx.plain}/versions/${fx.plainVersions[0]}.child`,
      ].sort(),
    );
    expect(before.report.findings.every((f) => f.severity === 'harmless' && !f.repaired)).toBe(true);

    const repaired = await verifyJson(dataDir, '--repair');
    expect(repaired.code).toBe(0);
    expect(repaired.report.findings.every((f) => f.repaired)).toBe(true);

    const after = await runCli('verify', ['--data-dir', dataDir]);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/^sound: 3 clients, 10 versions, [\d.]+ KiB \([\d.]+ s\)\n$/);
    await expect(readdir(path.join(dataDir, halfCreated))).rejects.toThrow(/ENOENT/);
  });

  test('without --repair, the text summary says how many and how to remove them', async () => {
    const dataDir = freshCopy();
    await writeFile(path.join(dataDir, fx.plain, 'client.json.7'), '');
    const result = await runCli('verify', ['--data-dir', dataDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`harmless ${fx.plain}/client.json.7: a temporary file of an interrupted client.json rewrite\n`);
    expect(result.stdout).toMatch(/^sound: .*; 1 harmless finding \(verify --repair fixes them\)/m);
  });

  test('a torn version file with one link (a crash mid-write) is harmless, and --repair removes it', async () => {
    const dataDir = freshCopy();
    const empty = path.join(versionsDir(dataDir, fx.plain), `${newVersionId()}.version`);
    const halfHeader = path.join(versionsDir(dataDir, fx.withSnapshot), `${newVersionId()}.version`);
    await writeFile(empty, '');
    await writeFile(halfHeader, '{"versionId":"');

    const before = await verifyJson(dataDir);
    expect(before.code).toBe(0);
    expect(before.report.findings.map(({ file, severity, message }) => ({ file, severity, message })).sort((a, b) => a.file.localeCompare(b.file))).toEqual(
      [empty, halfHeader]
        .map((file) => ({ file: path.relative(dataDir, file), severity: 'harmless', message: 'a torn uncommitted version: the leftover of a crash mid-write' }))
        .sort((a, b) => a.file.localeCompare(b.file)),
    );

    expect((await verifyJson(dataDir, '--repair')).report.findings.every((f) => f.repaired)).toBe(true);
    await expect(stat(empty)).rejects.toThrow(/ENOENT/);
    await expect(stat(halfHeader)).rejects.toThrow(/ENOENT/);
    expect((await verifyJson(dataDir)).report.findings).toEqual([]);
  });
});

describe('a copy that did not keep hard links (cp -r, fs.cp)', () => {
  test('is sound with harmless findings; --repair re-links each .child to its .version', async () => {
    const dataDir = path.join(root.dir, `copy-${++copies}`);
    await cp(template, dataDir, { recursive: true });
    const children = async () =>
      (await Promise.all([fx.withSnapshot, fx.plain, fx.startsMidway].map(async (client) =>
        (await readdir(versionsDir(dataDir, client))).filter((n) => n.endsWith('.child')).map((n) => path.join(client, 'versions', n)),
      ))).flat().sort();
    const links = await children();
    // 5 + 3 + 2 versions, each linked from its parent.
    expect(links).toHaveLength(10);
    expect((await stat(path.join(dataDir, links[0] as string))).nlink).toBe(1);

    const before = await verifyJson(dataDir);
    expect(before.code).toBe(0);
    expect(before.report).toMatchObject({ sound: true, clients: 3, versions: 10 });
    expect(before.report.findings.map((f) => f.file).sort()).toEqual(links);
    for (const f of before.report.findings) {
      expect(f.severity).toBe('harmless');
      expect(f.message).toMatch(/^the same bytes as [0-9a-f-]{36}\.version, but not hard-linked to it \(e\.g\. copied without keeping hard links\)$/);
    }

    const repaired = await verifyJson(dataDir, '--repair');
    expect(repaired.code).toBe(0);
    expect(repaired.report.findings.every((f) => f.repaired)).toBe(true);
    expect(await children()).toEqual(links);
    for (const child of links) {
      const st = await stat(path.join(dataDir, child));
      expect(st.nlink).toBe(2);
      const version = (await readFile(path.join(dataDir, child))).subarray(0, 200).toString('utf8').match(/"versionId":"([^"]+)"/)?.[1];
      expect((await stat(path.join(dataDir, path.dirname(child), `${version}.version`))).ino).toBe(st.ino);
    }
    // No temporary link is left behind.
    for (const client of [fx.withSnapshot, fx.plain, fx.startsMidway]) {
      expect((await readdir(versionsDir(dataDir, client))).every((n) => /\.(version|child)$/.test(n))).toBe(true);
    }

    const after = await runCli('verify', ['--data-dir', dataDir]);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/^sound: 3 clients, 10 versions, [\d.]+ KiB \([\d.]+ s\)\n$/);
  });

  test('a temporary link left by an interrupted --repair is harmless, and removed', async () => {
    const dataDir = freshCopy();
    const child = path.join(versionsDir(dataDir, fx.plain), `${fx.plainVersions[0]}.child`);
    await link(child, `${child}.12345`);
    const { code, report } = await verifyJson(dataDir, '--repair');
    expect(code).toBe(0);
    expect(report.findings).toEqual([
      { severity: 'harmless', client: fx.plain, file: path.relative(dataDir, `${child}.12345`), message: 'a temporary link of an interrupted verify --repair', repaired: true },
    ]);
    await expect(stat(`${child}.12345`)).rejects.toThrow(/ENOENT/);
  });
});

describe('refusals', () => {
  test('a data directory of a newer format is refused with a clear error', async () => {
    const dataDir = freshCopy();
    await writeFile(path.join(dataDir, 'format.json'), '{"format":"tcsync","version":3}\n');
    const result = await runCli('verify', ['--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/data format 3; this tcsync reads format 2\. Use a newer tcsync\./);
  });

  test('a client.json of a newer format is a problem naming it', async () => {
    const dataDir = freshCopy();
    const meta = path.join(dataDir, fx.plain, 'client.json');
    await writeFile(meta, JSON.stringify({ ...JSON.parse(await readFile(meta, 'utf8')), format: 9 }));
    const { code, report } = await verifyJson(dataDir);
    expect(code).toBe(1);
    expect(report.findings).toContainEqual(expect.objectContaining({ file: `${fx.plain}/client.json`, message: 'format 9 is newer than this tcsync understands' }));
  });

  test('a directory that is not a data directory is an error, and is not initialised', async () => {
    const empty = path.join(root.dir, 'empty');
    await mkdir(empty);
    const result = await runCli('verify', ['--data-dir', empty]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/is not a tcsync data directory \(it has no format\.json\)/);
    expect(await readdir(empty)).toEqual([]);
    await rm(empty, { recursive: true });
  });

  test('bad usage exits 2; DATA_DIR is the default data directory', async () => {
    expect((await runCli('verify', ['--frobnicate'])).code).toBe(2);
    const viaEnv = await runCli('verify', [], { DATA_DIR: template });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toMatch(/^sound: 3 clients/);
  });
});
