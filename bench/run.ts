/**
 * `npm run bench`: every figure the issues ask for, measured side by side in one run.
 * Each area's benchmark is a module exporting `bench(): Promise<BenchSection>`.
 */
import { printSection, type BenchSection } from './report.js';
import { removeScratch } from './scratch.js';

type Bench = () => Promise<BenchSection>;

const areas: Array<[string, () => Promise<{ bench: Bench }>]> = [
  ['storage', () => import('./storage-bench.js')],
  ['ops', () => import('./ops-bench.js')],
  ['backup', () => import('./ops-bench.js').then((m) => ({ bench: m.backupBench }))],
  ['http', () => import('./http-bench.js')],
  ['graphql', () => import('./graphql-bench.js')],
  ['compare', () => import('./compare-bench.js')],
  ['instructions', () => import('./instructions-bench.js')],
  ['scaleout', () => import('./scale-out-bench.js')],
  ['many', () => import('./many-clients-bench.js')],
  ['long', () => import('./long-history-bench.js')],
];

const only = process.argv.slice(2);
console.log(`# tcsync benchmark (node ${process.version}, ${new Date().toISOString()})`);
try {
  for (const [name, load] of areas) {
    if (only.length > 0 && !only.includes(name)) continue;
    const { bench } = await load();
    printSection(await bench());
  }
} finally {
  await removeScratch();
}
