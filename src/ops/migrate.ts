/**
 * migrate: copies every client and tombstone from one storage to another through the export and
 * import interface (storage/client-export.ts), so any source goes to any destination.
 *
 * Each client is exported under its lock or in one transaction, so a live source is copied
 * consistently, client by client. What was handed to the destination is remembered (ids,
 * parents, a digest of each segment and of the snapshot) and read back from the destination
 * before migrate succeeds: the copy is verified against what was copied, not against a source
 * that may have moved on meanwhile.
 *
 * A data directory destination is built beside DEST and renamed into place once verified, as
 * backup does: DEST appears complete or not at all. A database destination cannot be swapped in
 * like that; after a failure it holds part of the copy, and the error says so.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ClientId, VersionId } from '../ids.js';
import { allIds, type ClientSource, type ExportableStorage, type ExportedClient } from '../storage/client-export.js';
import { fsyncDir, isErrno } from '../storage/file/durable-fs.js';
import { FileStorage } from '../storage/file/file-storage.js';
import { PostgresStorage } from '../storage/postgres/postgres-storage.js';
import type { Snapshot, Version } from '../storage/storage.js';
import { describeEndpoint, openSource, type Endpoint } from './endpoint.js';
import { OpsError } from './ops-error.js';
import { forEachLimit } from '../pool.js';
import { verifyDataDir } from './verify.js';

export interface MigrateOptions {
  /**
   * How many clients are copied at once.
   * @default 4
   */
  readonly concurrency?: number;
  /**
   * Called after each client is copied, then after each is read back.
   * @default undefined (no reports)
   */
  readonly onProgress?: (phase: 'copy' | 'verify', done: number, total: number) => void;
}

export interface MigrateReport {
  readonly clients: number;
  readonly versions: number;
  /** Bytes of history segments and snapshots copied. */
  readonly bytes: number;
  readonly tombstones: number;
  readonly durationMs: number;
}

/** What a client was copied as: enough to tell whether the destination holds the same. */
interface CopiedClient {
  readonly latestVersionId: VersionId;
  readonly snapshot: Snapshot | null;
  /** Set once the snapshot's bytes went by. */
  snapshotDigest: string | null;
  /** Parent and segment digest by version id. */
  readonly versions: Map<VersionId, string>;
  bytes: number;
}

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('base64');
const versionKey = (version: Version) => `${version.parentVersionId} ${digest(version.historySegment)}`;

/** The same client, recording into `copied` every version and the snapshot on their way. */
function recorded(client: ExportedClient, copied: CopiedClient): ExportedClient {
  return {
    ...client,
    async readSnapshot() {
      const data = await client.readSnapshot();
      copied.snapshotDigest = digest(data);
      copied.bytes += data.byteLength;
      return data;
    },
    async *versions() {
      for await (const version of client.versions()) {
        copied.versions.set(version.versionId, versionKey(version));
        copied.bytes += version.historySegment.byteLength;
        yield version;
      }
    },
  };
}

/** Reads the client back and names the first way it differs from what was copied, or null. */
async function difference(client: ExportedClient, copied: CopiedClient): Promise<string | null> {
  if (client.latestVersionId !== copied.latestVersionId) return `latest version ${client.latestVersionId}, copied ${copied.latestVersionId}`;
  const [a, b] = [client.snapshot, copied.snapshot];
  if (JSON.stringify(a) !== JSON.stringify(b)) return `snapshot ${JSON.stringify(a)}, copied ${JSON.stringify(b)}`;
  if (a !== null && digest(await client.readSnapshot()) !== copied.snapshotDigest) return 'the snapshot bytes differ';
  let count = 0;
  for await (const version of client.versions()) {
    count++;
    const expected = copied.versions.get(version.versionId);
    if (expected === undefined) return `version ${version.versionId} was not copied`;
    if (expected !== versionKey(version)) return `version ${version.versionId} differs in parent or bytes`;
  }
  return count === copied.versions.size ? null : `${copied.versions.size - count} versions are missing`;
}

/** Copies every client and tombstone of `source` into `dest` and reads each client back. */
async function copyAll(source: ClientSource, dest: ExportableStorage, options: MigrateOptions): Promise<Omit<MigrateReport, 'durationMs'>> {
  const ids: ClientId[] = [];
  for await (const id of allIds((after, limit) => source.listClients(after, limit))) ids.push(id);
  const copied = new Map<ClientId, CopiedClient>();
  let done = 0;
  await forEachLimit(ids, options.concurrency ?? 4, async (id) => {
    await source.exportClient(id, async (client) => {
      const record: CopiedClient = { latestVersionId: client.latestVersionId, snapshot: client.snapshot, snapshotDigest: null, versions: new Map(), bytes: 0 };
      await dest.importClient(recorded(client, record));
      copied.set(id, record);
    });
    options.onProgress?.('copy', ++done, ids.length);
  });
  let tombstones = 0;
  for await (const id of allIds((after, limit) => source.listTombstones(after, limit))) {
    // Deleted while the copy ran: the client was copied before its tombstone was written.
    if (copied.has(id)) continue;
    await dest.importTombstone(id);
    tombstones++;
  }

  done = 0;
  const copiedIds = [...copied.keys()].sort();
  await forEachLimit(copiedIds, options.concurrency ?? 4, async (id) => {
    const record = copied.get(id) as CopiedClient;
    const read = await dest.exportClient(id, async (client) => ({ found: await difference(client, record) }));
    const found = read === null ? 'it is missing' : read.found;
    if (found !== null) throw new OpsError('MIGRATE_MISMATCH', `client ${id} does not read back as it was copied: ${found}`);
    options.onProgress?.('verify', ++done, copiedIds.length);
  });
  const listed: ClientId[] = [];
  for await (const id of allIds((after, limit) => dest.listClients(after, limit))) listed.push(id);
  if (listed.join() !== copiedIds.join()) throw new OpsError('MIGRATE_MISMATCH', `the destination lists ${listed.length} clients, ${copiedIds.length} were copied`);
  const records = [...copied.values()];
  return {
    clients: records.length,
    versions: records.reduce((n, r) => n + r.versions.size, 0),
    bytes: records.reduce((n, r) => n + r.bytes, 0),
    tombstones,
  };
}

async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return true;
    if (isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** Migrates into a data directory built beside DEST, verified, then renamed to DEST. */
async function intoDataDir(source: ClientSource, dest: string, options: MigrateOptions): Promise<Omit<MigrateReport, 'durationMs'>> {
  const target = path.resolve(dest);
  const refuse = () => new OpsError('DEST_NOT_EMPTY', `${target} is not empty; migrate writes into a missing or empty directory only`);
  if (!(await isEmptyDir(target))) throw refuse();
  // A sibling of DEST, so that the final rename stays on one file system.
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomUUID().slice(0, 8)}`);
  try {
    const storage = await FileStorage.open(tmp);
    let report;
    try {
      report = await copyAll(source, storage, options);
    } finally {
      await storage.close();
    }
    const check = await verifyDataDir(tmp);
    if (!check.sound) throw new OpsError('MIGRATE_MISMATCH', `the copy did not verify: ${check.findings.find((f) => f.severity === 'problem')?.message}`);
    // Checked again: something may have been put there meanwhile; rename(2) replaces an empty directory only.
    if (!(await isEmptyDir(target))) throw refuse();
    await rename(tmp, target);
    await fsyncDir(path.dirname(target));
    return report;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Migrates into a database that holds no clients. */
async function intoDatabase(source: ClientSource, uri: string, what: string, options: MigrateOptions): Promise<Omit<MigrateReport, 'durationMs'>> {
  // Looked at before anything is created: a refused DEST (upstream's tables with clients in
  // them, say) must not get tcsync's tables either.
  const probe = await PostgresStorage.open(uri, { create: false });
  try {
    if ((await probe.listClients(null, 1)).length > 0) throw new OpsError('DEST_NOT_EMPTY', `the ${what} holds clients already; migrate writes into one without clients only`);
  } finally {
    await probe.close();
  }
  const storage = await PostgresStorage.open(uri);
  try {
    try {
      return await copyAll(source, storage, options);
    } catch (err) {
      const message = `${(err as Error).message} (the ${what} holds part of the copy now: drop and re-create it before trying again)`;
      throw Object.assign(err as Error, { message });
    }
  } finally {
    await storage.close();
  }
}

export async function migrate(from: Endpoint, to: Endpoint, options: MigrateOptions = {}): Promise<MigrateReport> {
  const started = performance.now();
  if (to.kind === 'sqlite') throw new OpsError('BAD_DEST', "upstream's SQLite file is a source only");
  const source = await openSource(from);
  try {
    const report = to.kind === 'dir' ? await intoDataDir(source, to.path, options) : await intoDatabase(source, to.uri, describeEndpoint(to), options);
    return { ...report, durationMs: performance.now() - started };
  } finally {
    await source.close();
  }
}
