/** Runs `node dist/cli.js serve` as a child process and waits for its "listening on" lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SERVE_ENVIRONMENT } from '../../src/cli/serve-args.js';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface SpawnedServer {
  readonly child: ChildProcess;
  /** One `http://HOST:PORT` per "listening on" line. */
  readonly urls: readonly string[];
  readonly url: string;
  /** Everything the process wrote to stderr so far (its logs). */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
  /** Sends the signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface SpawnServerOptions {
  /** Extra arguments after `serve`. The default listens on 127.0.0.1:0 and logs at warn. */
  readonly args?: readonly string[];
  readonly env?: Record<string, string | undefined>;
  /** How many "listening on" lines to wait for. @default 1 */
  readonly addresses?: number;
  /** @default 20000 */
  readonly timeoutMs?: number;
  /** Runs the server under `ulimit -n` of this many file descriptors. @default the runner's */
  readonly fileLimit?: number;
  /** The `tcsync` to run, such as an installed bin. @default [node, dist/cli.js] of this clone */
  readonly command?: readonly string[];
  /** @default the runner's */
  readonly cwd?: string;
}

/** Serves `storage`: a data directory, or a PostgreSQL database by its connection URI. */
export function spawnServer(storage: string | { readonly connection: string }, options: SpawnServerOptions = {}): Promise<SpawnedServer> {
  const args = options.args ?? [];
  const listenGiven = args.some((a) => a === '--listen' || a.startsWith('--listen='));
  const storageArgs = typeof storage === 'string' ? ['--data-dir', storage] : ['--connection', storage.connection];
  const command = [...(options.command ?? [process.execPath, CLI]), 'serve', ...storageArgs, ...(listenGiven ? [] : ['--listen', '127.0.0.1:0']), '--log-level', 'warn', ...args];
  const [file, ...rest] = options.fileLimit === undefined ? command : ['bash', '-c', `ulimit -n ${options.fileLimit} && exec "$0" "$@"`, ...command];
  const child = spawn(file as string, rest, { env: cleanEnv(options.env), cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));

  return new Promise((resolve, reject) => {
    const urls: string[] = [];
    let buffered = '';
    const timer = setTimeout(() => fail(new Error(`server did not start in time; stderr:\n${stderr}`)), options.timeoutMs ?? 20_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    void exited.then((code) => fail(new Error(`server exited with ${code} before listening; stderr:\n${stderr}`)));
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      buffered += s;
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const match = /^listening on (http:\/\/\S+)$/.exec(line);
        if (match) urls.push(match[1] as string);
      }
      if (urls.length >= (options.addresses ?? 1)) {
        clearTimeout(timer);
        resolve({
          child,
          urls,
          url: urls[0] as string,
          stderr: () => stderr,
          exited,
          stop: (signal = 'SIGTERM') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
  });
}

/** The test runner's environment without the variables `serve` reads, plus the given ones. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SERVE_ENVIRONMENT) delete env[name];
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}
