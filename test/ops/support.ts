/** Fixtures for the ops tests: a data directory built through the public API, and the commands run as processes. */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import {
  DEFAULT_SNAPSHOT_POLICY,
  FileStorage,
  NIL_VERSION_ID,
  SyncService,
  newVersionId,
  parseClientId,
  parseVersionId,
  withTxn,
  type ClientId,
  type VersionId,
} from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tcsync-ops-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Fixture {
  /** Five versions, then a snapshot of the last one. */
  readonly withSnapshot: ClientId;
  readonly withSnapshotVersions: readonly VersionId[];
  /** Three versions, one a transaction; client.json's checkpoint is the first. */
  readonly plain: ClientId;
  readonly plainVersions: readonly VersionId[];
  /** Created with a latest version that was never stored, then two versions on top of it. */
  readonly startsMidway: ClientId;
  readonly startsMidwayRoot: VersionId;
  /** Deleted: only its tombstone is left. */
  readonly deleted: ClientId;
}

/** Builds a sound data directory of three clients and a tombstone through FileStorage and SyncService. */
export async function buildFixture(dataDir: string): Promise<Fixture> {
  const storage = await FileStorage.open(dataDir);
  const sync = new SyncService(storage, { ...DEFAULT_SNAPSHOT_POLICY, createClients: true });
  const ids = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333', '44444444-4444-4444-8444-444444444444'];
  const [withSnapshot, plain, startsMidway, deleted] = ids.map((id) => parseClientId(id)) as [ClientId, ClientId, ClientId, ClientId];
  const addVersions = async (client: ClientId, count: number, parent: VersionId = NIL_VERSION_ID) => {
    const added: VersionId[] = [];
    for (let i = 0; i < count; i++) {
      const result = await sync.addVersion(client, added.at(-1) ?? parent, Buffer.from(`segment ${i} of ${client}`));
      if (result.kind !== 'ok') throw new Error('fixture: unexpected conflict');
      added.push(result.version.versionId);
    }
    return added;
  };
  const withSnapshotVersions = await addVersions(withSnapshot, 5);
  const snap = await sync.addSnapshot(withSnapshot, withSnapshotVersions[4] as VersionId, Buffer.alloc(2000, 7));
  if (snap.kind !== 'accepted') throw new Error('fixture: snapshot ignored');
  const plainVersions = await addVersions(plain, 3);
  const startsMidwayRoot = newVersionId();
  await withTxn(storage, startsMidway, (txn) => txn.newClient(startsMidwayRoot));
  await addVersions(startsMidway, 2, startsMidwayRoot);
  await addVersions(deleted, 1);
  await storage.deleteClient(deleted);
  await storage.close();
  return { withSnapshot, withSnapshotVersions, plain, plainVersions, startsMidway, startsMidwayRoot, deleted };
}

export interface PackedFixture {
  /** 35 versions: the oldest 30 in two packs (20 and 10), the newest 5 loose. */
  readonly packed: ClientId;
  readonly packedVersions: readonly VersionId[];
  /**
   * 25 versions with a snapshot of the 15th; the first 15 pruned, the next 8 in a pack, the
   * newest 2 loose. `prunedVersions` lists all 25; the first 15 are gone.
   */
  readonly pruned: ClientId;
  readonly prunedVersions: readonly VersionId[];
}

/** The segment of version `i` of a packed fixture's client: 40 bytes. */
export const packedSegment = (client: ClientId, i: number) => Buffer.from(`v${String(i).padStart(3, '0')} ${client}`);

/** Builds a sound data directory of two clients whose histories are mostly packed, one of them pruned. */
export async function buildPackedFixture(dataDir: string): Promise<PackedFixture> {
  const storage = await FileStorage.open(dataDir, { compactAfter: 0 });
  const packed = parseClientId('aaaaaaaa-1111-4111-8111-111111111111');
  const pruned = parseClientId('bbbbbbbb-2222-4222-8222-222222222222');
  const added = new Map<ClientId, VersionId[]>([[packed, []], [pruned, []]]);
  const addVersions = async (client: ClientId, count: number) => {
    const ids = added.get(client)!;
    for (let i = 0; i < count; i++) {
      const id = newVersionId();
      await withTxn(storage, client, async (txn) => {
        if ((await txn.getClient()) === null) await txn.newClient(NIL_VERSION_ID);
        await txn.addVersion(id, ids.at(-1) ?? NIL_VERSION_ID, packedSegment(client, ids.length));
      });
      ids.push(id);
    }
  };
  try {
    // A pack of 20, then one of 10 (two packs of the smallest tier are not merged yet).
    for (const count of [20, 10]) {
      await addVersions(packed, count);
      await storage.compact(packed);
    }
    await addVersions(packed, 5);

    await addVersions(pruned, 20);
    const snapshotAt = added.get(pruned)![14]!;
    await withTxn(storage, pruned, (txn) => txn.setSnapshot({ versionId: snapshotAt, timestamp: new Date(), versionsSince: 5 }, Buffer.alloc(500, 3)));
    await addVersions(pruned, 3);
    // Packs every loose version, then drops the snapshot's version and what came before it.
    if ((await storage.pruneVersions(pruned, new Date(Date.now() + 60_000))) !== 15) throw new Error('fixture: pruning went wrong');
    await addVersions(pruned, 2);
  } finally {
    await storage.close();
  }
  return { packed, packedVersions: added.get(packed)!, pruned, prunedVersions: added.get(pruned)! };
}

/** A data directory of about 3 MiB of history over three clients: more than a nearly full small disk holds. */
export async function buildLargeDataDir(dataDir: string): Promise<void> {
  const storage = await FileStorage.open(dataDir);
  try {
    for (let c = 0; c < 3; c++) {
      await withTxn(storage, parseClientId(`cccccccc-0000-4000-8000-00000000000${c}`), async (txn) => {
        await txn.newClient(NIL_VERSION_ID);
        let parent = NIL_VERSION_ID;
        for (let i = 0; i < 16; i++) {
          const id = newVersionId();
          await txn.addVersion(id, parent, Buffer.alloc(64 * 1024, i + c));
          parent = id;
        }
      });
    }
  } finally {
    await storage.close();
  }
}

/** `cp -a`: the operator's backup of a stopped server (preserves the hard links). */
export function copyDir(from: string, to: string): void {
  execFileSync('cp', ['-a', from, to]);
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command's built module (`dist/cli/<command>.js`) in its own process, as the dispatcher would. */
export function runCli(command: 'verify' | 'backup' | 'migrate' | 'usage' | 'compact', args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const script = 'const { main } = await import(process.argv[1]); process.exitCode = await main(process.argv.slice(2));';
  const module = path.join(ROOT, 'dist', 'cli', `${command}.js`);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script, module, ...args],
      { env: { PATH: process.env.PATH, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export interface Writer {
  readonly child: ChildProcess;
  /** Versions the writer acknowledged: printed after addVersion returned, so committed. */
  readonly acks: string[];
  readonly exited: Promise<void>;
}

const WRITER = fileURLToPath(new URL('./writer.mjs', import.meta.url));

/** A live server's writer on one client, in a child process (writer.mjs); see there for `pauseMs` and `compactAfter`. */
export function spawnWriter(dataDir: string, clientId: string, pauseMs = 0, compactAfter?: number): Writer {
  const args = [WRITER, dataDir, clientId, String(pauseMs), ...(compactAfter === undefined ? [] : [String(compactAfter)])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const acks: string[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('ack ')) acks.push(line.slice(4));
  });
  return { child, acks, exited: new Promise((resolve) => child.on('exit', () => resolve())) };
}

/** One finding of `tcsync verify --json`. */
export interface JsonFinding {
  severity: 'problem' | 'harmless' | 'warning';
  client: string | null;
  file: string;
  message: string;
  repaired: boolean;
}

/** `tcsync verify --data-dir DIR --json [flags]`: its exit code, parsed report and stderr. */
export async function verifyJson(dataDir: string, ...flags: string[]) {
  const result = await runCli('verify', ['--data-dir', dataDir, '--json', ...flags]);
  const report = JSON.parse(result.stdout) as { sound: boolean; clients: number; versions: number; findings: JsonFinding[] };
  return { code: result.code, report, stderr: result.stderr };
}

/** Versions writers acknowledged, by the client they wrote to. */
export interface Acknowledged {
  readonly client: string;
  readonly versions: readonly string[];
}

/** Every acknowledged version reads from the data directory (a backup of the writers' one). */
export async function expectAcknowledgedIn(dataDir: string, acknowledged: readonly Acknowledged[]): Promise<void> {
  const storage = await FileStorage.open(dataDir);
  try {
    for (const { client, versions } of acknowledged) {
      await withTxn(storage, parseClientId(client), async (txn) => {
        for (const id of versions) expect(await txn.getVersion(parseVersionId(id)), `${client} ${id}`).not.toBeNull();
      });
    }
  } finally {
    await storage.close();
  }
}

/** Waits until `condition` holds, polling; fails after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the writers');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
