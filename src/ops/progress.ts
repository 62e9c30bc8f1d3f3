/**
 * A one-line progress bar on a terminal, redrawn in place; nothing at all when the stream is not
 * a TTY, so that logs and pipes stay clean.
 */

export interface Progress {
  update(done: number, total: number): void;
  /** Clears the bar. */
  end(): void;
}

/** Redraws at most this often: a terminal is slower than a fast verify. */
const REDRAW_MS = 100;

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update: () => undefined, end: () => undefined };
  let last = 0;
  let drawn = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (done < total && now - last < REDRAW_MS) return;
      last = now;
      const counts = ` ${done}/${total} clients`;
      const width = Math.max(10, Math.min(40, (stream.columns || 80) - label.length - counts.length - 4));
      const filled = total === 0 ? width : Math.round((done / total) * width);
      stream.write(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]${counts}\x1b[K`);
      drawn = true;
    },
    end() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}

/** A copy that is then read back (backup, migrate): one bar per phase, the first cleared when the second starts. */
export interface PhasedProgress {
  update(phase: 'copy' | 'verify', done: number, total: number): void;
  /** Clears whichever bar is drawn. */
  end(): void;
}

export function copyThenVerifyBars(command: string): PhasedProgress {
  const bars = { copy: progressBar(`${command}: copy`), verify: progressBar(`${command}: verify`) };
  return {
    update(phase, done, total) {
      if (phase === 'verify') bars.copy.end();
      bars[phase].update(done, total);
    },
    end() {
      bars.copy.end();
      bars.verify.end();
    },
  };
}
