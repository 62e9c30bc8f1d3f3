/** The GraphQL transport's public API. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createGraphqlYoga } from './create-graphql-yoga.js';
import type { GraphqlDeps } from './deps.js';

export { createGraphqlYoga, GRAPHQL_PATH, type GraphqlYoga } from './create-graphql-yoga.js';
export type { GraphqlDeps } from './deps.js';
export type { GraphqlLogger } from './logger.js';
export { LIMITS as GRAPHQL_LIMITS } from './limits.js';

/** A node:http handler for requests whose path is /graphql. */
export type GraphqlHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export function createGraphqlHandler(deps: GraphqlDeps): GraphqlHandler {
  const yoga = createGraphqlYoga(deps);
  return async (req, res) => {
    // requestListener, unlike handleNodeRequestAndResponse, also writes the response.
    await yoga.requestListener(req, res);
  };
}
