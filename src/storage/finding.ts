/** What verify reports about one file: a problem, a harmless finding it can repair, or a warning. */

/**
 * - `problem`: the data is damaged or not of this format; verify exits non-zero.
 * - `harmless`: the leftover of an interrupted transaction, a link its next transaction would
 *   re-create, or a `.child` that is a copy of its `.version` instead of a hard link; the data is
 *   sound and `--repair` removes, completes or re-links it.
 * - `warning`: legal for the storage API but unusual; worth a look, not a failure.
 */
export type Severity = 'problem' | 'harmless' | 'warning';

/**
 * How `--repair` fixes a harmless finding (or a problem that is a lost link of a committed
 * version): `link` creates `newPath` (never replacing a name, as the storage's commit does),
 * `relink` replaces `path` by a hard link to `existing`.
 */
export type Repair =
  | { readonly kind: 'remove'; readonly path: string }
  | { readonly kind: 'link'; readonly existing: string; readonly newPath: string }
  | { readonly kind: 'relink'; readonly existing: string; readonly path: string };

export interface Finding {
  readonly severity: Severity;
  /** The client the file belongs to, or null for files of the data directory itself. */
  readonly client: string | null;
  /** The file, relative to the data directory. */
  readonly file: string;
  readonly message: string;
  readonly repair?: Repair;
}

/** Collects findings for files under one directory, naming each file relative to the data directory. */
export class Findings {
  readonly list: Finding[] = [];
  readonly #client: string | null;
  readonly #relative: (file: string) => string;

  constructor(client: string | null, relative: (file: string) => string) {
    this.#client = client;
    this.#relative = relative;
  }

  /** `repair`: only for damage whose fix restores nothing but what is proven committed (a lost link). */
  problem(file: string, message: string, repair?: Repair): void {
    this.list.push({ severity: 'problem', client: this.#client, file: this.#relative(file), message, ...(repair ? { repair } : {}) });
  }

  warning(file: string, message: string): void {
    this.list.push({ severity: 'warning', client: this.#client, file: this.#relative(file), message });
  }

  harmless(file: string, message: string, repair: Repair): void {
    this.list.push({ severity: 'harmless', client: this.#client, file: this.#relative(file), message, repair });
  }
}

/** A finding as reported: what `--repair` did about it instead of how. */
export interface ReportedFinding extends Omit<Finding, 'repair'> {
  /** True when `--repair` removed, completed or re-linked it. */
  readonly repaired: boolean;
}
