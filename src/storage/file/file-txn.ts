/**
 * A transaction on one client of a FileStorage: loads committed state (following `.child` links
 * from the checkpoint), and commits staged changes through exactly one commit point. See
 * file-storage.ts for the design.
 *
 * An optimistic transaction (TxnOptions) starts without the lock and reads without it: it takes
 * no lock and writes nothing unless it commits changes. Its reads see the client as committed
 * at one instant, the moment it loaded the client (#loadWithoutLock says why that state is
 * committed); versions added after that instant are not in its view, and what it cannot read
 * consistently (a snapshot blob removed by a newer snapshot) makes it TXN_STALE, to be run
 * again. When it commits changes it takes the lock first and checks that the client is still
 * as it read it (TXN_STALE otherwise), so a commit is never made on a stale read.
 */
import { closeSync, linkSync, mkdirSync, openSync, renameSync } from 'node:fs';
import { rm, unlink } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { v4 as uuidv4 } from 'uuid';
import { TcsyncError } from '../../errors.js';
import type { ClientId, VersionId } from '../../ids.js';
import type { ExportedVersion } from '../client-export.js';
import { StagedTxn, type TxnChanges } from '../staged-txn.js';
import type { Client, Snapshot, Version } from '../storage.js';
import { identityOf, NO_LEASE, withLinksMade, type ClientCache, type ClientState } from './client-cache.js';
import type { CommitPacing } from './commit-pacing.js';
import type { ClientLocks, HeldLock } from './client-lock.js';
import { NONE, parseMeta, serializeMeta, type ClientMeta, type PackMeta, type PendingLink, type SnapshotMeta } from './client-meta.js';
import { fsyncDir, ioError, isErrno, OpenDirs, readFileOrNull, readFileStatOrNull, readHeadOrNull, renameDirOver, replaceFile, statNowOrNull, statOrNull, writeNewFile, type Wait } from './durable-fs.js';
import { ClientPaths, newClientPaths, tombstonePath } from './layout.js';
import { readPackIndex, readRecord } from './pack-file.js';
import type { PackedVersion, PackShelf } from './pack-shelf.js';
import { decodeVersion, encodeVersion, MAX_HEADER, parseHeader } from './version-file.js';
import { newIncarnation, type VersionMemo } from './version-memo.js';

/** What every transaction of one FileStorage shares. */
export interface Shared {
  readonly dataDir: string;
  readonly checkpointEvery: number;
  readonly cache: ClientCache;
  readonly versions: VersionMemo;
  readonly packs: PackShelf;
  readonly pacing: CommitPacing;
  /** Told after every commit how many loose versions the client has (null: not known), to compact it in time. */
  readonly looseVersions: (clientId: ClientId, loose: number | null) => void;
}

/**
 * A client.json planned without the lock by a compaction or a pruning, already written and
 * fsync'd under a temporary name (see FileTxn.replaceMeta).
 */
export interface PreparedMeta {
  readonly meta: ClientMeta;
  /** The temporary file holding it. */
  readonly file: string;
  /** The packs the plan read: it is committed only while client.json still lists exactly these. */
  readonly basis: readonly PackMeta[];
  /** Versions leave the history (a pruning): what is remembered of them must not be used again. */
  readonly removesVersions: boolean;
}

/** Longest inline wait after which a commit still trusts its lease (the default lease is 8 s). */
const INLINE_STALL_MS = 1000;

/** Why a transaction without the lock takes it after all: what it saw may be uncommitted. */
const HAND_OVER = Symbol('hand over');

export class FileTxn extends StagedTxn {
  readonly #shared: Shared;
  readonly #clientId: ClientId;
  readonly #paths: ClientPaths;
  readonly #locks: ClientLocks;
  /** Null while an optimistic transaction has not needed the lock. */
  #held: HeldLock | null;
  /** A listing passes the client once: what it loads is not remembered unless already known. */
  readonly #passing: boolean;
  #state: ClientState | null = null;
  readonly #assertHeld = () => this.#lock.assertHeld();
  readonly #assertNotTakenOver = () => {
    if (this.#lock.takenOver()) throw new TcsyncError('LOCK_LOST', 'the client lock was taken over');
  };

  constructor(shared: Shared, clientId: ClientId, paths: ClientPaths, locks: ClientLocks, lock: HeldLock | null, passing = false) {
    super();
    this.#shared = shared;
    this.#clientId = clientId;
    this.#paths = paths;
    this.#locks = locks;
    this.#held = lock;
    this.#passing = passing;
  }

  /** The lock, where only a holder gets this far (commits and what completes them). */
  get #lock(): HeldLock {
    if (this.#held === null) throw new TcsyncError('LOCK_LOST', 'the client lock is not held');
    return this.#held;
  }

  /** True while this transaction reads without the lock, in the view of the instant it loaded the client. */
  get #unlocked(): boolean {
    return this.#held === null;
  }

  protected override get persistRejectsStoredVersions(): boolean {
    return true;
  }

  protected loadClient(): Promise<Client | null> {
    if (!this.#unlocked) return this.#loadLocked(this.#lock);
    return this.#io('read client', () => this.#loadWithoutLock());
  }

  /**
   * A poll of a client this process knows is answered from memory and two stats, without a
   * promise: a promise hop costs more than such a stat.
   */
  protected override loadClientAtHand(): Client | undefined {
    if (!this.#unlocked) return undefined;
    try {
      return this.#loadKnownWithoutLock();
    } catch (err) {
      throw ioError('read client', err);
    }
  }

  /**
   * #loadWithoutLock's common case, on the event loop alone: a client remembered, unchanged
   * (the same client.json) and with no version past the latest remembered. Undefined when the
   * client must be read as #loadWithoutLock reads it (which then finds out the same again).
   */
  #loadKnownWithoutLock(): Client | undefined {
    const id = this.#clientId;
    if (this.#locks.busy(id)) return undefined;
    const known = this.#shared.cache.get(id);
    if (known === undefined) return undefined;
    const idleLease = this.#locks.idleLeaseId(id);
    const same = (idleLease !== null && known.leaseId === idleLease) || (this.#metaIdentity() === known.identity && this.#linkedChildOf(known.latest, known) === null);
    if (!same) return undefined;
    this.#state = known;
    return clientOf(known);
  }

  #loadLocked(lock: HeldLock): Promise<Client | null> {
    const known = this.#shared.cache.get(this.#clientId);
    // Known under this lease: nobody else can have changed it, so there is nothing to read.
    if (known?.leaseId === lock.leaseId) {
      this.#state = known;
      return Promise.resolve(clientOf(known));
    }
    return this.#io('read client', async () => {
      let state = known;
      const st = await statOrNull(this.#paths.meta);
      if (st === null) {
        this.#shared.cache.delete(this.#clientId);
        return null;
      }
      const identity = identityOf(st);
      if (state?.identity !== identity) {
        const meta = await this.#readMeta();
        // Only the lock holder completes a commit; without the lock the pending links are
        // followed where client.json lists them (#childIdOf), which needs no write.
        if (meta.pendingLinks.length > 0 && lock.exclusive) await this.#createLinks(meta.pendingLinks);
        // Rewritten by someone else, or not known: whatever was remembered may be of another history.
        state = { identity, meta, latest: meta.checkpointVersionId, steps: 0, leaseId: lock.leaseId, incarnation: newIncarnation() };
      }
      this.#state = state;
      state = this.#followChildrenFrom(state).state;
      this.#remember(state);
      return clientOf(state);
    });
  }

  /**
   * Loads the client without the lock. A poll of a client it knows costs a stat of client.json
   * (still the one it knows?) and of `<latest>.child` (nothing newer?), and writes nothing.
   * What it sees is committed state only when no commit was under way as it looked: a commit
   * makes its commit point visible before its fsyncs and takes it back when they fail. So
   * whatever is new to it (another client.json, links past the latest it knew) counts only once
   * the client was seen quiet (ClientLocks.quiet) and the same again after that; otherwise, and
   * whenever a transaction of this process is at the client, it takes the lock as before.
   */
  async #loadWithoutLock(): Promise<Client | null> {
    const { cache } = this.#shared;
    const id = this.#clientId;
    if (this.#locks.busy(id)) return this.#handOver();
    const known = cache.get(id);
    const idleLease = this.#locks.idleLeaseId(id);
    // Known under a lease this process keeps and nobody uses: nothing can have changed.
    if (known !== undefined && idleLease !== null && known.leaseId === idleLease) {
      this.#state = known;
      return clientOf(known);
    }
    const seen = await this.#readCommitted(known);
    if (seen === HAND_OVER) return this.#handOver();
    if (seen === null) {
      if (known !== undefined) cache.delete(id);
      return null;
    }
    this.#state = seen;
    // Its pending links were all seen as files (#readCommitted).
    if (seen !== known && (known !== undefined || !this.#passing)) cache.set(id, withLinksMade(seen));
    return clientOf(seen);
  }

  /** The client's committed state from its files, starting from what was known of it; see #loadWithoutLock. */
  async #readCommitted(known: ClientState | undefined): Promise<ClientState | null | typeof HAND_OVER> {
    const identity = this.#metaIdentity();
    if (identity === null) return null;
    let base = known?.identity === identity ? known : undefined;
    const newMeta = base === undefined;
    if (base === undefined) {
      const meta = await this.#readMeta();
      // Links a crash left unmade are the lock holder's to make; a remembered state has them all.
      for (const { parentVersionId } of meta.pendingLinks) if ((await statOrNull(this.#paths.child(parentVersionId))) === null) return HAND_OVER;
      base = { identity, meta, latest: meta.checkpointVersionId, steps: 0, leaseId: NO_LEASE, incarnation: newIncarnation() };
    }
    this.#state = base;
    const { state, parent } = this.#followChildrenFrom(base);
    if (!newMeta && parent === null) return base;
    if (!this.#locks.quiet(this.#clientId)) return HAND_OVER;
    if (this.#metaIdentity() !== identity) return HAND_OVER;
    // Only the newest link can have been taken back, and a link made again names another version.
    if (parent !== null && (await this.#childIdOf(parent, false)) !== state.latest) return HAND_OVER;
    return state === base ? base : { ...state, leaseId: NO_LEASE };
  }

  /** Goes on as a transaction under the lock, from nothing it read without it. */
  async #handOver(): Promise<Client | null> {
    this.#state = null;
    this.#held = await this.#locks.acquire(this.#clientId);
    return this.#loadLocked(this.#held);
  }

  /** client.json's identity (client-cache.ts), or null when there is none. */
  #metaIdentity(): string | null {
    const st = statNowOrNull(this.#paths.meta);
    return st === null ? null : identityOf(st);
  }

  async #readMeta(): Promise<ClientMeta> {
    return parseMeta((await readFileOrNull(this.#paths.meta))?.toString('utf8') ?? '', this.#paths.meta);
  }

  /**
   * Asked before a client is created (StagedTxn.newClient), whose commit takes the lock anyway. So
   * a transaction without the lock takes it first: under it the answer holds until the commit,
   * which then need not look at the tombstone again (#lockAndCheck).
   */
  protected isTombstoned(): Promise<boolean> {
    return this.#io('read tombstone', async () => {
      if (this.#unlocked) await this.#lockAsRead();
      return (await statOrNull(tombstonePath(this.#shared.dataDir, this.#clientId))) !== null;
    });
  }

  protected loadVersionByParent(parentVersionId: VersionId): Promise<Version | null> {
    // Without the lock, the view is the client as loaded: its latest had no child then.
    if (this.#unlocked && parentVersionId === this.#state?.latest) return Promise.resolve(null);
    const remembered = this.#state && this.#shared.versions.childOf(this.#clientId, this.#state.incarnation, parentVersionId);
    if (remembered) return Promise.resolve(remembered);
    return this.#io('read version', async () => {
      // The latest's child is never packed: packs hold versions up to a checkpoint at most.
      const packed = parentVersionId === this.#state?.latest ? null : await this.#packed((shelf, packs) => shelf.findByParent(this.#paths, packs, parentVersionId));
      // Not remembered (version-memo.ts): read again, it costs a search in memory and seldom a
      // read, about what remembering it costs, and a walk through a packed history would push
      // out the recent loose versions that the replicas of a client fetch.
      if (packed !== null) return this.#readPacked(packed);
      let file = this.#paths.child(parentVersionId);
      let bytes = await readFileOrNull(file);
      const pending = bytes === null ? this.#pendingChildOf(parentVersionId) : null;
      if (pending !== null) {
        file = this.#paths.version(pending);
        bytes = await readFileOrNull(file);
      }
      if (bytes === null) {
        if (parentVersionId !== this.#state?.latest) await this.#assertNotRewritten();
        return null;
      }
      const version = decodeVersion(bytes, file);
      if (version.parentVersionId !== parentVersionId) throw new TcsyncError('CORRUPT', `${file}: names parent ${version.parentVersionId}`);
      await this.#assertInView();
      this.#rememberVersion(version);
      return version;
    });
  }

  /**
   * Checks that a version read from its files belongs to what this transaction may see. Under
   * the lock, every link is committed. Without it, only a commit in flight can have made a link
   * that is not, and such a link is the child of the client's latest version, which is past the
   * loaded one (a child of the loaded one is never read): so the version counts while the loaded
   * latest still has no child. Once it has one, the version may be past the loaded latest or
   * behind it, in the view, and only a walk of the chain could tell: the transaction is stale
   * (TXN_STALE: withTxn runs it again, on the client as it is now). Answering null there would
   * deny a committed version of the view: a get-child-version of an older parent answered
   * "gone", a snapshot ignored as "version-not-found". A version read on a full or read-only disk
   * counts, as nothing can be committed there.
   */
  async #assertInView(): Promise<void> {
    if (!this.#unlocked || this.#state === null) return;
    if ((await this.#childIdOf(this.#state.latest)) !== null) {
      throw new TcsyncError('TXN_STALE', 'a version was committed while the client was read');
    }
  }

  protected loadVersion(versionId: VersionId): Promise<Version | null> {
    return this.#io('read version', async () => {
      const packed = await this.#packed((shelf, packs) => shelf.find(this.#paths, packs, versionId));
      if (packed !== null) return this.#readPacked(packed);
      const file = this.#paths.version(versionId);
      const read = await readFileStatOrNull(file);
      if (read === null) {
        await this.#assertNotRewritten();
        return null;
      }
      const { bytes, nlink: links } = read;
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
      if (this.#unlocked && version.parentVersionId === this.#state?.latest) return null;
      // Committed only if its parent's .child is this version. Compared by content, not inode,
      // so that a copy of the data directory that did not keep hard links still reads right.
      // Without the lock, a compaction may have packed the version and removed that link since
      // its file was read: then client.json is another one, and the read is stale.
      if ((await this.#childIdOf(version.parentVersionId)) !== versionId) {
        await this.#assertNotRewritten();
        return null;
      }
      await this.#assertInView();
      return version;
    });
  }

  /**
   * Looks a version up in the packs client.json lists (pack-shelf.ts). A pack is never changed,
   * but a compaction or a pruning removes the packs it replaced once its client.json is
   * committed: a transaction without the lock that still reads the client as it was is stale.
   */
  async #packed(look: (shelf: PackShelf, packs: readonly PackMeta[]) => PackedVersion | null): Promise<PackedVersion | null> {
    const packs = this.#state?.meta.packs;
    if (packs === undefined || packs.length === 0) return null;
    return this.#fromPack(() => look(this.#shared.packs, packs));
  }

  #readPacked({ file, entry }: PackedVersion): Promise<Version> {
    return this.#fromPack(() => this.#shared.packs.read({ file, entry }));
  }

  async #fromPack<T>(read: () => T): Promise<T> {
    try {
      return read();
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      await this.#assertNotRewritten();
      throw new TcsyncError('CORRUPT', `${this.#paths.dir}: a pack that client.json names is missing`);
    }
  }

  /**
   * Without the lock, what the loaded client.json named may be gone because a newer one replaced
   * it (a compaction, a pruning, a snapshot, a deletion): then the transaction is stale, and a
   * version not found is not an answer. Under the lock, nobody else removes anything.
   */
  async #assertNotRewritten(): Promise<void> {
    if (this.#unlocked && this.#state !== null && this.#metaIdentity() !== this.#state.identity) {
      throw new TcsyncError('TXN_STALE', 'the client was rewritten while it was read');
    }
  }

  /**
   * client.json as this transaction sees the client, as a checkpoint at its latest version: what
   * a compaction or a pruning plans from, changing its packs. Null without a client.
   */
  planMeta(): ClientMeta | null {
    const state = this.#state;
    if (state === null) return null;
    const { snapshot } = state.meta;
    return {
      checkpointVersionId: state.latest,
      snapshot: snapshot && { ...snapshot, versionsSince: snapshot.versionsSince + state.steps },
      pendingLinks: NONE,
      packs: state.meta.packs,
      loose: looseOf(state),
    };
  }

  /**
   * Every version in the packs of the loaded client, pack by pack (oldest first) and in record
   * order, each read with one positioned read and checked: `CORRUPT` when a record or an index is
   * damaged, never its bytes. For an export, which holds the lock: the packs stay named
   * throughout. The indexes are read from the files, not kept: an export passes each client once.
   */
  async *packedVersions(): AsyncGenerator<ExportedVersion> {
    for (const pack of this.#state?.meta.packs ?? []) {
      const file = this.#paths.pack(pack.file);
      const entries = await this.#fromPack(() => readPackIndex(file, pack.size, pack.versions).entries());
      const fd = await this.#fromPack(() => openSync(file, 'r'));
      try {
        for (const entry of entries) yield { ...readRecord(fd, file, entry).version, addedAt: new Date(entry.addedAt) };
      } finally {
        closeSync(fd);
      }
    }
  }

  /**
   * Commits a client.json that a compaction or a pruning planned and wrote without the lock
   * (planMeta): its rename into place is the commit point, the only step made under the lock, so
   * the lock is held for a rename and a few lookups. Its checkpoint may be older than the latest
   * version now: links lead on from it. False, with nothing changed, when the plan is stale:
   * client.json lists other packs or another snapshot, or the checkpoint is no longer committed
   * (the client was deleted and created again). The caller fsyncs the client directory before it
   * relies on the commit. Only for a transaction holding the lock.
   */
  async replaceMeta(prepared: PreparedMeta): Promise<boolean> {
    const client = await this.getClient();
    const state = this.#state;
    if (client === null || state === null || this.#unlocked) return false;
    const { meta, basis } = prepared;
    const samePacks = state.meta.packs.length === basis.length && state.meta.packs.every((pack, i) => pack.file === basis[i]!.file);
    if (!samePacks || state.meta.snapshot?.file !== meta.snapshot?.file) return false;
    const through = meta.checkpointVersionId;
    if (through !== state.latest && (await this.getVersion(through)) === null) return false;
    return this.#io('commit', async () => {
      const steps = await this.#stepsFrom(through, state.latest);
      if (steps === null || !(await this.#newPacksInPlace(prepared))) return false;
      this.#lock.assertHeld();
      renameSync(prepared.file, this.#paths.meta);
      const st = await statOrNull(this.#paths.meta);
      if (st === null) throw new TcsyncError('STORAGE_IO', 'client.json vanished after commit');
      const incarnation = prepared.removesVersions ? newIncarnation() : state.incarnation;
      this.#remember({ identity: identityOf(st), meta, latest: state.latest, steps, leaseId: this.#lock.leaseId, incarnation });
      return true;
    });
  }

  /**
   * Whether every pack the change adds is still there, whole. They were written without the
   * lock, and until client.json names them they are leftovers to everyone else: `verify --repair`
   * (under the lock) removes an unnamed pack. Naming one that is gone would lose every version
   * it holds once the compaction removes their loose files.
   */
  async #newPacksInPlace({ meta, basis }: PreparedMeta): Promise<boolean> {
    const old = new Set(basis.map((pack) => pack.file));
    for (const pack of meta.packs) {
      if (old.has(pack.file)) continue;
      const st = await statOrNull(this.#paths.pack(pack.file));
      if (st === null || st.size !== BigInt(pack.size)) return false;
    }
    return true;
  }

  /** How many links lead from `from` to `to`, following `.child` links; null when `to` is not reached. */
  async #stepsFrom(from: VersionId, to: VersionId): Promise<number | null> {
    let steps = 0;
    for (let at = from; at !== to; steps++) {
      const child = await this.#childIdOf(at, false);
      if (child === null) return null;
      at = child;
    }
    return steps;
  }

  protected loadSnapshotData(_snapshot: Snapshot): Promise<Uint8Array | null> {
    return this.#io('read snapshot', async () => {
      const meta = this.#state?.meta.snapshot;
      if (!meta) return null;
      const file = this.#paths.snapshotBlob(meta.file);
      const bytes = await readFileOrNull(file);
      if (bytes === null) {
        // A newer snapshot's commit removes the blob it replaces, and a deletion every file.
        await this.#assertNotRewritten();
        return null;
      }
      if (bytes.byteLength !== meta.size || crc32(bytes) !== meta.crc32) {
        throw new TcsyncError('CORRUPT', `${file}: size or checksum does not match client.json`);
      }
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
  }

  protected persist(changes: TxnChanges): Promise<void> {
    return this.#io('commit', async () => {
      if (this.#unlocked) await this.#lockAndCheck();
      // Without the lock nothing is written at all (it is asserted again at the commit point).
      this.#lock.assertHeld();
      const [only, ...more] = changes.versions;
      if (changes.before !== null && only && more.length === 0 && changes.snapshotData === null &&
          only.parentVersionId === changes.before.latestVersionId && this.#state !== null) {
        const state = this.#state;
        await this.#shared.pacing.run((wait) => this.#commitOneVersion(state, only, wait));
      } else if (changes.before === null) {
        await this.#commitNewClient(changes);
      } else {
        await this.#commitWithMeta(changes);
      }
      if (this.#state !== null && changes.versions.length > 0) this.#shared.looseVersions(this.#clientId, looseOf(this.#state));
    });
  }

  /** Not async: a read without the lock (every poll) has nothing to wait for, and a frame costs it two turns. */
  protected release(): Promise<void> {
    this.#shared.pacing.closed();
    return this.#held === null ? Promise.resolve() : this.#held.release();
  }

  /**
   * Takes the lock for the commit of a transaction that read without it, and checks that the
   * client is still as it read it: the same client.json and latest version, or still absent and
   * not deleted. Otherwise its changes may rest on a stale read: TXN_STALE, to be run again.
   */
  async #lockAndCheck(): Promise<void> {
    await this.#lockAsRead();
    if (this.#state === null && (await this.isTombstoned())) throw new TcsyncError('TXN_STALE', 'the client was deleted since it was read');
  }

  /** #lockAndCheck without the tombstone: the client is still as read, or still absent. */
  async #lockAsRead(): Promise<void> {
    const read = this.#state;
    this.#held = await this.#locks.acquire(this.#clientId);
    const now = await this.#loadLocked(this.#held);
    const same = read === null
      ? now === null
      : this.#state !== null && this.#state.identity === read.identity && this.#state.latest === read.latest;
    if (!same) throw new TcsyncError('TXN_STALE', 'the client changed since it was read');
  }

  /**
   * The common commit: one version on top of the latest, committed by its `.child` link. A commit
   * that fails is not acknowledged, so it must not stay visible either: when the directory fsync
   * after the link fails, the link and the file are taken back before the error is answered.
   * Its commit point is link(2), which never replaces a name, so this is the commit that may wait
   * inline (CommitPacing); an inline wait long enough to endanger the lease fails it (#stalled).
   */
  async #commitOneVersion(state: ClientState, version: Version, wait: Wait): Promise<void> {
    const file = this.#paths.version(version.versionId);
    const child = this.#paths.child(version.parentVersionId);
    const started = performance.now();
    await this.#writeVersionFile(version, wait);
    let linked = false;
    try {
      this.#lock.assertHeld();
      if (this.#stalled(wait, started)) {
        throw new TcsyncError('LOCK_LOST', 'the disk stalled the commit past what the lock lease allows; nothing was committed');
      }
      try {
        linkSync(file, child);
        linked = true;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        // Another writer committed a child of our parent: our lock was not exclusive.
        throw new TcsyncError('LOCK_LOST', 'another writer committed concurrently; nothing was committed');
      }
      await fsyncDir(this.#paths.versionsDir, wait);
    } catch (err) {
      this.#shared.cache.delete(this.#clientId);
      if (!this.#lock.takenOver()) await this.#takeBack(linked ? [child, file] : [file], this.#paths.versionsDir);
      throw err;
    }
    const next = { ...state, latest: version.versionId, steps: state.steps + 1 };
    this.#remember(next);
    // The checkpoint is only an optimisation: after a stall it is left to a later commit.
    if (next.steps >= this.#shared.checkpointEvery && !this.#stalled(wait, started)) await this.#checkpoint(next);
  }

  /**
   * An inline wait stops the event loop, and with it the lease's refresh and the takeover
   * detection that assertHeld() reads. A stall shorter than INLINE_STALL_MS keeps the lock
   * directory's mtime well inside its stale time (refreshed every staleMs / 2), so nobody can have
   * taken the lock; after a longer one the commit must not trust it.
   */
  #stalled(wait: Wait, started: number): boolean {
    return wait === 'inline' && performance.now() - started >= INLINE_STALL_MS;
  }

  /**
   * Every other commit: blobs first, then client.json renamed into place as the commit point.
   * Until that rename is durable a failure takes back everything this commit wrote (the old
   * client.json too, if the rename happened and only its fsync failed); after it, the commit
   * stands and the steps that complete it cannot fail it: the next load redoes them.
   */
  async #commitWithMeta(changes: TxnChanges): Promise<void> {
    const { after, versions, snapshotData } = changes;
    const oldMeta = this.#state?.meta ?? null;
    const oldSnapshot = oldMeta?.snapshot ?? null;
    const written: string[] = [];
    let snapshot: SnapshotMeta | null = null;
    const pendingLinks = versions.map(({ versionId, parentVersionId }) => ({ versionId, parentVersionId }));
    let renamed = false;
    const meta: ClientMeta = {
      checkpointVersionId: after.latestVersionId,
      snapshot: null,
      pendingLinks,
      packs: oldMeta?.packs ?? NONE,
      loose: addLoose(this.#state, versions.length),
    };
    // The versions directory is fsync'd twice, for the version files and for their links, and
    // the client's directory twice when a snapshot is added: each is opened once.
    const dirs = new OpenDirs();
    try {
      try {
        for (const version of versions) {
          await this.#writeVersionFile(version);
          written.push(this.#paths.version(version.versionId));
        }
        if (versions.length > 0) await dirs.fsync(this.#paths.versionsDir);

        if (after.snapshot !== null && snapshotData !== null) {
          snapshot = await writeSnapshotBlob(this.#paths, after.snapshot, snapshotData);
          written.push(this.#paths.snapshotBlob(snapshot.file));
          await dirs.fsync(this.#paths.dir);
        } else if (after.snapshot !== null && oldSnapshot !== null) {
          snapshot = { ...oldSnapshot, versionsSince: after.snapshot.versionsSince };
        }
        // The lock is checked at the rename (the commit point), after the wait for the fsync.
        await replaceFile(this.#paths.meta, serializeMeta({ ...meta, snapshot }), this.#assertHeld);
        renamed = true;
        await dirs.fsync(this.#paths.dir);
      } catch (err) {
        this.#shared.cache.delete(this.#clientId);
        // After a takeover the files are the new holder's to judge: what this commit wrote is
        // either invisible (not named by client.json) or already seen by it as committed.
        if (!this.#lock.takenOver()) {
          if (renamed) await this.#restoreMeta(oldMeta);
          await this.#takeBack(written, this.#paths.dir);
        }
        throw err;
      }
      await this.#completeCommit(pendingLinks, oldSnapshot?.file !== snapshot?.file ? oldSnapshot : null, { ...meta, snapshot }, dirs);
    } finally {
      dirs.close();
    }
  }

  /**
   * Commits a new client: its directory is built whole under trash/ (newClientPaths), every file
   * and directory in it fsync'd, and renamed into place, the commit point; then the data
   * directory is fsync'd. As nobody reads a client before its directory is there, its `.child`
   * links are made before the commit and client.json lists none pending. A client with one
   * version costs five flushes (its version file, client.json, the versions directory, the
   * client's directory, the data directory), where building it in place cost seven.
   */
  async #commitNewClient({ after, versions, snapshotData }: TxnChanges): Promise<void> {
    const { dataDir } = this.#shared;
    const staged = newClientPaths(dataDir, this.#clientId);
    let renamed = false;
    try {
      // Inline, as files are created (writeNewFile): a mkdir costs less than a round trip
      // through the threadpool.
      mkdirSync(staged.dir);
      mkdirSync(staged.versionsDir);
      for (const version of versions) await writeNewFile(staged.version(version.versionId), encodeVersion(version));
      for (const { versionId, parentVersionId } of versions) linkSync(staged.version(versionId), staged.child(parentVersionId));
      await fsyncDir(staged.versionsDir);
      const snapshot = after.snapshot !== null && snapshotData !== null ? await writeSnapshotBlob(staged, after.snapshot, snapshotData) : null;
      const meta: ClientMeta = { checkpointVersionId: after.latestVersionId, snapshot, pendingLinks: NONE, packs: NONE, loose: versions.length };
      await writeNewFile(staged.meta, [Buffer.from(serializeMeta(meta))]);
      await fsyncDir(staged.dir);
      this.#lock.assertHeld();
      await renameDirOver(staged.dir, this.#paths.dir, this.#assertHeld);
      renamed = true;
      await fsyncDir(dataDir);
      const st = await statOrNull(this.#paths.meta);
      if (st === null) throw new TcsyncError('STORAGE_IO', 'client.json vanished after commit');
      this.#remember({ identity: identityOf(st), meta, latest: meta.checkpointVersionId, steps: 0, leaseId: this.#lock.leaseId, incarnation: newIncarnation() });
    } catch (err) {
      this.#shared.cache.delete(this.#clientId);
      // After a takeover the files are the new holder's to judge (see #commitWithMeta).
      if (renamed && !this.#lock.takenOver()) await this.#takeBack([this.#paths.dir], dataDir);
      await rm(staged.dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** The steps after a durable client.json rename; a failure here only makes the next load redo them. */
  async #completeCommit(links: readonly PendingLink[], supersededSnapshot: SnapshotMeta | null, meta: ClientMeta, dirs: OpenDirs): Promise<void> {
    try {
      await this.#createLinks(links, dirs);
      if (supersededSnapshot !== null) await unlink(this.#paths.snapshotBlob(supersededSnapshot.file)).catch(() => undefined);
      const st = await statOrNull(this.#paths.meta);
      if (st === null) throw new TcsyncError('STORAGE_IO', 'client.json vanished after commit');
      const incarnation = this.#state?.incarnation ?? newIncarnation();
      this.#remember({ identity: identityOf(st), meta, latest: meta.checkpointVersionId, steps: 0, leaseId: this.#lock.leaseId, incarnation });
    } catch {
      this.#shared.cache.delete(this.#clientId);
    }
  }

  /**
   * Puts back the client.json that a failed commit replaced (or removes the one it created), so
   * that what is visible matches the answer: not stored. Best effort, as the fsync that failed
   * may fail again; the error the caller answers with is the original one.
   */
  async #restoreMeta(oldMeta: ClientMeta | null): Promise<void> {
    try {
      if (oldMeta === null) await unlink(this.#paths.meta);
      // Checked again at the rename: after a takeover the current client.json is its holder's.
      else await replaceFile(this.#paths.meta, serializeMeta(oldMeta), this.#assertNotTakenOver);
      await fsyncDir(this.#paths.dir);
    } catch {
      // Nothing better to do: the next load reads whichever client.json is there.
    }
  }

  /** Removes what a failed commit wrote (files, or a new client's directory), best effort. */
  async #takeBack(paths: readonly string[], dir: string): Promise<void> {
    for (const file of paths) await rm(file, { recursive: true, force: true }).catch(() => undefined);
    await fsyncDir(dir).catch(() => undefined);
  }

  /** Rewrites client.json at the latest version, so that new readers follow fewer links. */
  async #checkpoint(state: ClientState): Promise<void> {
    const snapshot = state.meta.snapshot && { ...state.meta.snapshot, versionsSince: state.meta.snapshot.versionsSince + state.steps };
    const meta: ClientMeta = { ...state.meta, checkpointVersionId: state.latest, snapshot, pendingLinks: NONE, loose: looseOf(state) };
    try {
      await replaceFile(this.#paths.meta, serializeMeta(meta), this.#assertHeld);
      await fsyncDir(this.#paths.dir);
      const st = await statOrNull(this.#paths.meta);
      if (st !== null) this.#remember({ ...state, identity: identityOf(st), meta, steps: 0 });
    } catch {
      // Only an optimisation, and the version is already committed: every checkpoint on the
      // chain describes the same state, old or new. Forget what we know and reload next time.
      this.#shared.cache.delete(this.#clientId);
    }
  }

  /**
   * Creates a version file; a leftover of an uncommitted transaction under its name is replaced.
   * A committed version of the same id is VERSION_EXISTS before anything is written, which is
   * why addVersion need not look for one first (an open of a missing file on every commit).
   */
  async #writeVersionFile(version: Version, wait: Wait = 'pooled'): Promise<void> {
    const file = this.#paths.version(version.versionId);
    const chunks = encodeVersion(version);
    try {
      await writeNewFile(file, chunks, wait);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      if ((await this.loadVersion(version.versionId)) !== null) {
        throw new TcsyncError('VERSION_EXISTS', `version ${version.versionId} already exists`);
      }
      // Not committed, so the file is what a failed or crashed commit left.
      await unlink(file);
      await writeNewFile(file, chunks, wait);
    }
  }

  /** Makes the links; `dirs` holds the versions directory open when the commit that lists them has. */
  async #createLinks(links: readonly PendingLink[], dirs: OpenDirs | null = null): Promise<void> {
    let created = false;
    for (const { versionId, parentVersionId } of links) {
      try {
        // Inline, as the common commit links (#commitOneVersion): a link costs less than a round
        // trip through the threadpool.
        linkSync(this.#paths.version(versionId), this.#paths.child(parentVersionId));
        created = true;
      } catch (err) {
        if (isErrno(err, 'ENOENT')) throw new TcsyncError('CORRUPT', `${this.#paths.version(versionId)}: named by client.json but missing`);
        if (!isErrno(err, 'EEXIST')) throw err;
      }
    }
    // client.json keeps listing links that exist long after: loading it must not cost an fsync.
    if (created) await (dirs === null ? fsyncDir(this.#paths.versionsDir) : dirs.fsync(this.#paths.versionsDir));
  }

  /**
   * Follows `.child` links from the state's latest version to the real latest, and says which
   * version the last link followed starts from (null when none was).
   */
  #followChildrenFrom(state: ClientState): { state: ClientState; parent: VersionId | null } {
    let { latest, steps } = state;
    let parent: VersionId | null = null;
    for (;;) {
      const childId = this.#linkedChildOf(latest);
      if (childId === null) break;
      parent = latest;
      latest = childId;
      steps += 1;
    }
    return { state: parent === null ? state : { ...state, latest, steps }, parent };
  }

  /**
   * The id of the committed child of `parent`. `fromPacks` false looks at links only, for the
   * versions past the checkpoint (a pack holds none of their children).
   */
  async #childIdOf(parent: VersionId, fromPacks = true): Promise<VersionId | null> {
    if (fromPacks && parent !== this.#state?.latest) {
      const packed = await this.#packed((shelf, packs) => shelf.findByParent(this.#paths, packs, parent));
      if (packed !== null) return packed.entry.versionId;
    }
    return this.#linkedChildOf(parent);
  }

  /** The child of `parent` that its `.child` link names, or client.json lists as pending in `state`. */
  #linkedChildOf(parent: VersionId, state = this.#state): VersionId | null {
    const file = this.#paths.child(parent);
    // Most often asked of the latest version, which has no child: a stat tells that without the
    // Error that a failed open builds.
    const head = statNowOrNull(file) === null ? null : readHeadOrNull(file, MAX_HEADER);
    if (head === null) return this.#pendingChildOf(parent, state);
    const { header } = parseHeader(head, file);
    if (header.parentVersionId !== parent) throw new TcsyncError('CORRUPT', `${file}: names parent ${header.parentVersionId}`);
    return header.versionId;
  }

  /**
   * The child that client.json lists as committed but whose `.child` link is not made yet: only
   * seen by a transaction without the lock, which may not make it (see loadClient).
   */
  #pendingChildOf(parent: VersionId, state = this.#state): VersionId | null {
    return state?.meta.pendingLinks.find((link) => link.parentVersionId === parent)?.versionId ?? null;
  }

  /** Remembers a committed version for this transaction's incarnation of the client. */
  #rememberVersion(version: Version): void {
    // Not under a lock the disk refused (a transaction that could not take the lock as asked);
    // without the lock by choice, a deletion and re-creation shows as another client.json, and
    // so as another incarnation.
    if (this.#state === null || (this.#held !== null && !this.#held.exclusive)) return;
    const segment = version.historySegment;
    // A small file's bytes are a view into one of Node's shared 8 KiB pool blocks, which a
    // remembered view would keep alive whole: the memo keeps a copy of its own.
    const own = segment.byteLength === segment.buffer.byteLength ? version : { ...version, historySegment: Uint8Array.prototype.slice.call(segment) };
    this.#shared.versions.remember(this.#clientId, this.#state.incarnation, own);
  }

  #remember(state: ClientState): void {
    this.#state = { ...state, leaseId: this.#lock.leaseId };
    // Under a lock the disk refused, links may be pending and followed as client.json lists them.
    if (!this.#lock.exclusive) return;
    // Under the lock, a state is remembered only once its links were made (#loadLocked, #completeCommit).
    this.#state = withLinksMade(this.#state);
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

/** Writes `data` as a new snapshot blob of the client at `paths`, durably but for its name: what client.json will say of it. */
export async function writeSnapshotBlob(paths: ClientPaths, snapshot: Snapshot, data: Uint8Array): Promise<SnapshotMeta> {
  const file = `snapshot-${uuidv4()}.bin`;
  await writeNewFile(paths.snapshotBlob(file), [data]);
  return { ...snapshot, file, size: data.byteLength, crc32: crc32(data) };
}

/** The client's loose versions in this state, or null when client.json did not say (an older tcsync wrote it). */
export function looseOf(state: ClientState): number | null {
  return addLoose(state, 0);
}

function addLoose(state: ClientState | null, added: number): number | null {
  const loose = state?.meta.loose ?? null;
  return loose === null || state === null ? null : loose + state.steps + added;
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
