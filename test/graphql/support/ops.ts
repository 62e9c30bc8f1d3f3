/** GraphQL operations the tests share, and helpers that run them. */
import { expect } from 'vitest';
import { expectData } from './expect-error.js';
import type { TestServer } from './graphql-server.js';

export const NIL = '00000000-0000-0000-0000-000000000000';

export const ADD_VERSION = `mutation($clientId: UUID!, $parent: UUID!, $segment: Base64!) {
  addVersion(clientId: $clientId, parentVersionId: $parent, historySegment: $segment) {
    __typename
    ... on VersionAdded { version { id parentVersionId historySegment size } snapshotUrgency }
    ... on VersionConflict { expectedParentVersionId }
  }
}`;

export const ADD_SNAPSHOT = `mutation($clientId: UUID!, $versionId: UUID!, $data: Base64!) {
  addSnapshot(clientId: $clientId, versionId: $versionId, data: $data) { accepted reason }
}`;

/** Adds `count` versions in a chain on top of `parent`; returns their ids, oldest first. */
export async function addChain(server: TestServer, clientId: string, count: number, parent = NIL): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const segment = Buffer.from(`segment ${i}`).toString('base64');
    const data = expectData(await server.gql(ADD_VERSION, { clientId, parent, segment }));
    expect(data.addVersion.__typename).toBe('VersionAdded');
    parent = data.addVersion.version.id;
    ids.push(parent);
  }
  return ids;
}

let counter = 0;
/** A fresh client id, distinct within the test process. */
export function newClientId(): string {
  counter += 1;
  return `a0000000-0000-4000-8000-${counter.toString(16).padStart(12, '0')}`;
}
