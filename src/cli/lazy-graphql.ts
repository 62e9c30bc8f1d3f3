/**
 * The GraphQL handler, loaded on the first request to /graphql: graphql-yoga, graphql-js and
 * their plugins are most of a server's memory and start-up, and a server that only syncs
 * replicas never needs them.
 */
import type { GraphqlHandler } from '../http/index.js';

export function lazyGraphql(load: () => Promise<GraphqlHandler>): GraphqlHandler {
  let loading: Promise<GraphqlHandler> | null = null;
  return async (req, res) => {
    loading ??= load().catch((err: unknown) => {
      // A failed import is retried by the next request instead of failing every one after it.
      loading = null;
      throw err;
    });
    const handler = await loading;
    await handler(req, res);
  };
}
