/**
 * Where a command that reads clients (verify, usage) looks: a data directory or a PostgreSQL
 * database, from `--data-dir` (env DATA_DIR, default ./data) or `--connection`, which exclude each
 * other.
 */
import { parseEndpoint } from '../ops/endpoint.js';
import { reportUsage } from './usage-error.js';

/** The options naming it, for parseArgs. */
export const STORAGE_OPTIONS = {
  'data-dir': { type: 'string' },
  connection: { type: 'string' },
} as const;

export type StorageTarget = { readonly kind: 'files'; readonly dataDir: string } | { readonly kind: 'postgres'; readonly connection: string };

/** The target the options name, or exit code 2 after telling the user what is wrong. */
export function storageTarget(command: string, values: { readonly 'data-dir'?: string; readonly connection?: string }): StorageTarget | number {
  const { connection } = values;
  if (connection === undefined) {
    // An empty DATA_DIR counts as unset, as for serve.
    return { kind: 'files', dataDir: values['data-dir'] ?? (process.env.DATA_DIR || './data') };
  }
  if (values['data-dir'] !== undefined) return reportUsage(command, '--connection and --data-dir exclude each other');
  if (parseEndpoint(connection).kind !== 'postgres') {
    return reportUsage(command, '--connection takes a PostgreSQL URI (postgresql://... or postgres://...)');
  }
  return { kind: 'postgres', connection };
}
