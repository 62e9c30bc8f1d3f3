/**
 * The PostgreSQL server the benchmarks run tcsync on: TCSYNC_BENCH_POSTGRES, or the tests'
 * TCSYNC_TEST_POSTGRES, a URI for a role that may create databases. Each run gets an empty
 * database of its own (CREATE DATABASE tcsync_bench_<random>), dropped afterwards, so that no
 * figure is taken on a database that earlier runs or tests have filled.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

const ENVS = ['TCSYNC_BENCH_POSTGRES', 'TCSYNC_TEST_POSTGRES'] as const;

/** The base URI, or why there is none. */
function benchPostgresUri(): { readonly uri: string } | { readonly skipped: string } {
  for (const name of ENVS) {
    const uri = process.env[name];
    if (uri !== undefined && uri !== '') return { uri };
  }
  return { skipped: `neither ${ENVS.join(' nor ')} is set (a URI for a role with CREATEDB, e.g. postgresql://tcsync_test:tcsync_test@127.0.0.1:5432/tcsync_test)` };
}

export interface BenchDatabase {
  readonly uri: string;
  readonly name: string;
  /** Runs `work` on a connection of its own to this database, closed afterwards. */
  connected<T>(work: (client: pg.Client) => Promise<T>): Promise<T>;
  /** Drops the database, ending whatever sessions are still on it. */
  drop(): Promise<void>;
}

/** An empty database on the benchmarks' server, or why there is none. */
export async function benchDatabase(): Promise<BenchDatabase | { readonly skipped: string }> {
  const base = benchPostgresUri();
  if ('skipped' in base) return base;
  try {
    return await freshDatabase(base.uri);
  } catch (err) {
    return { skipped: `no database could be created on ${new URL(base.uri).host}: ${(err as Error).message}` };
  }
}

async function freshDatabase(base: string): Promise<BenchDatabase> {
  const name = `tcsync_bench_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  await connected(base, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(base);
  url.pathname = `/${name}`;
  const uri = url.toString();
  return {
    uri,
    name,
    connected: (work) => connected(uri, work),
    drop: async () => void (await connected(base, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}

async function connected<T>(uri: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: uri });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
