/** Query: one client by id (its id is its credential), facts about the server, and the admin's listing. */
import { SERVER_VERSION } from '../../version.js';
import { ClientNode } from '../client-node.js';
import type { GraphqlContext } from '../context.js';
import type { GraphqlDeps } from '../deps.js';
import { allowedClientId } from './guards.js';
import { clientsPage, type PageArgs } from './pages.js';

export function queryResolvers({ storage, sync, access }: GraphqlDeps) {
  return {
    Query: {
      client: async (_root: unknown, args: { id: string }): Promise<ClientNode | null> => {
        const client = new ClientNode(storage, allowedClientId(access, args.id));
        return (await client.load()) === null ? null : client;
      },
      server: () => ({
        version: SERVER_VERSION,
        snapshotVersions: sync.options.snapshotVersions,
        snapshotDays: sync.options.snapshotDays,
        createClients: sync.options.createClients,
      }),
      // Admin only: the admin guard refuses the operation before this runs without the token.
      clients: (_root: unknown, args: PageArgs, ctx: GraphqlContext) => clientsPage(storage, args, ctx.budget),
    },
  };
}
