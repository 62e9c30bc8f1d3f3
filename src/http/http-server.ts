/**
 * Listening sockets around the request handler: one node:http server per address, the
 * connection timeouts, keep-alive, and a graceful close that lets requests in flight finish.
 */
import { createServer, STATUS_CODES, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CACHE_CONTROL } from './respond.js';

export interface ListenAddress {
  /** A host name or IP address; IPv6 without brackets. */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
}

export interface HttpServerOptions {
  /** Time allowed for a request's headers to arrive. @default 60000 */
  readonly headersTimeoutMs?: number;
  /** Time allowed for a whole request (headers and body) to arrive. @default 300000 */
  readonly requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long. @default 5000 */
  readonly keepAliveTimeoutMs?: number;
  /**
   * A connection on which nothing moves either way for this long is closed, whatever it is in
   * the middle of: a client that stops reading its answer must not hold it in memory for ever.
   * Longer than the 30 s a transaction may wait for a client lock. @default 60000
   */
  readonly socketIdleTimeoutMs?: number;
  /**
   * Connections open at once, over all addresses; more are dropped as they arrive. Keeps file
   * descriptors for the storage when a flood of connections comes. @default no limit
   */
  readonly maxConnections?: number;
  /** close() waits this long for requests in flight before cutting their connections. @default 10000 */
  readonly shutdownGraceMs?: number;
}

/**
 * A connection's requests waiting for the one in flight, made at its first request and kept for
 * its life: made and dropped per request, the entry and its array cost every poll.
 */
interface Turns {
  busy: boolean;
  readonly waiting: (() => void)[];
}

const turnsBySocket = new WeakMap<Socket, Turns>();

function turnsOf(socket: Socket): Turns {
  let turns = turnsBySocket.get(socket);
  if (turns === undefined) {
    turns = { busy: false, waiting: [] };
    turnsBySocket.set(socket, turns);
  }
  return turns;
}

export class HttpServer {
  readonly #servers: Server[] = [];
  readonly #urls: string[] = [];
  readonly #graceMs: number;
  #closing: Promise<void> | null = null;

  private constructor(graceMs: number) {
    this.#graceMs = graceMs;
  }

  /** Listens on every address (all or none: a failure closes those already open). */
  static async listen(handler: RequestListener, addresses: readonly ListenAddress[], options: HttpServerOptions = {}): Promise<HttpServer> {
    const httpServer = new HttpServer(options.shutdownGraceMs ?? 10_000);
    // Once closing, every answer says so, so that keep-alive clients do not send another request.
    const listener: RequestListener = (req, res) => {
      if (httpServer.#closing !== null) res.setHeader('Connection', 'close');
      // One request per connection at a time. Node parses pipelined requests as they arrive and
      // keeps every answer in memory until those before it are sent, so a client pipelining
      // downloads it never reads could make the server hold any number of them. The next request
      // starts once the previous answer is handed to the kernel (its 'close'), which a client
      // that does not read holds back.
      const turns = turnsOf(req.socket);
      // `on`, not `once`: a response closes once, and once's wrapper costs on every request.
      res.on('close', () => {
        // A request in flight when close() began leaves a keep-alive connection behind that
        // would hold the server open until it times out: close it as soon as it falls idle.
        if (httpServer.#closing !== null) setImmediate(() => httpServer.#servers.forEach((s) => s.closeIdleConnections()));
        const next = turns.waiting.shift();
        // After the previous request's own close listeners (its log line, its body budget).
        if (next === undefined) turns.busy = false;
        else queueMicrotask(next);
      });
      if (turns.busy) {
        turns.waiting.push(() => handler(req, res));
        return;
      }
      turns.busy = true;
      handler(req, res);
    };
    try {
      for (const address of addresses) {
        const server = createServer(
          {
            headersTimeout: options.headersTimeoutMs ?? 60_000,
            requestTimeout: options.requestTimeoutMs ?? 300_000,
            keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
            // Node checks the header and request timeouts this often; its default, 30 s, let a
            // slowloris connection live 50% past the header timeout.
            connectionsCheckingInterval: 5000,
          },
          listener,
        );
        server.setTimeout(options.socketIdleTimeoutMs ?? 60_000);
        if (options.maxConnections !== undefined) server.maxConnections = Math.max(1, Math.floor(options.maxConnections / addresses.length));
        server.on('clientError', answerClientError);
        // Node would answer `Expect: 100-continue` with 100 before any check, inviting a body it
        // then refuses; readBody sends the 100 once the request has passed them.
        server.on('checkContinue', listener);
        // Without a listener Node drops a CONNECT's connection with no answer at all.
        server.on('connect', (_req: unknown, socket: Socket) => answerRaw(socket, 400));
        httpServer.#servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(address.port, address.host, () => {
            server.off('error', reject);
            resolve();
          });
        });
        httpServer.#urls.push(urlOf(address.host, (server.address() as AddressInfo).port));
      }
    } catch (err) {
      await httpServer.close();
      throw err;
    }
    return httpServer;
  }

  /** `http://HOST:PORT` per address, with the port actually bound. */
  get urls(): readonly string[] {
    return this.#urls;
  }

  /** Stops accepting, lets requests in flight finish (up to the grace period), then resolves. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const closed = Promise.all(this.#servers.map((s) => closeServer(s)));
    const timer = setTimeout(() => {
      for (const server of this.#servers) server.closeAllConnections();
    }, this.#graceMs);
    try {
      await closed;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Node's own answers to requests it cannot parse or that time out, with Cache-Control like every
 * other answer.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // An answer already under way on this connection cannot be followed by another one.
  const answering = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage?.headersSent ?? false;
  if (err.code === 'ECONNRESET' || !socket.writable || answering) {
    socket.destroy();
    return;
  }
  answerRaw(socket, err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400);
}

/** An empty answer written straight to a connection that has no ServerResponse, then closed. */
function answerRaw(socket: Socket, status: number): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nCache-Control: ${CACHE_CONTROL}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

function urlOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
