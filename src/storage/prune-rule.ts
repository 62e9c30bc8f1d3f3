/**
 * The retention rule of Storage.pruneVersions, written once: which versions a snapshot lets a
 * storage delete. Each storage finds the links its own way and deletes the answer its own way.
 */
import type { VersionId } from '../ids.js';

/** What the rule needs to know of one stored version. */
export interface PruneLink {
  readonly parentVersionId: VersionId;
  /** When the version was added, in milliseconds since the epoch; null when the storage does not know. */
  readonly addedAt: number | null;
}

/**
 * The versions to delete, oldest first: walking from the snapshot's version `snapshotVersionId`
 * through parent links, the first stored version added before `addedBefore` and every stored
 * ancestor of it. `link` answers for a stored version and undefined for any other id, where the
 * walk ends. A version seen twice (a cycle, possible only in imported data, which no storage
 * checks to form a chain) ends the walk too.
 */
export function versionsToPrune(snapshotVersionId: VersionId, addedBefore: Date, link: (versionId: VersionId) => PruneLink | undefined): VersionId[] {
  const cut = addedBefore.getTime();
  const seen = new Set<VersionId>();
  const doomed: VersionId[] = [];
  let id = snapshotVersionId;
  for (let found = link(id); found !== undefined && !seen.has(id); found = link(id)) {
    seen.add(id);
    // Once one is old enough, all its ancestors go, whatever their own times say.
    if (doomed.length > 0 || (found.addedAt !== null && found.addedAt < cut)) doomed.push(id);
    id = found.parentVersionId;
  }
  return doomed.reverse();
}
