/**
 * podman for the container tests: whether it is here (on CI its absence fails the tests instead
 * of skipping them), a runner whose errors carry podman's own message, and names unique to a test
 * run so that concurrent runs on one machine never share a container, volume or network.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The commands the container tests drive; .ci/run installs them. */
const NEEDED = ['podman', 'runc', 'podman-compose', 'debootstrap'];

async function missing(extraCommands: readonly string[]): Promise<string | null> {
  const absent: string[] = [];
  for (const command of [...NEEDED, ...extraCommands]) {
    if (!(await execFileAsync('sh', ['-c', `command -v ${command}`]).then(() => true, () => false))) absent.push(command);
  }
  if (absent.length > 0) return `${absent.join(', ')} missing (apt-get install them, as .ci/run does)`;
  if (process.getuid?.() !== 0) return 'not running as root (debootstrap and rootful podman need it)';
  return null;
}

/**
 * Why the container tests cannot run here, or null when they can. Under CI=true a reason throws
 * instead: CI must never pass without having run them.
 */
export async function containersUnavailable(what: string, extraCommands: readonly string[] = []): Promise<string | null> {
  const why = await missing(extraCommands);
  if (why === null) return null;
  if (process.env.CI === 'true') throw new Error(`${what} must run on CI: ${why}`);
  console.warn(`SKIPPED: ${what}: ${why}`);
  return why;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command; a failure's error names the command and carries its stderr. */
export async function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, [...args], {
      env: options.env,
      cwd: options.cwd,
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { stdout, stderr };
  } catch (err) {
    const { stderr, code } = err as { stderr?: string; code?: number | string };
    throw new Error(`${command} ${args.join(' ')} failed (${code}): ${String(stderr ?? '').trim().slice(-4000)}`, { cause: err });
  }
}

export function podman(args: readonly string[], options: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run('podman', args, options);
}

/** podman's exit code for a command whose failure is the answer (podman healthcheck run, image exists). */
export async function podmanStatus(args: readonly string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('podman', [...args], { timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof code !== 'number') throw err;
    return { code, output: `${stdout ?? ''}${stderr ?? ''}` };
  }
}

/** A name for a container, volume, network or compose project of this test run only. */
export function uniqueName(purpose: string): string {
  return `tcsync-test-${purpose}-${randomUUID().slice(0, 8)}`;
}
