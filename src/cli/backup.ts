/**
 * `tcsync backup --data-dir DIR DEST`: a consistent, verified, durable copy of a live data
 * directory into DEST, which must not exist. Exit 0 ok, 1 failure, 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { backupDataDir } from '../ops/backup.js';
import { copyThenVerifyBars } from '../ops/progress.js';
import { formatBytes, summaryLine } from '../ops/verify-report.js';
import { HELP_OPTION, parseCommandArgs, reportUsage } from './usage-error.js';

const USAGE = `usage: tcsync backup [--data-dir DIR] DEST
  --data-dir DIR  the data directory (env DATA_DIR; default ./data)
  DEST            where the backup goes; must not exist
Safe on a live server: each client is copied as committed at one instant. DEST appears only once
complete, verified and durable.`;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('backup', USAGE, () =>
    parseArgs({ args: argv, allowPositionals: true, options: { 'data-dir': { type: 'string' }, ...HELP_OPTION } }),
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [dest, ...extra] = positionals;
  if (dest === undefined || extra.length > 0) {
    return reportUsage('backup', dest === undefined ? 'DEST is missing' : `unexpected argument ${extra[0]}`);
  }
  // An empty DATA_DIR counts as unset, as for serve.
  const dataDir = values['data-dir'] ?? (process.env.DATA_DIR || './data');
  const bars = copyThenVerifyBars('backup');
  try {
    const report = await backupDataDir(dataDir, dest, {
      onProgress: (phase, done, total) => bars.update(phase, done, total),
    });
    bars.end();
    process.stdout.write(
      `backup: ${report.clients} clients, ${report.files} files, ${formatBytes(report.bytes)} copied to ${report.dest} in ${(report.durationMs / 1000).toFixed(1)} s\n` +
        `${summaryLine(report.verify)}\n`,
    );
    return 0;
  } catch (err) {
    bars.end();
    process.stderr.write(`tcsync backup: ${(err as Error).message}\n`);
    return 1;
  }
}
