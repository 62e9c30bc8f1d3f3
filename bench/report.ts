/** Shared pieces of `npm run bench`: timing, statistics, and a table printed side by side. */
import { performance } from 'node:perf_hooks';

export interface BenchSection {
  readonly title: string;
  /** Rows of [measure, value, note]. */
  readonly rows: ReadonlyArray<readonly [string, string, string?]>;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

/** Runs `fn` `count` times in sequence; returns each run's duration in milliseconds. */
export async function timeEach(count: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await fn(i);
    times.push(performance.now() - start);
  }
  return times;
}

export const fmt = {
  ms: (v: number) => `${v.toFixed(3)} ms`,
  perSec: (v: number) => `${v.toFixed(0)} /s`,
  ratio: (v: number) => `${v.toFixed(2)}x`,
  pct: (v: number) => `${(v * 100).toFixed(0)}%`,
};

export function printSection(section: BenchSection): void {
  console.log(`\n## ${section.title}\n`);
  console.log('| measure | value | note |');
  console.log('|---|---|---|');
  for (const [measure, value, note] of section.rows) console.log(`| ${measure} | ${value} | ${note ?? ''} |`);
}
