/**
 * /healthz's question: could this server commit now? A health check answers it for one kind of
 * storage; the data directory's check is here, others (a database's) sit beside their storage.
 */
import { randomUUID } from 'node:crypto';
import { open, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';

export interface HealthResult {
  readonly ok: boolean;
  /**
   * Why not, in a few words for the answer's body and the log's condition ("disk full",
   * "read-only file system"); never a path.
   */
  readonly condition?: string;
  /** Details for the log only (they may name paths). */
  readonly reason?: string;
}

/** Asks whether the storage could commit now. Must not throw. */
export type HealthCheck = () => Promise<HealthResult>;

/** The default disk reserve of {@link dataDirHealth}. */
export const DEFAULT_DISK_RESERVE_BYTES = 16 * 1024 * 1024;

export interface DataDirHealthOptions {
  /**
   * Below this many free bytes the directory is reported full: a commit needs room for its
   * files, and an ordinary one (a version, a snapshot of a large task list) fits in this.
   * @default 16 MiB
   */
  readonly reserveBytes?: number;
  /** How long the probe may take before it counts as failed (a dead mount hangs). @default 2000 */
  readonly timeoutMs?: number;
}

/**
 * Healthy while the data directory's file system has the reserve free and takes a durable
 * write: a probe file is created, fsync'd and removed. Its name starts with a dot, which the
 * storage ignores when it inspects DATA_DIR.
 */
export function dataDirHealth(dir: string, options: DataDirHealthOptions = {}): HealthCheck {
  const reserveBytes = options.reserveBytes ?? DEFAULT_DISK_RESERVE_BYTES;
  const timeoutMs = options.timeoutMs ?? 2000;
  return () =>
    withTimeout(timeoutMs, async () => {
      const free = await freeBytes(dir);
      if (free !== null && free < reserveBytes) {
        return { ok: false, condition: 'disk full', reason: `${free} bytes free, below the reserve of ${reserveBytes}` };
      }
      return writeAndRemove(dir);
    });
}

/** Bytes an unprivileged writer may still use on `dir`'s file system, or null if unknown. */
export async function freeBytes(dir: string): Promise<number | null> {
  try {
    const st = await statfs(dir);
    return st.bavail * st.bsize;
  } catch {
    return null;
  }
}

async function withTimeout(timeoutMs: number, check: HealthCheck): Promise<HealthResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<HealthResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, condition: 'storage not answering', reason: `no answer from the file system within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([check(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function writeAndRemove(dir: string): Promise<HealthResult> {
  const file = path.join(dir, `.healthz-${randomUUID()}`);
  try {
    const handle = await open(file, 'wx');
    try {
      await handle.writeFile('ok\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await unlink(file);
    return { ok: true };
  } catch (err) {
    await unlink(file).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { ok: false, condition: conditionOf(code), reason: code };
  }
}

function conditionOf(errno: string): string {
  if (errno === 'ENOSPC' || errno === 'EDQUOT') return 'disk full';
  if (errno === 'EROFS') return 'read-only file system';
  return 'data directory not writable';
}
