/**
 * `tcsync backup --data-dir DIR DEST`: a consistent, verified, durable copy of a live data
 * directory into DEST, which must not exist. Exit 0 ok, 1 failure, 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { backupDataDir } from '../ops/backup.js';
import { progressBar, type Progress } from '../ops/progress.js';
import { formatBytes, summaryLine } from '../ops/verify-report.js';
import { reportUsage } from './usage-error.js';

const USAGE = `usage: tcsync backup [--data-dir DIR] DEST
  --data-dir DIR  the data directory (env DATA_DIR; default ./data)
  DEST            where the backup goes; must not exist
Safe on a live server: each client is copied under its lock. DEST appears only once complete and verified.`;

export async function main(argv: string[]): Promise<number> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    return reportUsage('backup', (err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [dest, ...extra] = positionals;
  if (dest === undefined || extra.length > 0) {
    return reportUsage('backup', dest === undefined ? 'DEST is missing' : `unexpected argument ${extra[0]}`);
  }
  // An empty DATA_DIR counts as unset, as for serve.
  const dataDir = values['data-dir'] ?? (process.env.DATA_DIR || './data');
  const bars: Record<'copy' | 'verify', Progress> = { copy: progressBar('backup: copy'), verify: progressBar('backup: verify') };
  try {
    const report = await backupDataDir(dataDir, dest, {
      onProgress: (phase, done, total) => {
        if (phase === 'verify') bars.copy.end();
        bars[phase].update(done, total);
      },
    });
    bars.verify.end();
    process.stdout.write(
      `backup: ${report.clients} clients, ${report.files} files, ${formatBytes(report.bytes)} copied to ${report.dest} in ${(report.durationMs / 1000).toFixed(1)} s\n` +
        `${summaryLine(report.verify)}\n`,
    );
    return 0;
  } catch (err) {
    bars.copy.end();
    bars.verify.end();
    process.stderr.write(`tcsync backup: ${(err as Error).message}\n`);
    return 1;
  }
}
