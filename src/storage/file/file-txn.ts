/**
 * A transaction on one client of a FileStorage: loads committed state (following `.child` links
 * from the checkpoint), and commits staged changes through exactly one commit point. See
 * file-storage.ts for the design.
 */
import { link, mkdir, unlink } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { v4 as uuidv4 } from 'uuid';
import { TcsyncError } from '../../errors.js';
import type { ClientId, VersionId } from '../../ids.js';
import { StagedTxn, type TxnChanges } from '../staged-txn.js';
import type { Client, Snapshot, Version } from '../storage.js';
import { identityOf, type ClientCache, type ClientState } from './client-cache.js';
import type { HeldLock } from './client-lock.js';
import { parseMeta, serializeMeta, type ClientMeta, type PendingLink, type SnapshotMeta } from './client-meta.js';
import { fsyncDir, ioError, isErrno, openOrNull, readFileOrNull, replaceFile, statOrNull, writeNewFile } from './durable-fs.js';
import { ClientPaths, tombstonePath } from './layout.js';
import { decodeVersion, encodeVersion, MAX_HEADER, parseHeader } from './version-file.js';

/** What every transaction of one FileStorage shares. */
export interface Shared {
  readonly dataDir: string;
  readonly checkpointEvery: number;
  readonly cache: ClientCache;
}

export class FileTxn extends StagedTxn {
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
