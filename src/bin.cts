#!/usr/bin/env node
/**
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
