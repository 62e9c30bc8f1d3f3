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
