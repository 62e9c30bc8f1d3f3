/**
 * GraphiQL served from tcsync itself. yoga's default page loads its scripts from a CDN and stays
 * on "Loading..." without internet access; @graphql-yoga/render-graphiql inlines every asset.
 */
import type { GraphiQLOptions } from 'graphql-yoga';

export const GRAPHIQL_OPTIONS: GraphiQLOptions = Object.freeze({
  title: 'tcsync GraphiQL',
  defaultQuery: '{\n  server {\n    version\n    snapshotVersions\n    snapshotDays\n    createClients\n  }\n}\n',
});

/**
 * A renderer for yoga's `renderGraphiQL` that builds the ~9 MB page once (yoga passes the same
 * options every time), loading its module only then: the module is 9 MB of source that costs
 * 32 MiB of heap for as long as the process lives, and most servers never serve the page.
 */
export function createOfflineGraphiqlRenderer(): (options: GraphiQLOptions) => Promise<string> {
  let page: Promise<string> | null = null;
  return (options) => {
    page ??= import('@graphql-yoga/render-graphiql').then(({ renderGraphiQL }) => renderGraphiQL(options));
    // A failed import is tried again by the next request.
    page.catch(() => {
      page = null;
    });
    return page;
  };
}
