/**
 * contrib/'s systemd unit, its PostgreSQL drop-in and its environment file: systemd itself finds
 * nothing wrong with them, and what they hand `tcsync serve` is what serve takes.
 */
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServeArgs, SERVE_ENVIRONMENT } from '../../src/cli/serve-args.js';
import { CLI } from '../support/spawn-server.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const run = promisify(execFile);
const CONTRIB = fileURLToPath(new URL('../../contrib/', import.meta.url));
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const INSTALLED_BIN = '/usr/local/bin/tcsync';

const missing = await access(SYSTEMD_ANALYZE).then(
  () => null,
  () => `${SYSTEMD_ANALYZE} is missing (apt-get install systemd)`,
);
if (missing !== null) {
  if (process.env.CI === 'true') throw new Error(`the systemd unit must be verified on CI: ${missing}`);
  console.warn(`SKIPPED: systemd-analyze verify of contrib/tcsync.service: ${missing}`);
}

const unit = await readFile(path.join(CONTRIB, 'tcsync.service'), 'utf8');
const dropIn = await readFile(path.join(CONTRIB, 'tcsync-postgres.conf'), 'utf8');
const envFile = await readFile(path.join(CONTRIB, 'tcsync.env'), 'utf8');

/** The `KEY=value` lines of a unit's section, in order (systemd's syntax: no continuations used here). */
function directives(text: string, section: string): [string, string][] {
  const lines = text.split('\n').map((line) => line.trim());
  const start = lines.indexOf(`[${section}]`);
  if (start === -1) return [];
  const end = lines.findIndex((line, i) => i > start && line.startsWith('['));
  return lines
    .slice(start + 1, end === -1 ? undefined : end)
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}

function values(text: string, key: string): string[] {
  return directives(text, 'Service').filter(([k]) => k === key).map(([, v]) => v);
}

/** An environment file's assignments (systemd's: KEY=VALUE lines, # comments). */
function environmentFile(text: string): Record<string, string> {
  const entries = text.split('\n').filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
  return Object.fromEntries(entries.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

/** What the service's process gets: the unit's Environment=, then the file, minus UnsetEnvironment=. */
function serviceEnvironment(units: readonly string[], file: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const text of units) for (const assignment of values(text, 'Environment')) Object.assign(env, environmentFile(assignment));
  Object.assign(env, file);
  for (const text of units) for (const name of values(text, 'UnsetEnvironment').flatMap((v) => v.split(/\s+/))) delete env[name];
  return env;
}

const [execStart] = values(unit, 'ExecStart');
const [program, command, ...flags] = (execStart ?? '').split(/\s+/);

describe('contrib/tcsync.service', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir('tcsync-systemd-');
  });
  afterAll(async () => {
    await removeDir(dir);
  });

  it.skipIf(missing !== null)('passes systemd-analyze verify, alone and with the PostgreSQL drop-in, without a warning', async () => {
    // verify checks that ExecStart's program exists: point it at this clone's tcsync instead of
    // the installed one, and change nothing else.
    expect(program).toBe(INSTALLED_BIN);
    const units = path.join(dir, 'units');
    await mkdir(path.join(units, 'tcsync.service.d'), { recursive: true });
    await writeFile(path.join(units, 'tcsync.service'), unit.replace(`ExecStart=${INSTALLED_BIN} `, `ExecStart=${process.execPath} ${CLI} `));
    for (const withDropIn of [false, true]) {
      const dropInPath = path.join(units, 'tcsync.service.d', 'postgres.conf');
      if (withDropIn) await writeFile(dropInPath, dropIn);
      // Unknown keys and bad values are only warnings on stderr, exit 0: so stderr must be empty too.
      const { stderr } = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', 'tcsync.service'], {
        cwd: units,
        env: { ...process.env, SYSTEMD_UNIT_PATH: `${units}:` },
      });
      expect(stderr, withDropIn ? 'with the drop-in' : 'alone').toBe('');
    }
  });

  it('runs `tcsync serve` with flags serve takes, stopped by SIGTERM, its graceful stop', () => {
    expect(command).toBe('serve');
    expect(parseServeArgs(flags, {}).kind).toBe('serve');
    expect(values(unit, 'KillSignal')).toEqual(['SIGTERM']);
    expect(values(unit, 'StateDirectory')).toEqual(['tcsync']);
  });

  it('sets only variables serve reads, in the unit and in contrib/tcsync.env, which names them all', () => {
    const file = environmentFile(envFile);
    const unitVariables = values(unit, 'Environment').flatMap((assignment) => Object.keys(environmentFile(assignment)));
    expect([...unitVariables, ...Object.keys(file)].filter((name) => !(SERVE_ENVIRONMENT as readonly string[]).includes(name))).toEqual([]);
    expect(Object.keys(file).sort()).toEqual([...SERVE_ENVIRONMENT].sort());
  });

  it('serves the state directory on loopback with the example file, and PostgreSQL with the drop-in', () => {
    const files = parseServeArgs(flags, serviceEnvironment([unit], environmentFile(envFile)));
    expect(files.kind === 'serve' && files.config).toMatchObject({ dataDir: '/var/lib/tcsync', connection: null, listen: [{ host: '127.0.0.1', port: 8080 }] });

    const uri = 'postgresql://tcsync:secret@localhost:5432/tcsync';
    const postgres = parseServeArgs(flags, serviceEnvironment([unit, dropIn], { ...environmentFile(envFile), CONNECTION: uri }));
    expect(postgres.kind === 'serve' && postgres.config).toMatchObject({ connection: uri });
    expect(directives(dropIn, 'Unit')).toContainEqual(['After', expect.stringContaining('postgresql.service')]);
  });
});
