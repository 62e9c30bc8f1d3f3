/**
 * Where ops read from or write to: a data directory (a path), a PostgreSQL database (a libpq
 * URI, `postgresql://` or `postgres://`), or upstream's SQLite file (`sqlite:PATH`, read only).
 */
import type { ClientSource } from '../storage/client-export.js';
import type { FileStorageOptions } from '../storage/file/file-storage.js';
import { PostgresStorage } from '../storage/postgres/postgres-storage.js';
import { SqliteSource } from '../storage/sqlite/sqlite-source.js';
import { openDataDir } from './data-dir.js';

export type Endpoint =
  | { readonly kind: 'dir'; readonly path: string }
  | { readonly kind: 'postgres'; readonly uri: string }
  | { readonly kind: 'sqlite'; readonly path: string };

const POSTGRES_URI = /^postgres(ql)?:\/\//i;
const SQLITE_PREFIX = 'sqlite:';

export function parseEndpoint(spec: string): Endpoint {
  if (POSTGRES_URI.test(spec)) return { kind: 'postgres', uri: spec };
  if (spec.startsWith(SQLITE_PREFIX)) return { kind: 'sqlite', path: spec.slice(SQLITE_PREFIX.length) };
  return { kind: 'dir', path: spec };
}

/** What an endpoint is, for messages: never the URI itself, which may hold a password. */
export function describeEndpoint(endpoint: Endpoint): string {
  if (endpoint.kind === 'postgres') {
    const url = URL.canParse(endpoint.uri) ? new URL(endpoint.uri) : null;
    return url ? `PostgreSQL database ${url.pathname.slice(1) || '(default)'} on ${url.host || 'localhost'}` : 'PostgreSQL database';
  }
  return endpoint.kind === 'sqlite' ? `SQLite database ${endpoint.path}` : `data directory ${endpoint.path}`;
}

/**
 * Opens an existing source: a data directory must exist and be one, a database must be
 * reachable (and is read as it is: a source gets no tables created in it).
 */
export async function openSource(endpoint: Endpoint, lock?: FileStorageOptions): Promise<ClientSource> {
  switch (endpoint.kind) {
    case 'dir':
      return openDataDir(endpoint.path, lock);
    case 'postgres':
      return PostgresStorage.open(endpoint.uri, { create: false });
    case 'sqlite':
      return SqliteSource.open(endpoint.path);
  }
}
