/** Running a child process under strace, and reading back what it traced (`strace -f -y -o LOG`). */
import { spawnSync } from 'node:child_process';

export const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** One system call of a trace. */
export interface Call {
  /** The thread that made the call. */
  readonly tid: number;
  readonly name: string;
  readonly args: string;
  /** Its return value; null when the thread died in it (a signal that strace injected there, say). */
  readonly result: number | null;
  /** Returned, without an error. */
  readonly ok: boolean;
}

/** Parses `strace -f` output into calls, in completion order; a call a thread died in ends as `= ?`. */
export function parseTrace(text: string): Call[] {
  const pending = new Map<string, string>();
  const calls: Call[] = [];
  for (const raw of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const [, pid, rest] = m as unknown as [string, string, string];
    let line = rest;
    if (line.endsWith('<unfinished ...>')) {
      pending.set(pid, line.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) line = (pending.get(pid) ?? '') + resumed[1];
    const call = /^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)/.exec(line);
    if (!call) continue;
    const result = call[3] === '?' ? null : Number(call[3]);
    calls.push({ tid: Number(pid), name: call[1]!, args: call[2]!, result, ok: result !== null && result >= 0 });
  }
  return calls;
}

/** The path of a call's first argument when it is a file descriptor (`-y` prints `3</path>`). */
export const fdPath = (args: string) => /^\d+<([^>]*)>/.exec(args)?.[1] ?? null;

/** The call's quoted string arguments (paths, for the calls that take them). */
export const quoted = (args: string) => [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);

/**
 * Environment for a traced Node process: libuv may route file operations through io_uring,
 * which strace cannot see.
 */
export const TRACEABLE_ENV: NodeJS.ProcessEnv = { ...process.env, UV_USE_IO_URING: '0' };
