/** The server's logger: JSON lines, on stderr in `serve`, which must never stop or hang the server. */
import { openSync, writeSync } from 'node:fs';
import { pino, type LevelWithSilent, type Logger } from 'pino';

/** `dest` is a file descriptor or a path; the benchmark writes where `serve` writes, to /dev/null. */
export function serverLogger(level: LevelWithSilent, dest: number | string = 2): Logger {
  const fd = typeof dest === 'number' ? dest : openSync(dest, 'a');
  // A write error other than a full pipe (EPIPE when the log reader has gone, ENOSPC, EIO) stops
  // logging: losing the logs is better than losing the service.
  const logger: Logger = pino({ level }, new LineWriter(fd, () => (logger.level = 'silent')));
  return logger;
}

/** How long a write waits for a full pipe or terminal to take more. */
const FULL_PIPE_WAIT_MS = 10;
/** What Atomics.wait sleeps on: nothing ever wakes it, so it sleeps its whole timeout. */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * pino's destination: every line written whole, at once, with write(2), as Node itself writes
 * to a pipe or file on stderr, so that nothing is buffered to flush at exit and lines keep their
 * order among processes sharing the file. pino's own synchronous destination (sonic-boom) did
 * the same for about 8,000 more instructions per line (callgrind, docs/performance.md), and
 * version 4 retried a write that failed with EPIPE for ever, so a server whose log reader had
 * gone (`tcsync serve 2>&1 | head`) never exited on SIGTERM.
 */
class LineWriter {
  readonly #fd: number;
  readonly #onError: (err: unknown) => void;
  #failed = false;

  constructor(fd: number, onError: (err: unknown) => void) {
    this.#fd = fd;
    this.#onError = onError;
  }

  write(line: string): void {
    if (this.#failed) return;
    try {
      const written = writeSync(this.#fd, line);
      if (written < Buffer.byteLength(line)) this.#writeRest(Buffer.from(line), written);
    } catch (err) {
      if (isFullPipe(err)) this.#writeRest(Buffer.from(line), 0);
      else this.#fail(err);
    }
  }

  /** The rest of a line that a non-blocking pipe or terminal took only part of. */
  #writeRest(bytes: Buffer, from: number): void {
    let offset = from;
    while (offset < bytes.byteLength && !this.#failed) {
      try {
        offset += writeSync(this.#fd, bytes, offset);
      } catch (err) {
        if (isFullPipe(err)) Atomics.wait(SLEEPER, 0, 0, FULL_PIPE_WAIT_MS);
        else this.#fail(err);
      }
    }
  }

  #fail(err: unknown): void {
    this.#failed = true;
    this.#onError(err);
  }
}

function isFullPipe(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK';
}
