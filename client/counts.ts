/** Counts as the command line prints them: digits grouped by thousands, and a word that agrees with its count. */

/** `1234567` → `1,234,567`: without Intl for whole numbers (its first use loads locale data: tens of ms at start). */
export const number = (n: number) => (Number.isSafeInteger(n) ? String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',') : n.toLocaleString('en-US'));

/** `plural(1, 'node')` → `1 node`, `plural(3, 'node')` → `3 nodes`. */
export const plural = (n: number, word: string) => `${number(n)} ${word}${n === 1 ? '' : 's'}`;
