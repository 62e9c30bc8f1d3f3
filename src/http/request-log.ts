/**
 * The line logged for every request. pino's general path (any object, serializers, mixins)
 * cost about 24,000 instructions per line, more than a tenth of a whole get-child-version
 * (callgrind, see docs/performance.md); these lines have fixed fields of known types, so they
 * are built here as the JSON pino would write for `logger.info(fields, msg)`, with the logger's
 * own level prefix, time and bindings, and written to its own destination, in order with its
 * other lines. A test holds the two byte for byte. pino.symbols is how pino exposes those parts
 * to code that writes for it. A logger configured to change its lines (writesPlainLines) gets
 * pino's own path.
 */
import { pino, type Logger } from 'pino';

export interface RequestLine {
  readonly method: string;
  readonly route: string;
  /** 0 when the client went away before the answer was sent. */
  readonly status: number;
  readonly ms: number;
  readonly addr: string | null;
  /** The client id's short form, when the request named one. */
  readonly client?: string;
  /** What the request did, when that is not plain from the route and status. */
  readonly note?: string;
}

interface PinoParts {
  readonly [key: symbol]: unknown;
}

const { chindingsSym, endSym, formattersSym, hooksSym, lsCacheSym, messageKeySym, mixinSym, needsMetadataGsym, nestedKeySym, serializersSym, stringifiersSym, streamSym, timeSym } = pino.symbols;
/** In pino.symbols since pino 8.14, not yet in its type declarations. */
const msgPrefixSym = (pino.symbols as unknown as Record<string, symbol | undefined>).msgPrefixSym;
const INFO = 30;
/** Strings whose JSON a writer remembers; past it, it starts over. */
const REMEMBERED_STRINGS = 64;
const FIELDS: readonly (keyof RequestLine)[] = ['method', 'route', 'status', 'ms', 'addr', 'client', 'note'];

/** Writes request lines at info level through `logger`, as `logger.info(line, msg)` would. */
export function requestLineWriter(logger: Logger): (line: RequestLine, msg: string) => void {
  const parts = logger as unknown as PinoParts;
  if (!writesPlainLines(parts)) return (line, msg) => logger.info(line, msg);
  const quote = rememberingJsonOf(REMEMBERED_STRINGS);
  return (line, msg) => {
    if (!logger.isLevelEnabled('info')) return;
    const levelPrefix = (parts[lsCacheSym] as Record<number, string>)[INFO];
    const time = (parts[timeSym] as () => string)();
    let json =
      `${levelPrefix}${time}${parts[chindingsSym] as string}` +
      `,"method":${quote(line.method)},"route":${quote(line.route)}` +
      `,"status":${line.status},"ms":${line.ms},"addr":${line.addr === null ? 'null' : quote(line.addr)}`;
    if (line.client !== undefined) json += `,"client":${JSON.stringify(line.client)}`;
    if (line.note !== undefined) json += `,"note":${JSON.stringify(line.note)}`;
    (parts[streamSym] as { write(s: string): void }).write(`${json},"msg":${quote(msg)}${parts[endSym] as string}`);
  };
}

/**
 * JSON.stringify of a string, remembered for the strings a server's lines repeat: the methods,
 * routes and messages, few by nature, and the addresses of the peers it mostly sees. A call of
 * JSON.stringify costs about 1,100 instructions (callgrind), a lookup here a tenth of that; four
 * of them a line. The client ids are not remembered: one line each of thousands of clients would
 * only push the others out. At most `limit` strings, so a flood of addresses keeps little alive.
 */
function rememberingJsonOf(limit: number): (s: string) => string {
  const remembered = new Map<string, string>();
  return (s) => {
    let json = remembered.get(s);
    if (json === undefined) {
      json = JSON.stringify(s);
      if (remembered.size >= limit) remembered.clear();
      remembered.set(s, json);
    }
    return json;
  };
}

/**
 * Whether pino would write a line of these fields unchanged: no mixin, log formatter, hooks,
 * message prefix, nesting, redaction or serializer of them, and a destination that needs no
 * metadata (as pino.multistream does). tcsync's loggers are all plain; any other gets pino's path.
 */
function writesPlainLines(parts: PinoParts): boolean {
  const formatters = parts[formattersSym] as { log?: unknown } | undefined;
  const hooks = parts[hooksSym] as { logMethod?: unknown; streamWrite?: unknown } | undefined;
  const serializers = (parts[serializersSym] ?? {}) as Record<string, unknown>;
  const stream = parts[streamSym] as Record<symbol, unknown> | undefined;
  return (
    !parts[mixinSym] &&
    !formatters?.log &&
    !hooks?.logMethod &&
    !hooks?.streamWrite &&
    (msgPrefixSym === undefined || !parts[msgPrefixSym]) &&
    parts[messageKeySym] === 'msg' &&
    !parts[nestedKeySym] &&
    Object.getOwnPropertySymbols(parts[stringifiersSym] ?? {}).length + Object.keys(parts[stringifiersSym] ?? {}).length === 0 &&
    FIELDS.every((field) => serializers[field] === undefined) &&
    stream?.[needsMetadataGsym] !== true
  );
}
