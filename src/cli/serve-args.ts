/**
 * `tcsync serve`'s command line and environment, with the reference server's names. A flag wins
 * over its environment variable; an empty variable counts as unset. Every bad value is a
 * UsageError naming the option.
 */
import type { BlockList } from 'node:net';
import { parseArgs } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { parseClientId, type ClientId } from '../ids.js';
import type { ListenAddress } from '../http/index.js';
import { parseListenAddress } from './listen-address.js';
import { parseTrustedProxies } from './trusted-proxies.js';
import { UsageError } from './usage-error.js';

export interface ServeConfig {
  /** --data-dir / DATA_DIR; not used when `connection` is set. @default './data' */
  readonly dataDir: string;
  /**
   * --connection / CONNECTION: a libpq connection URI (postgresql:// or postgres://); clients
   * then live in that PostgreSQL database instead of `dataDir`. @default null
   */
  readonly connection: string | null;
  /** --listen / LISTEN. @default [{ host: '127.0.0.1', port: 8080 }] */
  readonly listen: readonly ListenAddress[];
  /** --allow-client-id / CLIENT_ID, canonicalised; null allows every client. @default null */
  readonly allowClientIds: ReadonlySet<ClientId> | null;
  /** false with --no-create-clients or CREATE_CLIENTS=false. @default true */
  readonly createClients: boolean;
  /** --snapshot-versions / SNAPSHOT_VERSIONS. @default 100 */
  readonly snapshotVersions: number;
  /** --snapshot-days / SNAPSHOT_DAYS. @default 14 */
  readonly snapshotDays: number;
  /** --admin-token / ADMIN_TOKEN; null disables admin GraphQL operations. @default null */
  readonly adminToken: string | null;
  /** --log-level. @default 'info' */
  readonly logLevel: LevelWithSilent;
  /** --disk-reserve / DISK_RESERVE: below this many free bytes /healthz says "disk full". @default 16 MiB */
  readonly diskReserveBytes: number;
  /**
   * --trust-proxy / TRUST_PROXY: the reverse proxies whose X-Forwarded-For gives the client's
   * address in the request log; null believes no one and logs the direct peer. @default null
   */
  readonly trustedProxies: BlockList | null;
  /**
   * --prune-days / PRUNE_DAYS: versions that a client's latest snapshot covers are deleted once
   * added more than this many days ago (0: at once); null keeps every version. @default null
   */
  readonly pruneDays: number | null;
  /**
   * false with --no-compact or COMPACT=false: a data directory's version files are not packed
   * by serve on its own (the benchmark's baseline). No effect on PostgreSQL. @default true
   */
  readonly compact: boolean;
}

/** Every environment variable `serve` reads (the reference server's names where it has them). */
export const SERVE_ENVIRONMENT = [
  'DATA_DIR',
  'CONNECTION',
  'LISTEN',
  'CLIENT_ID',
  'CREATE_CLIENTS',
  'SNAPSHOT_VERSIONS',
  'SNAPSHOT_DAYS',
  'ADMIN_TOKEN',
  'DISK_RESERVE',
  'TRUST_PROXY',
  'PRUNE_DAYS',
  'COMPACT',
] as const;
type ServeVariable = (typeof SERVE_ENVIRONMENT)[number];

export type ServeArgs = { readonly kind: 'help' } | { readonly kind: 'serve'; readonly config: ServeConfig };

export const SERVE_USAGE = `usage: tcsync serve [options]

Serves the TaskChampion sync protocol v1, GraphQL, /healthz and /metrics on one port.

options (environment variable in parentheses; a flag wins over its variable):
  --data-dir DIR            where clients are stored; created if missing (DATA_DIR; default ./data)
  --connection URI          store clients in this PostgreSQL database instead, a libpq URI such as
                            postgresql://user:password@host:5432/db; not with --data-dir (CONNECTION)
  --listen HOST:PORT        address to listen on, repeatable or comma-separated; port 0 picks a
                            free port; IPv6 as [::1]:8080 (LISTEN; default 127.0.0.1:8080)
  --allow-client-id UUID    only these clients may sync, others get 403; repeatable or
                            comma-separated (CLIENT_ID; default: every client)
  --no-create-clients       unknown clients get 404 instead of being created (CREATE_CLIENTS=false)
  --snapshot-versions N     versions between snapshots the server asks for (SNAPSHOT_VERSIONS; default 100)
  --snapshot-days N         days between snapshots the server asks for (SNAPSHOT_DAYS; default 14)
  --admin-token TOKEN       enables admin GraphQL operations, sent as "Authorization: Bearer TOKEN"
                            (ADMIN_TOKEN; default: disabled)
  --log-level LEVEL         fatal, error, warn, info, debug, trace or silent (default info)
  --disk-reserve SIZE       /healthz is 503 "disk full" below this much free space; bytes, or
                            with K, M or G (DISK_RESERVE; default 16M)
  --trust-proxy ADDR        a reverse proxy (IP address or ADDRESS/PREFIX) whose X-Forwarded-For
                            names the client in the request log; repeatable or comma-separated
                            (TRUST_PROXY; default: none, the log names the direct peer)
  --prune-days N            delete the versions a client's latest snapshot covers once added more
                            than N days ago; 0: as soon as the snapshot is stored. A replica
                            behind them must be set up again from the snapshot (PRUNE_DAYS;
                            default: keep every version)
  --no-compact              do not pack a data directory's version files on the fly (COMPACT=false)
  -h, --help                show this help

Prints "listening on http://HOST:PORT" per address once ready; logs go to stderr.
SIGTERM or SIGINT: stops accepting, finishes requests in flight, releases locks, exits 0.`;

const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

export function parseServeArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ServeArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        'data-dir': { type: 'string' },
        connection: { type: 'string' },
        listen: { type: 'string', multiple: true },
        'allow-client-id': { type: 'string', multiple: true },
        'no-create-clients': { type: 'boolean' },
        'snapshot-versions': { type: 'string' },
        'snapshot-days': { type: 'string' },
        'admin-token': { type: 'string' },
        'log-level': { type: 'string' },
        'disk-reserve': { type: 'string' },
        'trust-proxy': { type: 'string', multiple: true },
        'prune-days': { type: 'string' },
        'no-compact': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return { kind: 'help' };

  const fromEnv = (name: ServeVariable): string | undefined => (env[name] === '' ? undefined : env[name]);
  const listen = listOf('--listen/LISTEN', values.listen, fromEnv('LISTEN')) ?? ['127.0.0.1:8080'];
  const allowed = listOf('--allow-client-id/CLIENT_ID', values['allow-client-id'], fromEnv('CLIENT_ID'));
  const trustProxy = listOf('--trust-proxy/TRUST_PROXY', values['trust-proxy'], fromEnv('TRUST_PROXY'));
  const createClientsEnv = fromEnv('CREATE_CLIENTS');
  const compactEnv = fromEnv('COMPACT');
  const pruneDays = values['prune-days'] ?? fromEnv('PRUNE_DAYS');
  const logLevel = values['log-level'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }

  const dataDir = values['data-dir'] ?? fromEnv('DATA_DIR');
  const connection = connectionOption(values.connection ?? fromEnv('CONNECTION'));
  // Which storage is meant would be a guess: refuse rather than serve the other one.
  if (connection !== null && dataDir !== undefined) throw new UsageError('--connection/CONNECTION and --data-dir/DATA_DIR exclude each other');

  return {
    kind: 'serve',
    config: {
      dataDir: dataDir ?? './data',
      connection,
      listen: listen.map(parseListenAddress),
      allowClientIds: allowed === null ? null : new Set(allowed.map(clientIdOption)),
      createClients: values['no-create-clients'] ? false : createClientsEnv === undefined || booleanOption('CREATE_CLIENTS', createClientsEnv),
      snapshotVersions: countOption('--snapshot-versions/SNAPSHOT_VERSIONS', values['snapshot-versions'] ?? fromEnv('SNAPSHOT_VERSIONS') ?? '100'),
      snapshotDays: countOption('--snapshot-days/SNAPSHOT_DAYS', values['snapshot-days'] ?? fromEnv('SNAPSHOT_DAYS') ?? '14'),
      adminToken: values['admin-token'] || fromEnv('ADMIN_TOKEN') || null,
      logLevel: logLevel as LevelWithSilent,
      diskReserveBytes: sizeOption('--disk-reserve/DISK_RESERVE', values['disk-reserve'] ?? fromEnv('DISK_RESERVE') ?? '16M'),
      trustedProxies: trustProxy === null ? null : parseTrustedProxies(trustProxy),
      pruneDays: pruneDays === undefined ? null : countOption('--prune-days/PRUNE_DAYS', pruneDays),
      compact: values['no-compact'] ? false : compactEnv === undefined || booleanOption('COMPACT', compactEnv),
    },
  };
}

/**
 * Repeated flags, else the variable; each value may itself be comma-separated. Null when neither
 * is given. An empty item is refused: `--allow-client-id ""` would otherwise lock every client out.
 */
function listOf(name: string, flags: readonly string[] | undefined, envValue: string | undefined): string[] | null {
  const raw = flags ?? (envValue === undefined ? null : [envValue]);
  if (raw === null) return null;
  const items = raw.flatMap((value) => value.split(',')).map((value) => value.trim());
  if (items.includes('')) throw new UsageError(`${name}: empty value in ${JSON.stringify(raw.join(','))}`);
  return items;
}

function connectionOption(value: string | undefined): string | null {
  if (value === undefined) return null;
  if (!/^postgres(ql)?:\/\//.test(value)) {
    // The value may hold a password: name its form, not the value.
    throw new UsageError('--connection/CONNECTION: expected a postgresql:// or postgres:// URI');
  }
  return value;
}

function clientIdOption(value: string): ClientId {
  try {
    return parseClientId(value);
  } catch {
    throw new UsageError(`--allow-client-id/CLIENT_ID: not a UUID: ${JSON.stringify(value)}`);
  }
}

function booleanOption(name: string, value: string): boolean {
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new UsageError(`${name}: expected true or false, got ${JSON.stringify(value)}`);
}

function countOption(name: string, value: string): number {
  // Digits only, as the reference server's u32 parsing takes them.
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n > 0xffff_ffff) {
    throw new UsageError(`${name}: expected a whole number from 0 to 4294967295, got ${JSON.stringify(value)}`);
  }
  return n;
}

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A size in bytes: digits, optionally followed by K, M or G (powers of 1024). */
function sizeOption(name: string, value: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(value);
  const bytes = match ? Number(match[1]) * (UNITS[(match[2] ?? '').toLowerCase()] ?? 1) : NaN;
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${name}: expected a size such as 16777216 or 16M, got ${JSON.stringify(value)}`);
  return bytes;
}
