/** contrib/Caddyfile is one Debian's Caddy accepts. */
import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

const run = promisify(execFile);
const CADDY = '/usr/bin/caddy';
const CADDYFILE = fileURLToPath(new URL('../../contrib/Caddyfile', import.meta.url));

const unavailable = await access(CADDY).then(
  () => null,
  () => `${CADDY} is missing (apt-get install caddy)`,
);
if (unavailable !== null) {
  if (process.env.CI === 'true') throw new Error(`the Caddyfile must be checked on CI: ${unavailable}`);
  console.warn(`SKIPPED: caddy validate of contrib/Caddyfile: ${unavailable}`);
}

describe.skipIf(unavailable !== null)('contrib/Caddyfile', () => {
  let home: string;
  beforeAll(async () => {
    home = await makeTempDir('tcsync-caddy-');
  });
  afterAll(async () => {
    await removeDir(home);
  });

  it('passes caddy validate and is formatted as caddy fmt writes it', async () => {
    // Caddy keeps its state under HOME and XDG's directories: a temporary one, not the runner's.
    const env = { ...process.env, HOME: home, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home };
    const { stdout } = await run(CADDY, ['validate', '--adapter', 'caddyfile', '--config', CADDYFILE], { env });
    expect(stdout).toContain('Valid configuration');
    const { stdout: formatted } = await run(CADDY, ['fmt', CADDYFILE], { env });
    expect(formatted).toBe(await readFile(CADDYFILE, 'utf8'));
  });
});
