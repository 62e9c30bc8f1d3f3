/**
 * graphql's parser recurses once per nested list, object, selection set and argument list. A
 * ~4 KB query nesting lists 2000 deep overflowed the stack (a RangeError, answered 500) before
 * the token limit, which the parser checks as it goes, was reached. A linear pass with graphql's
 * own lexer refuses deeper nesting before the parser runs.
 */
import { GraphQLError, Lexer, Source, TokenKind } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { userError } from '../errors.js';
import { LIMITS } from '../limits.js';

const OPENING = new Set<string>([TokenKind.BRACKET_L, TokenKind.BRACE_L, TokenKind.PAREN_L]);
const CLOSING = new Set<string>([TokenKind.BRACKET_R, TokenKind.BRACE_R, TokenKind.PAREN_R]);

export function useNestingLimit(): Plugin {
  return {
    onParse({ params }) {
      if (nestsDeeperThan(params.source, LIMITS.maxNesting, LIMITS.maxTokens)) {
        throw userError('BAD_USER_INPUT', `Brackets, braces and parentheses nested more than ${LIMITS.maxNesting} deep.`);
      }
    },
  };
}

/**
 * Whether brackets, braces and parentheses nest deeper than `maxDepth` within the first
 * `maxTokens` tokens: the parser stops at the token limit, so no later token can make it recurse.
 */
export function nestsDeeperThan(source: string | Source, maxDepth: number, maxTokens: number): boolean {
  const lexer = new Lexer(typeof source === 'string' ? new Source(source) : source);
  let depth = 0;
  try {
    for (let count = 0, token = lexer.advance(); token.kind !== TokenKind.EOF && count < maxTokens; count++, token = lexer.advance()) {
      if (OPENING.has(token.kind) && ++depth > maxDepth) return true;
      if (CLOSING.has(token.kind)) depth -= 1;
    }
  } catch (error) {
    // A syntax error: the parser reports it itself, nesting no deeper than the tokens before it.
    if (!(error instanceof GraphQLError)) throw error;
  }
  return false;
}
