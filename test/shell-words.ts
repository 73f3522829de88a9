/** How a POSIX shell splits a printed command line's tail, for tests of the commands the program suggests. */
import { execFileSync } from 'node:child_process';

/** Each word `shell` reads from `words` as `[word]`, concatenated: `[a][b c]` for `a 'b c'`. */
export function shellWords(words: string, shell = 'sh'): string {
  return execFileSync(shell, ['-c', `printf '[%s]' ${words}`], { encoding: 'utf8' });
}
