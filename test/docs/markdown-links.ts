/**
 * Finding the links and path mentions of the documentation, and what each points at. Pure
 * functions over text; the test that reads the repository is links.test.ts.
 */
import path from 'node:path';

/** A link or a path mention, with the 1-based line it is on, for the failure message. */
export interface Reference {
  readonly target: string;
  readonly line: number;
}

/**
 * Markdown without its fenced code blocks and inline code spans, each replaced by blank lines or
 * spaces, so that line numbers stay right and code that looks like a link is not one.
 */
export function withoutCode(markdown: string): string {
  return withoutFences(markdown)
    .split('\n')
    .map((line) => line.replace(/(`+)[^`]*?\1/g, (code) => ' '.repeat(code.length)))
    .join('\n');
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

/** Targets of inline links and images `[text](target "title")` and of definitions `[id]: target`. */
export function linkTargets(markdown: string): Reference[] {
  const text = withoutCode(markdown);
  const found: Reference[] = [];
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    found.push({ target: m[1]!, line: lineOf(text, m.index) });
  }
  for (const m of text.matchAll(/^[ \t]{0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+"[^"]*")?[ \t]*$/gm)) {
    found.push({ target: m[1]!, line: lineOf(text, m.index) });
  }
  return found;
}

/** Whether a link target leaves the repository (a URL with a scheme, or protocol-relative). */
export function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//');
}

/**
 * The anchors GitHub gives a document's headings: the heading's text as rendered, lower case,
 * without punctuation other than `-` and `_`, spaces as hyphens; a repeated slug gets `-1`, `-2`.
 */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutFences(markdown).split('\n')) {
    const m = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = githubSlug(m[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

export function githubSlug(heading: string): string {
  const rendered = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link shows its text
    .replace(/<[^>]+>/g, '') // HTML tags
    .replace(/[`*]/g, ''); // code and emphasis marks
  return rendered
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Markdown with every line of a fenced code block (its fences included) made empty. */
function withoutFences(markdown: string): string {
  let fence: string | null = null;
  return markdown
    .split('\n')
    .map((line) => {
      const opener = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
      if (fence !== null) {
        if (opener && opener[1]![0] === fence[0] && opener[1]!.length >= fence.length) fence = null;
        return '';
      }
      if (opener) fence = opener[1]!;
      return opener ? '' : line;
    })
    .join('\n');
}

/**
 * Paths under `docs/` named anywhere in a text (prose, comments, code): `docs/` not preceded by
 * another path character, up to the last letter or digit of the path, so a sentence's full stop
 * or a quote after it is not taken in.
 */
export function docsPathMentions(text: string): Reference[] {
  const found: Reference[] = [];
  for (const m of text.matchAll(/(?<![\w./~-])docs\/[\w./-]*[\w]/g)) {
    found.push({ target: m[0], line: lineOf(text, m.index) });
  }
  return found;
}

/** A link target split into the file it names (resolved from `fromFile`) and its anchor. */
export function resolveLink(fromFile: string, target: string): { file: string; anchor: string | null } {
  const hash = target.indexOf('#');
  const filePart = hash === -1 ? target : target.slice(0, hash);
  const anchor = hash === -1 ? null : decodeURIComponent(target.slice(hash + 1));
  const file = filePart === '' ? fromFile : path.resolve(path.dirname(fromFile), decodeURIComponent(filePart));
  return { file, anchor };
}
