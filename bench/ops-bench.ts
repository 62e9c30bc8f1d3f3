/**
 * Operations figures (issue 5): verify and backup throughput, in clients/s and MB/s, on a data
 * directory of 1,000 clients x 100 versions of 1 KiB (BENCH_OPS_CLIENTS changes the count).
 * Backup is shown whole (copy, fsync, verify of the copy) and without its verify.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FileStorage, parseClientId } from '../dist/index.js';
import { backupDataDir } from '../dist/ops/backup.js';
import { forEachLimit } from '../dist/pool.js';
import { verifyDataDir } from '../dist/ops/verify.js';
import { clientWithHistory } from './fixtures.js';
import { fmt, type BenchSection } from './report.js';
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

export async function bench(): Promise<BenchSection> {
  const root = await scratchDir('ops');
  const dataDir = path.join(root, 'data');
  const buildStart = performance.now();
  await buildDataDir(dataDir);
  const buildMs = performance.now() - buildStart;

  const verify = await verifyDataDir(dataDir);
  if (!verify.sound || verify.clients !== CLIENTS || verify.versions !== CLIENTS * VERSIONS) throw new Error('bench: the data directory did not verify');
  const backup = await backupDataDir(dataDir, path.join(root, 'backup'));
  const copyMs = backup.durationMs - backup.verify.durationMs;
  const size = `${CLIENTS} clients x ${VERSIONS} versions, ${(verify.bytes / 1e6).toFixed(0)} MB`;
  return {
    title: `Operations: verify and backup (${size})`,
    rows: [
      ['verify', clientsPerSec(verify.durationMs), `${mbPerSec(verify.bytes, verify.durationMs)}; ${fmt.ms(verify.durationMs)} in all, every file read and checksummed`],
      ['backup (copy + fsync + verify)', clientsPerSec(backup.durationMs), `${mbPerSec(backup.bytes, backup.durationMs)}; ${fmt.ms(backup.durationMs)} in all`],
      ['backup copy + fsync only', clientsPerSec(copyMs), `${mbPerSec(backup.bytes, copyMs)}; each file fsync'd`],
      ['building the data dir', clientsPerSec(buildMs), `one transaction of ${VERSIONS} versions per client, 16 at once (for scale)`],
    ],
  };
}
