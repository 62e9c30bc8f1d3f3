/**
 * CSRF safety: a browser sends a cross-site form or a "simple" POST (form-urlencoded,
 * multipart, text/plain) without asking first, but never application/json. Refusing every other
 * POST body with 415 before it is parsed means no page can make a browser run a mutation.
 */
import type { Plugin } from 'graphql-yoga';

/** The media type yoga's JSON parser recognises, spelled the one way it compares it to. */
export const JSON_MEDIA_TYPE = 'application/json';

/**
 * True for a POST whose media type is application/json in any case (RFC 9110: media types are
 * case-insensitive), parameters allowed. The node handler hands yoga such a request with
 * Content-Type JSON_MEDIA_TYPE, because yoga compares it case-sensitively.
 */
export function isJsonPost(method: string, contentType: string | null | undefined): boolean {
  return method === 'POST' && contentType?.split(';', 1)[0]?.trim().toLowerCase() === JSON_MEDIA_TYPE;
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
