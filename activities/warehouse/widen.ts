/**
 * The narrower of two column types that holds the values of both, on `ladder`: each of its
 * types holds every value of the types before it, and a type off it widens to the top (text).
 */
export function widerOn(ladder: readonly string[], a: string, b: string): string {
  if (a === b) return a;
  const i = ladder.indexOf(a);
  const j = ladder.indexOf(b);
  if (i < 0 || j < 0) return ladder[ladder.length - 1]!;
  return ladder[Math.max(i, j)]!;
}
