/** Opening a data directory: creating it durably, and checking or writing its format file. */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { TcsyncError } from '../../errors.js';
import { isCanonicalUuid } from '../../ids.js';
import { createFileOnce, fsyncDir, isErrno, readFileOrNull, replaceFile, statOrNull } from './durable-fs.js';
import { FORMAT_FILE, isTempOf, LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR } from './layout.js';

/**
 * The data directory's format; a directory of a newer format is refused. 2: clients may have
 * packs (client-meta.ts), which a tcsync of format 1 would not read. A directory of format 1 is
 * valid as it is (format 2 only adds), and is raised to 2 before its first pack is written.
 */
export const DATA_FORMAT = { format: 'tcsync', version: 2 } as const;

/**
 * Creates `dir` and any missing parents, fsyncing each new directory's parent so the chain
 * survives a crash. One level at a time: Node's recursive mkdir loops for ever on some paths
 * (`/proc/nope` keeps answering ENOENT), where this fails at once.
 */
export async function makeDirDurably(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let at = path.resolve(dir); (await statOrNull(at)) === null && path.dirname(at) !== at; at = path.dirname(at)) {
    missing.unshift(at);
  }
  for (const made of missing) {
    try {
      await mkdir(made);
    } catch (err) {
      // Made by someone else meanwhile (another server starting on the same path).
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    await fsyncDir(path.dirname(made));
  }
}

/**
 * Checks the data directory's format file, or writes it into an empty directory. Several
 * processes may open one fresh directory at once (two servers, a server and `tcsync verify`):
 * the first to link its format file wins and the others read that one.
 */
export async function ensureFormat(dir: string): Promise<void> {
  const file = path.join(dir, FORMAT_FILE);
  let existing = await readFileOrNull(file);
  if (existing === null) {
    await refuseForeignEntries(dir);
    if (await createFileOnce(file, JSON.stringify(DATA_FORMAT) + '\n')) {
      await fsyncDir(dir);
      return;
    }
    existing = await readFile(file);
  }
  checkFormat(file, existing);
}

/**
 * Marks a data directory as this format, durably, unless it says so already: before anything
 * only this format has (a pack) is written, so that an older tcsync refuses the directory instead
 * of misreading it.
 */
export async function raiseFormat(dir: string): Promise<void> {
  const file = path.join(dir, FORMAT_FILE);
  const existing = await readFileOrNull(file);
  if (existing !== null && checkFormat(file, existing) >= DATA_FORMAT.version) return;
  await replaceFile(file, JSON.stringify(DATA_FORMAT) + '\n');
  await fsyncDir(dir);
}

/** Refuses to initialise a directory that holds something other than a tcsync data directory's entries. */
async function refuseForeignEntries(dir: string): Promise<void> {
  // Another process may be initialising the same directory right now: its format file, the
  // temporary file it is written through, and its first clients are all expected here.
  const known = new Set([FORMAT_FILE, LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR]);
  const foreign = (await readdir(dir)).filter(
    (name) => !name.startsWith('.') && !known.has(name) && !isTempOf(name, FORMAT_FILE) && !isCanonicalUuid(name),
  );
  if (foreign.length > 0) {
    throw new TcsyncError('UNSUPPORTED_FORMAT', `${dir} is not empty and not a tcsync data directory (it holds ${foreign[0]})`);
  }
}

/** The format version of a data directory's format file, if this tcsync reads it. */
function checkFormat(file: string, content: Buffer): number {
  let found: { format?: unknown; version?: unknown };
  try {
    found = JSON.parse(content.toString('utf8'));
  } catch {
    throw new TcsyncError('CORRUPT', `${file} is not JSON`);
  }
  if (found.format !== DATA_FORMAT.format || typeof found.version !== 'number') {
    throw new TcsyncError('CORRUPT', `${file} does not describe a tcsync data directory`);
  }
  if (found.version > DATA_FORMAT.version) {
    throw new TcsyncError(
      'UNSUPPORTED_FORMAT',
      `${path.dirname(file)} has data format ${found.version}; this tcsync reads format ${DATA_FORMAT.version}. Use a newer tcsync.`,
    );
  }
  return found.version;
}
