/**
 * The documentation points only at things that exist: every relative link in README.md and
 * docs/*.md names a file of the repository (and, into a Markdown file, one of its headings), and
 * every `docs/...` path named in README.md, docs/, schema.graphql, contrib/ and src/ exists.
 * README.md stays short enough to read first.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { docsPathMentions, headingAnchors, isExternal, linkTargets, resolveLink } from './markdown-links.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const README_MAX_LINES = 300;

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : [full];
  });
}

function markdownPages(): string[] {
  return [path.join(REPO, 'README.md'), ...filesUnder(path.join(REPO, 'docs')).filter((file) => file.endsWith('.md'))];
}

function relative(file: string): string {
  return path.relative(REPO, file);
}

/** Every broken relative link of one Markdown file, as `file:line: target: why`. */
function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  for (const { target, line } of linkTargets(readFileSync(file, 'utf8'))) {
    if (isExternal(target)) continue;
    const where = `${relative(file)}:${line}: ${target}`;
    const { file: linked, anchor } = resolveLink(file, target);
    if (!linked.startsWith(REPO + path.sep) && linked !== REPO) {
      problems.push(`${where}: points outside the repository`);
    } else if (!existsSync(linked)) {
      problems.push(`${where}: ${relative(linked)} does not exist`);
    } else if (anchor !== null && linked.endsWith('.md') && statSync(linked).isFile()) {
      if (!headingAnchors(readFileSync(linked, 'utf8')).has(anchor)) {
        problems.push(`${where}: no heading of ${relative(linked)} has the anchor #${anchor}`);
      }
    }
  }
  return problems;
}

describe('the documentation', () => {
  it('has docs/ pages', () => {
    expect(markdownPages().length).toBeGreaterThan(1);
  });

  it('links only to files and headings that exist', () => {
    expect(markdownPages().flatMap(brokenLinks)).toEqual([]);
  });

  it('names only docs/ paths that exist, in README.md, docs/, schema.graphql, contrib/ and src/', () => {
    const texts = [
      path.join(REPO, 'README.md'),
      path.join(REPO, 'schema.graphql'),
      ...filesUnder(path.join(REPO, 'docs')),
      ...filesUnder(path.join(REPO, 'contrib')),
      ...filesUnder(path.join(REPO, 'src')),
    ];
    const missing = texts.flatMap((file) =>
      docsPathMentions(readFileSync(file, 'utf8'))
        .filter(({ target }) => !existsSync(path.join(REPO, target)))
        .map(({ target, line }) => `${relative(file)}:${line}: ${target} does not exist`),
    );
    expect(missing).toEqual([]);
  });

  it(`keeps README.md to at most ${README_MAX_LINES} lines`, () => {
    const lines = readFileSync(path.join(REPO, 'README.md'), 'utf8').replace(/\n$/, '').split('\n').length;
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });
});

describe('the link checks themselves', () => {
  it('find inline links and definitions, but not links inside code', () => {
    const markdown = [
      'See [a](a.md) and [b](docs/b.md#part "title").',
      '`[not](code.md)`',
      '```',
      '[not](fenced.md)',
      '```',
      '[ref]: c.md',
    ].join('\n');
    expect(linkTargets(markdown)).toEqual([
      { target: 'a.md', line: 1 },
      { target: 'docs/b.md#part', line: 1 },
      { target: 'c.md', line: 6 },
    ]);
  });

  it('give headings GitHub\'s anchors', () => {
    const anchors = headingAnchors(
      ['# Faults: a full disk, a read-only disk', '## Backing up: `pg_dump` or migrate?', '## Notes', '## Notes'].join('\n'),
    );
    expect([...anchors]).toEqual(['faults-a-full-disk-a-read-only-disk', 'backing-up-pg_dump-or-migrate', 'notes', 'notes-1']);
  });

  it('find docs/ paths but not the end of a sentence or a longer path', () => {
    const text = 'see docs/graphql.md. and ../shared/docs/x.md or https://example.org/docs/y.md (docs/a-b.md)';
    expect(docsPathMentions(text).map((m) => m.target)).toEqual(['docs/graphql.md', 'docs/a-b.md']);
  });
});
