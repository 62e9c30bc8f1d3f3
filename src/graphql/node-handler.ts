/**
 * node:http in front of yoga: the body is read here, capped, and handed to yoga as bytes. yoga's
 * own path (a node stream turned into a web stream, re-wrapped by its body-size limit) cost
 * more per request than parsing, validating and executing together (see bench/graphql-bench.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { budgetSpent, GRAPHQL_BODY_WEIGHT, type BodyBudget } from '../http/body-budget.js';
import { HttpError } from '../http/http-error.js';
import { readBody } from '../http/read-body.js';
import type { GraphqlYoga } from './create-graphql-yoga.js';
import { LIMITS } from './limits.js';
import { isJsonPost, JSON_MEDIA_TYPE } from './plugins/use-json-posts-only.js';
import { NO_STORE } from './plugins/use-no-store.js';

/** A node:http handler for requests whose path is /graphql. */
export type GraphqlHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const BODY_LIMITS = {
  maxBytes: LIMITS.maxBodyBytes,
  idleTimeoutMs: LIMITS.bodyIdleTimeoutMs,
  tooLargeMessage: `Request body larger than ${LIMITS.maxBodyBytes} bytes.`,
  tooLargeStatus: 413,
};
/** extensions.code of the refusals made while reading a body, by HTTP status. */
const CODE_BY_STATUS: Readonly<Record<number, string>> = { 408: 'REQUEST_TIMEOUT', 413: 'REQUEST_ENTITY_TOO_LARGE', 503: 'SERVICE_UNAVAILABLE' };

export function createNodeHandler(yoga: GraphqlYoga, bodyBudget: BodyBudget | null): GraphqlHandler {
  return async (req, res) => {
    const method = req.method ?? 'GET';
    let body: Buffer | undefined;
    const jsonPost = isJsonPost(method, req.headers['content-type']);
    // Only a JSON POST is parsed; yoga refuses anything else without needing its body.
    if (jsonPost) {
      try {
        body = await readBody(req, res, BODY_LIMITS, bodyBudget?.holderFor(res, GRAPHQL_BODY_WEIGHT));
      } catch (err) {
        // Otherwise the client went away mid-body: there is no one left to answer.
        if (err instanceof HttpError) refuse(res, err);
        else res.destroy();
        return;
      }
    }
    // yoga routes on the path alone; a fixed origin keeps a hostile Host header out of URL parsing.
    const response = await yoga.fetch(new URL(req.url ?? '/', 'http://localhost'), {
      method,
      headers: headersOf(req, jsonPost),
      ...(body === undefined ? {} : { body }),
    });
    const answer = Buffer.from(await response.arrayBuffer());
    // Held until the client has taken it, which one that stops reading never does.
    if (bodyBudget !== null && !bodyBudget.holderFor(res, 1).take(answer.byteLength)) return refuse(res, budgetSpent());
    res.statusCode = response.status;
    response.headers.forEach((value, name) => res.setHeader(name, value));
    res.end(answer);
  };
}

/**
 * The request's headers for yoga; a JSON POST's Content-Type in the one spelling yoga's parser
 * matches (it compares case-sensitively). Its parameters go: yoga reads JSON as UTF-8 regardless.
 */
function headersOf(req: IncomingMessage, jsonPost: boolean): [string, string][] {
  const headers: [string, string][] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    const isContentType = jsonPost && name.toLowerCase() === 'content-type';
    headers.push([name, isContentType ? JSON_MEDIA_TYPE : (req.rawHeaders[i + 1] as string)]);
  }
  return headers;
}

/**
 * A body refused while read (too large, stalled, over the server's budget), or an answer over the
 * budget, as a GraphQL error.
 * The rest of the body is left to the server in front: closing at once would reset the
 * connection under a client still sending, which would then never read this answer.
 */
function refuse(res: ServerResponse, err: HttpError): void {
  res.writeHead(err.status, {
    ...err.headers,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': NO_STORE,
    ...(err.closeConnection ? { connection: 'close' } : {}),
  });
  res.end(JSON.stringify({ errors: [{ message: err.message, extensions: { code: CODE_BY_STATUS[err.status] ?? 'BAD_REQUEST' } }] }));
}
