/**
 * `tcsync compact`: packs the loose versions of every client of a data directory (compaction.ts),
 * what `serve` does by itself to a client once it has enough of them. On a live server each
 * client's lock is held only for its commit, so requests go on.
 */
import type { ClientId } from '../ids.js';
import { allIds } from '../storage/client-export.js';
import { openDataDir } from './data-dir.js';

export interface CompactReport {
  readonly clients: number;
  /** Clients that had loose versions to pack. */
  readonly compacted: number;
  /** Versions moved into packs. */
  readonly packed: number;
  /** Clients that could not be compacted (a damaged file, say), each left as it was. */
  readonly failed: ReadonlyArray<{ readonly clientId: ClientId; readonly reason: string }>;
}

export interface CompactOptions {
  /** Called after each client with how many are done of how many. */
  readonly onProgress?: (done: number, total: number) => void;
}

export async function compactDataDir(dataDir: string, options: CompactOptions = {}): Promise<CompactReport> {
  const storage = await openDataDir(dataDir);
  try {
    const ids: ClientId[] = [];
    for await (const id of allIds((after, limit) => storage.listClients(after, limit))) ids.push(id);
    let compacted = 0;
    let packed = 0;
    const failed: Array<{ clientId: ClientId; reason: string }> = [];
    // One client at a time: each one's compaction is a sequence of reads and one write, and a
    // live server's requests should find the disk and the event loop free in between.
    for (const [i, clientId] of ids.entries()) {
      try {
        const result = await storage.compact(clientId);
        if (result !== null) {
          compacted += 1;
          packed += result.packed;
        }
      } catch (err) {
        failed.push({ clientId, reason: (err as Error).message });
      }
      options.onProgress?.(i + 1, ids.length);
    }
    return { clients: ids.length, compacted, packed, failed };
  } finally {
    await storage.close();
  }
}
