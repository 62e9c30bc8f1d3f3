/** How a verify report reads: one line per finding and a one-line summary, or JSON for scripts. */
import type { VerifyReport } from './verify.js';

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The findings, one per line (`severity  file: what`). */
export function findingLines(report: VerifyReport): string[] {
  return report.findings.map((f) => `${f.severity.padEnd(8)} ${f.file}: ${f.message}${f.repaired ? ' [repaired]' : ''}`);
}

/** One line: sound or not, what was checked, what is left to repair. */
export function summaryLine(report: VerifyReport): string {
  const checked = `${count(report.clients, 'client')}, ${count(report.versions, 'version')}, ${formatBytes(report.bytes)}`;
  const took = `${(report.durationMs / 1000).toFixed(1)} s`;
  const by = (severity: string) => report.findings.filter((f) => f.severity === severity);
  const harmless = by('harmless');
  const repaired = harmless.filter((f) => f.repaired).length;
  const notes = [
    repaired > 0 ? `${count(repaired, 'harmless finding')} repaired` : '',
    harmless.length > repaired ? `${count(harmless.length - repaired, 'harmless finding')} (verify --repair fixes them)` : '',
    by('warning').length > 0 ? count(by('warning').length, 'warning') : '',
  ].filter(Boolean);
  const tail = notes.length > 0 ? `; ${notes.join('; ')}` : '';
  if (report.sound) return `sound: ${checked}${tail} (${took})`;
  return `NOT SOUND: ${count(by('problem').length, 'problem')}; checked ${checked}${tail} (${took})`;
}

/** The report for `--json`: stable field names, durations in milliseconds. */
export function reportJson(report: VerifyReport): string {
  const { dataDir, sound, clients, versions, bytes, findings, durationMs } = report;
  return JSON.stringify({ dataDir, sound, clients, versions, bytes, durationMs: Math.round(durationMs), findings }, null, 2);
}
