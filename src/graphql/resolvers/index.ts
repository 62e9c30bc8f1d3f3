/** All resolvers of schema.graphql, built over one set of dependencies. */
import type { GraphqlDeps } from '../deps.js';
import { Base64Scalar, DateTimeScalar, UuidScalar } from '../scalars.js';
import { clientResolvers } from './client.js';
import { mutationResolvers } from './mutation.js';
import { queryResolvers } from './query.js';
import { resultResolvers } from './results.js';

export function createResolvers(deps: GraphqlDeps) {
  return {
    UUID: UuidScalar,
    DateTime: DateTimeScalar,
    Base64: Base64Scalar,
    ...queryResolvers(deps),
    ...mutationResolvers(deps),
    ...clientResolvers(deps),
    ...resultResolvers,
  };
}
