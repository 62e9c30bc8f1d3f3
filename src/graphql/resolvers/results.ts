/**
 * The sync logic's result values as GraphQL objects: union members carry `__typename`, and
 * Version exposes storage's Version under the schema's field names.
 */
import type { VersionId } from '../../ids.js';
import type { Version } from '../../storage/storage.js';
import type { AddSnapshotResult, AddVersionResult, GetChildVersionResult } from '../../sync/sync-service.js';
import type { SnapshotUrgency } from '../../sync/urgency.js';

export type ChildVersionResult =
  | (Version & { readonly __typename: 'Version' })
  | { readonly __typename: 'VersionNotFound' | 'VersionGone'; readonly parentVersionId: VersionId };

export type AddVersionPayload =
  | { readonly __typename: 'VersionAdded'; readonly version: Version; readonly snapshotUrgency: SnapshotUrgency }
  | { readonly __typename: 'VersionConflict'; readonly expectedParentVersionId: VersionId };

export function childVersionResult(result: GetChildVersionResult, parentVersionId: VersionId): ChildVersionResult {
  switch (result.kind) {
    case 'ok':
      return { ...result.version, __typename: 'Version' };
    case 'not-found':
      return { __typename: 'VersionNotFound', parentVersionId };
    case 'gone':
      return { __typename: 'VersionGone', parentVersionId };
  }
}

export function addVersionPayload(result: AddVersionResult): AddVersionPayload {
  return result.kind === 'ok'
    ? { __typename: 'VersionAdded', version: result.version, snapshotUrgency: result.snapshotUrgency }
    : { __typename: 'VersionConflict', expectedParentVersionId: result.expectedParentVersionId };
}

export function addSnapshotPayload(result: AddSnapshotResult): { accepted: boolean; reason: string | null } {
  return result.kind === 'accepted' ? { accepted: true, reason: null } : { accepted: false, reason: result.reason };
}

export const resultResolvers = {
  Version: {
    id: (version: Version) => version.versionId,
    size: (version: Version) => version.historySegment.byteLength,
  },
  SnapshotUrgency: { NONE: 'none', LOW: 'low', HIGH: 'high' } satisfies Record<string, SnapshotUrgency>,
};
