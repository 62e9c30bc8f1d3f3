/**
 * Reads a request body into memory up to a cap, and not one chunk past it: a declared
 * Content-Length over the cap is refused before anything is read, and a body without one is
 * counted as it arrives.
 */
import type { IncomingMessage } from 'node:http';
import type { BodyHold } from '../http/body-budget.js';

/**
 * The body, or 'too-large' once it is known to exceed `maxBytes`, or 'busy' when `hold` (the
 * server's budget for bodies in memory) refuses it; the rest is then left unread. Rejects when
 * the client goes away before the body ends.
 */
export function readCappedBody(req: IncomingMessage, maxBytes: number, hold: BodyHold | null): Promise<Buffer | 'too-large' | 'busy'> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.resolve('too-large');
  let reserved = declared === undefined ? 0 : Number(declared);
  if (hold !== null && !hold.take(reserved)) return Promise.resolve('busy');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const stop = (why: 'too-large' | 'busy') => {
      cleanup();
      req.pause();
      resolve(why);
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) return stop('too-large');
      if (length > reserved && hold !== null) {
        if (!hold.take(length - reserved)) return stop('busy');
        reserved = length;
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
