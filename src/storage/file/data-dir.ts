/** Opening a data directory: creating it durably, and checking or writing its format file. */
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { TcsyncError } from '../../errors.js';
import { isCanonicalUuid } from '../../ids.js';
import { fsyncDir, readFileOrNull, replaceFile } from './durable-fs.js';
import { FORMAT_FILE, LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR } from './layout.js';

/** The data directory's format; a directory of a newer format is refused. */
export const DATA_FORMAT = { format: 'tcsync', version: 1 } as const;

/** Creates `dir` and any missing parents, fsyncing each new directory's parent so the chain survives a crash. */
export async function makeDirDurably(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let made = dir; ; made = path.dirname(made)) {
    await fsyncDir(path.dirname(made));
    if (made === first) break;
  }
}

export async function ensureFormat(dir: string): Promise<void> {
  const file = path.join(dir, FORMAT_FILE);
  const existing = await readFileOrNull(file);
  if (existing !== null) {
    let found: { format?: unknown; version?: unknown };
    try {
      found = JSON.parse(existing.toString('utf8'));
    } catch {
      throw new TcsyncError('CORRUPT', `${file} is not JSON`);
    }
    if (found.format !== DATA_FORMAT.format || typeof found.version !== 'number') {
      throw new TcsyncError('CORRUPT', `${file} does not describe a tcsync data directory`);
    }
    if (found.version > DATA_FORMAT.version) {
      throw new TcsyncError(
        'UNSUPPORTED_FORMAT',
        `${dir} has data format ${found.version}; this tcsync reads format ${DATA_FORMAT.version}. Use a newer tcsync.`,
      );
    }
    return;
  }
  const known = new Set([LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR]);
  const foreign = (await readdir(dir)).filter((name) => !name.startsWith('.') && !known.has(name) && !isCanonicalUuid(name));
  if (foreign.length > 0) {
    throw new TcsyncError('UNSUPPORTED_FORMAT', `${dir} is not empty and not a tcsync data directory (it holds ${foreign[0]})`);
  }
  await replaceFile(file, JSON.stringify(DATA_FORMAT) + '\n');
  await fsyncDir(dir);
}
