/**
 * Walks through packs (pack-shelf.ts): a walk in the chain's order is served from read-ahead
 * windows, one read per window instead of one per record, each record still checked; the
 * windows stay within the shelf's bytes; reads out of order read their record alone.
 */
import * as fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isTcsyncError } from '../../src/errors.js';
import { NIL_VERSION_ID, newVersionId, type ClientId, type VersionId } from '../../src/ids.js';
import { parseMeta, type PackMeta } from '../../src/storage/file/client-meta.js';
import { FileStorage } from '../../src/storage/file/file-storage.js';
import { ClientPaths } from '../../src/storage/file/layout.js';
import { PackShelf } from '../../src/storage/file/pack-shelf.js';
import { withTxn } from '../../src/storage/storage.js';
import { makeTempDir, removeDir } from '../support/temp-dir.js';

// Every positioned read the shelf makes, counted.
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return { ...actual, readSync: vi.fn(actual.readSync) };
});
const readSync = vi.mocked(fs.readSync);

const CLIENT = '0b5e3f4a-7c1d-4e2b-8f6a-9d0c1b2a3e4f' as ClientId;
/** Records of about 1 KiB: a 64 KiB window holds about 60 of them, and most windows end inside one. */
const SEGMENT_BYTES = 1000;
const MiB = 1024 * 1024;

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('tcsync-pack-shelf-');
});
afterEach(() => removeDir(dir));

function segment(i: number): Uint8Array {
  return new TextEncoder().encode(`version ${i} `.padEnd(SEGMENT_BYTES, String.fromCharCode(97 + (i % 26))));
}

/**
 * A client whose history is `batches` batches of `each` versions, each batch added in one
 * transaction and compacted, so that it is `batches` packs (fewer than four, none merged).
 */
async function packedHistory(batches: number, each: number): Promise<{ ids: VersionId[]; packs: readonly PackMeta[]; paths: ClientPaths }> {
  const storage = await FileStorage.open(dir, { compactAfter: 0 });
  const ids: VersionId[] = [];
  try {
    for (let batch = 0; batch < batches; batch++) {
      await withTxn(storage, CLIENT, async (txn) => {
        if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
        for (let i = 0; i < each; i++) {
          const id = newVersionId();
          await txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, segment(ids.length));
          ids.push(id);
        }
      });
      await storage.compact(CLIENT);
    }
  } finally {
    await storage.close();
  }
  const paths = new ClientPaths(dir, CLIENT);
  const { packs } = parseMeta(await readFile(paths.meta, 'utf8'), paths.meta);
  expect(packs).toHaveLength(batches);
  return { ids, packs, paths };
}

/** The child of `parent` through `shelf`, checked against the history. */
function readChild(shelf: PackShelf, paths: ClientPaths, packs: readonly PackMeta[], ids: readonly VersionId[], i: number): void {
  const found = shelf.findByParent(paths, packs, i === 0 ? NIL_VERSION_ID : ids[i - 1]!);
  expect(found?.entry.versionId).toBe(ids[i]);
  const version = shelf.read(found!);
  expect(version.versionId).toBe(ids[i]);
  expect(Buffer.from(version.historySegment).equals(Buffer.from(segment(i)))).toBe(true);
}

describe('a walk through packs', () => {
  it('is served from read-ahead windows across record boundaries, one read per window, every version whole', async () => {
    const { ids, packs, paths } = await packedHistory(1, 300);
    const shelf = new PackShelf(16 * MiB);
    shelf.index(paths, packs[0]!);
    readSync.mockClear();
    for (let i = 0; i < ids.length; i++) readChild(shelf, paths, packs, ids, i);
    // The first record alone, then the rest (about 300 KiB) in 64 KiB windows.
    const windows = Math.ceil((ids.length * (SEGMENT_BYTES + 100)) / (64 * 1024));
    expect(readSync.mock.calls.length).toBeGreaterThanOrEqual(2);
    expect(readSync.mock.calls.length).toBeLessThanOrEqual(1 + windows + 1);
    // One window kept, the last, shorter where the file ends.
    expect(shelf.usage.windowBytes).toBeGreaterThan(0);
    expect(shelf.usage.windowBytes).toBeLessThanOrEqual(64 * 1024);
  });

  it('reads each record alone when its reads do not follow one another', async () => {
    const { ids, packs, paths } = await packedHistory(1, 40);
    const shelf = new PackShelf(16 * MiB);
    shelf.index(paths, packs[0]!);
    readSync.mockClear();
    for (let i = ids.length - 1; i >= 0; i -= 2) readChild(shelf, paths, packs, ids, i);
    expect(readSync.mock.calls.length).toBe(ids.length / 2);
    expect(shelf.usage.windowBytes).toBe(0);
  });

  it('checks every record served from a window: a damaged one is CORRUPT, its neighbours still whole', async () => {
    const { ids, packs, paths } = await packedHistory(1, 100);
    const file = paths.pack(packs[0]!.file);
    const damaged = 20;
    // One byte of the damaged version's segment, found by its text, turned into another.
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(Buffer.from(`version ${damaged} `)) + 20;
    bytes[at] = bytes[at]! ^ 0x01;
    fs.writeFileSync(file, bytes);

    const shelf = new PackShelf(16 * MiB);
    for (let i = 0; i < damaged; i++) readChild(shelf, paths, packs, ids, i);
    readSync.mockClear();
    const found = shelf.findByParent(paths, packs, ids[damaged - 1]!);
    expect(() => shelf.read(found!)).toThrow(expect.objectContaining({ code: 'CORRUPT' }));
    // Served from the window read with the records before it: no read of its own.
    expect(readSync).not.toHaveBeenCalled();
    for (let i = damaged + 1; i < ids.length; i++) readChild(shelf, paths, packs, ids, i);

    // Through the storage, a walk meets it as an error, never as the damaged bytes.
    const storage = await FileStorage.open(dir, { compactAfter: 0 });
    try {
      const error = await withTxn(storage, CLIENT, async (txn) => {
        let parent: VersionId = NIL_VERSION_ID;
        for (let i = 0; i < ids.length; i++) {
          try {
            parent = (await txn.getVersionByParent(parent))!.versionId;
          } catch (err) {
            return { at: i, err };
          }
        }
        return null;
      });
      expect(error?.at).toBe(damaged);
      expect(isTcsyncError(error?.err) && error.err.code).toBe('CORRUPT');
    } finally {
      await storage.close();
    }
  });

  it('keeps its windows within a sixteenth of its bytes, walks through several packs at once still whole', async () => {
    const { ids, packs, paths } = await packedHistory(3, 150);
    // 2 MiB: 128 KiB of windows, two of them, for three walks at once.
    const shelf = new PackShelf(2 * MiB);
    const walks = packs.map((_, p) => ({ next: p * 150, end: (p + 1) * 150 }));
    let max = 0;
    for (let step = 0; step < 150; step++) {
      for (const walk of walks) readChild(shelf, paths, packs, ids, walk.next++);
      max = Math.max(max, shelf.usage.windowBytes);
    }
    expect(max).toBe(128 * 1024);
    expect(shelf.usage.indexBytes).toBeLessThanOrEqual(2 * MiB - 128 * 1024);
  });

  it('reads no windows when not even one fits in its bytes', async () => {
    const { ids, packs, paths } = await packedHistory(1, 100);
    const shelf = new PackShelf(MiB - 1);
    shelf.index(paths, packs[0]!);
    readSync.mockClear();
    for (let i = 0; i < ids.length; i++) readChild(shelf, paths, packs, ids, i);
    expect(readSync.mock.calls.length).toBe(ids.length);
    expect(shelf.usage.windowBytes).toBe(0);
  });
});
