/**
 * The package as a server gets it: `npm pack`, then README's `npm install -g` (into a temporary
 * prefix) from the tarball alone, and the installed `tcsync` run from elsewhere.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../support/http-request.js';
import { NIL, ProtocolClient } from '../support/protocol-client.js';
import { cleanEnv, spawnServer } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
// better-sqlite3 compiles from source when no prebuilt binary can be fetched: about two minutes on 2 cores.
const INSTALL_TIMEOUT_MS = 600_000;

let dir: string;
let tarball: string;
let bin: string;

beforeAll(async () => {
  dir = await makeTempDir('tcsync-install-');
  // Without scripts: `npm test` has just built dist/, and prepack's rebuild would delete it under
  // the test files running beside this one.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO });
  tarball = path.join(dir, (JSON.parse(stdout) as [{ filename: string }])[0].filename);
  const prefix = path.join(dir, 'prefix');
  await mkdir(prefix);
  // README's command; from the temporary directory so that no project of ours is in reach.
  await run('npm', ['install', '-g', '--prefix', prefix, '--allow-scripts=better-sqlite3', '--no-audit', '--no-fund', tarball], {
    cwd: dir,
    env: cleanEnv(),
  });
  bin = path.join(prefix, 'bin', 'tcsync');
}, INSTALL_TIMEOUT_MS);

async function packageJson(): Promise<{ version: string; main: string; types: string; bin: { tcsync: string } }> {
  return JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as Awaited<ReturnType<typeof packageJson>>;
}

afterAll(async () => {
  if (dir !== undefined) await removeDir(dir);
});

describe('the installed package', () => {
  it('holds only runtime files: compiled JavaScript, its declarations, the schema it reads, package.json, and README with the docs it links to', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.split('\n').filter((line) => line !== '');
    const pkg = await packageJson();
    const expected = [pkg.bin.tcsync, pkg.main, pkg.types, 'schema.graphql', 'package.json', 'README.md', 'docs/storage.md'];
    expect(files).toEqual(expect.arrayContaining(expected.map((file) => `package/${file}`)));
    const unexpected = files.filter((file) => !/^package\/(dist\/.+(\.c?js|\.d\.ts)|schema\.graphql|package\.json|README\.md|docs\/[a-z-]+\.md)$/.test(file));
    expect(unexpected).toEqual([]);
  });

  it('prints its version and lists every command', async () => {
    expect((await run(bin, ['--version'])).stdout).toBe(`tcsync ${(await packageJson()).version}\n`);
    const help = (await run(bin, ['--help'])).stdout;
    for (const command of ['serve', 'verify', 'backup', 'migrate']) expect(help).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('serves from another directory: a version added is read back, GraphQL answers, SIGTERM exits 0', async () => {
    const elsewhere = path.join(dir, 'elsewhere');
    await mkdir(elsewhere);
    const server = await spawnServer(path.join(dir, 'data'), { command: [bin], cwd: elsewhere });
    try {
      const client = new ProtocolClient(server.url);
      const added = await client.addVersion(NIL, 'a history segment');
      expect(added.status).toBe(200);
      const child = await client.getChildVersion(NIL);
      expect(child.status).toBe(200);
      expect(child.headers['x-version-id']).toBe(added.headers['x-version-id']);
      expect(child.text).toBe('a history segment');
      // The schema is read from the package, not from the clone.
      const graphql = await httpRequest(`${server.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers: { Accept: 'application/json' } });
      expect(graphql.status).toBe(200);
      expect(JSON.parse(graphql.text)).toEqual({ data: { __typename: 'Query' } });
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
  });
});
