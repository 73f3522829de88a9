/**
 * Every write of the command line to the terminal goes through `print()`, or makes its text
 * printable itself (`terminalText`, `printableLines`; JSON escapes control characters): spec,
 * SQL and operator text must not reach the terminal with its escape sequences. Documents asked
 * for on stdout (a report, a graph's source) are written as they are.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLIENT = join(import.meta.dirname, '../../client');
const MADE_PRINTABLE = /terminalText\(|printableLines\(|JSON\.stringify\(/;
/** Documents: `report --output -` and `plan --format dot|mermaid|svg`. */
const DOCUMENTS = ['commands/report.ts: process.stdout.write(text)', 'commands/plan.ts: process.stdout.write(await drawGraph('];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Each `process.stdout.write(` / `process.stderr.write(` call with its argument (to the matching parenthesis). */
function writes(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/process\.std(?:out|err)\.write\(/g)) {
    let depth = 1;
    let i = match.index + match[0].length;
    for (; i < text.length && depth > 0; i++) depth += text[i] === '(' ? 1 : text[i] === ')' ? -1 : 0;
    found.push(text.slice(match.index, i));
  }
  return found;
}

describe('terminal writes', () => {
  it('every write of client/ makes its text printable, but for the documents asked for on stdout', () => {
    const raw: string[] = [];
    for (const file of sources(CLIENT)) {
      for (const call of writes(file)) {
        const where = `${relative(CLIENT, file)}: ${call.replace(/\s+/g, ' ')}`;
        if (!MADE_PRINTABLE.test(call) && !DOCUMENTS.some((d) => where.startsWith(d))) raw.push(where);
      }
    }
    expect(raw).toEqual([]);
  });

  it('the check finds a raw write', () => {
    expect(writes(join(CLIENT, 'commands/report.ts')).some((call) => !MADE_PRINTABLE.test(call))).toBe(true);
  });
});
