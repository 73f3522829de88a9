/**
 * Every relative link of README.md and docs/*.md leads somewhere: to a file of the repository
 * and, with a `#fragment` into a Markdown file, to one of its headings (as GitHub makes their
 * anchors) or an explicit `<a id>`. Links in fenced blocks are code, not links.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

const withoutFences = (text: string): string => text.replace(/^\s*```[\s\S]*?^\s*```/gm, '');

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces made hyphens. */
const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

/** The anchors of a Markdown file: its headings' (a repeated one gets -1, -2, ...) and explicit ids. */
function anchors(file: string): Set<string> {
  const text = withoutFences(readFileSync(file, 'utf8'));
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const [, heading] of text.matchAll(/^#{1,6}\s+(.*)$/gm)) {
    const base = slug(heading!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    found.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const [, id] of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) found.add(id!);
  return found;
}

/** Where each relative link of `doc` leads that is not there: `target: why`. */
function broken(doc: string): string[] {
  const text = withoutFences(readFileSync(join(ROOT, doc), 'utf8'));
  const problems: string[] = [];
  for (const [, link] of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    if (/^[a-z][a-z+.-]*:/i.test(link!)) continue;
    const [path = '', fragment] = link!.split('#');
    const target = path === '' ? join(ROOT, doc) : resolve(dirname(join(ROOT, doc)), path);
    if (!existsSync(target)) problems.push(`${link}: no file ${path}`);
    else if (fragment !== undefined && target.endsWith('.md') && !anchors(target).has(fragment)) problems.push(`${link}: no heading with anchor #${fragment}`);
  }
  return problems;
}

describe('the links of the docs', () => {
  it('find links to check', () => {
    expect(DOCS.flatMap((doc) => [...withoutFences(readFileSync(join(ROOT, doc), 'utf8')).matchAll(/\]\((?![a-z]+:)[^)]+\)/g)]).length).toBeGreaterThan(50);
  });

  it.each(DOCS)('%s: every relative link leads to a file and heading that exist', (doc) => {
    expect(broken(doc)).toEqual([]);
  });

  it("tell a heading's anchor as GitHub does", () => {
    expect(slug("`status`'s ETA")).toBe('statuss-eta');
    expect(slug('Versions, the ledger and lineage')).toBe('versions-the-ledger-and-lineage');
    expect(slug('`backfill setup`, once per namespace')).toBe('backfill-setup-once-per-namespace');
  });
});
