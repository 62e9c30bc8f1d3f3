/**
 * What a server's files hold on disk, as a user's `du` and `find` see them: allocated blocks
 * (a hard-linked inode counted once, so a tcsync version and its `.child` link count once) and
 * names (directories and links included).
 */
import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';

export interface DiskUse {
  readonly bytes: number;
  readonly names: number;
}

/** The allocated bytes (stat blocks * 512, each inode once) and names of `paths` and everything under them. */
export function diskUse(...paths: readonly string[]): DiskUse {
  const inodes = new Set<number>();
  let bytes = 0;
  let names = 0;
  const walk = (at: string) => {
    const stat = lstatSync(at);
    names += 1;
    if (!inodes.has(stat.ino)) {
      inodes.add(stat.ino);
      bytes += stat.blocks * 512;
    }
    if (stat.isDirectory()) for (const name of readdirSync(at)) walk(path.join(at, name));
  };
  for (const at of paths) walk(at);
  return { bytes, names };
}
