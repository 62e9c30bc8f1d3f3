/**
 * The floor of a request path on this machine: a bare node:http server answering every request
 * as get-child-version does (200, the protocol's headers, a 1 KiB body from memory) with no
 * storage, routing, logging or metrics. Prints `listening on http://HOST:PORT`.
 */
import http from 'node:http';

const body = Buffer.alloc(1024, 42);
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, {
    'Content-Type': 'application/vnd.taskchampion.history-segment',
    'Content-Length': body.length,
    'Cache-Control': 'no-store, max-age=0',
    'X-Version-Id': '00000000-0000-4000-8000-000000000001',
    'X-Parent-Version-Id': '00000000-0000-0000-0000-000000000000',
  });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${address.port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
