/** The SDL the server serves: schema.graphql at the repository root, read when the server starts. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** From src/graphql/ (tests) and dist/graphql/ (built) alike, the root is two levels up. */
export const SCHEMA_PATH = fileURLToPath(new URL('../../schema.graphql', import.meta.url));

export function readSchemaSource(): string {
  return readFileSync(SCHEMA_PATH, 'utf8');
}
