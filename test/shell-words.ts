/** How a POSIX shell splits a printed command line, for tests of the commands the program suggests. */
import { execFileSync } from 'node:child_process';

/** The arguments `shell` reads from `line` (a command line's words, without the command), each exactly as the command would get it. */
export function shellArgs(line: string, shell = 'sh'): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}
