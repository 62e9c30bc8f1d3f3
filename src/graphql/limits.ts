/**
 * Limits against abusive requests, in one place so docs/graphql.md can state them. The
 * nesting is checked before the document is parsed (plugins/use-nesting-limit.ts); the other
 * static ones (tokens, depth, aliases, directives, cost) before anything runs, by graphql-armor;
 * the page sizes and the per-request load budget while resolving, because only
 * then are variables known.
 */
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

export const LIMITS = Object.freeze({
  /** Request bodies above this are refused with 413 without being read further. */
  maxBodyBytes: 16 * 1024 * 1024,
  /** A body that receives nothing for this long is refused with 408, as on the sync protocol. */
  bodyIdleTimeoutMs: 30_000,
  /** Tokens in one document. GraphiQL's introspection query needs about 300. */
  maxTokens: 2000,
  /**
   * Nesting of brackets, braces and parentheses in a document, checked before it is parsed:
   * graphql's parser recurses once per level. GraphiQL's introspection query nests 10.
   */
  maxNesting: 32,
  /** Nesting of selections; `clients > edges > node > versions > edges > node > id` is 7. */
  maxDepth: 10,
  /** Aliased fields per operation: aliases multiply work without multiplying tokens much. */
  maxAliases: 15,
  /** Directives per operation. */
  maxDirectives: 20,
  /**
   * graphql-armor's static cost: objects 2, scalars 1, children weighted 1.5 per level, a field
   * times its literal `first`. One full page of 1000 versions with every field costs about 49,000;
   * pages sized by variables cost 1 each here and are bounded by the load budget instead.
   */
  maxCost: 100_000,
  /** The largest `first` of a page; more is refused, not capped. */
  maxPageSize: 1000,
  /** Nodes (clients and versions) one request may load across all its pages. */
  maxNodesPerRequest: 10_000,
  /** Bytes of history segments and snapshots one request may load. */
  maxBytesPerRequest: 64 * 1024 * 1024,
});

/** graphql-armor's limits, failing as GraphQL validation errors with code BAD_USER_INPUT. */
export function useArmorLimits(): Plugin {
  const reject = { propagateOnRejection: true, onReject: [tagBadUserInput] };
  return EnvelopArmorPlugin({
    maxTokens: { n: LIMITS.maxTokens, ...reject },
    maxDepth: { n: LIMITS.maxDepth, ...reject },
    maxAliases: { n: LIMITS.maxAliases, ...reject },
    maxDirectives: { n: LIMITS.maxDirectives, ...reject },
    costLimit: { maxCost: LIMITS.maxCost, ...reject },
  }) as Plugin;
}

// armor's errors carry no code; callers tell refusals apart by `extensions.code`. Its messages
// start with "Syntax Error: " (armor raises them as parse errors), which misleads: the query is
// well-formed, only over a limit.
function tagBadUserInput(_context: unknown, error: GraphQLError): void {
  (error as { extensions: Record<string, unknown> }).extensions = { ...error.extensions, code: 'BAD_USER_INPUT' };
  error.message = error.message.replace(/^Syntax Error: /, '');
}
