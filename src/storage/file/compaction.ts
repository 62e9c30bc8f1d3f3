/**
 * Compaction and pruning of one FileStorage client: both replace client.json's list of packs
 * (pack-file.ts) by one planned and written without the client's lock; under the lock they only
 * rename the new client.json into place (FileTxn.replaceMeta), the commit point, so a writer of
 * the client waits for a rename and a few lookups, not for a disk flush.
 *
 * Compaction moves every loose version of the client into a new pack, merged with the newest
 * packs as a counter in base 4 carries (packsToMerge), so a client has O(log n) packs and every
 * version is rewritten O(log n) times. Only after client.json names the
 * new pack are the loose files and the merged packs removed: a crash in between leaves copies
 * that nothing reads (a loose copy of a packed version is the same bytes; an unnamed pack is
 * ignored), which the next compaction or `verify --repair` removes.
 *
 * Pruning deletes the versions that the snapshot covers and that were added before a cut
 * (Storage.pruneVersions). It packs the client first, so that every version it deletes is in a
 * pack and the rename of client.json deletes them all at once; loose copies of them are removed
 * before that rename, so none can be read again after it.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { v4 as uuidv4 } from 'uuid';
import { TcsyncError } from '../../errors.js';
import { isCanonicalUuid, NIL_VERSION_ID, type ClientId, type VersionId } from '../../ids.js';
import { versionsToPrune } from '../prune-rule.js';
import { serializeMeta, type ClientMeta, type PackMeta } from './client-meta.js';
import { fsyncDir, isErrno, readFileOrNull, statOrNull, writeNewFile } from './durable-fs.js';
import type { FileTxn } from './file-txn.js';
import { PACK_FILE, tempPathOf, VERSION_SUFFIX, type ClientPaths } from './layout.js';
import { PackWriter, readRecord, type PackEntry } from './pack-file.js';
import type { PackShelf } from './pack-shelf.js';
import { decodeVersion, MAX_HEADER, parseHeader } from './version-file.js';

/** What compaction and pruning need of their FileStorage. */
export interface ClientFiles {
  readonly paths: ClientPaths;
  readonly shelf: PackShelf;
  /** A transaction on the client: optimistic (reads without the lock) or holding the lock. */
  txn(optimistic: boolean): Promise<FileTxn>;
}

export interface CompactionResult {
  /** Loose versions moved into a pack. */
  readonly packed: number;
  /** Packs merged into the new one. */
  readonly merged: number;
}

/** Sync reads between two turns of the event loop, so that requests of other clients wait at most about a millisecond. */
const READS_PER_TURN = 32;

async function yieldSometimes(n: number): Promise<void> {
  if (n % READS_PER_TURN === 0) await nextTurn();
}

async function readOnly<T>(files: ClientFiles, work: (txn: FileTxn) => Promise<T>): Promise<T> {
  const txn = await files.txn(true);
  try {
    return await work(txn);
  } finally {
    await txn.rollback();
  }
}

/**
 * Commits a planned client.json: written and fsync'd first, then renamed into place under the
 * lock (FileTxn.replaceMeta), then made durable. False when the plan was stale.
 */
async function commitMeta(files: ClientFiles, meta: ClientMeta, basis: readonly PackMeta[], removesVersions: boolean): Promise<boolean> {
  const file = tempPathOf(files.paths.meta);
  await writeNewFile(file, [Buffer.from(serializeMeta(meta))]);
  let done = false;
  try {
    const txn = await files.txn(false);
    try {
      done = await txn.replaceMeta({ meta, file, basis, removesVersions });
      await txn.commit();
    } catch (err) {
      await txn.rollback();
      throw err;
    }
  } finally {
    if (!done) await unlinkIfThere(file);
  }
  // What it replaced is removed only once the rename is durable.
  if (done) await fsyncDir(files.paths.dir);
  return done;
}

/** A version of the client's history as stored, for a compaction or a pruning to plan with. */
export interface StoredVersion {
  readonly versionId: VersionId;
  readonly parentVersionId: VersionId;
  /** When it was added, in ms since the epoch. */
  readonly addedAt: number;
  /** Its loose `.version` file, or null when it is packed. */
  readonly looseFile: string | null;
}

/**
 * A stored version with the time it was added, from the index of a pack `packs` lists or from
 * its loose file; null when it is not stored. Read without the lock, for planning only: a loose
 * file may be a leftover that is not committed, which the plan's commit rules out (replaceMeta
 * checks that the checkpoint, the newest version packed, is committed). TXN_STALE when a pack
 * the plan started from was removed meanwhile by another compaction.
 */
function storedVersion(files: ClientFiles, packs: readonly PackMeta[], versionId: VersionId): StoredVersion | null {
  const packed = fromPlannedPack(() => files.shelf.find(files.paths, packs, versionId));
  if (packed !== null) return { ...packed.entry, looseFile: null };
  const file = files.paths.version(versionId);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  try {
    const head = Buffer.allocUnsafe(MAX_HEADER);
    const { header } = parseHeader(head.subarray(0, readSync(fd, head, 0, MAX_HEADER, 0)), file);
    if (header.versionId !== versionId) throw new TcsyncError('CORRUPT', `${file}: names version ${header.versionId}`);
    return { versionId, parentVersionId: header.parentVersionId, addedAt: fstatSync(fd).mtimeMs, looseFile: file };
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a pack the plan started from. Another process's compaction or pruning may have replaced
 * and removed it since: then the plan is stale (TXN_STALE), which is no fault.
 */
function fromPlannedPack<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new TcsyncError('TXN_STALE', 'a pack was replaced while the client was planned');
    throw err;
  }
}

/**
 * The client's committed state to plan from: client.json as a checkpoint at its latest version
 * (FileTxn.planMeta). Read in a transaction that ends at once; the plan's reads of versions
 * come after it, without the lock.
 */
function planBase(files: ClientFiles): Promise<ClientMeta | null> {
  return readOnly(files, async (txn) => ((await txn.getClient()) === null ? null : txn.planMeta()));
}

/** The client's loose versions, oldest first: from the latest back to a packed version or the start. */
async function looseChain(files: ClientFiles, base: ClientMeta): Promise<StoredVersion[]> {
  const chain: StoredVersion[] = [];
  for (let id = base.checkpointVersionId; id !== NIL_VERSION_ID; ) {
    const stored = storedVersion(files, base.packs, id);
    if (stored === null || stored.looseFile === null) break;
    chain.push(stored);
    id = stored.parentVersionId;
    await yieldSometimes(chain.length);
  }
  return chain.reverse();
}

/**
 * Packs of one tier that are merged into one of the next: a client keeps at most MERGE_WIDTH - 1
 * packs of each tier, so about 3 log4(n / 64) packs for n versions, and each version is rewritten
 * about log4(n / 64) times (5 for 50,000 versions; a binary counter, two per tier, rewrote each
 * 10 times, and the merges' reads and flushes slowed a busy client's commits by a third).
 */
const MERGE_WIDTH = 4;

/** The size of a pack of tier 0: what serve's compaction packs at a time (FileStorage's compactAfter default). */
const TIER_BASE = 64;

/** A pack's tier: 0 below MERGE_WIDTH * TIER_BASE versions, then one more for each factor of MERGE_WIDTH. */
function tier(versions: number): number {
  return Math.max(0, Math.floor(Math.log(versions / TIER_BASE) / Math.log(MERGE_WIDTH)));
}

/**
 * How many of the newest packs a new pack of `versions` loose versions takes in: as a counter in
 * base MERGE_WIDTH carries, the new pack and the MERGE_WIDTH - 1 packs of its tier just before it
 * become one pack of the next tier, which may carry on in turn.
 */
export function packsToMerge(packs: readonly Pick<PackMeta, 'versions'>[], versions: number): number {
  let merged = versions;
  let taken = 0;
  for (;;) {
    const t = tier(merged);
    let run = 0;
    while (run < MERGE_WIDTH - 1 && taken + run < packs.length && tier(packs[packs.length - 1 - taken - run]!.versions) === t) run++;
    if (run < MERGE_WIDTH - 1) return taken;
    for (let i = 0; i < run; i++) merged += packs[packs.length - 1 - taken - i]!.versions;
    taken += run;
  }
}

/** Copies every record of `pack`, checked, into `writer`. */
async function copyPack(files: ClientFiles, pack: PackMeta, writer: PackWriter): Promise<void> {
  const file = files.paths.pack(pack.file);
  const entries = fromPlannedPack(() => files.shelf.index(files.paths, pack).entries());
  await copyRecords(file, entries, writer);
}

async function copyRecords(file: string, entries: readonly PackEntry[], writer: PackWriter): Promise<void> {
  const fd = fromPlannedPack(() => openSync(file, 'r'));
  try {
    let n = 0;
    for (const entry of entries) {
      const { bytes } = readRecord(fd, file, entry);
      await writer.add(bytes, entry);
      await yieldSometimes(++n);
    }
  } finally {
    closeSync(fd);
  }
}

/** Copies loose versions, checked, into `writer`. */
async function copyLoose(chain: readonly StoredVersion[], writer: PackWriter): Promise<void> {
  let n = 0;
  for (const stored of chain) {
    const file = stored.looseFile!;
    const bytes = await readFileOrNull(file);
    if (bytes === null) throw new TcsyncError('TXN_STALE', `${file}: removed while it was packed`);
    const version = decodeVersion(bytes, file);
    if (version.versionId !== stored.versionId) throw new TcsyncError('CORRUPT', `${file}: names version ${version.versionId}`);
    await writer.add(bytes, stored);
    await yieldSometimes(++n);
  }
}

/** Writes a new pack of the given packs' records and then `chain`, and names it; its entry for client.json. */
async function writePack(files: ClientFiles, packs: readonly PackMeta[], chain: readonly StoredVersion[]): Promise<PackMeta> {
  const versions = packs.reduce((sum, pack) => sum + pack.versions, chain.length);
  const name = `pack-${uuidv4()}.pack`;
  const writer = PackWriter.create(files.paths.pack(name), versions);
  try {
    for (const pack of packs) await copyPack(files, pack, writer);
    await copyLoose(chain, writer);
    const size = await writer.finish(files.paths.dir, versions);
    return { file: name, versions, size };
  } catch (err) {
    writer.abandon();
    throw err;
  }
}

async function unlinkIfThere(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/** Loose versions removed between two checks that the client directory is still the one planned from. */
const REMOVE_BATCH = 16;

/** The client directory's inode: another one means the client was deleted and made again meanwhile. */
async function dirInode(files: ClientFiles): Promise<bigint | null> {
  return (await statOrNull(files.paths.dir))?.ino ?? null;
}

/**
 * Removes the two names of loose versions that a pack holds. Only while the client directory is
 * the one planned from: after a deletion and a new client under the same id (a new directory),
 * the same names may be the new client's. Durably only where a commit depends on it (a pruning):
 * a removal of copies that a crash undoes leaves copies again, which are swept again.
 */
async function removeLooseCopies(files: ClientFiles, versions: readonly PackedCopy[], dir: bigint, durably: boolean): Promise<void> {
  for (let i = 0; i < versions.length; i += REMOVE_BATCH) {
    if ((await dirInode(files)) !== dir) return;
    // A batch at once, on the threadpool: removed one at a time, the removals ran one per commit
    // of a busy replica (whose inline commit holds the event loop), and each of its commits paid
    // for a removal's metadata writes (add-version p50 1.27x at 50,000 versions); a batch shares
    // them, its bitmap and inode table blocks written once.
    const removals = versions.slice(i, i + REMOVE_BATCH).flatMap((v) => [files.paths.child(v.parentVersionId), files.paths.version(v.versionId)]);
    const failed = (await Promise.allSettled(removals.map(unlinkIfThere))).find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
  if (durably && versions.length > 0) await fsyncDir(files.paths.versionsDir);
}

/** A version by its id and parent: what names its loose files. */
type PackedCopy = Pick<StoredVersion, 'versionId' | 'parentVersionId'>;

/** How old an unnamed pack must be before it counts as a crash's leftover rather than a compaction under way. */
const LEFTOVER_PACK_AGE_MS = 60 * 60 * 1000;

/**
 * Removes, after a committed change, what it replaced and what earlier crashes left: every loose
 * version that `packs` (client.json's list now) holds, the packs `replaced`, and packs and pack
 * temporary files that client.json does not name and that are older than any compaction runs.
 * Best effort: what is left is never read, and the next compaction tries again.
 */
async function sweep(files: ClientFiles, packs: readonly PackMeta[], replaced: readonly PackMeta[], dir: bigint): Promise<void> {
  try {
    const copies: PackedCopy[] = [];
    for (const name of await readdir(files.paths.versionsDir)) {
      const id = name.endsWith(VERSION_SUFFIX) ? name.slice(0, -VERSION_SUFFIX.length) : '';
      if (!isCanonicalUuid(id)) continue;
      const packed = fromPlannedPack(() => files.shelf.find(files.paths, packs, id as VersionId));
      if (packed !== null) copies.push(packed.entry);
    }
    await removeLooseCopies(files, copies, dir, false);
    const named = new Set(packs.map((pack) => pack.file));
    const unnamed = (await readdir(files.paths.dir)).filter((name) => (PACK_FILE.test(name) && !named.has(name)) || PACK_TEMP.test(name));
    const old = Date.now() - LEFTOVER_PACK_AGE_MS;
    const leftovers = [];
    for (const name of unnamed) if (((await statOrNull(`${files.paths.dir}/${name}`))?.mtimeMs ?? Infinity) < old) leftovers.push(name);
    const gone = [...replaced.map((pack) => pack.file), ...leftovers];
    if ((await dirInode(files)) !== dir) return;
    for (const name of gone) {
      files.shelf.forget(`${files.paths.dir}/${name}`);
      await unlinkIfThere(`${files.paths.dir}/${name}`);
    }
  } catch {
    // Left for the next compaction or verify --repair: copies of packed versions, unnamed packs.
  }
}

/** A temporary file of a pack being written (layout.ts tempPathOf). */
const PACK_TEMP = new RegExp(`${PACK_FILE.source.slice(0, -1)}\\.\\d+$`);

/**
 * Packs the client's loose versions when it has at least `minLoose` of them (1 packs any).
 * Null when there was nothing to do or the plan went stale (another writer came first).
 * Records the number of loose versions in client.json when an older tcsync left it unsaid.
 */
export async function compactClient(files: ClientFiles, minLoose: number): Promise<CompactionResult | null> {
  const dir = await dirInode(files);
  const base = dir === null ? null : await planBase(files);
  if (base === null || dir === null || base.checkpointVersionId === NIL_VERSION_ID) return null;
  const chain = await looseChain(files, base);
  const basis = base.packs;
  if (chain.length === 0 || chain.length < minLoose) {
    // Below the threshold: say how many loose versions there are, once, so that commits can count on.
    if (base.loose === null) await commitMeta(files, { ...base, loose: chain.length }, basis, false);
    return null;
  }
  const merged = basis.slice(basis.length - packsToMerge(basis, chain.length));
  const pack = await writePack(files, merged, chain);
  const packs = [...basis.slice(0, basis.length - merged.length), pack];
  let committed = false;
  try {
    // The checkpoint is the newest version packed: no version up to it is loose.
    committed = await commitMeta(files, { ...base, packs, loose: 0 }, basis, false);
  } finally {
    if (!committed) await unlinkIfThere(files.paths.pack(pack.file)).catch(() => undefined);
  }
  if (!committed) return null;
  await sweep(files, packs, merged, dir);
  return { packed: chain.length, merged: merged.length };
}

interface PrunePlan {
  readonly base: ClientMeta;
  /** The client directory's inode when planned. */
  readonly dir: bigint;
  /** The versions to delete, by id. */
  readonly pruned: ReadonlyMap<VersionId, StoredVersion>;
  /** A version to delete is loose: pack first. */
  readonly needsPacking: boolean;
}

/** Plans a pruning (see Storage.pruneVersions for the rule). */
async function planPrune(files: ClientFiles, addedBefore: Date): Promise<PrunePlan | null> {
  const dir = await dirInode(files);
  const base = dir === null ? null : await planBase(files);
  if (base === null || dir === null || base.snapshot === null) return null;
  const stored = new Map<VersionId, StoredVersion>();
  const doomed = versionsToPrune(base.snapshot.versionId, addedBefore, (id) => {
    const version = storedVersion(files, base.packs, id);
    if (version !== null) stored.set(id, version);
    return version ?? undefined;
  });
  if (doomed.length === 0) return null;
  const pruned = new Map(doomed.map((id) => [id, stored.get(id)!]));
  return { base, dir, pruned, needsPacking: [...pruned.values()].some((version) => version.looseFile !== null) };
}

/** Attempts of a pruning whose plan went stale before it gives up until the next time. */
const PRUNE_ATTEMPTS = 3;

/** Deletes the versions the snapshot covers that were added before `addedBefore`; how many. */
export async function pruneClient(files: ClientFiles, addedBefore: Date): Promise<number> {
  for (let attempt = 0; attempt < PRUNE_ATTEMPTS; attempt++) {
    let plan = await planPrune(files, addedBefore);
    if (plan?.needsPacking) {
      await compactClient(files, 1);
      plan = await planPrune(files, addedBefore);
    }
    if (plan === null) return 0;
    if (plan.needsPacking) continue;
    const done = await prunePacked(files, plan);
    if (done !== null) return done;
  }
  return 0;
}

/** Prunes what the plan names, all of it packed; null when the plan went stale. */
async function prunePacked(files: ClientFiles, plan: PrunePlan): Promise<number | null> {
  const { base, pruned } = plan;
  const basis = base.packs;
  const kept: PackMeta[] = [];
  const written: PackMeta[] = [];
  const replaced: PackMeta[] = [];
  let committed = false;
  try {
    for (const pack of basis) {
      const entries = fromPlannedPack(() => files.shelf.index(files.paths, pack).entries());
      const keep = entries.filter((entry) => !pruned.has(entry.versionId));
      if (keep.length === entries.length) {
        kept.push(pack);
        continue;
      }
      replaced.push(pack);
      if (keep.length === 0) continue;
      const rewritten = await rewritePack(files, pack, keep);
      written.push(rewritten);
      kept.push(rewritten);
    }
    // No loose copy of a pruned version may outlive the commit: it would be read as committed.
    await removeLooseCopies(files, [...pruned.values()], plan.dir, true);
    committed = await commitMeta(files, { ...base, packs: kept }, basis, true);
  } finally {
    if (!committed) for (const pack of written) await unlinkIfThere(files.paths.pack(pack.file)).catch(() => undefined);
  }
  if (!committed) return null;
  await sweep(files, kept, replaced, plan.dir);
  return pruned.size;
}

async function rewritePack(files: ClientFiles, pack: PackMeta, keep: readonly PackEntry[]): Promise<PackMeta> {
  const name = `pack-${uuidv4()}.pack`;
  const writer = PackWriter.create(files.paths.pack(name), keep.length);
  try {
    await copyRecords(files.paths.pack(pack.file), keep, writer);
    const size = await writer.finish(files.paths.dir, keep.length);
    return { file: name, versions: keep.length, size };
  } catch (err) {
    writer.abandon();
    throw err;
  }
}

/** Compactions waiting to run in the background of one FileStorage, one client at a time. */
export class Compactor {
  readonly #pending = new Set<ClientId>();
  readonly #run: (clientId: ClientId) => Promise<unknown>;
  readonly #onError: (clientId: ClientId, err: unknown) => void;
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(run: (clientId: ClientId) => Promise<unknown>, onError: (clientId: ClientId, err: unknown) => void) {
    this.#run = run;
    this.#onError = onError;
  }

  /** Queues the client; it is compacted soon, after the clients queued before it. */
  add(clientId: ClientId): void {
    if (this.#closed) return;
    this.#pending.add(clientId);
    this.#running ??= this.#drain();
  }

  async #drain(): Promise<void> {
    // Started after the commit that queued the client has answered.
    await nextTurn();
    // A Set iterates over what is added meanwhile too, so nothing queued is left behind.
    for (const clientId of this.#pending) {
      this.#pending.delete(clientId);
      if (this.#closed) break;
      try {
        await this.#run(clientId);
      } catch (err) {
        this.#onError(clientId, err);
      }
    }
    // Ended in the same turn as the loop, before add() can run again.
    this.#running = null;
  }

  /** Drops what is queued and waits for the compaction under way. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pending.clear();
    await this.#running;
  }
}
