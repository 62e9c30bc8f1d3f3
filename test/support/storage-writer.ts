/** Spawning test/fixtures/storage-writer.mjs, a child process that commits to a FileStorage. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const WRITER_SCRIPT = fileURLToPath(new URL('../fixtures/storage-writer.mjs', import.meta.url));

export interface Writer {
  readonly child: ChildProcess;
  /** Version ids the child acknowledged (printed after its commit returned), in order. */
  readonly acks: string[];
  /** What the child said it pruned once pruneVersions returned (maintain: snapshot version ids), in order. */
  readonly pruned: string[];
  /** Resolves with the exit code (null when killed) once the child has exited. */
  readonly exited: Promise<number | null>;
  stderr(): string;
}

export function spawnWriter(mode: 'append' | 'crash' | 'maintain', dataDir: string, clientId: string, count: number, staleMs?: number): Writer {
  const args = [WRITER_SCRIPT, mode, dataDir, clientId, String(count), ...(staleMs ? [String(staleMs)] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const acks: string[] = [];
  const pruned: string[] = [];
  let pending = '';
  let errors = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('ack ')) acks.push(line.slice(4));
      else if (line.startsWith('pruned ')) pruned.push(line.slice(7));
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    errors += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, acks, pruned, exited, stderr: () => errors };
}
