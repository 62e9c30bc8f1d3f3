/**
 * Maps a method and path to a handler. A route is a template of literal segments and at most one
 * `{param}` segment that matches any one non-empty segment; checking the parameter's form is the
 * handler's job, so that the reference's order holds: an unknown path is 404, a known path with
 * the wrong method 405, and only then a malformed id 404.
 */
export type Handler<C> = (ctx: C) => Promise<void>;

export interface Route<C> {
  /** The template, as logs and metrics name the route: `/v1/client/add-version/{parentVersionId}`. */
  readonly template: string;
  /** Handlers by HTTP method. */
  readonly methods: Readonly<Record<string, Handler<C>>>;
  /** Also match every path below the template (`/graphql/...`). @default false */
  readonly prefix?: boolean;
}

export type RouteMatch<C> =
  | { readonly kind: 'found'; readonly template: string; readonly handler: Handler<C>; readonly param: string | null }
  | { readonly kind: 'method-not-allowed'; readonly template: string; readonly allow: readonly string[] }
  | { readonly kind: 'not-found' };

/** Any method: for routes that hand the whole request to another handler. */
export const ANY_METHOD = '*';

/**
 * How a route's path is matched. Most templates are a literal path, or a literal head and a last
 * `{param}` segment, which plain string comparisons decide; splitting every request's path into
 * segments cost more than the rest of routing (about 6,700 instructions of a get-child-version).
 */
type PathMatcher =
  | { readonly kind: 'literal'; readonly path: string }
  | { readonly kind: 'last-param'; readonly head: string }
  | { readonly kind: 'segments'; readonly segments: readonly string[]; readonly paramIndex: number };

type SegmentsMatcher = Extract<PathMatcher, { kind: 'segments' }>;

interface CompiledRoute<C> {
  readonly route: Route<C>;
  readonly matcher: PathMatcher;
}

export class Router<C> {
  readonly #routes: readonly CompiledRoute<C>[];

  constructor(routes: readonly Route<C>[]) {
    this.#routes = routes.map((route) => ({ route, matcher: compile(route) }));
  }

  match(method: string, pathname: string): RouteMatch<C> {
    let segments: readonly string[] | null = null;
    for (const { route, matcher } of this.#routes) {
      let param: string | null | undefined;
      if (matcher.kind === 'literal') param = matchLiteral(matcher.path, route.prefix ?? false, pathname);
      else if (matcher.kind === 'last-param') param = matchLastParam(matcher.head, pathname);
      else param = matchSegments(route, matcher, (segments ??= pathname.split('/').slice(1)));
      if (param === undefined) continue;
      const handler = route.methods[method] ?? route.methods[ANY_METHOD];
      if (handler === undefined) return { kind: 'method-not-allowed', template: route.template, allow: Object.keys(route.methods) };
      return { kind: 'found', template: route.template, handler, param };
    }
    return { kind: 'not-found' };
  }
}

function compile<C>(route: Route<C>): PathMatcher {
  const segments = route.template.split('/').slice(1);
  const paramIndex = segments.findIndex((s) => s.startsWith('{'));
  if (paramIndex === -1) return { kind: 'literal', path: route.template };
  if (paramIndex === segments.length - 1 && !route.prefix) return { kind: 'last-param', head: route.template.slice(0, route.template.lastIndexOf('/') + 1) };
  return { kind: 'segments', segments, paramIndex };
}

/** A prefix route also matches every path below it (`/graphql/...`), not `/graphqlx`. */
function matchLiteral(path: string, prefix: boolean, pathname: string): null | undefined {
  if (pathname === path) return null;
  if (prefix && pathname.startsWith(path) && pathname.charAt(path.length) === '/') return null;
  return undefined;
}

function matchLastParam(head: string, pathname: string): string | undefined {
  if (pathname.length <= head.length || !pathname.startsWith(head) || pathname.includes('/', head.length)) return undefined;
  return decodeSegment(pathname.slice(head.length));
}

/** The parameter (null when the route has none) when the path matches, else undefined. */
function matchSegments<C>(route: Route<C>, { segments, paramIndex }: SegmentsMatcher, path: readonly string[]): string | null | undefined {
  if (route.prefix ? path.length < segments.length : path.length !== segments.length) return undefined;
  let param: string | null = null;
  for (let i = 0; i < segments.length; i++) {
    const actual = path[i] as string;
    if (i === paramIndex) {
      if (actual === '') return undefined;
      param = decodeSegment(actual);
    } else if (actual !== segments[i]) {
      return undefined;
    }
  }
  return param;
}

function decodeSegment(segment: string): string {
  // Only escapes change in decoding, and decodeURIComponent costs even when there are none.
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    // Malformed escapes: left as they are, they fail the handler's own check.
    return segment;
  }
}
