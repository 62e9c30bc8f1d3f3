/**
 * The floors of a request path on this machine: a bare node:http server with no routing,
 * validation, logging or metrics, keeping its data in tcsync's layout (src/storage/file/layout.ts:
 * DIR/<client>/client.json, DIR/<client>/versions/<id>.version and <parent>.child).
 *
 * A POST commits its body as tcsync's file storage commits a version, with the same calls in the
 * same order, and waits for the fsyncs as tcsync does (commit-pacing.ts): inline on the event loop
 * when it is the only request in flight, on the threadpool otherwise. A version on top of another
 * one: create the version file, write it, fsync it, link it under its parent's name, fsync the
 * versions directory (2 flushes). A client's first version (parent nil) makes the files a new
 * client costs tcsync (file-txn.ts, commitNewClient): its directory built under trash/ with its
 * versions directory, the version file written and fsync'd, linked as `<nil>.child`, the versions
 * directory fsync'd, client.json written and fsync'd, the client's directory fsync'd, renamed
 * into place and the data directory fsync'd (5 flushes).
 * So (a), (b) and (e)'s creation can be read against "node:http plus the commit and nothing else".
 *
 * A GET is answered by MODE: `memory` (the default) as get-child-version does (200, the protocol's
 * headers, a 1 KiB body from memory, no storage); `files` by the two look-ups that answer a poll
 * without a lock: stat the client's client.json, then stat `<parent>.child` in its versions
 * directory, a 404 when either is missing (200 with the memory body otherwise, a case the poll of
 * (e) never meets). Both look-ups are synchronous: served by the page cache, they cost less on the
 * event loop than a hand-off to the threadpool would.
 * Usage: node bare-server.js DIR [memory|files]; prints `listening on http://HOST:PORT`.
 */
import { closeSync, fstatSync, fsync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, statSync, writevSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { promisify } from 'node:util';

const fsyncFd = promisify(fsync);
const dir = process.argv[2] ?? '.';
const getsFromFiles = process.argv[3] === 'files';
mkdirSync(path.join(dir, 'trash'), { recursive: true });
const body = Buffer.alloc(1024, 42);
const NIL = '00000000-0000-0000-0000-000000000000';
const headers = {
  'Content-Type': 'application/vnd.taskchampion.history-segment',
  'Cache-Control': 'no-store, max-age=0',
};

let inFlight = 0;

/** Waits for an fsync of `fd` as CommitPacing does: inline when alone, on the threadpool otherwise. */
async function flush(fd: number, inline: boolean): Promise<void> {
  if (inline) fsyncSync(fd);
  else await fsyncFd(fd);
}

async function flushDir(target: string, inline: boolean): Promise<void> {
  const dirFd = openSync(target, 'r');
  await flush(dirFd, inline);
  closeSync(dirFd);
}

/** Creates `file` (it must not exist) with `data`, durably, and leaves its name to the caller's directory fsync. */
async function writeNew(file: string, data: Buffer[], inline: boolean): Promise<void> {
  const fd = openSync(file, 'wx');
  writevSync(fd, data);
  await flush(fd, inline);
  fstatSync(fd);
  closeSync(fd);
}

async function commit(clientDir: string, parent: string, segment: Buffer): Promise<string> {
  // As CommitPacing does: requests that arrived meanwhile are counted after the loop polls once.
  if (inFlight === 1) {
    await nextTurn();
    await nextTurn();
  }
  const inline = inFlight === 1;
  const versionsDir = path.join(clientDir, 'versions');
  const versionId = crypto.randomUUID();
  const file = path.join(versionsDir, `${versionId}.version`);
  const header = Buffer.from(`{"versionId":"${versionId}","parentVersionId":"${parent}"}\n`);
  if (parent === NIL) {
    await createClient(clientDir, `${versionId}.version`, [header, segment], inline);
    return versionId;
  }
  await writeNew(file, [header, segment], inline);
  linkSync(file, path.join(versionsDir, `${parent}.child`));
  await flushDir(versionsDir, inline);
  return versionId;
}

/** A new client's first version, committed as tcsync commits it: by the rename of its directory, built whole. */
async function createClient(clientDir: string, versionFile: string, version: Buffer[], inline: boolean): Promise<void> {
  const staged = path.join(dir, 'trash', `${path.basename(clientDir)}.new-${crypto.randomUUID()}`);
  const stagedVersions = path.join(staged, 'versions');
  mkdirSync(staged);
  mkdirSync(stagedVersions);
  const stagedFile = path.join(stagedVersions, versionFile);
  await writeNew(stagedFile, version, inline);
  linkSync(stagedFile, path.join(stagedVersions, `${NIL}.child`));
  await flushDir(stagedVersions, inline);
  await writeNew(path.join(staged, 'client.json'), [Buffer.from(JSON.stringify({ format: 1, latestVersionId: path.basename(versionFile, '.version') }))], inline);
  await flushDir(staged, inline);
  renameSync(staged, clientDir);
  await flushDir(dir, inline);
}

/** A poll's look-ups (MODE files): is the client there, and has `parent` a child? */
function hasChild(clientId: string, parent: string): boolean {
  const clientDir = path.join(dir, clientId);
  return statSync(path.join(clientDir, 'client.json'), { throwIfNoEntry: false }) !== undefined &&
    statSync(path.join(clientDir, 'versions', `${parent}.child`), { throwIfNoEntry: false }) !== undefined;
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    req.resume();
    if (getsFromFiles && !hasChild(String(req.headers['x-client-id']), path.basename(req.url ?? NIL))) {
      res.writeHead(404, { 'Cache-Control': 'no-store, max-age=0', 'Content-Length': 0 });
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': body.length, 'X-Version-Id': '00000000-0000-4000-8000-000000000001', 'X-Parent-Version-Id': NIL });
    res.end(body);
    return;
  }
  inFlight += 1;
  res.once('close', () => (inFlight -= 1));
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const parent = path.basename(req.url ?? NIL);
    commit(path.join(dir, String(req.headers['x-client-id'])), parent, Buffer.concat(chunks)).then(
      (versionId) => {
        res.writeHead(200, { 'Cache-Control': 'no-store, max-age=0', 'X-Version-Id': versionId, 'X-Parent-Version-Id': parent, 'Content-Length': 0 });
        res.end();
      },
      (err: Error) => {
        res.writeHead(500, { 'Content-Length': Buffer.byteLength(err.message) });
        res.end(err.message);
      },
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${address.port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
