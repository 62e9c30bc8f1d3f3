/**
 * The TaskChampion sync protocol v1 as a client speaks it: requests with Content-Length,
 * lower-case hyphenated ids, the exact media types. Answers are returned as they came, so tests
 * can assert on them.
 */
import { randomUUID } from 'node:crypto';
import { httpRequest, type HttpAnswer, type HttpRequestOptions } from './http-request.js';

/** How requests travel: another agent (an HTTPS one trusting a proxy's CA), extra headers (Host). */
export interface Transport {
  readonly agent?: HttpRequestOptions['agent'];
  readonly headers?: Readonly<Record<string, string>>;
}

export const NIL = '00000000-0000-0000-0000-000000000000';
export const HISTORY_SEGMENT = 'application/vnd.taskchampion.history-segment';
export const SNAPSHOT = 'application/vnd.taskchampion.snapshot';

export class ProtocolClient {
  readonly baseUrl: string;
  readonly clientId: string;

  readonly #transport: Transport;

  constructor(baseUrl: string, clientId: string = randomUUID(), transport: Transport = {}) {
    this.baseUrl = baseUrl;
    this.clientId = clientId;
    this.#transport = transport;
  }

  addVersion(parentVersionId: string, segment: Uint8Array | string): Promise<HttpAnswer> {
    return this.#send('POST', `v1/client/add-version/${parentVersionId}`, HISTORY_SEGMENT, segment);
  }

  getChildVersion(parentVersionId: string): Promise<HttpAnswer> {
    return this.#send('GET', `v1/client/get-child-version/${parentVersionId}`);
  }

  addSnapshot(versionId: string, data: Uint8Array | string): Promise<HttpAnswer> {
    return this.#send('POST', `v1/client/add-snapshot/${versionId}`, SNAPSHOT, data);
  }

  getSnapshot(): Promise<HttpAnswer> {
    return this.#send('GET', 'v1/client/snapshot');
  }

  /** Adds versions one after the other from `parent`; returns their ids in order. */
  async addChain(parent: string, count: number, segment = (i: number) => `segment ${i}`): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const answer = await this.addVersion(ids.at(-1) ?? parent, segment(i));
      if (answer.status !== 200) throw new Error(`add-version ${i} answered ${answer.status} ${answer.text}`);
      ids.push(answer.headers['x-version-id'] as string);
    }
    return ids;
  }

  /** Every version id from `parent` on, by get-child-version until 404. */
  async walk(parent = NIL): Promise<string[]> {
    const ids: string[] = [];
    for (let at = parent; ; ) {
      const answer = await this.getChildVersion(at);
      if (answer.status === 404) return ids;
      if (answer.status !== 200) throw new Error(`get-child-version answered ${answer.status}`);
      at = answer.headers['x-version-id'] as string;
      ids.push(at);
    }
  }

  #send(method: string, path: string, contentType?: string, body?: Uint8Array | string): Promise<HttpAnswer> {
    const headers: Record<string, string | number> = { ...this.#transport.headers, 'X-Client-Id': this.clientId };
    if (contentType !== undefined) headers['Content-Type'] = contentType;
    const url = new URL(path, this.baseUrl.endsWith('/') ? this.baseUrl : `${this.baseUrl}/`).href;
    return httpRequest(url, { method, headers, body, agent: this.#transport.agent });
  }
}
