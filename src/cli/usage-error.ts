/** A bad command line: the dispatcher prints the message and a hint, and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Tells the user what was wrong with a subcommand's arguments and where help is; returns exit code 2. */
export function reportUsage(command: string, message: string): number {
  process.stderr.write(`tcsync ${command}: ${message}\nTry 'tcsync ${command} --help'.\n`);
  return 2;
}

/** The `-h`/`--help` option every subcommand takes, for its parseArgs options. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h', default: false } } as const;

/**
 * Runs a subcommand's `parse` (parseArgs with {@link HELP_OPTION}): its result, or the exit code
 * when nothing is left to do (0 once the usage is printed, 2 for bad usage).
 */
export function parseCommandArgs<T extends { readonly values: { readonly help?: boolean } }>(command: string, usage: string, parse: () => T): T | number {
  let parsed: T;
  try {
    parsed = parse();
  } catch (err) {
    return reportUsage(command, (err as Error).message);
  }
  if (parsed.values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  return parsed;
}
