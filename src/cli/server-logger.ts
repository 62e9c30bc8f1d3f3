/** The server's logger: JSON lines, on stderr in `serve`, which must never stop or hang the server. */
import { pino, type LevelWithSilent, type Logger } from 'pino';

/** `dest` is a file descriptor or a path; the benchmark writes where `serve` writes, to /dev/null. */
export function serverLogger(level: LevelWithSilent, dest: number | string = 2): Logger {
  // Synchronous, as Node itself writes to a pipe or file on stderr: there is then nothing
  // buffered to flush at exit. An asynchronous destination flushes at exit, and sonic-boom 4
  // retries a write that failed with EPIPE for ever, so a server whose log reader had gone
  // (`tcsync serve 2>&1 | head`) never exited on SIGTERM.
  const destination = pino.destination({ dest, sync: true });
  const logger = pino({ level }, destination);
  // pino drops logging itself on EPIPE and re-emits any other write error (ENOSPC, EIO), which
  // unhandled would crash the server: losing the logs is better than losing the service.
  destination.on('error', () => {
    logger.level = 'silent';
  });
  return logger;
}
