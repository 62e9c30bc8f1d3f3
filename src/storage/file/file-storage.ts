/**
 * FileStorage: every client is a directory of plain files (layout.ts), every transaction holds
 * the client's lock (client-lock.ts), and every commit has exactly one commit point, an atomic
 * creation of a name, before which nothing of it is visible and after which all of it is.
 *
 * The common commit, one version added on top of the latest, costs what the raw durable write
 * costs: the version file is created and fsync'd, hard-linked as `<parent>.child` (the commit
 * point: link(2), unlike rename(2), refuses to replace a name, so a second child of one parent
 * cannot happen even if locking failed), and the versions directory is fsync'd. client.json is
 * not rewritten: the latest version is found by following `.child` links from its checkpoint,
 * which is refreshed every `checkpointEvery` versions.
 *
 * Every other commit (a new client, a snapshot, several versions, a first version whose parent
 * is not nil) writes its blobs, fsyncs them and their directories, and then renames a new
 * client.json into place: that rename is its commit point. The `.child` links it adds are listed
 * in client.json and created right after; a crash before they exist is repaired by the next
 * transaction that loads client.json.
 *
 * Uncommitted leftovers are ignored by construction: a `.version` file counts only when its
 * parent's `.child` names it (normally the same inode; compared by content, so a copy that did
 * not keep hard links still works), a snapshot blob only when client.json names it, and
 * temporary files (layout.ts tempPathOf) are never read.
 */
import { renameSync } from 'node:fs';
import { mkdir, readdir, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { isTcsyncError, TcsyncError } from '../../errors.js';
import { assertCanonicalId, isCanonicalUuid, type ClientId } from '../../ids.js';
import type { ClientSink, ClientSource, ExportedClient } from '../client-export.js';
import { LruMap } from '../lru-map.js';
import { KeyedMutex } from '../keyed-mutex.js';
import type { ClientUsage, Storage, StorageTxn, TxnOptions } from '../storage.js';
import { clientStateBytes } from './client-cache.js';
import { ClientLocks, type HeldLock, type LockOptions } from './client-lock.js';
import { CommitPacing } from './commit-pacing.js';
import { CompactionSchedule } from './compaction-schedule.js';
import { compactClient, Compactor, pruneClient, type ClientFiles, type CompactionResult } from './compaction.js';
import { ensureFormat, makeDirDurably, raiseFormat } from './data-dir.js';
import { fsyncDir, ioError, isErrno, replaceFile, statOrNull } from './durable-fs.js';
import { exportFileClient, listFileTombstones } from './file-export.js';
import { importFileClient, importFileTombstone } from './file-import.js';
import { FileTxn, type Shared } from './file-txn.js';
import { fileClientUsage } from './file-usage.js';
import { ClientPaths, clientOfTrash, LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR, tombstonePath } from './layout.js';
import { PackShelf } from './pack-shelf.js';
import { VersionMemo } from './version-memo.js';

export { DATA_FORMAT } from './data-dir.js';

export interface FileStorageOptions extends LockOptions {
  /**
   * client.json is rewritten once this many versions were added since its checkpoint, bounding
   * the links a process that has not seen the client yet must follow.
   * @default 64
   */
  readonly checkpointEvery?: number;
  /**
   * How many bytes of clients' loaded metadata are kept in memory, their bookkeeping included
   * (client-cache.ts): 20,000 to 40,000 clients. A poll of a remembered client costs two stats;
   * of another, a read of client.json and of the links since its checkpoint.
   * @default 16777216 (16 MiB)
   */
  readonly clientCacheBytes?: number;
  /**
   * How many bytes of recently read versions are kept in memory, their bookkeeping included
   * (version-memo.ts); about 4,000 versions of 1 KiB.
   * @default 8388608 (8 MiB)
   */
  readonly versionMemoBytes?: number;
  /**
   * A client is compacted in the background (compaction.ts) once it has this many loose
   * versions and has paused (compactQuietMs); 0 never. 64 keeps a client's directory under
   * about 150 files while each compaction writes a small pack (64 versions of 1 KiB, well under
   * 50 ms), and matches the checkpoint's interval, so a compaction costs about what one more
   * checkpoint would.
   * @default 64
   */
  readonly compactAfter?: number;
  /**
   * How long a client must have made no commit before it is compacted (compaction-schedule.ts);
   * 0 compacts it as soon as it has compactAfter loose versions. A client with 256 times
   * compactAfter loose versions is compacted without a pause.
   * @default 1000
   */
  readonly compactQuietMs?: number;
  /**
   * How many bytes of pack indexes, and of packs read ahead for walks through them, are kept in
   * memory (pack-shelf.ts): a sixteenth, at most 2 MiB, for read-ahead windows of 64 KiB; the
   * rest for indexes, 60 bytes a packed version, so about 260,000 versions.
   * @default 16777216 (16 MiB)
   */
  readonly packIndexBytes?: number;
  /** Told of a background compaction that failed (the client stays as it was). @default ignored */
  readonly onCompactionError?: (clientId: ClientId, err: unknown) => void;
}

/**
 * A client that never pauses is compacted at this many times compactAfter loose versions (16,384
 * by default, 32,768 names and 16 MiB of 1 KiB versions): only a bulk import over the protocol
 * adds so many without a pause, and a compaction in the middle of its commits slows them (with
 * 4,096, add-version p99 was 2.04x in bench (f), whose turns of 5,000 adds then each met one).
 */
const BUSY_COMPACTION_FACTOR = 256;

export class FileStorage implements Storage, ClientSource, ClientSink {
  readonly #shared: Shared;
  readonly #locks: ClientLocks;
  readonly #compactor: Compactor;
  readonly #schedule: CompactionSchedule;
  /** One compaction or pruning per client at a time in this process; other processes meet at the commit. */
  readonly #maintaining = new KeyedMutex<ClientId>();
  /** format.json raised to this tcsync's format, once, before the first pack is written (data-dir.ts). */
  #formatRaised: Promise<void> | null = null;
  #closed = false;

  private constructor(shared: Omit<Shared, 'looseVersions'>, locks: ClientLocks, options: FileStorageOptions) {
    const compactAfter = options.compactAfter ?? 64;
    const onError = options.onCompactionError ?? (() => undefined);
    const compactor = new Compactor((clientId) => this.#maintain(clientId, (files) => compactClient(files, schedule.minLoose(clientId))), onError);
    const schedule = new CompactionSchedule(
      { after: compactAfter, quietMs: options.compactQuietMs ?? 1000, busyAfter: BUSY_COMPACTION_FACTOR * compactAfter },
      (clientId) => compactor.add(clientId),
    );
    this.#compactor = compactor;
    this.#schedule = schedule;
    this.#shared = { ...shared, looseVersions: (clientId, loose) => schedule.committed(clientId, loose) };
    this.#locks = locks;
  }

  /**
   * Opens (creating and initialising it when missing or empty) a data directory. Refuses one of
   * a newer format, and a non-empty directory that is not a tcsync data directory.
   */
  static async open(dataDir: string, options: FileStorageOptions = {}): Promise<FileStorage> {
    const dir = path.resolve(dataDir);
    try {
      await makeDirDurably(dir);
      await ensureFormat(dir);
      for (const sub of [LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR]) await mkdir(path.join(dir, sub), { recursive: true });
      // A tombstone is only as durable as the directory that holds it.
      await fsyncDir(dir);
    } catch (err) {
      throw ioError(`cannot open data directory ${dir}`, err);
    }
    const locks = new ClientLocks(dir, options);
    await sweepTrash(dir, locks);
    const shared: Omit<Shared, 'looseVersions'> = {
      dataDir: dir,
      checkpointEvery: options.checkpointEvery ?? 64,
      cache: new LruMap(options.clientCacheBytes ?? 16 * 1024 * 1024, clientStateBytes),
      versions: new VersionMemo(options.versionMemoBytes ?? 8 * 1024 * 1024),
      packs: new PackShelf(options.packIndexBytes ?? 16 * 1024 * 1024),
      pacing: new CommitPacing(),
    };
    return new FileStorage(shared, locks, options);
  }

  /**
   * How many clients' loaded metadata are kept in memory and what they count for against
   * clientCacheBytes (client-cache.ts), for tests and monitoring.
   */
  get clientCache(): { readonly clients: number; readonly bytes: number } {
    const { cache } = this.#shared;
    return { clients: cache.size, bytes: cache.weight };
  }

  /** The absolute path of the data directory. */
  get dataDir(): string {
    return this.#shared.dataDir;
  }

  /**
   * An optimistic transaction starts without the lock and takes it only to commit changes
   * (file-txn.ts); any other holds the lock from the start, as export and repair need.
   */
  txn(clientId: ClientId, options: TxnOptions = {}): Promise<StorageTxn> {
    if (this.#closed) return Promise.reject(new TcsyncError('STORAGE_IO', 'storage is closed'));
    return this.#fileTxn(clientId, options);
  }

  /**
   * Also for a compaction or pruning under way, which close() waits for: it goes on after close()
   * began. Not async: an optimistic transaction (every poll) begins without waiting for anything.
   */
  #fileTxn(clientId: ClientId, options: TxnOptions): Promise<FileTxn> {
    let paths: ClientPaths;
    try {
      paths = new ClientPaths(this.#shared.dataDir, clientId);
    } catch (err) {
      // A bad id fails the promise, as it did when this was async, never the call.
      return Promise.reject(err);
    }
    this.#shared.pacing.opened();
    if (options.optimistic === true) return Promise.resolve(new FileTxn(this.#shared, clientId, paths, this.#locks, null, options.passing === true));
    return this.#lockedTxn(clientId, paths, options);
  }

  async #lockedTxn(clientId: ClientId, paths: ClientPaths, options: TxnOptions): Promise<FileTxn> {
    let lock;
    try {
      lock = await this.#locks.acquire(clientId);
    } catch (err) {
      this.#shared.pacing.closed();
      throw err;
    }
    return new FileTxn(this.#shared, clientId, paths, this.#locks, lock, options.passing === true);
  }

  async deleteClient(clientId: ClientId): Promise<boolean> {
    const { dataDir } = this.#shared;
    const paths = new ClientPaths(dataDir, clientId);
    const lock = await this.#locks.acquire(clientId);
    try {
      if ((await statOrNull(paths.meta)) === null) return false;
      // The tombstone first: from the moment the client is gone, its id must be refused.
      const tombstone = tombstonePath(dataDir, clientId);
      await replaceFile(tombstone, JSON.stringify({ deletedAt: new Date().toISOString() }) + '\n');
      await fsyncDir(path.dirname(tombstone));
      // One rename takes the whole directory away: no reader ever sees half a client. Made at
      // once after the lock's check, without waiting for the threadpool in between.
      const trashed = path.join(dataDir, TRASH_DIR, `${clientId}.${uuidv4()}`);
      lock.assertHeld();
      renameSync(paths.dir, trashed);
      await fsyncDir(dataDir);
      this.#shared.cache.delete(clientId);
      await rm(trashed, { recursive: true, force: true });
      return true;
    } catch (err) {
      this.#shared.cache.delete(clientId);
      throw ioError('delete client', err);
    } finally {
      await lock.release();
    }
  }

  async liftTombstone(clientId: ClientId): Promise<boolean> {
    const tombstone = tombstonePath(this.#shared.dataDir, clientId);
    try {
      await unlink(tombstone);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw ioError('lift tombstone', err);
    }
    await fsyncDir(path.dirname(tombstone)).catch((err) => {
      throw ioError('lift tombstone', err);
    });
    return true;
  }

  async isTombstoned(clientId: ClientId): Promise<boolean> {
    try {
      return (await statOrNull(tombstonePath(this.#shared.dataDir, clientId))) !== null;
    } catch (err) {
      throw ioError('read tombstone', err);
    }
  }

  async listClients(after: ClientId | null, limit: number): Promise<ClientId[]> {
    if (after !== null) assertCanonicalId(after, 'client id');
    const { dataDir } = this.#shared;
    try {
      const candidates = (await readdir(dataDir))
        .filter((name): name is ClientId => isCanonicalUuid(name) && (after === null || name > after))
        .sort();
      const found: ClientId[] = [];
      for (const id of candidates) {
        if (found.length >= limit) break;
        // A directory without client.json is the leftover of an interrupted creation, not a client.
        if ((await statOrNull(new ClientPaths(dataDir, id).meta)) !== null) found.push(id);
      }
      return found;
    } catch (err) {
      throw ioError('list clients', err);
    }
  }

  /**
   * Packs every loose version of the client (compaction.ts), as serve does by itself once a
   * client has `compactAfter` of them; null when there was nothing to pack or another writer's
   * compaction came first. Holds the client's lock only to commit, for milliseconds.
   */
  compact(clientId: ClientId): Promise<CompactionResult | null> {
    return this.#maintain(clientId, (files) => compactClient(files, 1));
  }

  /** See Storage.pruneVersions; implemented in compaction.ts. */
  async pruneVersions(clientId: ClientId, addedBefore: Date): Promise<number> {
    return (await this.#maintain(clientId, (files) => pruneClient(files, addedBefore))) ?? 0;
  }

  async #maintain<T>(clientId: ClientId, work: (files: ClientFiles) => Promise<T>): Promise<T | null> {
    if (this.#closed) throw new TcsyncError('STORAGE_IO', 'storage is closed');
    const paths = new ClientPaths(this.#shared.dataDir, clientId);
    const files: ClientFiles = {
      paths,
      shelf: this.#shared.packs,
      txn: (optimistic) => this.#fileTxn(clientId, { optimistic, passing: true }),
    };
    const release = await this.#maintaining.acquire(clientId);
    try {
      await this.#raiseFormat();
      return await work(files);
    } catch (err) {
      // Another writer changed the client under the plan: nothing was done, and nothing is wrong.
      if (isTcsyncError(err, 'TXN_STALE')) return null;
      throw ioError('compact client', err);
    } finally {
      release();
    }
  }

  /** See Storage.clientUsage; implemented, without the lock, in file-usage.ts. */
  clientUsage(clientId: ClientId): Promise<ClientUsage | null> {
    return fileClientUsage(new ClientPaths(this.#shared.dataDir, clientId));
  }

  /**
   * True when no commit to the client can be under way now, in this process or another
   * (ClientLocks.quiet): everything of it visible at this instant is committed and durable. So a
   * reader without the lock read committed state when it sees the client quiet after reading,
   * and every file it read still the one it read (none replaced or taken back by a failed
   * commit). backup reads this way, where taking and dropping 10,000 locks cost it seconds.
   */
  isQuiet(clientId: ClientId): boolean {
    return this.#locks.quiet(clientId);
  }

  /**
   * Runs `work` on a client's directory while holding the client's lock, so that it sees only
   * committed state and nothing changes under it (verify and backup use this). `assertHeld`
   * throws `LOCK_LOST` when the lock was taken over meanwhile.
   */
  async withClientLock<T>(clientId: ClientId, work: (clientDir: string, assertHeld: () => void) => Promise<T>): Promise<T> {
    const lock = await this.#locks.acquire(clientId);
    try {
      // Without an exclusive lock (the file system refuses writes) the work reads committed
      // state, which is all it can do there; its own writes fail with the file system's refusal.
      const assertHeld = lock.exclusive ? () => lock.assertHeld() : () => undefined;
      return await work(new ClientPaths(this.#shared.dataDir, clientId).dir, assertHeld);
    } finally {
      // The work may have changed files: what this process remembers of the client must be re-read.
      this.#shared.cache.delete(clientId);
      await lock.release();
    }
  }

  /** See ClientSource (client-export.ts); implemented in file-export.ts. */
  exportClient<T>(clientId: ClientId, work: (client: ExportedClient) => Promise<T>): Promise<T | null> {
    return exportFileClient(() => this.#fileTxn(clientId, {}), this.#shared.dataDir, clientId, work);
  }

  listTombstones(after: ClientId | null, limit: number): Promise<ClientId[]> {
    return listFileTombstones(this.#shared.dataDir, after, limit);
  }

  /** See ClientSink (client-export.ts); implemented in file-import.ts. */
  async importClient(client: ExportedClient): Promise<void> {
    await this.#raiseFormat().catch((err) => {
      throw ioError('raise the data format', err);
    });
    return importFileClient(this, client);
  }

  #raiseFormat(): Promise<void> {
    this.#formatRaised ??= raiseFormat(this.#shared.dataDir).catch((err) => {
      this.#formatRaised = null;
      throw err;
    });
    return this.#formatRaised;
  }

  importTombstone(clientId: ClientId): Promise<void> {
    return importFileTombstone(this, clientId);
  }

  /** Waits for open transactions to end and releases every lock this instance holds. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#schedule.close();
    await this.#compactor.close();
    await this.#maintaining.drain();
    this.#shared.packs.close();
    await this.#locks.close();
  }
}

/**
 * Removes what a crash left in trash/: deleted clients whose removal it interrupted, already
 * invisible, and new clients it interrupted as they were built, never visible. Each under its
 * client's lock, as another process on the data directory may be building that client now
 * (file-txn.ts, #commitNewClient) or removing it.
 */
async function sweepTrash(dataDir: string, locks: ClientLocks): Promise<void> {
  const trash = path.join(dataDir, TRASH_DIR);
  try {
    for (const name of await readdir(trash)) {
      const clientId = clientOfTrash(name);
      let lock: HeldLock | null = null;
      try {
        lock = clientId === null ? null : await locks.acquire(clientId);
      } catch (err) {
        // Held all this while by a live process: its entry, or one the next opening sweeps.
        if (isTcsyncError(err) && err.code === 'LOCK_TIMEOUT') continue;
        throw err;
      }
      try {
        await rm(path.join(trash, name), { recursive: true, force: true });
      } finally {
        await lock?.release();
      }
    }
  } catch (err) {
    throw ioError(`cannot open data directory ${dataDir}`, err);
  }
}
