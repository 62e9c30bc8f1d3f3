/**
 * The checks every storage's clients must pass, over the export interface only: the chain from
 * the latest version back to its start (no loop, one child per parent), no stored version off
 * that chain, a snapshot whose bytes are there and whose version is on the chain. A chain may end
 * at the nil version or at a version that was never stored (see docs/operations.md, "Verify").
 *
 * Findings name what they are about as `<client>`, `<client>/versions/<id>` or
 * `<client>/snapshot`: a storage without files has no file names to give.
 */
import { NIL_VERSION_ID, type ClientId, type VersionId } from '../ids.js';
import { isTcsyncError } from '../errors.js';
import type { ExportedClient } from '../storage/client-export.js';
import { Findings } from '../storage/finding.js';

/** What the chain checks need of the versions: parents and sizes, never the bytes themselves. */
export interface Headers {
  /** Parent by version id. */
  readonly parentOf: ReadonlyMap<VersionId, VersionId>;
  /** Version ids by parent, in the order they were read (more than one is a fork). */
  readonly childrenOf: ReadonlyMap<VersionId, readonly VersionId[]>;
  /** Bytes of all segments. */
  readonly bytes: number;
}

export interface Chain {
  readonly latest: VersionId;
  /** Versions from the latest back to the start. */
  readonly onChain: ReadonlySet<VersionId>;
  /** The version id the chain ends at when it is not nil: one that is not stored. */
  readonly start: VersionId | null;
}

export const names = {
  client: (client: ClientId) => client,
  version: (client: ClientId, id: VersionId) => `${client}/versions/${id}`,
  snapshot: (client: ClientId) => `${client}/snapshot`,
};

/** Reads every version once, keeping only ids, parents and sizes. */
export async function readHeaders(client: ExportedClient): Promise<Headers> {
  const parentOf = new Map<VersionId, VersionId>();
  const childrenOf = new Map<VersionId, VersionId[]>();
  let bytes = 0;
  for await (const { versionId, parentVersionId, historySegment } of client.versions()) {
    parentOf.set(versionId, parentVersionId);
    childrenOf.set(parentVersionId, [...(childrenOf.get(parentVersionId) ?? []), versionId]);
    bytes += historySegment.byteLength;
  }
  return { parentOf, childrenOf, bytes };
}

/** Two stored versions with one parent: the history forks, and a replica could follow either. */
export function checkForks(clientId: ClientId, headers: Headers, f: Findings): void {
  for (const [parent, children] of headers.childrenOf) {
    for (const extra of children.slice(1)) {
      f.problem(names.version(clientId, extra), `has the same parent ${parent} as ${children[0]}: the history forks`);
    }
  }
}

/** Walks from the latest version back through parents until nil or a version that is not stored. */
export function walkChain(client: ExportedClient, headers: Headers, f: Findings): Chain {
  const onChain = new Set<VersionId>();
  let start: VersionId | null = null;
  for (let id = client.latestVersionId; id !== NIL_VERSION_ID; ) {
    if (onChain.has(id)) {
      f.problem(names.client(client.clientId), `the chain of versions loops at ${id}`);
      break;
    }
    const parent = headers.parentOf.get(id);
    if (parent === undefined) {
      start = id;
      break;
    }
    onChain.add(id);
    id = parent;
  }
  return { latest: client.latestVersionId, onChain, start };
}

/** Stored versions off the chain: each run of them is named once, at its first version. */
export function checkOrphans(clientId: ClientId, headers: Headers, chain: Chain, f: Findings): void {
  const orphans = new Set([...headers.parentOf.keys()].filter((id) => !chain.onChain.has(id)));
  for (const id of orphans) {
    if (orphans.has(headers.parentOf.get(id) as VersionId)) continue;
    let after = 0;
    for (let next = headers.childrenOf.get(id)?.[0]; next !== undefined && orphans.has(next) && after < orphans.size; next = headers.childrenOf.get(next)?.[0]) after++;
    f.problem(names.version(clientId, id), `stored${after > 0 ? ` (with ${after} later versions)` : ''}, but not on the chain from the latest version ${chain.latest}`);
  }
}

/** The snapshot's bytes are readable, and its version is on the chain or is its start. */
export async function checkSnapshot(client: ExportedClient, chain: Chain, f: Findings): Promise<number> {
  const { snapshot, clientId } = client;
  if (snapshot === null) return 0;
  let size = 0;
  try {
    size = (await client.readSnapshot()).byteLength;
  } catch (err) {
    if (!isTcsyncError(err, 'CORRUPT')) throw err;
    f.problem(names.snapshot(clientId), err.message);
  }
  if (!chain.onChain.has(snapshot.versionId) && snapshot.versionId !== chain.start) {
    f.warning(names.client(clientId), `the snapshot is of version ${snapshot.versionId}, which is not on the chain from the latest version`);
  }
  return size;
}

export interface ChainCheck {
  readonly findings: Findings;
  /** Versions on the chain. */
  readonly versions: number;
  /** Bytes of the segments and the snapshot. */
  readonly bytes: number;
}

/** Every check above, on one exported client. */
export async function checkExportedClient(client: ExportedClient): Promise<ChainCheck> {
  const f = new Findings(client.clientId, (name: string) => name);
  let headers: Headers;
  try {
    headers = await readHeaders(client);
  } catch (err) {
    if (!isTcsyncError(err, 'CORRUPT')) throw err;
    f.problem(names.client(client.clientId), err.message);
    return { findings: f, versions: 0, bytes: 0 };
  }
  checkForks(client.clientId, headers, f);
  const chain = walkChain(client, headers, f);
  checkOrphans(client.clientId, headers, chain, f);
  const snapshotBytes = await checkSnapshot(client, chain, f);
  return { findings: f, versions: chain.onChain.size, bytes: headers.bytes + snapshotBytes };
}
