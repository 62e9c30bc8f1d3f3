/** The server's name and version, as `GET /` and GraphQL's `server.version` report them. */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export const SERVER_NAME = 'tcsync';
export const SERVER_VERSION: string = pkg.version;
