/**
 * `tcsync usage --data-dir DIR | --connection URI [--json]`: every client with the versions and
 * bytes it stores, largest first. Exit 0 with the table, 1 when the storage cannot be read, 2 on
 * bad usage.
 */
import { parseArgs } from 'node:util';
import { openDataDir } from '../ops/data-dir.js';
import { progressBar } from '../ops/progress.js';
import { usageJson, usageLines, usageReport } from '../ops/usage.js';
import { PostgresStorage } from '../storage/postgres/postgres-storage.js';
import type { Storage } from '../storage/storage.js';
import { STORAGE_OPTIONS, storageTarget } from './storage-target.js';
import { HELP_OPTION, parseCommandArgs } from './usage-error.js';

const USAGE = `usage: tcsync usage [--data-dir DIR | --connection URI] [--json]
  --data-dir DIR    the data directory (env DATA_DIR; default ./data)
  --connection URI  a PostgreSQL database instead (postgresql:// or postgres://)
  --json            print the clients as JSON
Lists every client by the bytes it stores (its versions' history segments plus its snapshot),
largest first, with its number of versions and when the oldest was added ('-' where unknown:
PostgreSQL does not record it). Safe on a live server: it takes no locks and writes nothing;
a client committing meanwhile is counted as it was at some moment.`;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('usage', USAGE, () =>
    parseArgs({
      args: argv,
      options: {
        ...STORAGE_OPTIONS,
        json: { type: 'boolean', default: false },
        ...HELP_OPTION,
      },
    }),
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const target = storageTarget('usage', values);
  if (typeof target === 'number') return target;
  const progress = progressBar('usage');
  let storage: Storage | null = null;
  try {
    // A database is read as it is: no tables are created in it.
    storage = target.kind === 'postgres' ? await PostgresStorage.open(target.connection, { create: false }) : await openDataDir(target.dataDir);
    const report = await usageReport(storage, { onProgress: (done, total) => progress.update(done, total) });
    progress.end();
    process.stdout.write(`${(values.json ? [usageJson(report)] : usageLines(report)).join('\n')}\n`);
    return 0;
  } catch (err) {
    progress.end();
    process.stderr.write(`tcsync usage: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await storage?.close();
  }
}
