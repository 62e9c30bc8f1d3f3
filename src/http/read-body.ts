/**
 * Reads a request body into memory, refusing it as soon as it is known to exceed the cap: by its
 * Content-Length before a byte is read, or by the running count, so that no more than the cap is
 * ever held. A client that stops sending mid-body is cut off after an idle timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { budgetSpent, type BodyHold } from './body-budget.js';
import { ClientGoneError, HttpError } from './http-error.js';

export interface BodyLimits {
  /** Largest body accepted, in bytes. */
  readonly maxBytes: number;
  /** A body that receives nothing for this long is abandoned. */
  readonly idleTimeoutMs: number;
  /** The answer's text when the body is too large (the reference words it per endpoint). */
  readonly tooLargeMessage: string;
  /** The answer's status when the body is too large: the protocol says 400, GraphQL 413. @default 400 */
  readonly tooLargeStatus?: number;
}

/**
 * `hold` counts the body against the server-wide budget (body-budget.ts) as its bytes arrive,
 * never by the length it declares, so that clients declaring large bodies and sending them slowly
 * cannot hold the budget with bytes they never send; past the budget the answer is 503.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limits: BodyLimits, hold?: BodyHold): Promise<Buffer> {
  const tooLarge = () => new HttpError(limits.tooLargeStatus ?? 400, limits.tooLargeMessage);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBytes) return Promise.reject(tooLarge());
  // The server leaves `Expect: 100-continue` to us (http-server.ts): invite the body only now,
  // when every check before it has passed, so that a refused one is never sent.
  if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let timer: NodeJS.Timeout;

    const armTimer = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(new HttpError(408, 'request body timeout', { closeConnection: true })), limits.idleTimeoutMs);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > limits.maxBytes || (hold !== undefined && !hold.take(chunk.byteLength))) {
        chunks.length = 0;
        finish(total > limits.maxBytes ? tooLarge() : budgetSpent());
        return;
      }
      chunks.push(chunk);
      armTimer();
    };
    const onEnd = () => finish(null);
    const onClose = () => finish(new ClientGoneError());
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      if (err !== null) reject(err);
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    };

    req.on('data', onData);
    req.on('end', onEnd);
    // 'close' before 'end' means the connection went away mid-body.
    req.on('close', onClose);
    req.on('error', onClose);
    armTimer();
  });
}
