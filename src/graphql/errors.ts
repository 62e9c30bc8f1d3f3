/**
 * GraphQL errors: the codes tcsync answers with, and the one place where a TcsyncError (or any
 * other fault) becomes what a caller sees. Expected refusals are GraphQLErrors made by
 * {@link userError}; everything else is masked to INTERNAL_SERVER_ERROR with no message, stack
 * or file path, and logged here.
 */
import { GraphQLError } from 'graphql';
import { maskError as yogaMaskError } from 'graphql-yoga';
import { TcsyncError, type ErrorCode } from '../errors.js';
import type { GraphqlLogger } from './logger.js';

/** The values of `extensions.code` in tcsync's GraphQL errors. */
export type GraphqlErrorCode =
  | 'BAD_REQUEST'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'FORBIDDEN'
  | 'SERVICE_UNAVAILABLE'
  | 'STORAGE_FULL'
  | 'STORAGE_READ_ONLY'
  | 'STORAGE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

/** A refusal the caller caused and may see, with its code. */
export function userError(code: GraphqlErrorCode, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/**
 * A request that is not GraphQL over HTTP at all (its parameters do not parse): HTTP 400 with
 * code BAD_REQUEST, as yoga answers a POST body that is not JSON.
 */
export function badRequest(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });
}

interface PublicFault {
  readonly code: GraphqlErrorCode;
  readonly message: string;
}

/**
 * What a caller learns of each TcsyncError; null masks it. Messages are fixed here because
 * storage messages may name directories, and a client's directory name is its credential.
 */
const PUBLIC_FAULTS: Record<ErrorCode, PublicFault | null> = {
  NO_SUCH_CLIENT: { code: 'NOT_FOUND', message: 'No such client.' },
  CLIENT_EXISTS: { code: 'CONFLICT', message: 'The client already exists.' },
  CLIENT_DELETED: {
    code: 'FORBIDDEN',
    message: 'The client was deleted; its id cannot be used until an admin lifts its tombstone.',
  },
  INVALID_ID: { code: 'BAD_USER_INPUT', message: 'Not a UUID.' },
  WRONG_PARENT: { code: 'CONFLICT', message: 'The parent version is not the latest version.' },
  VERSION_EXISTS: { code: 'CONFLICT', message: 'The version already exists.' },
  // Nothing was committed in either case, so the caller may simply retry.
  LOCK_TIMEOUT: { code: 'SERVICE_UNAVAILABLE', message: 'The client is busy; try again.' },
  LOCK_LOST: { code: 'SERVICE_UNAVAILABLE', message: 'The client is busy; try again.' },
  TXN_STALE: { code: 'SERVICE_UNAVAILABLE', message: 'The client is busy; try again.' },
  OUT_OF_FILES: { code: 'SERVICE_UNAVAILABLE', message: 'The server is busy; try again.' },
  // Codes of their own, so that a caller can tell an operator's problem from a busy server.
  DISK_FULL: { code: 'STORAGE_FULL', message: 'The server is out of disk space; nothing was stored. Try again later.' },
  READ_ONLY: { code: 'STORAGE_READ_ONLY', message: 'The server cannot write: its storage is read-only. Try again later.' },
  STORAGE_UNAVAILABLE: { code: 'STORAGE_UNAVAILABLE', message: 'The server cannot reach its database. Try again later.' },
  SNAPSHOT_MISMATCH: null,
  TXN_ENDED: null,
  CORRUPT: null,
  UNSUPPORTED_FORMAT: null,
  STORAGE_IO: null,
};

/** yoga's `maskedErrors.maskError`: maps TcsyncErrors, masks every other non-GraphQL fault. */
export function createMaskError(logger: GraphqlLogger): (error: unknown, message: string) => Error {
  return (error, message) => {
    const located = error instanceof GraphQLError ? error : null;
    const cause = located?.originalError ?? error;
    const fault = cause instanceof TcsyncError ? PUBLIC_FAULTS[cause.code] : null;
    if (cause instanceof TcsyncError && fault !== null) {
      return new GraphQLError(fault.message, {
        nodes: located?.nodes ?? null,
        path: located?.path ?? null,
        extensions: { code: fault.code, reason: cause.code },
      });
    }
    // isDev false: the original error (stack, paths) never reaches the caller, whatever NODE_ENV says.
    const masked = yogaMaskError(error, message, false);
    if (masked !== error) {
      // Name, code and field path only: messages of storage faults may contain client ids.
      logger.error(
        {
          error: cause instanceof Error ? cause.name : typeof cause,
          code: cause instanceof TcsyncError ? cause.code : undefined,
          path: located?.path?.join('.'),
        },
        'graphql request failed unexpectedly',
      );
    }
    return masked;
  };
}
