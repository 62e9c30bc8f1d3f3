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
 * write-file-atomic's temporary files are never read.
 */
import { link, mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { v4 as uuidv4 } from 'uuid';
import { TcsyncError } from '../../errors.js';
import { isCanonicalUuid, type ClientId, type VersionId } from '../../ids.js';
import { StagedTxn, type TxnChanges } from '../staged-txn.js';
import type { Client, Snapshot, Storage, StorageTxn, Version } from '../storage.js';
import { ClientLocks, type HeldLock, type LockOptions } from './client-lock.js';
import { parseMeta, serializeMeta, type ClientMeta, type PendingLink, type SnapshotMeta } from './client-meta.js';
import { fsyncDir, ioError, isErrno, openOrNull, readFileOrNull, replaceFile, statOrNull, writeNewFile } from './durable-fs.js';
import { ClientPaths, FORMAT_FILE, LOCKS_DIR, TOMBSTONES_DIR, TRASH_DIR, tombstonePath } from './layout.js';
import { decodeVersion, encodeVersion, MAX_HEADER, parseHeader } from './version-file.js';
import type { BigIntStats } from 'node:fs';

export interface FileStorageOptions extends LockOptions {
  /**
   * client.json is rewritten once this many versions were added since its checkpoint, bounding
   * the links a process that has not seen the client yet must follow.
   * @default 64
   */
  readonly checkpointEvery?: number;
  /**
   * How many clients' loaded metadata are kept in memory.
   * @default 10000
   */
  readonly cacheClients?: number;
}

/** The data directory's format; a directory of a newer format is refused. */
export const DATA_FORMAT = { format: 'tcsync', version: 1 } as const;

/** A client's committed state as last seen by this process. */
interface ClientState {
  /** Identity of client.json when loaded; a different one means another process rewrote it. */
  readonly identity: string;
  readonly meta: ClientMeta;
  /** The latest version: the checkpoint, then `steps` links further. */
  readonly latest: VersionId;
  readonly steps: number;
  /** The lease under which this was last known true; while it lasts, nobody else can change it. */
  readonly leaseId: number;
}

interface Shared {
  readonly dataDir: string;
  readonly checkpointEvery: number;
  readonly cache: ClientCache;
}

class ClientCache {
  readonly #entries = new Map<ClientId, ClientState>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get(id: ClientId): ClientState | undefined {
    return this.#entries.get(id);
  }

  set(id: ClientId, state: ClientState): void {
    this.#entries.delete(id);
    this.#entries.set(id, state);
    if (this.#entries.size > this.#max) {
      // Maps iterate in insertion order, so the first key is the least recently stored.
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  delete(id: ClientId): void {
    this.#entries.delete(id);
  }
}

function identityOf(st: BigIntStats): string {
  return `${st.ino}:${st.mtimeNs}:${st.ctimeNs}:${st.size}`;
}

export class FileStorage implements Storage {
  readonly #shared: Shared;
  readonly #locks: ClientLocks;
  #closed = false;

  private constructor(shared: Shared, locks: ClientLocks) {
    this.#shared = shared;
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
      // Deleted clients whose removal a crash interrupted: already invisible, now gone.
      for (const name of await readdir(path.join(dir, TRASH_DIR))) {
        await rm(path.join(dir, TRASH_DIR, name), { recursive: true, force: true });
      }
    } catch (err) {
      throw ioError(`cannot open data directory ${dir}`, err);
    }
    const shared: Shared = {
      dataDir: dir,
      checkpointEvery: options.checkpointEvery ?? 64,
      cache: new ClientCache(options.cacheClients ?? 10_000),
    };
    return new FileStorage(shared, new ClientLocks(dir, options));
  }

  /** The absolute path of the data directory. */
  get dataDir(): string {
    return this.#shared.dataDir;
  }

  async txn(clientId: ClientId): Promise<StorageTxn> {
    if (this.#closed) throw new TcsyncError('STORAGE_IO', 'storage is closed');
    const paths = new ClientPaths(this.#shared.dataDir, clientId);
    const lock = await this.#locks.acquire(clientId);
    return new FileTxn(this.#shared, clientId, paths, lock);
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
      lock.assertHeld();
      // One rename takes the whole directory away: no reader ever sees half a client.
      const trashed = path.join(dataDir, TRASH_DIR, `${clientId}.${uuidv4()}`);
      await rename(paths.dir, trashed);
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
   * Runs `work` on a client's directory while holding the client's lock, so that it sees only
   * committed state and nothing changes under it (verify and backup use this). `assertHeld`
   * throws `LOCK_LOST` when the lock was taken over meanwhile.
   */
  async withClientLock<T>(clientId: ClientId, work: (clientDir: string, assertHeld: () => void) => Promise<T>): Promise<T> {
    const lock = await this.#locks.acquire(clientId);
    try {
      return await work(new ClientPaths(this.#shared.dataDir, clientId).dir, () => lock.assertHeld());
    } finally {
      // The work may have changed files: what this process remembers of the client must be re-read.
      this.#shared.cache.delete(clientId);
      await lock.release();
    }
  }

  /** Waits for open transactions to end and releases every lock this instance holds. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#locks.close();
  }
}

/** Creates `dir` and any missing parents, fsyncing each new directory's parent so the chain survives a crash. */
async function makeDirDurably(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let made = dir; ; made = path.dirname(made)) {
    await fsyncDir(path.dirname(made));
    if (made === first) break;
  }
}

async function ensureFormat(dir: string): Promise<void> {
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

class FileTxn extends StagedTxn {
  readonly #shared: Shared;
  readonly #clientId: ClientId;
  readonly #paths: ClientPaths;
  readonly #lock: HeldLock;
  #state: ClientState | null = null;

  constructor(shared: Shared, clientId: ClientId, paths: ClientPaths, lock: HeldLock) {
    super();
    this.#shared = shared;
    this.#clientId = clientId;
    this.#paths = paths;
    this.#lock = lock;
  }

  protected loadClient(): Promise<Client | null> {
    return this.#io('read client', async () => {
      let state = this.#shared.cache.get(this.#clientId);
      if (state?.leaseId === this.#lock.leaseId) {
        this.#state = state;
        return clientOf(state);
      }
      const st = await statOrNull(this.#paths.meta);
      if (st === null) {
        this.#shared.cache.delete(this.#clientId);
        return null;
      }
      const identity = identityOf(st);
      if (state?.identity !== identity) {
        const meta = parseMeta((await readFileOrNull(this.#paths.meta))?.toString('utf8') ?? '', this.#paths.meta);
        if (meta.pendingLinks.length > 0) await this.#createLinks(meta.pendingLinks);
        state = { identity, meta, latest: meta.checkpointVersionId, steps: 0, leaseId: this.#lock.leaseId };
      }
      state = await this.#followChildren(state);
      this.#remember(state);
      return clientOf(state);
    });
  }

  protected isTombstoned(): Promise<boolean> {
    return this.#io('read tombstone', async () => (await statOrNull(tombstonePath(this.#shared.dataDir, this.#clientId))) !== null);
  }

  protected loadVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    return this.#io('read version', async () => {
      const file = this.#paths.child(parentVersionId);
      const bytes = await readFileOrNull(file);
      if (bytes === null) return null;
      const version = decodeVersion(bytes, file);
      if (version.parentVersionId !== parentVersionId) throw new TcsyncError('CORRUPT', `${file}: names parent ${version.parentVersionId}`);
      return version;
    });
  }

  protected loadVersion(versionId: VersionId): Promise<Version | null> {
    return this.#io('read version', async () => {
      const file = this.#paths.version(versionId);
      const handle = await openOrNull(file);
      if (handle === null) return null;
      let bytes: Buffer;
      let links: number;
      try {
        links = (await handle.stat()).nlink;
        bytes = await handle.readFile();
      } finally {
        await handle.close();
      }
      let version: Version;
      try {
        version = decodeVersion(bytes, file);
      } catch (err) {
        // A committed version is fsync'd before it is linked, so it is never torn: a torn file
        // with no second link is what a crash mid-write leaves. One with a link is damage.
        if (links < 2) return null;
        throw err;
      }
      if (version.versionId !== versionId) throw new TcsyncError('CORRUPT', `${file}: names version ${version.versionId}`);
      // Committed only if its parent's .child is this version. Compared by content, not inode,
      // so that a copy of the data directory that did not keep hard links still reads right.
      return (await this.#childIdOf(version.parentVersionId)) === versionId ? version : null;
    });
  }

  protected loadSnapshotData(_snapshot: Snapshot): Promise<Uint8Array | null> {
    return this.#io('read snapshot', async () => {
      const meta = this.#state?.meta.snapshot;
      if (!meta) return null;
      const file = this.#paths.snapshotBlob(meta.file);
      const bytes = await readFileOrNull(file);
      if (bytes === null) return null;
      if (bytes.byteLength !== meta.size || crc32(bytes) !== meta.crc32) {
        throw new TcsyncError('CORRUPT', `${file}: size or checksum does not match client.json`);
      }
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
  }

  protected persist(changes: TxnChanges): Promise<void> {
    return this.#io('commit', async () => {
      const [only, ...more] = changes.versions;
      if (changes.before !== null && only && more.length === 0 && changes.snapshotData === null &&
          only.parentVersionId === changes.before.latestVersionId && this.#state !== null) {
        await this.#commitOneVersion(this.#state, only);
      } else {
        await this.#commitWithMeta(changes);
      }
    });
  }

  protected async release(): Promise<void> {
    await this.#lock.release();
  }

  /** The common commit: one version on top of the latest, committed by its `.child` link. */
  async #commitOneVersion(state: ClientState, version: Version): Promise<void> {
    await this.#writeVersionFile(version);
    this.#lock.assertHeld();
    try {
      await link(this.#paths.version(version.versionId), this.#paths.child(version.parentVersionId));
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      // Another writer committed a child of our parent: our lock was not exclusive.
      await unlink(this.#paths.version(version.versionId)).catch(() => undefined);
      throw new TcsyncError('LOCK_LOST', 'another writer committed concurrently; nothing was committed');
    }
    await fsyncDir(this.#paths.versionsDir);
    const next = { ...state, latest: version.versionId, steps: state.steps + 1 };
    this.#remember(next);
    if (next.steps >= this.#shared.checkpointEvery) await this.#checkpoint(next);
  }

  /** Every other commit: blobs first, then client.json renamed into place as the commit point. */
  async #commitWithMeta(changes: TxnChanges): Promise<void> {
    const { dataDir } = this.#shared;
    const { after, versions, snapshotData } = changes;
    if (changes.before === null) {
      await mkdir(this.#paths.versionsDir, { recursive: true });
      await fsyncDir(this.#paths.dir);
      await fsyncDir(dataDir);
    }
    for (const version of versions) await this.#writeVersionFile(version);
    if (versions.length > 0) await fsyncDir(this.#paths.versionsDir);

    const oldSnapshot = this.#state?.meta.snapshot ?? null;
    let snapshot: SnapshotMeta | null = null;
    if (after.snapshot !== null && snapshotData !== null) {
      const file = `snapshot-${uuidv4()}.bin`;
      await writeNewFile(this.#paths.snapshotBlob(file), [snapshotData]);
      await fsyncDir(this.#paths.dir);
      snapshot = { ...after.snapshot, file, size: snapshotData.byteLength, crc32: crc32(snapshotData) };
    } else if (after.snapshot !== null && oldSnapshot !== null) {
      snapshot = { ...oldSnapshot, versionsSince: after.snapshot.versionsSince };
    }
    const pendingLinks = versions.map(({ versionId, parentVersionId }) => ({ versionId, parentVersionId }));
    const meta: ClientMeta = { checkpointVersionId: after.latestVersionId, snapshot, pendingLinks };

    this.#lock.assertHeld();
    try {
      await replaceFile(this.#paths.meta, serializeMeta(meta));
      await fsyncDir(this.#paths.dir);
      // Committed. What follows completes it; a crash here is repaired by the next load.
      await this.#createLinks(pendingLinks);
      if (oldSnapshot !== null && oldSnapshot.file !== snapshot?.file) {
        await unlink(this.#paths.snapshotBlob(oldSnapshot.file)).catch(() => undefined);
      }
      const st = await statOrNull(this.#paths.meta);
      if (st === null) throw new TcsyncError('STORAGE_IO', 'client.json vanished after commit');
      this.#remember({ identity: identityOf(st), meta, latest: after.latestVersionId, steps: 0, leaseId: this.#lock.leaseId });
    } catch (err) {
      this.#shared.cache.delete(this.#clientId);
      throw err;
    }
  }

  /** Rewrites client.json at the latest version, so that new readers follow fewer links. */
  async #checkpoint(state: ClientState): Promise<void> {
    const snapshot = state.meta.snapshot && { ...state.meta.snapshot, versionsSince: state.meta.snapshot.versionsSince + state.steps };
    const meta: ClientMeta = { checkpointVersionId: state.latest, snapshot, pendingLinks: [] };
    try {
      this.#lock.assertHeld();
      await replaceFile(this.#paths.meta, serializeMeta(meta));
      await fsyncDir(this.#paths.dir);
      const st = await statOrNull(this.#paths.meta);
      if (st !== null) this.#remember({ identity: identityOf(st), meta, latest: state.latest, steps: 0, leaseId: this.#lock.leaseId });
    } catch {
      // Only an optimisation, and the version is already committed: every checkpoint on the
      // chain describes the same state, old or new. Forget what we know and reload next time.
      this.#shared.cache.delete(this.#clientId);
    }
  }

  /** Creates a version file; a leftover of an uncommitted transaction under its name is replaced. */
  async #writeVersionFile(version: Version): Promise<void> {
    const file = this.#paths.version(version.versionId);
    const chunks = encodeVersion(version);
    try {
      await writeNewFile(file, chunks);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      // addVersion found no committed version of this id, so the file is garbage.
      await unlink(file);
      await writeNewFile(file, chunks);
    }
  }

  async #createLinks(links: readonly PendingLink[]): Promise<void> {
    if (links.length === 0) return;
    for (const { versionId, parentVersionId } of links) {
      try {
        await link(this.#paths.version(versionId), this.#paths.child(parentVersionId));
      } catch (err) {
        if (isErrno(err, 'ENOENT')) throw new TcsyncError('CORRUPT', `${this.#paths.version(versionId)}: named by client.json but missing`);
        if (!isErrno(err, 'EEXIST')) throw err;
      }
    }
    await fsyncDir(this.#paths.versionsDir);
  }

  /** Follows `.child` links from the state's latest version to the real latest. */
  async #followChildren(state: ClientState): Promise<ClientState> {
    let { latest, steps } = state;
    for (;;) {
      const childId = await this.#childIdOf(latest);
      if (childId === null) break;
      latest = childId;
      steps += 1;
    }
    return latest === state.latest ? state : { ...state, latest, steps };
  }

  async #childIdOf(parent: VersionId): Promise<VersionId | null> {
    const file = this.#paths.child(parent);
    const handle = await openOrNull(file);
    if (handle === null) return null;
    try {
      const head = Buffer.alloc(MAX_HEADER);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      const { header } = parseHeader(head.subarray(0, bytesRead), file);
      if (header.parentVersionId !== parent) throw new TcsyncError('CORRUPT', `${file}: names parent ${header.parentVersionId}`);
      return header.versionId;
    } finally {
      await handle.close();
    }
  }

  #remember(state: ClientState): void {
    this.#state = { ...state, leaseId: this.#lock.leaseId };
    this.#shared.cache.set(this.#clientId, this.#state);
  }

  async #io<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw ioError(what, err);
    }
  }
}

function clientOf(state: ClientState): Client {
  const { snapshot } = state.meta;
  return {
    latestVersionId: state.latest,
    snapshot: snapshot && {
      versionId: snapshot.versionId,
      timestamp: snapshot.timestamp,
      versionsSince: snapshot.versionsSince + state.steps,
    },
  };
}
