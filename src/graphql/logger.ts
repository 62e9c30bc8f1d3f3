/** Where the GraphQL layer reports faults it masks from callers. */

/** The part of a logger GraphQL uses; a pino logger satisfies it. */
export interface GraphqlLogger {
  error(details: object, message: string): void;
}

/** Used when the caller passes none: a masked fault must still be seen by the operator. */
export const stderrLogger: GraphqlLogger = {
  error(details, message) {
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: message, ...details })}\n`);
  },
};
