/**
 * `tcsync migrate --from SOURCE --to DEST`: copies every client and tombstone between a data
 * directory, a PostgreSQL database and (as a source) upstream's SQLite file, and verifies the
 * copy. Exit 0 ok, 1 failure (DEST holding clients, a fault, a copy that does not read back), 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { describeEndpoint, parseEndpoint } from '../ops/endpoint.js';
import { migrate } from '../ops/migrate.js';
import { copyThenVerifyBars } from '../ops/progress.js';
import { formatBytes } from '../ops/verify-report.js';
import { HELP_OPTION, parseCommandArgs, reportUsage } from './usage-error.js';

const USAGE = `usage: tcsync migrate --from SOURCE --to DEST
  --from SOURCE  a data directory (a path), a PostgreSQL URI (postgresql://...), or
                 sqlite:PATH, upstream taskchampion-sync-server's database (opened read-only)
  --to DEST      a data directory that is missing or empty, or a PostgreSQL URI of a
                 database without clients
Copies every client (versions, latest version, snapshot) and tombstone, then reads the copy back.
Safe on a live SOURCE: each client is copied under its lock or in one transaction.`;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('migrate', USAGE, () =>
    parseArgs({ args: argv, options: { from: { type: 'string' }, to: { type: 'string' }, ...HELP_OPTION } }),
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (!values.from || !values.to) return reportUsage('migrate', `${values.from ? '--to' : '--from'} is missing`);
  const from = parseEndpoint(values.from);
  const to = parseEndpoint(values.to);
  if (to.kind === 'sqlite') return reportUsage('migrate', "--to cannot be sqlite: upstream's SQLite file is a source only");
  const bars = copyThenVerifyBars('migrate');
  try {
    const report = await migrate(from, to, {
      onProgress: (phase, done, total) => bars.update(phase, done, total),
    });
    bars.end();
    process.stdout.write(
      `migrate: ${report.clients} clients, ${report.versions} versions, ${report.tombstones} tombstones, ${formatBytes(report.bytes)} ` +
        `copied to the ${describeEndpoint(to)} and verified in ${(report.durationMs / 1000).toFixed(1)} s\n`,
    );
    return 0;
  } catch (err) {
    bars.end();
    process.stderr.write(`tcsync migrate: ${(err as Error).message}\n`);
    return 1;
  }
}
