/**
 * A PostgreSQL cluster of the test's own, in a temporary directory on a spare port, that the
 * test may stop and start (the shared cluster of TCSYNC_TEST_POSTGRES must never be stopped:
 * other tests use it at the same time). initdb refuses to run as root, so the cluster belongs to
 * the postgres user and is driven through runuser, as root may.
 */
import { execFile } from 'node:child_process';
import { chown, readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir } from './temp-dir.js';

const run = promisify(execFile);

export interface ThrowawayCluster {
  /** A superuser's URI (trust authentication, 127.0.0.1 only). */
  readonly uri: string;
  /** Shuts the server down as an operator would (fast: sessions are ended), and waits for it. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it at once and removes its files. */
  destroy(): Promise<void>;
}

/** Why a throwaway cluster cannot be made here, or null when it can. */
export async function throwawayUnavailable(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'not running as root (runuser -u postgres is needed for initdb)';
  return (await binDir()) === null ? 'no PostgreSQL server binaries in /usr/lib/postgresql' : null;
}

async function binDir(): Promise<string | null> {
  const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  const version = versions.sort().at(-1);
  return version === undefined ? null : path.join('/usr/lib/postgresql', version, 'bin');
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startThrowawayCluster(): Promise<ThrowawayCluster> {
  const bin = await binDir();
  if (bin === null) throw new Error('no PostgreSQL server binaries');
  const root = await makeTempDir('tcsync-pg-');
  const { stdout } = await run('id', ['-u', 'postgres']);
  await chown(root, Number(stdout.trim()), -1);
  const data = path.join(root, 'data');
  const port = await freePort();
  const asPostgres = (tool: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args], { cwd: '/' });
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = async () => {
    await asPostgres('pg_ctl', ['-D', data, '-o', options, '-l', path.join(root, 'log'), '-w', 'start']);
  };
  const stop = async (mode = 'fast') => {
    await asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  };
  await start();
  return {
    uri: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    stop: () => stop(),
    start,
    destroy: async () => {
      await stop('immediate').catch(() => undefined);
      await removeDir(root);
    },
  };
}
