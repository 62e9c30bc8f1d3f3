/**
 * `tcsync verify --data-dir DIR [--json] [--repair]`: checks every client's files;
 * `tcsync verify --connection URI [--json]`: checks every client of a PostgreSQL database.
 * Exit 0 when sound (harmless findings and warnings allowed), 1 when a problem was found or the
 * directory could not be verified, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { progressBar } from '../ops/progress.js';
import { findingLines, reportJson, summaryLine } from '../ops/verify-report.js';
import { verifyDatabase } from '../ops/verify-clients.js';
import { verifyDataDir } from '../ops/verify.js';
import { STORAGE_OPTIONS, storageTarget } from './storage-target.js';
import { HELP_OPTION, parseCommandArgs } from './usage-error.js';

const USAGE = `usage: tcsync verify [--data-dir DIR | --connection URI] [--json] [--repair]
  --data-dir DIR    the data directory (env DATA_DIR; default ./data)
  --connection URI  a PostgreSQL database instead (postgresql:// or postgres://)
  --json            print the report as JSON
  --repair          fix harmless findings: remove leftovers of interrupted transactions,
                    re-create pending links, re-link .child files copied without hard links;
                    also re-create a lost .child of a committed version where the chain
                    leaves no choice (never removes a committed version)
                    (a database has none: its transactions leave no leftovers)
Safe on a live server: each client is checked under its lock, or in one transaction.`;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('verify', USAGE, () =>
    parseArgs({
      args: argv,
      options: {
        ...STORAGE_OPTIONS,
        json: { type: 'boolean', default: false },
        repair: { type: 'boolean', default: false },
        ...HELP_OPTION,
      },
    }),
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const target = storageTarget('verify', values);
  if (typeof target === 'number') return target;
  const progress = progressBar('verify');
  try {
    const onProgress = (done: number, total: number) => progress.update(done, total);
    const report = target.kind === 'postgres' ? await verifyDatabase(target.connection, { onProgress }) : await verifyDataDir(target.dataDir, { repair: values.repair, onProgress });
    progress.end();
    const lines = values.json ? [reportJson(report)] : [...findingLines(report), summaryLine(report)];
    process.stdout.write(`${lines.join('\n')}\n`);
    return report.sound ? 0 : 1;
  } catch (err) {
    progress.end();
    process.stderr.write(`tcsync verify: ${(err as Error).message}\n`);
    return 1;
  }
}
