/**
 * Mutation: the protocol's transactions through the shared sync logic (so GraphQL and HTTP
 * cannot disagree), plus the operator's client management.
 */
import { NIL_VERSION_ID, parseVersionId } from '../../ids.js';
import { withTxn, type Client } from '../../storage/storage.js';
import { ClientNode } from '../client-node.js';
import type { GraphqlContext } from '../context.js';
import type { GraphqlDeps } from '../deps.js';
import { userError } from '../errors.js';
import { allowedClientId, nonEmpty } from './guards.js';
import { addSnapshotPayload, addVersionPayload } from './results.js';

const EMPTY_CLIENT: Client = Object.freeze({ latestVersionId: NIL_VERSION_ID, snapshot: null });

export function mutationResolvers({ storage, sync, access }: GraphqlDeps) {
  return {
    Mutation: {
      createClient: async (_root: unknown, args: { id: string }, ctx: GraphqlContext): Promise<ClientNode> => {
        const id = allowedClientId(access, args.id);
        // With --no-create-clients, creating a client is the operator's decision.
        if (!access.createClients && !ctx.isAdmin) {
          throw userError('FORBIDDEN', 'This server does not create clients; createClient needs the admin token.');
        }
        await withTxn(storage, id, (txn) => txn.newClient(NIL_VERSION_ID));
        return new ClientNode(storage, id, EMPTY_CLIENT);
      },
      addVersion: async (_root: unknown, args: { clientId: string; parentVersionId: string; historySegment: Uint8Array }) => {
        const id = allowedClientId(access, args.clientId);
        const segment = nonEmpty(args.historySegment, 'historySegment');
        return addVersionPayload(await sync.addVersion(id, parseVersionId(args.parentVersionId), segment));
      },
      addSnapshot: async (_root: unknown, args: { clientId: string; versionId: string; data: Uint8Array }) => {
        const id = allowedClientId(access, args.clientId);
        const data = nonEmpty(args.data, 'data');
        return addSnapshotPayload(await sync.addSnapshot(id, parseVersionId(args.versionId), data));
      },
      // Admin only, like liftTombstone: the admin guard refuses the operation without the token.
      deleteClient: (_root: unknown, args: { id: string }) => storage.deleteClient(allowedClientId(access, args.id)),
      liftTombstone: (_root: unknown, args: { id: string }) => storage.liftTombstone(allowedClientId(access, args.id)),
    },
  };
}
