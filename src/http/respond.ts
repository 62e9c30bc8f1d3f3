/** Writing answers. Success bodies carry exactly the media type given, with no parameters. */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** Sent on every response: sync answers must never come from a cache. */
export const CACHE_CONTROL = 'no-store, max-age=0';

const TEXT = 'text/plain; charset=utf-8';

export function send(res: ServerResponse, status: number, headers?: OutgoingHttpHeaders, body?: Uint8Array | string): void {
  answer(res, status, headers, null, body);
}

export function sendText(res: ServerResponse, status: number, text: string, headers?: OutgoingHttpHeaders): void {
  answer(res, status, headers, TEXT, text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * Sends Cache-Control, the caller's headers, then the content type, then the length (each
 * overriding the one before; the caller names each header once, in one spelling), all handed
 * to writeHead. A response with no header set before (res.setHeader) writes them as they are;
 * each setHeader validated, lower-cased and stored its header in a dictionary, about 1,000 to
 * 2,000 instructions a header (callgrind). One that has some (Connection: close while the
 * server stops, a handler's own) merges these into them, as setHeader would have.
 */
function answer(res: ServerResponse, status: number, headers: OutgoingHttpHeaders | undefined, contentType: string | null, body: Uint8Array | string | undefined): void {
  const all: OutgoingHttpHeaders = { 'Cache-Control': CACHE_CONTROL };
  if (headers !== undefined) for (const name of Object.keys(headers)) all[name] = headers[name];
  if (contentType !== null) all['Content-Type'] = contentType;
  // An explicit length lets Node send headers and body in one write; without it, writeHead
  // commits to chunked framing and the terminating chunk costs another write.
  all['Content-Length'] = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  res.writeHead(status, all);
  res.end(body);
}
