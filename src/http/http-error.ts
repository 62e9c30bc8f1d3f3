/**
 * A refusal decided by the HTTP layer itself (bad header, bad body), carrying its status. Faults
 * from below are TcsyncErrors and get their status in error-status.ts.
 */
export class HttpError extends Error {
  readonly status: number;
  /** Close the connection after answering: the client cannot be trusted to send a sane next request. */
  readonly closeConnection: boolean;
  /** Extra response headers, such as Allow on a 405. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message: string, options: { closeConnection?: boolean; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.closeConnection = options.closeConnection ?? false;
    this.headers = options.headers ?? {};
  }
}

/** The client went away before its request was read; there is nobody left to answer. */
export class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection before sending the whole request');
    this.name = 'ClientGoneError';
  }
}
