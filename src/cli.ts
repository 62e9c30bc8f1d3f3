#!/usr/bin/env node
/**
 * `tcsync`: dispatches to a subcommand. Each subcommand is a module, loaded only when used,
 * whose `main(argv)` resolves to the exit code.
 */
import { SERVER_NAME, SERVER_VERSION } from './version.js';

interface Command {
  main(argv: string[]): Promise<number>;
}

const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  serve: () => import('./cli/serve.js'),
  verify: () => import('./cli/verify.js'),
  backup: () => import('./cli/backup.js'),
  migrate: () => import('./cli/migrate.js'),
  usage: () => import('./cli/usage.js'),
  compact: () => import('./cli/compact.js'),
};

const USAGE = `usage: tcsync <command> [options]

commands:
  serve    serve the TaskChampion sync protocol, GraphQL, /healthz and /metrics
  verify   check every client in a data directory or a PostgreSQL database
  backup   copy a live data directory consistently
  migrate  copy every client between a data directory, PostgreSQL and upstream's SQLite
  usage    list clients by the bytes they store, largest first
  compact  pack the loose versions of every client of a data directory

'tcsync <command> --help' describes a command's options.`;

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${SERVER_NAME} ${SERVER_VERSION}\n`);
    return 0;
  }
  const load = name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (load === undefined) {
    process.stderr.write(`${name === undefined ? 'tcsync: no command given' : `tcsync: unknown command ${JSON.stringify(name)}`}\n${USAGE}\n`);
    return 2;
  }
  return (await load()).main(rest);
}

try {
  process.exit(await run(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`tcsync: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
}
