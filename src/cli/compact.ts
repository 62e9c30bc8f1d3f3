/**
 * `tcsync compact [--data-dir DIR]`: packs every client's loose versions. Exit 0 when done, 1
 * when the directory or a client could not be compacted (the reason on stderr), 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { compactDataDir } from '../ops/compact.js';
import { progressBar } from '../ops/progress.js';
import { HELP_OPTION, parseCommandArgs } from './usage-error.js';

const USAGE = `usage: tcsync compact [--data-dir DIR]
  --data-dir DIR  the data directory (env DATA_DIR; default ./data)
Moves every client's loose versions (two names each) into pack files, merged so that a client
keeps a few of them; serve does the same by itself once a client has 64 loose versions.
Safe on a live server: a client's lock is held only for the few milliseconds of its commit.`;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('compact', USAGE, () =>
    parseArgs({ args: argv, options: { 'data-dir': { type: 'string' }, ...HELP_OPTION } }),
  );
  if (typeof parsed === 'number') return parsed;
  // An empty DATA_DIR counts as unset, as for serve.
  const dataDir = parsed.values['data-dir'] ?? (process.env.DATA_DIR || './data');
  const progress = progressBar('compact');
  try {
    const report = await compactDataDir(dataDir, { onProgress: (done, total) => progress.update(done, total) });
    progress.end();
    for (const { clientId, reason } of report.failed) process.stderr.write(`tcsync compact: client ${clientId} left as it was: ${reason}\n`);
    process.stdout.write(`compacted ${report.compacted} of ${report.clients} clients: ${report.packed} versions moved into packs\n`);
    return report.failed.length === 0 ? 0 : 1;
  } catch (err) {
    progress.end();
    process.stderr.write(`tcsync compact: ${(err as Error).message}\n`);
    return 1;
  }
}
