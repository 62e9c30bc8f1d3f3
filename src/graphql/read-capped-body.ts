/**
 * Reads a request body into memory up to a cap, and not one chunk past it: a declared
 * Content-Length over the cap is refused before anything is read, and a body without one is
 * counted as it arrives.
 */
import type { IncomingMessage } from 'node:http';

/**
 * The body, or 'too-large' once it is known to exceed `maxBytes` (the rest is left unread).
 * Rejects when the client goes away before the body ends.
 */
export function readCappedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | 'too-large'> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.resolve('too-large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) {
        cleanup();
        req.pause();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    // A client that goes away mid-body may close the request without an error.
    const onClose = () => onError(new Error('request closed before its body ended'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
