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

interface CompiledRoute<C> {
  readonly route: Route<C>;
  readonly segments: readonly string[];
  readonly paramIndex: number;
}

export class Router<C> {
  readonly #routes: readonly CompiledRoute<C>[];

  constructor(routes: readonly Route<C>[]) {
    this.#routes = routes.map((route) => {
      const segments = route.template.split('/').slice(1);
      return { route, segments, paramIndex: segments.findIndex((s) => s.startsWith('{')) };
    });
  }

  match(method: string, pathname: string): RouteMatch<C> {
    const segments = pathname.split('/').slice(1);
    for (const compiled of this.#routes) {
      const param = matchSegments(compiled, segments);
      if (param === undefined) continue;
      const { route } = compiled;
      const handler = route.methods[method] ?? route.methods[ANY_METHOD];
      if (handler === undefined) return { kind: 'method-not-allowed', template: route.template, allow: Object.keys(route.methods) };
      return { kind: 'found', template: route.template, handler, param };
    }
    return { kind: 'not-found' };
  }
}

/** The parameter (null when the route has none) when the path matches, else undefined. */
function matchSegments<C>({ route, segments, paramIndex }: CompiledRoute<C>, path: readonly string[]): string | null | undefined {
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
  try {
    return decodeURIComponent(segment);
  } catch {
    // Malformed escapes: left as they are, they fail the handler's own check.
    return segment;
  }
}
