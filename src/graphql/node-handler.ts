/**
 * node:http in front of yoga: the body is read here, capped, and handed to yoga as bytes. yoga's
 * own path (a node stream turned into a web stream, re-wrapped by its body-size limit) cost
 * more per request than parsing, validating and executing together (see bench/graphql-bench.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BUDGET_SPENT_MESSAGE, type BodyBudget } from '../http/body-budget.js';
import type { GraphqlYoga } from './create-graphql-yoga.js';
import { LIMITS } from './limits.js';
import { isJsonPost, JSON_MEDIA_TYPE } from './plugins/use-json-posts-only.js';
import { NO_STORE } from './plugins/use-no-store.js';
import { readCappedBody } from './read-capped-body.js';

/** A node:http handler for requests whose path is /graphql. */
export type GraphqlHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const errorBody = (message: string, code: string) => JSON.stringify({ errors: [{ message, extensions: { code } }] });
const TOO_LARGE = errorBody(`Request body larger than ${LIMITS.maxBodyBytes} bytes.`, 'REQUEST_ENTITY_TOO_LARGE');
const BUSY = errorBody(`Server busy: ${BUDGET_SPENT_MESSAGE}.`, 'SERVICE_UNAVAILABLE');
const JSON_ANSWER = { 'content-type': 'application/json; charset=utf-8', 'cache-control': NO_STORE };

export function createNodeHandler(yoga: GraphqlYoga, bodyBudget: BodyBudget | null): GraphqlHandler {
  return async (req, res) => {
    const method = req.method ?? 'GET';
    let body: Buffer | undefined;
    const jsonPost = isJsonPost(method, req.headers['content-type']);
    // Only a JSON POST is parsed; yoga refuses anything else without needing its body.
    if (jsonPost) {
      let read: Buffer | 'too-large' | 'busy';
      try {
        read = await readCappedBody(req, LIMITS.maxBodyBytes, bodyBudget?.holderFor(res) ?? null);
      } catch {
        // The client went away mid-body: there is no one left to answer.
        res.destroy();
        return;
      }
      if (read === 'too-large') {
        // The rest of the body is left to the server in front: closing at once would reset the
        // connection under a client still sending, which would then never read this answer.
        res.writeHead(413, JSON_ANSWER);
        res.end(TOO_LARGE);
        return;
      }
      if (read === 'busy') {
        res.writeHead(503, { ...JSON_ANSWER, 'retry-after': '1' });
        res.end(BUSY);
        return;
      }
      body = read;
    }
    // yoga routes on the path alone; a fixed origin keeps a hostile Host header out of URL parsing.
    const response = await yoga.fetch(new URL(req.url ?? '/', 'http://localhost'), {
      method,
      headers: headersOf(req, jsonPost),
      ...(body === undefined ? {} : { body }),
    });
    res.statusCode = response.status;
    response.headers.forEach((value, name) => res.setHeader(name, value));
    res.end(Buffer.from(await response.arrayBuffer()));
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
