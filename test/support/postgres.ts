/**
 * The PostgreSQL server the tests use: TCSYNC_TEST_POSTGRES, a URI for a role that may create
 * schemas (.ci/run sets one up). Without it the PostgreSQL tests are skipped, loudly; in CI
 * (CI=true) its absence fails them instead, so CI never passes without having run them.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe } from 'vitest';

const ENV = 'TCSYNC_TEST_POSTGRES';

/** The base URI, or null when the tests are to be skipped (after saying so). */
function baseUri(): string | null {
  const uri = process.env[ENV];
  if (uri !== undefined && uri !== '') return uri;
  if (process.env.CI === 'true') {
    throw new Error(`${ENV} is not set, and CI must run the PostgreSQL tests: .ci/run sets it up`);
  }
  console.warn(
    `\n!!! PostgreSQL tests SKIPPED: ${ENV} is not set. Point it at a role that may create schemas, e.g.\n` +
      `!!!   ${ENV}=postgresql://tcsync_test:tcsync_test@127.0.0.1:5432/tcsync_test (.ci/run creates one)\n`,
  );
  return null;
}

const BASE = baseUri();

/** `describe`, or `describe.skip` without a test database. */
export const describePostgres = BASE === null ? describe.skip : describe;

/** The base URI; only to be called inside {@link describePostgres}. */
export function postgresUri(): string {
  if (BASE === null) throw new Error(`${ENV} is not set`);
  return BASE;
}

/** A connection-URI whose sessions use `schema` (the search_path) instead of the default one. */
export function uriWithSchema(schema: string): string {
  const url = new URL(postgresUri());
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** Runs SQL on the base URI, on a connection of its own. */
export async function adminQuery(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: postgresUri() });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/** An empty schema of its own for one test: its URI, and a drop for afterwards. */
export async function freshSchema(): Promise<{ readonly uri: string; readonly schema: string; drop(): Promise<void> }> {
  const schema = `tcsync_test_${randomUUID().replaceAll('-', '')}`;
  await adminQuery(`CREATE SCHEMA ${schema}`);
  return {
    uri: uriWithSchema(schema),
    schema,
    drop: async () => {
      await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  };
}
