/** --trust-proxy's values: IP addresses, or networks as ADDRESS/PREFIX, in one BlockList. */
import { BlockList, isIP } from 'node:net';
import { UsageError } from './usage-error.js';

export function parseTrustedProxies(items: readonly string[]): BlockList {
  const list = new BlockList();
  for (const item of items) {
    const [address = '', prefix, ...rest] = item.split('/');
    const family = isIP(address);
    const bits = family === 6 ? 128 : 32;
    const length = prefix === undefined ? bits : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
    if (family === 0 || rest.length > 0 || !(length <= bits)) {
      throw new UsageError(`--trust-proxy/TRUST_PROXY: expected an IP address or ADDRESS/PREFIX, got ${JSON.stringify(item)}`);
    }
    list.addSubnet(address, length, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}
