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
 * Sets the caller's headers, then the content type, then the length (each overriding the one
 * before), and sends. Set one by one rather than merged into a new object for writeHead: the
 * merging cost every answer, and the headers go out in the same order either way.
 */
function answer(res: ServerResponse, status: number, headers: OutgoingHttpHeaders | undefined, contentType: string | null, body: Uint8Array | string | undefined): void {
  if (headers !== undefined) for (const name of Object.keys(headers)) res.setHeader(name, headers[name] as NonNullable<OutgoingHttpHeaders[string]>);
  if (contentType !== null) res.setHeader('Content-Type', contentType);
  // An explicit length lets Node send headers and body in one write; without it, writeHead
  // commits to chunked framing and the terminating chunk costs another write.
  res.setHeader('Content-Length', body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  res.writeHead(status);
  res.end(body);
}
