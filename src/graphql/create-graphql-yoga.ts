/**
 * The GraphQL server: schema.graphql with tcsync's resolvers, limits and HTTP rules, as a yoga
 * instance. Request bodies are capped by the node handler in front of it (node-handler.ts).
 */
import { createSchema, createYoga, type YogaInitialContext, type YogaServerInstance } from 'graphql-yoga';
import type { GraphqlContext } from './context.js';
import type { GraphqlDeps } from './deps.js';
import { createMaskError } from './errors.js';
import { createOfflineGraphiqlRenderer, GRAPHIQL_OPTIONS } from './graphiql.js';
import { useArmorLimits } from './limits.js';
import { LoadBudget } from './load-budget.js';
import { stderrLogger } from './logger.js';
import { useAdminGuard } from './plugins/use-admin-guard.js';
import { useGetParams } from './plugins/use-get-params.js';
import { useJsonPostsOnly } from './plugins/use-json-posts-only.js';
import { useNestingLimit } from './plugins/use-nesting-limit.js';
import { useNoStore } from './plugins/use-no-store.js';
import { createResolvers } from './resolvers/index.js';
import { readSchemaSource } from './schema-source.js';

/** The path yoga answers on; the HTTP server routes it (and the paths below it) to the handler. */
export const GRAPHQL_PATH = '/graphql';

/** yoga's server context: empty, the node handler passes none and no resolver needs one. */
type ServerContext = Record<string, unknown>;

export type GraphqlYoga = YogaServerInstance<ServerContext, GraphqlContext>;

export function createGraphqlYoga(deps: GraphqlDeps): GraphqlYoga {
  return createYoga<ServerContext, GraphqlContext>({
    schema: createSchema<ServerContext & YogaInitialContext & GraphqlContext>({ typeDefs: readSchemaSource(), resolvers: createResolvers(deps) }),
    graphqlEndpoint: GRAPHQL_PATH,
    context: ({ request }) => ({
      isAdmin: deps.access.isAdmin(request.headers.get('authorization')),
      budget: new LoadBudget(),
    }),
    maskedErrors: { maskError: createMaskError(deps.logger ?? stderrLogger), isDev: false },
    graphiql: GRAPHIQL_OPTIONS,
    renderGraphiQL: createOfflineGraphiqlRenderer(),
    landingPage: false,
    // No cross-origin reads: a page elsewhere has no business with a client's data.
    cors: false,
    multipart: false,
    batching: false,
    // The node handler caps bodies as it reads them (http/read-body.ts); yoga's cap would
    // re-wrap every request body in another stream.
    maxRequestBodySize: false,
    // Faults are logged by the mask, with client ids left out; yoga's own logging would not.
    logging: false,
    // useNestingLimit refuses a document in onParse, before any parser (armor's included) runs on it.
    plugins: [useJsonPostsOnly(), useGetParams(), useNoStore(), useNestingLimit(), useArmorLimits(), useAdminGuard()],
  });
}
