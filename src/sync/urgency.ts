/** How much the server wants a new snapshot: the reference server's rules, integer arithmetic included. */
import type { Client } from '../storage/storage.js';

export type SnapshotUrgency = 'none' | 'low' | 'high';

export interface SnapshotPolicy {
  /** Versions between snapshots: low urgency at this many, high at 3/2 of it. @default 100 */
  readonly snapshotVersions: number;
  /** Days between snapshots: low urgency at this age, high at 3/2 of it. @default 14 */
  readonly snapshotDays: number;
}

export const DEFAULT_SNAPSHOT_POLICY: SnapshotPolicy = Object.freeze({ snapshotVersions: 100, snapshotDays: 14 });

const RANK: Record<SnapshotUrgency, number> = { none: 0, low: 1, high: 2 };
const DAY_MS = 86_400_000;

function byThreshold(value: number, threshold: number): SnapshotUrgency {
  if (value >= Math.trunc((threshold * 3) / 2)) return 'high';
  if (value >= threshold) return 'low';
  return 'none';
}

/** The urgency for a client in this state at `now`: the greater of the age and the versions urgency. */
export function snapshotUrgency(client: Client, policy: SnapshotPolicy, now: Date): SnapshotUrgency {
  const { snapshot } = client;
  if (snapshot === null) return 'high';
  // Whole days, truncated toward zero like chrono's num_days().
  const days = Math.trunc((now.getTime() - snapshot.timestamp.getTime()) / DAY_MS);
  const byAge = byThreshold(days, policy.snapshotDays);
  const byVersions = byThreshold(snapshot.versionsSince, policy.snapshotVersions);
  return RANK[byAge] >= RANK[byVersions] ? byAge : byVersions;
}
