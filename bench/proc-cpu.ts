/**
 * CPU time from /proc, for a benchmark that says which process spent the machine's cores:
 * processes' utime + stime (/proc/PID/stat, all threads), a local PostgreSQL cluster's
 * processes found as its postmaster's children, and the whole machine's idle (/proc/stat).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  readonly ppid: number;
  /** utime + stime, in seconds. */
  readonly cpu: number;
}

/** A process's parent and CPU seconds, or null when it is gone. */
function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The fields after the command, which may itself hold spaces and parentheses: state is field 3.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND };
}

/** CPU seconds the processes have used so far (0 for one that is gone). */
export function processesCpu(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (procStat(pid)?.cpu ?? 0), 0);
}

/** The machine's CPU seconds so far, all cores together, and how many of them were idle (iowait included). */
export function machineCpu(): { readonly total: number; readonly idle: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  const total = [user, nice, system, idle, iowait, irq, softirq, steal].reduce((a: number, b) => a + (b ?? 0), 0);
  return { total: total / TICKS_PER_SECOND, idle: ((idle ?? 0) + (iowait ?? 0)) / TICKS_PER_SECOND };
}

/** The cluster's background processes: their share of the work is every database's. */
const BACKGROUND = /: (checkpointer|background writer|walwriter|autovacuum|logical replication|archiver|walsender|startup)/;

/**
 * The CPU of a PostgreSQL cluster on this machine that one database's sessions cost: the
 * postmaster, its background processes (WAL writer, checkpointer, ...), and the backends serving
 * `database` (a backend's title, its cmdline, names its user and database). Backends of other
 * databases (other tests on the same cluster) are left out. A backend that exits between two
 * samples takes its CPU with it, so sample while the sessions are open.
 */
export class PostgresCpu {
  readonly #postmaster: number;
  readonly #database: string;

  private constructor(postmaster: number, database: string) {
    this.#postmaster = postmaster;
    this.#database = database;
  }

  /** From the pid of one of the database's backends (`SELECT pg_backend_pid()`); null when that is not a process here. */
  static of(backendPid: number, database: string): PostgresCpu | null {
    const backend = procStat(backendPid);
    if (backend === null || !commandOf(backendPid).startsWith('postgres')) return null;
    return new PostgresCpu(backend.ppid, database);
  }

  /** CPU seconds so far, per pid: compare two samples with {@link PostgresCpu.spent}. */
  sample(): Map<number, number> {
    const sample = new Map<number, number>([[this.#postmaster, procStat(this.#postmaster)?.cpu ?? 0]]);
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      const stat = procStat(pid);
      if (stat === null || stat.ppid !== this.#postmaster) continue;
      const command = commandOf(pid);
      if (BACKGROUND.test(command) || command.includes(` ${this.#database} `)) sample.set(pid, stat.cpu);
    }
    return sample;
  }

  /** CPU seconds between two samples; a process that started in between counts from 0. */
  static spent(before: Map<number, number>, after: Map<number, number>): number {
    let sum = 0;
    for (const [pid, cpu] of after) sum += cpu - (before.get(pid) ?? 0);
    return sum;
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}
