/**
 * The image's HEALTHCHECK: exit 0 when tcsync answers GET /healthz with 200 on the first address
 * it listens on (LISTEN, as serve reads it; a wildcard host is asked on loopback), 1 otherwise.
 * Node, because the slim image has neither curl nor wget.
 */
'use strict';
const first = (process.env.LISTEN || '0.0.0.0:8080').split(',')[0].trim();
const match = /^(?:\[(.+)\]|([^:]*)):(\d+)$/.exec(first);
const host = match ? (match[1] ?? match[2]) : '127.0.0.1';
const port = match ? match[3] : '8080';
const wildcard = { '': '127.0.0.1', '0.0.0.0': '127.0.0.1', '::': '::1' };
const asked = wildcard[host] ?? host;
const url = `http://${asked.includes(':') ? `[${asked}]` : asked}:${port}/healthz`;

fetch(url, { signal: AbortSignal.timeout(4000) }).then(
  async (answer) => {
    const body = (await answer.text()).trim();
    if (answer.status !== 200) console.log(`${url}: ${answer.status} ${body}`);
    process.exit(answer.status === 200 ? 0 : 1);
  },
  (err) => {
    console.log(`${url}: ${err.message}`);
    process.exit(1);
  },
);
