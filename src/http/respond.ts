/** Writing answers. Success bodies carry exactly the media type given, with no parameters. */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** Sent on every response: sync answers must never come from a cache. */
export const CACHE_CONTROL = 'no-store, max-age=0';

export function send(res: ServerResponse, status: number, headers: OutgoingHttpHeaders = {}, body?: Uint8Array | string): void {
  res.writeHead(status, headers);
  res.end(body);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: OutgoingHttpHeaders = {}): void {
  send(res, status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }, text.endsWith('\n') ? text : `${text}\n`);
}
