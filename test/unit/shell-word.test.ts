/** Values in a printed command line come back from a POSIX shell as exactly one word, and run nothing. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shellWord } from '../../core/shell-word.ts';
import { shellArgs } from '../shell-words.ts';

const DIR = mkdtempSync(join(tmpdir(), 'shell-word-'));
const PWNED = join(DIR, 'pwned');
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

const PLAIN = ['backfill', 'warehouse-eu.2', 'a_b@c%d+e=f:g,h', './transforms.ts', '/abs/path/t.ts', 'team/queue'];
const HOSTILE = ["it's", 'two words', `$(touch ${PWNED})`, `\`touch ${PWNED}\``, `x; touch ${PWNED}`, `q | touch ${PWNED}`, 'a&&b', 'x|y', '*', '~root', '$HOME', '"dq"', "'", "''", '\\', '!x', '#c', '-rf', '--task-queue', ''];
const CONTROL = ['a\nb', `line\n; touch ${PWNED}\n`, '\u001b]8;;http://evil\u0007x', 'tab\there', 'bidi\u202eod', 'del\u007f', 'c1\u009bx'];

describe('shellWord', () => {
  it('leaves a value of plain characters as it is', () => {
    for (const value of PLAIN) expect(shellWord(value)).toBe(value);
  });

  it('writes every other character after a backslash, not in quotes', () => {
    expect(shellWord("it's")).toBe("it\\'s");
    expect(shellWord('q; touch pwned | sh')).toBe('q\\;\\ touch\\ pwned\\ \\|\\ sh');
    expect(shellWord('$(touch pwned)')).toBe('\\$\\(touch\\ pwned\\)');
    expect(shellWord('')).toBe("''");
    // A leading '-' means nothing to the shell (the commands hinted take these values as an option's value).
    expect(shellWord('-rf')).toBe('-rf');
  });

  it('runs nothing when a hint is copied with the quotes that mark it in the text', () => {
    for (const shell of ['sh', 'bash']) {
      for (const value of [...HOSTILE, ...CONTROL]) {
        const marked = `'backfill worker --task-queue ${shellWord(value)} --transforms ${shellWord(value)}'`;
        // One word (a command no one has), or a quote left open: either way the shell runs nothing of it.
        try {
          expect(shellArgs(marked, shell).length).toBeLessThanOrEqual(1);
        } catch (error) {
          expect(String(error)).toMatch(/unterminated|EOF|Unterminated|matching/);
        }
      }
    }
    expect(existsSync(PWNED)).toBe(false);
  });

  it('gives back exactly the value as one word, running nothing, in sh and bash', () => {
    for (const shell of ['sh', 'bash']) {
      for (const value of [...PLAIN, ...HOSTILE]) expect(shellArgs(`${shellWord(value)} ${shellWord(value)}`, shell)).toEqual([value, value]);
    }
    expect(existsSync(PWNED)).toBe(false);
  });

  it('writes control and format characters as escapes, never raw, and bash reads them back exactly', () => {
    for (const value of CONTROL) {
      const word = shellWord(value);
      expect(word).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Cf}]/u);
      expect(shellArgs(word, 'bash')).toEqual([value]);
      // A shell without ANSI-C quoting (dash before POSIX.1-2024) reads one word all the same.
      expect(shellArgs(word, 'sh')).toHaveLength(1);
    }
    expect(existsSync(PWNED)).toBe(false);
    expect(shellWord('a\nb')).toBe("a$'\\012'b");
  });
});
