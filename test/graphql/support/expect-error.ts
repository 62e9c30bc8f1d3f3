/** Assertions on GraphQL error answers. */
import { expect } from 'vitest';
import type { GraphqlResponse } from './graphql-server.js';

/** The answer is refused as a whole or in part with this `extensions.code`; returns the first such error. */
export function expectErrorCode(res: GraphqlResponse, code: string): { message: string; extensions: Record<string, unknown> } {
  expect(res.body?.errors, JSON.stringify(res.body)).toBeInstanceOf(Array);
  const error = res.body.errors.find((e: { extensions?: { code?: string } }) => e.extensions?.code === code);
  expect(error, `no ${code} error in ${JSON.stringify(res.body)}`).toBeDefined();
  return error;
}

/** The answer has data and no errors; returns the data. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function expectData(res: GraphqlResponse): any {
  expect(res.body?.errors, JSON.stringify(res.body)).toBeUndefined();
  expect(res.status).toBe(200);
  return res.body.data;
}
