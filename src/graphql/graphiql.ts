/**
 * GraphiQL served from tcsync itself. yoga's default page loads its scripts from a CDN and stays
 * on "Loading..." without internet access; @graphql-yoga/render-graphiql inlines every asset.
 */
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import type { GraphiQLOptions } from 'graphql-yoga';

export const GRAPHIQL_OPTIONS: GraphiQLOptions = Object.freeze({
  title: 'tcsync GraphiQL',
  defaultQuery: '{\n  server {\n    version\n    snapshotVersions\n    snapshotDays\n    createClients\n  }\n}\n',
});

/** A renderer for yoga's `renderGraphiQL` that builds the ~9 MB page once: yoga passes the same options every time. */
export function createOfflineGraphiqlRenderer(): (options: GraphiQLOptions) => string {
  let page: string | null = null;
  return (options) => (page ??= renderGraphiQL(options));
}
