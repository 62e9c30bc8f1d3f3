/** Applies `--repair` to harmless findings: removes leftovers, re-creates pending links, durably. */
import { link, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, isErrno } from '../storage/file/durable-fs.js';
import type { Repair } from './finding.js';

/**
 * Applies `repairs` in order. `assertHeld` runs before each one: a removal made after the
 * client lock was lost could delete the file a live transaction is about to commit.
 */
export async function applyRepairs(repairs: readonly Repair[], assertHeld: () => void = () => undefined): Promise<void> {
  const touched = new Set<string>();
  for (const repair of repairs) {
    assertHeld();
    if (repair.kind === 'remove') {
      await rm(repair.path, { recursive: true, force: true });
      touched.add(path.dirname(repair.path));
    } else {
      try {
        await link(repair.existing, repair.newPath);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      touched.add(path.dirname(repair.newPath));
    }
  }
  // A removal or link is durable only once its directory is.
  for (const dir of touched) await fsyncDir(dir);
}
