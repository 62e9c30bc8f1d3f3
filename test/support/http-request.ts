/**
 * A plain HTTP/1.1 request with full control of the headers sent and every header received, over
 * a keep-alive agent (as the taskchampion client uses).
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body as text. */
  readonly text: string;
}

export interface HttpRequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string | number>;
  readonly body?: Uint8Array | string;
  readonly agent?: http.Agent | false;
  /** The local address to send from, such as 127.0.0.2 to look like another host on loopback. */
  readonly localAddress?: string;
}

export const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
/** For https:// URLs: the proxies that tests start have throwaway self-signed certificates. */
export const tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: false });

export async function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpAnswer> {
  try {
    return await requestOnce(url, options);
  } catch (err) {
    // A kept-alive connection the server closed (its keep-alive timeout) just as this request
    // went out on it: resent on a new connection, as Node's documentation advises.
    if (!(err instanceof StaleConnectionError)) throw err;
    return requestOnce(url, options);
  }
}

class StaleConnectionError extends Error {}

function requestOnce(url: string, options: HttpRequestOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith('https:');
    const request = secure ? https.request : http.request;
    const agent = options.agent ?? (secure ? tlsAgent : keepAliveAgent);
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent, localAddress: options.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(req.reusedSocket && err.code === 'ECONNRESET' ? new StaleConnectionError(err.message, { cause: err }) : err);
    });
    req.end(options.body);
  });
}
