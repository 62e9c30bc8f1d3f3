/**
 * CSRF safety: a browser sends a cross-site form or a "simple" POST (form-urlencoded,
 * multipart, text/plain) without asking first, but never application/json. Refusing every other
 * POST body with 415 before it is parsed means no page can make a browser run a mutation.
 */
import type { Plugin } from 'graphql-yoga';

/** True for a POST whose media type is exactly application/json (parameters allowed). */
export function isJsonPost(method: string, contentType: string | null | undefined): boolean {
  // Case-sensitive, as yoga's JSON parser compares it: anything it would not parse is refused.
  return method === 'POST' && contentType?.split(';', 1)[0]?.trim() === 'application/json';
}

export function useJsonPostsOnly(): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (request.method !== 'POST' || isJsonPost(request.method, request.headers.get('content-type'))) return;
      const body = {
        errors: [
          {
            message: 'POST /graphql needs Content-Type: application/json.',
            extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' },
          },
        ],
      };
      endResponse(
        new fetchAPI.Response(JSON.stringify(body), {
          status: 415,
          headers: { 'content-type': 'application/json; charset=utf-8', accept: 'application/json' },
        }),
      );
    },
  };
}
