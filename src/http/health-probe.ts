/**
 * /healthz's question: can this server still make a write durable in its data directory? A
 * probe file is created, fsync'd and removed; a probe that fails or hangs (a dead mount) is
 * unhealthy. The name starts with a dot, which the storage ignores when it inspects DATA_DIR.
 */
import { randomUUID } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import path from 'node:path';

export interface ProbeResult {
  readonly ok: boolean;
  /** Why the probe failed, for the log (never for the response: it names paths). */
  readonly reason?: string;
}

export async function probeWritable(dir: string, timeoutMs: number): Promise<ProbeResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `no answer from the file system within ${timeoutMs} ms` }), timeoutMs);
  });
  try {
    return await Promise.race([writeAndRemove(dir), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function writeAndRemove(dir: string): Promise<ProbeResult> {
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
    return { ok: false, reason: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}
