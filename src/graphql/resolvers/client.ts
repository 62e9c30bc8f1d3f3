/** The Client and Snapshot types: one client's state, read through the sync logic and storage. */
import { TcsyncError, isTcsyncError } from '../../errors.js';
import { parseVersionId, type ClientId } from '../../ids.js';
import { withTxn, type ClientUsage, type Snapshot, type Version } from '../../storage/storage.js';
import type { SnapshotUrgency } from '../../sync/urgency.js';
import type { ClientNode } from '../client-node.js';
import type { GraphqlContext } from '../context.js';
import type { GraphqlDeps } from '../deps.js';
import { versionsPage, type PageArgs } from './pages.js';
import { childVersionResult, type ChildVersionResult } from './results.js';

/** A snapshot's metadata, with its client so `data` can be fetched only when asked for. */
export interface SnapshotNode extends Snapshot {
  readonly clientId: ClientId;
}

export function clientResolvers({ storage, sync }: GraphqlDeps) {
  return {
    Client: {
      id: (client: ClientNode) => client.id,
      latestVersionId: async (client: ClientNode) => (await client.meta()).latestVersionId,
      snapshot: async (client: ClientNode): Promise<SnapshotNode | null> => {
        const { snapshot } = await client.meta();
        return snapshot === null ? null : { ...snapshot, clientId: client.id };
      },
      snapshotUrgency: async (client: ClientNode): Promise<SnapshotUrgency> => {
        const urgency = await sync.currentUrgency(client.id);
        if (urgency === null) throw new TcsyncError('NO_SUCH_CLIENT', 'no such client');
        return urgency;
      },
      version: async (client: ClientNode, args: { id: string }, ctx: GraphqlContext): Promise<Version | null> => {
        const version = await withTxn(storage, client.id, (txn) => txn.getVersion(parseVersionId(args.id)));
        if (version !== null) ctx.budget.chargeBytes(version.historySegment.byteLength);
        return version;
      },
      childVersion: async (client: ClientNode, args: { parentVersionId: string }, ctx: GraphqlContext): Promise<ChildVersionResult> => {
        const parentVersionId = parseVersionId(args.parentVersionId);
        const result = await sync.getChildVersion(client.id, parentVersionId);
        if (result.kind === 'ok') ctx.budget.chargeBytes(result.version.historySegment.byteLength);
        return childVersionResult(result, parentVersionId);
      },
      versions: (client: ClientNode, args: PageArgs, ctx: GraphqlContext) => versionsPage(storage, client.id, args, ctx.budget),
      usage: async (client: ClientNode): Promise<ClientUsage> => {
        const usage = await storage.clientUsage(client.id);
        if (usage === null) throw new TcsyncError('NO_SUCH_CLIENT', 'no such client');
        return usage;
      },
    },
    Snapshot: {
      // Null when the snapshot was replaced or the client deleted since its metadata was read.
      data: async (snapshot: SnapshotNode, _args: unknown, ctx: GraphqlContext): Promise<Uint8Array | null> => {
        let stored;
        try {
          stored = await sync.getSnapshot(snapshot.clientId);
        } catch (err) {
          if (isTcsyncError(err, 'NO_SUCH_CLIENT')) return null;
          throw err;
        }
        if (stored === null || stored.versionId !== snapshot.versionId) return null;
        ctx.budget.chargeBytes(stored.data.byteLength);
        return stored.data;
      },
    },
  };
}
