/** Routing by template: literal paths, a last `{param}`, a param mid-path, prefixes, 404 and 405. */
import { describe, expect, it } from 'vitest';
import { ANY_METHOD, Router, type Route } from '../../src/http/router.js';

const handler = async () => undefined;
const routes: Route<null>[] = [
  { template: '/', methods: { GET: handler } },
  { template: '/healthz', methods: { GET: handler, HEAD: handler } },
  { template: '/graphql', prefix: true, methods: { [ANY_METHOD]: handler } },
  { template: '/v1/client/get-child-version/{parentVersionId}', methods: { GET: handler } },
  { template: '/v1/client/snapshot', methods: { GET: handler } },
  { template: '/files/{name}/meta', methods: { GET: handler } },
];
const router = new Router(routes);

const found = (method: string, path: string) => {
  const m = router.match(method, path);
  return m.kind === 'found' ? [m.template, m.param] : m.kind === 'method-not-allowed' ? ['405', m.allow.join(',')] : ['404'];
};

describe('Router', () => {
  it.each([
    ['/', ['/', null]],
    ['/healthz', ['/healthz', null]],
    ['/healthz/', ['404']],
    ['', ['404']],
    ['/graphql', ['/graphql', null]],
    ['/graphql/', ['/graphql', null]],
    ['/graphql/a/b', ['/graphql', null]],
    ['/graphqlx', ['404']],
    ['/v1/client/get-child-version/abc', ['/v1/client/get-child-version/{parentVersionId}', 'abc']],
    ['/v1/client/get-child-version/a%2Fb', ['/v1/client/get-child-version/{parentVersionId}', 'a/b']],
    ['/v1/client/get-child-version/%zz', ['/v1/client/get-child-version/{parentVersionId}', '%zz']],
    ['/v1/client/get-child-version/', ['404']],
    ['/v1/client/get-child-version/a/b', ['404']],
    ['//v1/client/get-child-version/a', ['404']],
    ['/v1/client/snapshot', ['/v1/client/snapshot', null]],
    ['/files/x%20y/meta', ['/files/{name}/meta', 'x y']],
    ['/files//meta', ['404']],
    ['/files/x/meta/more', ['404']],
  ])('GET %j -> %j', (path, expected) => {
    expect(found('GET', path)).toEqual(expected);
  });

  it('answers a known path with the wrong method as 405 with the methods allowed, before any param check', () => {
    expect(found('DELETE', '/healthz')).toEqual(['405', 'GET,HEAD']);
    expect(found('POST', '/v1/client/get-child-version/not-checked-here')).toEqual(['405', 'GET']);
    expect(found('PATCH', '/graphql/anything')).toEqual(['/graphql', null]);
  });
});
