/**
 * What a staged backfill would change: the warehouse compares each staged version with the
 * partition's published version (`Warehouse.diffStaged`), and these functions add the
 * partitions up per node and in all, and judge the result against a canary's bounds. Pure.
 */

/** A numeric column's sum, minimum and maximum over one version (null: the version has no value in it). */
export type ColumnStats = { sum: number; min: number; max: number };
export type ColumnChange = { column: string; before: ColumnStats | null; after: ColumnStats | null };

/** One staged version against the partition's published version (none: everything is added). */
export type PartitionDiff = {
  node: string;
  partition: string;
  stagedVersion: number;
  publishedVersion: number | null;
  rowsBefore: number;
  rowsAfter: number;
  /** Rows (or keys) in the staged version and not in the published one, copies counted (`withCopies`). */
  added: number;
  /** Rows (or keys) in the published version and not in the staged one, copies counted (`withCopies`). */
  removed: number;
  /** Keys in both whose rows differ (0 without key columns: a changed row is one removed and one added). */
  changed: number;
  /** The key columns compared by, or null for whole rows. */
  key: string[] | null;
  /** Columns holding numbers only, in either version, other than the key columns (`key`). */
  columns: ColumnChange[];
};

export type DiffCounts = { partitions: number; rowsBefore: number; rowsAfter: number; added: number; removed: number; changed: number };

/** A node's partitions added up: counts summed; a column's sums summed, its minimum the least and its maximum the greatest. */
export type NodeDiff = DiffCounts & { node: string; key: string[] | null; columns: ColumnChange[] };

export type DiffSummary = DiffCounts & { nodes: NodeDiff[] };

const ZERO: DiffCounts = { partitions: 0, rowsBefore: 0, rowsAfter: 0, added: 0, removed: 0, changed: 0 };

export function emptyDiff(): DiffSummary {
  return { ...ZERO, nodes: [] };
}

function mergeStats(a: ColumnStats | null, b: ColumnStats | null): ColumnStats | null {
  if (a === null) return b;
  if (b === null) return a;
  return { sum: a.sum + b.sum, min: Math.min(a.min, b.min), max: Math.max(a.max, b.max) };
}

function mergeColumns(into: readonly ColumnChange[], from: readonly ColumnChange[]): ColumnChange[] {
  const out = new Map(into.map((c) => [c.column, c]));
  for (const c of from) {
    const had = out.get(c.column);
    out.set(c.column, had ? { column: c.column, before: mergeStats(had.before, c.before), after: mergeStats(had.after, c.after) } : c);
  }
  return [...out.values()].sort((a, b) => (a.column < b.column ? -1 : a.column > b.column ? 1 : 0));
}

function addCounts<T extends DiffCounts>(into: T, from: DiffCounts): T {
  return {
    ...into,
    partitions: into.partitions + from.partitions,
    rowsBefore: into.rowsBefore + from.rowsBefore,
    rowsAfter: into.rowsAfter + from.rowsAfter,
    added: into.added + from.added,
    removed: into.removed + from.removed,
    changed: into.changed + from.changed,
  };
}

/**
 * Added and removed counted with their copies. Set operations (`EXCEPT`) compare distinct rows
 * or keys, so a version with every row twice (a join that fans out) compared as unchanged. The
 * row counts tell how many copies came or went: rows after − rows before = added − removed for
 * rows counted with their copies, so a surplus the distinct counts do not explain is added (or
 * removed) copies. A lower bound: copies added to one row and removed from another cancel out.
 */
export function withCopies<T extends { rowsBefore: number; rowsAfter: number; added: number; removed: number }>(counts: T): T {
  const surplus = counts.rowsAfter - counts.rowsBefore - (counts.added - counts.removed);
  if (surplus > 0) return { ...counts, added: counts.added + surplus };
  if (surplus < 0) return { ...counts, removed: counts.removed - surplus };
  return counts;
}

/** `summary` with the partitions of a page added (nodes in the order they first come). */
export function addDiffs(summary: DiffSummary, diffs: readonly PartitionDiff[]): DiffSummary {
  let next = summary;
  for (const d of diffs) {
    const counts: DiffCounts = { partitions: 1, rowsBefore: d.rowsBefore, rowsAfter: d.rowsAfter, added: d.added, removed: d.removed, changed: d.changed };
    const known = next.nodes.some((n) => n.node === d.node);
    const nodes = known
      ? next.nodes.map((n) => (n.node === d.node ? { ...addCounts(n, counts), columns: mergeColumns(n.columns, d.columns) } : n))
      : [...next.nodes, { node: d.node, key: d.key, ...counts, columns: mergeColumns([], d.columns) }];
    next = { ...addCounts(next, counts), nodes };
  }
  return next;
}

/** Rows added, removed and changed, in percent of the rows published before (any change to nothing is infinite). */
export function rowChangePercent(counts: DiffCounts): number {
  const moved = counts.added + counts.removed + counts.changed;
  if (moved === 0) return 0;
  return counts.rowsBefore === 0 ? Infinity : (moved / counts.rowsBefore) * 100;
}

/** The change of a column's sum, minimum and maximum (null where either side has none). */
export function columnDelta(change: ColumnChange): { sum: number | null; min: number | null; max: number | null } {
  const { before, after } = change;
  if (before === null || after === null) return { sum: after?.sum ?? null, min: null, max: null };
  return { sum: after.sum - before.sum, min: after.min - before.min, max: after.max - before.max };
}

/** A percentage as the diff prints it: `4.2%`, `all new` for any change from nothing. */
export function formatPercent(value: number): string {
  if (!Number.isFinite(value)) return 'all new';
  return `${Number(value.toFixed(2))}%`;
}
