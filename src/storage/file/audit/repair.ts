/** Applies `--repair` to harmless findings: removes leftovers, re-creates pending links, re-links copies, durably. */
import { link, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, isErrno } from '../durable-fs.js';
import { tempPathOf } from '../layout.js';
import type { Repair } from '../../finding.js';

/** Replaces `file` by a hard link to `existing`; the rename is atomic, so `file` never goes missing. */
async function relink(existing: string, file: string): Promise<void> {
  const temp = tempPathOf(file);
  await link(existing, temp);
  try {
    await rename(temp, file);
  } finally {
    // Left behind when the rename failed, and by rename(2) itself when both names were one file already.
    await rm(temp, { force: true });
  }
}

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
    } else if (repair.kind === 'relink') {
      await relink(repair.existing, repair.path);
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
