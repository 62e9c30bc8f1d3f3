/** The GraphQL transport's public API. */
import { createGraphqlYoga } from './create-graphql-yoga.js';
import type { GraphqlDeps } from './deps.js';
import { createNodeHandler, type GraphqlHandler } from './node-handler.js';

export { GRAPHQL_PATH } from './create-graphql-yoga.js';
export type { GraphqlDeps } from './deps.js';
export type { GraphqlLogger } from './logger.js';
export type { GraphqlHandler } from './node-handler.js';

/** A node:http handler for requests whose path is /graphql (and below), over these dependencies. */
export function createGraphqlHandler(deps: GraphqlDeps): GraphqlHandler {
  return createNodeHandler(createGraphqlYoga(deps), deps.bodyBudget ?? null);
}
