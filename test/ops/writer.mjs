// A live server's writer, as a child process: adds versions to one client through SyncService on
// FileStorage until killed, printing "ack <version id>" after each add returned (was committed).
// Every 10th version it also stores a snapshot, so commits of both kinds run during a backup.
// With a third argument PAUSE_MS it waits up to that long (at random) after each commit, so that
// its client is often quiet (its lock dropped) between commits, as on a server with idle moments;
// a fourth, COMPACT_AFTER, compacts in the background after that many loose versions (FileStorage's
// compactAfter) without waiting for a pause, so that compactions (which write and remove files
// without the lock) run while it commits.
// Imports the built code: run `npm run build` first (npm test does).
import { setTimeout as sleep } from 'node:timers/promises';
import { FileStorage, NIL_VERSION_ID, SyncService, parseClientId } from '../../dist/index.js';

const [dataDir, clientArg, pauseArg, compactArg] = process.argv.slice(2);
const pauseMs = Number(pauseArg ?? 0);
const clientId = parseClientId(clientArg);
const storage = await FileStorage.open(dataDir, compactArg === undefined ? {} : { compactAfter: Number(compactArg), compactQuietMs: 0 });
const sync = new SyncService(storage, { createClients: true, snapshotVersions: 100, snapshotDays: 14 });
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

let parent = NIL_VERSION_ID;
for (let n = 1; !stopping; n++) {
  const result = await sync.addVersion(clientId, parent, Buffer.alloc(1024, n));
  if (result.kind === 'conflict') {
    parent = result.expectedParentVersionId;
    continue;
  }
  parent = result.version.versionId;
  process.stdout.write(`ack ${parent}\n`);
  if (n % 10 === 0) await sync.addSnapshot(clientId, parent, Buffer.alloc(4096, n));
  if (pauseMs > 0) await sleep(Math.random() * pauseMs);
}
await storage.close();
