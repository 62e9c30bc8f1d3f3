/** `tcsync serve`'s flags and environment: names, defaults, lists, precedence and bad values. */
import { describe, expect, it } from 'vitest';
import { parseServeArgs, type ServeConfig } from '../../src/cli/serve-args.js';
import { UsageError } from '../../src/cli/usage-error.js';

const A = '711d5cf3-0cf0-4eb8-9eca-6f7f220638c0';
const B = 'bbaf4b61-344a-4a39-a19e-8caa0669b353';

function config(argv: string[], env: Record<string, string> = {}): ServeConfig {
  const args = parseServeArgs(argv, env);
  if (args.kind !== 'serve') throw new Error('expected a serve config');
  return args.config;
}

describe('defaults', () => {
  it('serves ./data on 127.0.0.1:8080, creates clients, allows every client, snapshots every 100 versions or 14 days, prunes nothing, compacts', () => {
    expect(config([])).toEqual({
      dataDir: './data',
      connection: null,
      listen: [{ host: '127.0.0.1', port: 8080 }],
      allowClientIds: null,
      createClients: true,
      snapshotVersions: 100,
      snapshotDays: 14,
      adminToken: null,
      logLevel: 'info',
      diskReserveBytes: 16 * 1024 * 1024,
      trustedProxies: null,
      pruneDays: null,
      compact: true,
    });
  });

  it('recognises --help and -h', () => {
    expect(parseServeArgs(['--help'], {}).kind).toBe('help');
    expect(parseServeArgs(['-h'], {}).kind).toBe('help');
  });
});

describe('flags and variables', () => {
  it('reads every variable', () => {
    expect(
      config([], {
        DATA_DIR: '/srv/tc',
        LISTEN: '0.0.0.0:9000,[::1]:9001',
        CLIENT_ID: `${A},${B.toUpperCase()}`,
        CREATE_CLIENTS: 'false',
        SNAPSHOT_VERSIONS: '20',
        SNAPSHOT_DAYS: '13',
        ADMIN_TOKEN: 'secret',
        DISK_RESERVE: '1G',
        TRUST_PROXY: '10.0.0.1',
        PRUNE_DAYS: '180',
        COMPACT: 'false',
      }),
    ).toMatchObject({
      dataDir: '/srv/tc',
      connection: null,
      listen: [
        { host: '0.0.0.0', port: 9000 },
        { host: '::1', port: 9001 },
      ],
      allowClientIds: new Set([A, B]),
      createClients: false,
      snapshotVersions: 20,
      snapshotDays: 13,
      adminToken: 'secret',
      logLevel: 'info',
      diskReserveBytes: 1024 ** 3,
      pruneDays: 180,
      compact: false,
    });
  });

  it('lets flags win over variables', () => {
    const env = { DATA_DIR: '/env', LISTEN: '127.0.0.1:1', CLIENT_ID: A, SNAPSHOT_VERSIONS: '1', SNAPSHOT_DAYS: '1', ADMIN_TOKEN: 'env', CREATE_CLIENTS: 'true' };
    const c = config(
      ['--data-dir', '/flag', '--listen', 'localhost:2', '--allow-client-id', B, '--snapshot-versions', '2', '--snapshot-days', '3', '--admin-token', 'flag', '--no-create-clients', '--log-level', 'debug'],
      env,
    );
    expect(c).toMatchObject({
      dataDir: '/flag',
      listen: [{ host: 'localhost', port: 2 }],
      allowClientIds: new Set([B]),
      snapshotVersions: 2,
      snapshotDays: 3,
      adminToken: 'flag',
      createClients: false,
      logLevel: 'debug',
    });
  });

  it('takes --disk-reserve in bytes or with K, M or G, and refuses anything else', () => {
    expect(config(['--disk-reserve', '0']).diskReserveBytes).toBe(0);
    expect(config(['--disk-reserve', '4096']).diskReserveBytes).toBe(4096);
    expect(config(['--disk-reserve', '64k']).diskReserveBytes).toBe(64 * 1024);
    expect(config(['--disk-reserve', '2M'], { DISK_RESERVE: '1G' }).diskReserveBytes).toBe(2 * 1024 * 1024);
    for (const bad of ['', ' 5', '-1', '1.5M', '5T', 'M']) {
      expect(() => config(['--disk-reserve', bad]), bad).toThrow(/--disk-reserve/);
    }
  });

  it('takes --connection or CONNECTION (a postgres URI), never together with a data dir', () => {
    const uri = 'postgresql://tc:secret@db.example:5432/tasks';
    expect(config(['--connection', uri]).connection).toBe(uri);
    expect(config([], { CONNECTION: 'postgres://db/tasks' }).connection).toBe('postgres://db/tasks');
    expect(config(['--connection', uri], { CONNECTION: 'postgres://other/db' }).connection).toBe(uri);
    expect(() => config(['--connection', uri, '--data-dir', '/srv/tc'])).toThrow(UsageError);
    expect(() => config([], { CONNECTION: uri, DATA_DIR: '/srv/tc' })).toThrow(UsageError);
    for (const bad of ['', 'mysql://db/tasks', 'db.example:5432']) {
      expect(() => config(['--connection', bad]), bad).toThrow(/--connection/);
    }
    // The refusal never repeats the value: it may carry a password.
    expect(() => config(['--connection', 'http://u:secret@db'])).toThrow(/^(?!.*secret)/);
  });

  it('takes --listen and --allow-client-id repeated, comma-separated, or both', () => {
    const c = config(['--listen', '127.0.0.1:0,[::1]:0', '--listen=localhost:0', '--allow-client-id', `{${A}}`, '--allow-client-id', `urn:uuid:${B}`]);
    expect(c.listen).toEqual([
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 0 },
      { host: 'localhost', port: 0 },
    ]);
    expect(c.allowClientIds).toEqual(new Set([A, B]));
  });

  it('takes --prune-days N (0 included) over PRUNE_DAYS, and --no-compact over COMPACT', () => {
    expect(config(['--prune-days', '0']).pruneDays).toBe(0);
    expect(config(['--prune-days', '30'], { PRUNE_DAYS: '180' }).pruneDays).toBe(30);
    expect(config([], { PRUNE_DAYS: '' }).pruneDays).toBeNull();
    expect(config(['--no-compact'], { COMPACT: 'true' }).compact).toBe(false);
    expect(config([], { COMPACT: 'on' }).compact).toBe(true);
    expect(config([], { COMPACT: 'no' }).compact).toBe(false);
  });

  it.each(['true', 'TRUE', '1', 'yes', 'on'])('reads CREATE_CLIENTS=%s as true', (value) => {
    expect(config([], { CREATE_CLIENTS: value }).createClients).toBe(true);
  });

  it.each(['false', 'False', '0', 'no', 'off'])('reads CREATE_CLIENTS=%s as false', (value) => {
    expect(config([], { CREATE_CLIENTS: value }).createClients).toBe(false);
  });

  it('takes --trust-proxy addresses and networks, repeated or comma-separated, else TRUST_PROXY; none by default', () => {
    const trusted = config(['--trust-proxy', '127.0.0.1,fd00::/8', '--trust-proxy', '10.1.0.0/16'], { TRUST_PROXY: '192.0.2.1' }).trustedProxies;
    const check = (address: string) => trusted?.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
    expect(['127.0.0.1', '::ffff:127.0.0.1', 'fd12::1', '10.1.200.3'].map(check)).toEqual([true, true, true, true]);
    expect(['127.0.0.2', '::1', '10.2.0.1', '192.0.2.1'].map(check)).toEqual([false, false, false, false]);
    expect(config([], { TRUST_PROXY: '192.0.2.1' }).trustedProxies?.check('192.0.2.1')).toBe(true);
    expect(config([], { TRUST_PROXY: '' }).trustedProxies).toBeNull();
  });

  it('treats an empty variable as unset', () => {
    expect(config([], { LISTEN: '', DATA_DIR: '', ADMIN_TOKEN: '', CLIENT_ID: '' })).toMatchObject({
      listen: [{ host: '127.0.0.1', port: 8080 }],
      dataDir: './data',
      adminToken: null,
      allowClientIds: null,
    });
  });
});

describe('bad values', () => {
  it.each([
    [['--listen', '8080'], /--listen/],
    [['--listen', 'localhost:65536'], /--listen/],
    [['--listen', '::1:8080'], /--listen/],
    [['--listen', 'host:port'], /--listen/],
    [['--allow-client-id', 'not-a-uuid'], /--allow-client-id/],
    [['--snapshot-versions', 'ten'], /--snapshot-versions/],
    [['--snapshot-versions', '-1'], /--snapshot-versions/],
    [['--snapshot-days', '1.5'], /--snapshot-days/],
    [['--snapshot-versions', '4294967296'], /--snapshot-versions/],
    [['--log-level', 'loud'], /--log-level/],
    [['--port', '8080'], /port/],
    [['stray'], /stray/],
    [['--data-dir'], /data-dir/],
    [['--snapshot-versions', ' 5'], /--snapshot-versions/],
    [['--snapshot-days', '7\n'], /--snapshot-days/],
    [['--allow-client-id', ''], /--allow-client-id.*empty/],
    [['--allow-client-id', ','], /--allow-client-id.*empty/],
    [['--allow-client-id', `${crypto.randomUUID()},`], /--allow-client-id.*empty/],
    [['--listen', '127.0.0.1:0', '--listen', ''], /--listen.*empty/],
    [['--listen', '127.0.0.1:0,,127.0.0.1:0'], /--listen.*empty/],
    [['--trust-proxy', 'localhost'], /--trust-proxy/],
    [['--trust-proxy', '10.0.0.0/33'], /--trust-proxy/],
    [['--trust-proxy', '10.0.0.0/8/8'], /--trust-proxy/],
    [['--trust-proxy', '10.0.0.0/'], /--trust-proxy/],
    [['--trust-proxy', '::1/129'], /--trust-proxy/],
    [['--trust-proxy', '127.0.0.1,'], /--trust-proxy.*empty/],
    [['--prune-days', '-1'], /--prune-days/],
    [['--prune-days', '1.5'], /--prune-days/],
    [['--prune-days', 'forever'], /--prune-days/],
    [['--prune-days', ''], /--prune-days/],
    [['--no-compact=false'], /no-compact/],
  ])('refuses %j with a message naming the option', (argv, message) => {
    expect(() => parseServeArgs(argv, {})).toThrow(UsageError);
    expect(() => parseServeArgs(argv, {})).toThrow(message);
  });

  it.each([
    [{ CREATE_CLIENTS: 'maybe' }, /CREATE_CLIENTS/],
    [{ SNAPSHOT_DAYS: 'x' }, /SNAPSHOT_DAYS/],
    [{ CLIENT_ID: 'x' }, /CLIENT_ID/],
    [{ LISTEN: 'nowhere' }, /LISTEN/],
    [{ CLIENT_ID: ',' }, /CLIENT_ID.*empty/],
    [{ SNAPSHOT_VERSIONS: '5 ' }, /SNAPSHOT_VERSIONS/],
    [{ TRUST_PROXY: 'proxy.example' }, /TRUST_PROXY/],
    [{ PRUNE_DAYS: '7d' }, /PRUNE_DAYS/],
    [{ COMPACT: 'sometimes' }, /COMPACT/],
  ])('refuses the environment %j with a message naming the variable', (env, message) => {
    expect(() => parseServeArgs([], env)).toThrow(message);
  });
});
