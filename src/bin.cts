#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * V8's young generation grows to 2 x 16 MiB under a server's steady allocation, and keeps it: of
 * the RSS tcsync grew by while serving 10,000 clients, that was the largest part. Two MiB per
 * semi-space cost no request rate measurable here (npm run bench -- many, compare) and took the
 * RSS after polling from about 130 to 85 MiB. V8 reads the size only as it starts, hence the
 * shebang: the installed command, `npm start`, the service and the container all run this file.
 *
 * The `tcsync` executable. libuv sizes its threadpool once, from UV_THREADPOOL_SIZE, at its first
 * job, and loading an ES module is such a job: so this entry is CommonJS, sets the size before
 * anything is loaded, and only then loads the ES module command line (cli.ts).
 *
 * Every commit waits on the pool for two fsyncs (the version file and its directory); with
 * libuv's 4 threads, 16 clients committing at once queue behind 4 fsyncs. A user's own
 * UV_THREADPOOL_SIZE is left as it is.
 */
const DEFAULT_THREADPOOL_SIZE = '16';

if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = DEFAULT_THREADPOOL_SIZE;
void import('./cli.js');
