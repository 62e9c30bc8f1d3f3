/**
 * Operations figures. Issue 5: verify and backup throughput, in clients/s and MB/s, on a data
 * directory of 1,000 clients x 100 versions of 1 KiB (BENCH_OPS_CLIENTS changes the count).
 * Backup is shown whole (copy, check of the copy, one sync).
 *
 * Issue 21: `tcsync backup` of many small clients against the simplest copy that is as durable,
 * `cp -a` followed by `sync`, on the same data directory in the same run: 10,000 clients
 * (BENCH_BACKUP_CLIENTS) of two 1 KiB versions and a snapshot each, about 80,000 names. Each
 * round times `cp -a SRC DST` + `sync`, `tar -cf` + `sync` and the built CLI as a user runs it
 * (`dist/bin.cjs backup`, the file `tcsync` names), in an order turned every round
 * (BENCH_BACKUP_RUNS rounds); the figures are medians. Everything starts from a synced disk and a
 * warm page cache, and no copy is removed before the run ends (see scratch.ts: deleting 80,000
 * files would slow the next copy). BENCH_BACKUP_BASELINE, the bin.cjs of another build (before a
 * change, say), adds that build's backup to the same rounds.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FileStorage, parseClientId } from '../dist/index.js';
import { backupDataDir } from '../dist/ops/backup.js';
import { forEachLimit } from '../dist/pool.js';
import { verifyDataDir } from '../dist/ops/verify.js';
import { clientWithHistory, replicatedDataDir } from './fixtures.js';
import { fmt, median, type BenchSection } from './report.js';
import { scratchDir } from './scratch.js';

const CLIENTS = Number(process.env.BENCH_OPS_CLIENTS ?? 1000);
const VERSIONS = 100;
const SEGMENT = new Uint8Array(1024).fill(42);

/** Each client in one transaction adding all its versions: one commit per client, clients in parallel. */
async function buildDataDir(dataDir: string): Promise<void> {
  const storage = await FileStorage.open(dataDir);
  const ids = Array.from({ length: CLIENTS }, () => parseClientId(crypto.randomUUID()));
  await forEachLimit(ids, 16, async (clientId) => {
    await clientWithHistory(storage, VERSIONS, SEGMENT, clientId);
  });
  await storage.close();
}

const mbPerSec = (bytes: number, ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(1)} MB/s`;
const clientsPerSec = (ms: number) => fmt.perSec(CLIENTS / (ms / 1000));

/** `npm run bench -- ops`: verify and backup throughput (issue 5). */
export async function bench(): Promise<BenchSection> {
  const root = await scratchDir('ops');
  const dataDir = path.join(root, 'data');
  const buildStart = performance.now();
  await buildDataDir(dataDir);
  const buildMs = performance.now() - buildStart;

  const verify = await verifyDataDir(dataDir);
  if (!verify.sound || verify.clients !== CLIENTS || verify.versions !== CLIENTS * VERSIONS) throw new Error('bench: the data directory did not verify');
  const backup = await backupDataDir(dataDir, path.join(root, 'backup'));
  const size = `${CLIENTS} clients x ${VERSIONS} versions, ${(verify.bytes / 1e6).toFixed(0)} MB`;
  return {
    title: `Operations: verify and backup (${size})`,
    rows: [
      ['verify', clientsPerSec(verify.durationMs), `${mbPerSec(verify.bytes, verify.durationMs)}; ${fmt.ms(verify.durationMs)} in all, every file read and checksummed`],
      ['backup (copy, check, sync)', clientsPerSec(backup.durationMs), `${mbPerSec(backup.bytes, backup.durationMs)}; ${fmt.ms(backup.durationMs)} in all, ${backup.lockedClients} clients under their lock, made durable by ${backup.syncedBy}`],
      ['building the data dir', clientsPerSec(buildMs), `one transaction of ${VERSIONS} versions per client, 16 at once (for scale)`],
    ],
  };
}

const BACKUP_CLIENTS = Number(process.env.BENCH_BACKUP_CLIENTS ?? 10_000);
const BACKUP_RUNS = Number(process.env.BENCH_BACKUP_RUNS ?? 5);
const CLI = fileURLToPath(new URL('../dist/bin.cjs', import.meta.url));
const BASELINE = process.env.BENCH_BACKUP_BASELINE;
/** The most `tcsync backup` may take, as a multiple of `cp -a` + `sync` (issue 21). */
const BACKUP_TARGET = 1.5;

const run = promisify(execFile);

/** Milliseconds `command` took, run to its end; it must succeed. */
async function timed(command: string, args: readonly string[]): Promise<number> {
  const start = performance.now();
  await run(command, args, { maxBuffer: 1 << 20 });
  return performance.now() - start;
}

/** `npm run bench -- backup`: `tcsync backup` against `cp -a` + `sync` (issue 21). */
export async function backupBench(): Promise<BenchSection> {
  const root = await scratchDir('backup');
  const source = path.join(root, 'data');
  const buildStart = performance.now();
  await replicatedDataDir(source, BACKUP_CLIENTS);
  await timed('sync', []);
  const buildMs = performance.now() - buildStart;

  const times = { cp: [] as number[], cpSync: [] as number[], tar: [] as number[], backup: [] as number[], baseline: [] as number[] };
  const ways: Array<[string, (round: number) => Promise<void>]> = [
    ['cp', async (round) => {
      const cp = await timed('cp', ['-a', source, path.join(root, `cp-${round}`)]);
      const sync = await timed('sync', []);
      times.cp.push(cp);
      times.cpSync.push(cp + sync);
    }],
    ['tar', async (round) => {
      times.tar.push((await timed('tar', ['-cf', path.join(root, `tar-${round}.tar`), '-C', source, '.'])) + (await timed('sync', [])));
    }],
    ['backup', async (round) => {
      // Run by its shebang, with the V8 flags it sets, as the installed command runs.
      times.backup.push(await timed(CLI, ['backup', '--data-dir', source, path.join(root, `backup-${round}`)]));
    }],
  ];
  if (BASELINE !== undefined) {
    ways.push(['baseline', async (round) => {
      times.baseline.push(await timed(BASELINE, ['backup', '--data-dir', source, path.join(root, `baseline-${round}`)]));
    }]);
  }
  for (let round = 0; round < BACKUP_RUNS; round++) {
    for (let i = 0; i < ways.length; i++) {
      const [, way] = ways[(round + i) % ways.length] as [string, (round: number) => Promise<void>];
      // Nothing of the round before is left to write back on anyone's clock.
      await timed('sync', []);
      await way(round);
    }
  }
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const each = (values: number[]) => `rounds: ${values.map(s).join(', ')}`;
  const ratio = median(times.backup) / median(times.cpSync);
  return {
    title: `Operations: backup of ${BACKUP_CLIENTS.toLocaleString('en')} clients (2 versions + a snapshot each) against cp -a + sync, ${BACKUP_RUNS} rounds, medians`,
    rows: [
      ['`cp -a` + `sync`', s(median(times.cpSync)), `cp -a alone ${s(median(times.cp))}; ${each(times.cpSync)}`],
      ['`tar -cf` + `sync`', s(median(times.tar)), each(times.tar)],
      ['`tcsync backup` (the CLI: copy, verify, durable)', s(median(times.backup)), each(times.backup)],
      ['backup / (cp -a + sync)', fmt.ratio(ratio), `target at most ${fmt.ratio(BACKUP_TARGET)}${ratio <= BACKUP_TARGET ? ': met' : ': MISSED'}; against cp -a alone ${fmt.ratio(median(times.backup) / median(times.cp))}`],
      ...(BASELINE === undefined ? [] : [
        ['`tcsync backup` of BENCH_BACKUP_BASELINE', s(median(times.baseline)), `${fmt.ratio(median(times.baseline) / median(times.cpSync))} of cp -a + sync; ${BASELINE}; ${each(times.baseline)}`] as const,
      ]),
      ['building the data dir', s(buildMs), 'one client through FileStorage, copied under new ids, then sync'],
    ],
  };
}
