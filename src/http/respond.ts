/** Writing answers. Success bodies carry exactly the media type given, with no parameters. */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** Sent on every response: sync answers must never come from a cache. */
export const CACHE_CONTROL = 'no-store, max-age=0';

export function send(res: ServerResponse, status: number, headers: OutgoingHttpHeaders = {}, body?: Uint8Array | string): void {
  // An explicit length lets Node send headers and body in one write; without it, writeHead
  // commits to chunked framing and the terminating chunk costs another write.
  const length = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  res.writeHead(status, { ...headers, 'Content-Length': length });
  res.end(body);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: OutgoingHttpHeaders = {}): void {
  send(res, status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }, text.endsWith('\n') ? text : `${text}\n`);
}
