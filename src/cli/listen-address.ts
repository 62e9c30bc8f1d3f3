/** `HOST:PORT` as --listen takes it: a name or IPv4 address, or an IPv6 address in brackets. */
import type { ListenAddress } from '../http/index.js';
import { UsageError } from './usage-error.js';

export function parseListenAddress(input: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(input.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new UsageError(`--listen/LISTEN: expected HOST:PORT (IPv6 as [ADDR]:PORT, port 0-65535), got ${JSON.stringify(input)}`);
  }
  return { host: (match[1] ?? match[2]) as string, port };
}
