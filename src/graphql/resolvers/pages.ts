/**
 * Connections: cursors are node ids, pages are bounded before anything is loaded, and history
 * is walked one parent link per node, so no request ever loads more than its page.
 */
import { TcsyncError } from '../../errors.js';
import { NIL_VERSION_ID, parseClientId, parseVersionId, type ClientId, type VersionId } from '../../ids.js';
import { withTxn, type Storage, type Version } from '../../storage/storage.js';
import { ClientNode } from '../client-node.js';
import { userError } from '../errors.js';
import type { LoadBudget } from '../load-budget.js';

export interface Connection<T> {
  readonly edges: ReadonlyArray<{ readonly cursor: string; readonly node: T }>;
  readonly pageInfo: { readonly hasNextPage: boolean; readonly endCursor: string | null };
}

export interface PageArgs {
  readonly first: number | null;
  readonly after?: string | null;
}

function connection<T>(nodes: readonly T[], cursorOf: (node: T) => string, hasNextPage: boolean): Connection<T> {
  const edges = nodes.map((node) => ({ cursor: cursorOf(node), node }));
  return { edges, pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
}

/** A client's history, newest first; `after` X starts at X's parent. One transaction, one consistent view. */
export function versionsPage(storage: Storage, clientId: ClientId, args: PageArgs, budget: LoadBudget): Promise<Connection<Version>> {
  const first = budget.reservePage(args.first);
  return withTxn(storage, clientId, async (txn) => {
    const client = await txn.getClient();
    if (client === null) throw new TcsyncError('NO_SUCH_CLIENT', 'no such client');
    let next: VersionId = client.latestVersionId;
    if (args.after != null) {
      const after = await txn.getVersion(parseVersionId(args.after));
      if (after === null) throw userError('BAD_USER_INPUT', '`after` is not a version of this client.');
      next = after.parentVersionId;
    }
    const nodes: Version[] = [];
    while (nodes.length < first && next !== NIL_VERSION_ID) {
      const version = await txn.getVersion(next);
      // A first version may name a parent the server never stored: the history ends there.
      if (version === null) break;
      budget.chargeBytes(version.historySegment.byteLength);
      nodes.push(version);
      next = version.parentVersionId;
    }
    const hasNextPage = next !== NIL_VERSION_ID && nodes.length === first && (await txn.getVersion(next)) !== null;
    return connection(nodes, (version) => version.versionId, hasNextPage);
  });
}

/** Client ids greater than `after`, ascending; one more id than the page is read to learn whether another page follows. */
export async function clientsPage(storage: Storage, args: PageArgs, budget: LoadBudget): Promise<Connection<ClientNode>> {
  const first = budget.reservePage(args.first);
  const after = args.after == null ? null : parseClientId(args.after);
  const ids = await storage.listClients(after, first + 1);
  const nodes = ids.slice(0, first).map((id) => new ClientNode(storage, id, null, { listed: true }));
  return connection(nodes, (node) => node.id, ids.length > first);
}
