#!/usr/bin/env -S node --max-semi-space-size=2 --no-parallel-scavenge
/**
 * V8's young generation grows to 2 x 16 MiB under a server's steady allocation, and keeps it: of
 * the RSS tcsync grew by while serving 10,000 clients, that was the largest part. Two MiB per
 * semi-space cost no request rate measurable here (npm run bench -- many, compare) and took the
 * RSS after polling from about 130 to 85 MiB.
 *
 * A scavenge of so small a young generation is quicker done by the event loop's thread alone
 * than shared out: the parallel one waits for its helper threads, and on a machine whose cores
 * are busy they are slow to be scheduled. Without it, serving the same polls, walks and creates
 * side by side on the benchmarks' 2-core machine, scavenges paused the event loop 373 ms in all
 * instead of 744 ms (p50 0.64 ms instead of 1.83 ms) while other work kept the cores busy, and
 * 188 ms instead of 213 ms when they were quieter, with RSS no higher. --single-threaded-gc did
 * as well for scavenges but would also move the major collections' marking and sweeping onto the
 * event loop. Request rates differed by less than this machine's noise.
 *
 * V8 reads these flags only as it starts, hence the shebang: the installed command, `npm start`,
 * the service and the container all run this file.
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
