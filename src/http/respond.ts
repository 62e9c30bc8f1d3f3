/** Writing answers. Success bodies carry exactly the media type given, with no parameters. */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

export function send(res: ServerResponse, status: number, headers: OutgoingHttpHeaders = {}, body?: Uint8Array | string): void {
  res.writeHead(status, headers);
  res.end(body);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: OutgoingHttpHeaders = {}): void {
  send(res, status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }, text.endsWith('\n') ? text : `${text}\n`);
}
