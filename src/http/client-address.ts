/**
 * The address a request came from, for its log line. X-Forwarded-For is believed only from a
 * trusted proxy: anyone else can write any address into it.
 */
import type { IncomingMessage } from 'node:http';
import { isIP, type BlockList } from 'node:net';

/**
 * The direct peer's address or, when the peer is a trusted proxy, the address the proxies saw:
 * each proxy appends the address it was reached from, so the hops are read from the nearest one
 * back and the first that is not a trusted proxy is the client. What lies before that hop was
 * written by the client itself and is ignored, as is a hop that is not an address.
 */
export function clientAddress(req: IncomingMessage, trusted: BlockList | null): string | null {
  const peer = req.socket.remoteAddress ?? null;
  if (peer === null || trusted === null || !isTrusted(trusted, peer)) return peer;
  const hops = [req.headers['x-forwarded-for'] ?? []].flat().join(',').split(',').map((hop) => hop.trim());
  let address = peer;
  for (const hop of hops.reverse()) {
    if (isIP(hop) === 0) break;
    address = hop;
    if (!isTrusted(trusted, hop)) break;
  }
  return address;
}

function isTrusted(trusted: BlockList, address: string): boolean {
  const family = isIP(address);
  // BlockList matches an IPv4-mapped IPv6 peer (::ffff:10.0.0.1) against IPv4 entries.
  return family !== 0 && trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
}
