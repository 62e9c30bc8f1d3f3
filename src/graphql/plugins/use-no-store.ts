/**
 * Every answer may contain a client's data, so none may be cached: the same header the sync
 * protocol's responses carry, set here too so /graphql has it however it is mounted.
 */
import type { Plugin } from 'graphql-yoga';

export const NO_STORE = 'no-store, max-age=0';

export function useNoStore(): Plugin {
  return {
    onResponse({ response }) {
      response.headers.set('cache-control', NO_STORE);
    },
  };
}
