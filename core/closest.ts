/** Names like a mistyped one, for "did you mean" in an error. */

/** Edits (insert, delete, substitute) from `a` to `b`. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}

/**
 * Up to `limit` of `known` that `name` is likely a typo of, closest first: within a third of
 * its length in edits (at least 2), or holding it or held by it (`avg_7` → `revenue_avg_7d`).
 */
export function closestNames(name: string, known: readonly string[], limit = 3): string[] {
  const wanted = name.toLowerCase();
  const near = Math.max(2, Math.floor(wanted.length / 3));
  return known
    .map((candidate) => {
      const lower = candidate.toLowerCase();
      const distance = editDistance(wanted, lower);
      const overlaps = wanted.length >= 3 && (lower.includes(wanted) || wanted.includes(lower));
      return { candidate, distance, close: distance <= near || overlaps };
    })
    .filter((c) => c.close && c.candidate !== name)
    .sort((a, b) => a.distance - b.distance || a.candidate.localeCompare(b.candidate))
    .slice(0, limit)
    .map((c) => c.candidate);
}
