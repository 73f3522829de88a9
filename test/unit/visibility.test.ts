/** Values embedded in visibility queries: one helper escapes them, and every query uses it. */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { visibilityLiteral } from '../../client/visibility.ts';

const CLIENT = fileURLToPath(new URL('../../client/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('visibilityLiteral', () => {
  it('quotes a value, escaping backslashes and quotes', () => {
    expect(visibilityLiteral('backfill/shop-2024')).toBe("'backfill/shop-2024'");
    expect(visibilityLiteral("it's")).toBe("'it\\'s'");
    // A trailing backslash would otherwise escape the closing quote.
    expect(visibilityLiteral('a\\')).toBe("'a\\\\'");
    expect(visibilityLiteral("a\\' OR 'x")).toBe("'a\\\\\\' OR \\'x'");
  });

  it('is the only escaping of visibility queries in the client', () => {
    const inline = sources(CLIENT)
      .filter((file) => !file.endsWith('visibility.ts'))
      .filter((file) => /replaceAll\("'", "\\\\'"\)/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(CLIENT, file));
    expect(inline).toEqual([]);
  });
});
