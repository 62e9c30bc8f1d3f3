/**
 * GET /graphql's parameters. yoga's own GET parser JSON.parses `variables` and `extensions`
 * unguarded, so `?variables=notjson` escaped as a SyntaxError and was masked to a 500; here it
 * is the caller's mistake: 400 BAD_REQUEST, as for a POST body that is not JSON.
 */
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { badRequest } from '../errors.js';

export function useGetParams(): Plugin {
  return {
    // Runs after yoga's built-in parsers, so this one replaces its GET parser.
    onRequestParse({ request, url, setRequestParser }) {
      if (request.method === 'GET') setRequestParser(() => parseGetParams(url.searchParams));
    },
  };
}

/** The same parameters yoga's parser reads; empty ones count as absent, as there. */
function parseGetParams(params: URLSearchParams): GraphQLParams {
  return {
    query: params.get('query') || undefined,
    operationName: params.get('operationName') || undefined,
    variables: jsonParam(params, 'variables'),
    extensions: jsonParam(params, 'extensions'),
  };
}

function jsonParam<T>(params: URLSearchParams, name: string): T | undefined {
  const text = params.get(name);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw badRequest(`The \`${name}\` parameter is not valid JSON.`);
  }
}
