/**
 * The floors of a request path on this machine: a bare node:http server with no routing,
 * validation, logging or metrics. A GET is answered as get-child-version does (200, the
 * protocol's headers, a 1 KiB body from memory, no storage). A POST commits its body as tcsync's
 * file storage commits a version, with the same calls in the same order: create the version file
 * in the client's own directory, write it, fsync it, link it under its parent's name, fsync the
 * directory; and it waits for the fsyncs as tcsync does (commit-pacing.ts): inline on the event
 * loop when it is the only request in flight, on the threadpool otherwise. So (a) and (b) can be read
 * against "node:http plus the commit and nothing else" measured in the same rounds.
 * Usage: node bare-server.js DIR; prints `listening on http://HOST:PORT`.
 */
import { closeSync, fstatSync, fsync, fsyncSync, linkSync, mkdirSync, openSync, writevSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { promisify } from 'node:util';

const fsyncFd = promisify(fsync);
const dir = process.argv[2] ?? '.';
const body = Buffer.alloc(1024, 42);
const NIL = '00000000-0000-0000-0000-000000000000';
const headers = {
  'Content-Type': 'application/vnd.taskchampion.history-segment',
  'Cache-Control': 'no-store, max-age=0',
};

let inFlight = 0;

async function commit(clientDir: string, parent: string, segment: Buffer): Promise<string> {
  // As CommitPacing does: requests that arrived meanwhile are counted after the loop polls once.
  if (inFlight === 1) {
    await nextTurn();
    await nextTurn();
  }
  const inline = inFlight === 1;
  mkdirSync(clientDir, { recursive: true });
  const versionId = crypto.randomUUID();
  const file = path.join(clientDir, `${versionId}.version`);
  const fd = openSync(file, 'wx');
  writevSync(fd, [Buffer.from(`{"versionId":"${versionId}","parentVersionId":"${parent}"}\n`), segment]);
  if (inline) fsyncSync(fd);
  else await fsyncFd(fd);
  fstatSync(fd);
  closeSync(fd);
  linkSync(file, path.join(clientDir, `${parent}.child`));
  const dirFd = openSync(clientDir, 'r');
  if (inline) fsyncSync(dirFd);
  else await fsyncFd(dirFd);
  closeSync(dirFd);
  return versionId;
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    req.resume();
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
