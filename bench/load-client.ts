/**
 * The benchmarks' load generator: one keep-alive connection per simulated replica, through undici
 * (a lean HTTP/1.1 client, like the ureq that Taskwarrior uses), so that the figures are the
 * server's cost rather than node:http's client-side parsing.
 */
import { Client } from 'undici';
import { serverLogger } from '../dist/cli/server-logger.js';

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

export class LoadClient {
  readonly #client: Client;

  constructor(origin: string) {
    this.#client = new Client(origin, { pipelining: 1 });
  }

  async request(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: Uint8Array | string): Promise<Answer> {
    const answer = await this.#client.request({ method, path, headers, body });
    return { status: answer.statusCode, headers: answer.headers, body: Buffer.from(await answer.body.arrayBuffer()) };
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/** Request lines are logged as `serve` logs them (synchronously), to /dev/null, so their cost counts. */
export const benchLogger = () => serverLogger('info', '/dev/null');
