/**
 * Retention on PostgreSQL (Storage.pruneVersions): the rule of prune-rule.ts, walked in the
 * database, and the deletion in short transactions.
 *
 * The walk is one statement outside any transaction and without the client's lock: what it
 * finds (the cut version V and its ancestors) stays true, since versions are never changed and
 * only pruning deletes them (a deleted client's versions are gone with it, and version ids are
 * random, so an id cannot come back as someone else's). The deletion then runs oldest first, in
 * batches of {@link PRUNE_BATCH}, each its own transaction under the client's lock as a commit
 * takes it: a request waits for one batch at most, never for the whole pruning, and a crash
 * midway leaves the newer part of the history, never a gap.
 */
import type { ClientId, VersionId } from '../../ids.js';
import { prepared, type Query } from './database.js';

/** Versions deleted per transaction: a few milliseconds of the client's lock. */
export const PRUNE_BATCH = 1000;

/**
 * V and its ancestors ($1 the client, $2 the cut time), as (version id, parent id) rows, and V
 * on every row. `walk` goes from the snapshot's version (when all three snapshot columns are
 * set, as upstream reads a snapshot) to the first version added before $2, passing versions
 * without a recorded time; `doomed` goes on from there to the oldest. UNION, not UNION ALL,
 * ends either walk at a version seen before (a cycle, possible only in imported data), and the
 * recursion is pulled only as far as `cut`'s LIMIT needs.
 */
const PRUNE_WALK = prepared(`WITH RECURSIVE
  walk (version_id, parent_version_id, old) AS (
    SELECT v.version_id, v.parent_version_id, a.added_at < $2
    FROM clients c JOIN versions v ON v.client_id = c.client_id AND v.version_id = c.snapshot_version_id
    LEFT JOIN tcsync_version_added a ON a.client_id = v.client_id AND a.version_id = v.version_id
    WHERE c.client_id = $1 AND c.versions_since_snapshot IS NOT NULL AND c.snapshot_timestamp IS NOT NULL
    UNION
    SELECT v.version_id, v.parent_version_id, a.added_at < $2
    FROM walk w JOIN versions v ON v.client_id = $1 AND v.version_id = w.parent_version_id
    LEFT JOIN tcsync_version_added a ON a.client_id = v.client_id AND a.version_id = v.version_id
    WHERE w.old IS NOT TRUE),
  cut AS (SELECT version_id FROM walk WHERE old LIMIT 1),
  doomed (version_id, parent_version_id) AS (
    SELECT version_id, parent_version_id FROM versions WHERE client_id = $1 AND version_id = (SELECT version_id FROM cut)
    UNION
    SELECT v.version_id, v.parent_version_id FROM doomed d JOIN versions v ON v.client_id = $1 AND v.version_id = d.parent_version_id)
  SELECT (SELECT version_id FROM cut) AS cut, version_id, parent_version_id FROM doomed`);

/** Deletes versions $2 of client $1; their tcsync_version_added rows go with them (ON DELETE CASCADE). */
const DELETE_VERSIONS = prepared('DELETE FROM versions WHERE client_id = $1 AND version_id = ANY($2::uuid[])');

interface DoomedRow {
  readonly cut: VersionId;
  readonly version_id: VersionId;
  readonly parent_version_id: VersionId | null;
}

/** The versions the rule deletes, oldest first (`read` runs the walk's one statement). */
export async function findPrunable(read: Query, clientId: ClientId, addedBefore: Date): Promise<VersionId[]> {
  const { rows } = await read<DoomedRow>(PRUNE_WALK, [clientId, addedBefore]);
  if (rows.length === 0) return [];
  const parents = new Map<VersionId, VersionId | null>(rows.map((row) => [row.version_id, row.parent_version_id]));
  // The rows come in no order: put them in the chain's, from the cut back, then turn it round.
  const chain: VersionId[] = [];
  let id: VersionId | null | undefined = rows[0]!.cut;
  while (id != null && parents.has(id)) {
    const parent = parents.get(id);
    // Taken out as it is passed: a cycle ends the walk.
    parents.delete(id);
    chain.push(id);
    id = parent;
  }
  return chain.reverse();
}

/** Deletes one batch of versions (oldest first) in the caller's transaction; returns how many went. */
export async function deleteVersions(query: Query, clientId: ClientId, versionIds: readonly VersionId[]): Promise<number> {
  return (await query(DELETE_VERSIONS, [clientId, versionIds])).rowCount ?? 0;
}
