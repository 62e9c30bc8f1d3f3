/** What a route handler gets for one request. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientId } from '../ids.js';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The route's `{param}` segment, percent-decoded; null for routes without one. */
  readonly param: string | null;
  /** Set by handlers once the client is known, so that the request's log line can name it (shortened). */
  clientId: ClientId | null;
  /** A word on the outcome for the log line, such as why a snapshot was ignored. */
  note: string | null;
}
