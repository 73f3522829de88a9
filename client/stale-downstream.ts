/**
 * The partitions downstream of a rollback that were computed from versions it takes off: their
 * published versions read (the ledger's input versions) a version the rollback unpublishes, and
 * the rollback leaves them as they are. `rollback` and its dry run count them per node, so that
 * the operator recomputes them (`--only-changed` finds them by the same input versions).
 */
import type { Warehouse } from '../activities/warehouse/types.ts';

/** A version a rollback takes off its partition. */
export type Unpublished = { node: string; partition: string; version: number };

export type StaleDownstream = {
  node: string;
  /** Partitions whose ledger lists a replaced version among those they read. */
  partitions: number;
  examples: string[];
  /**
   * Partitions that read over MAX_LISTED_INPUTS partitions of a node, a range that holds a
   * replaced one: their ledger keeps a digest, not each version, so they may have read it.
   * Missing when there are none.
   */
  maybe?: number;
};

const EXAMPLES = 3;

export async function staleDownstream(warehouse: Partial<Pick<Warehouse, 'publishedRows' | 'ledgerNodes'>>, unpublished: readonly Unpublished[]): Promise<StaleDownstream[]> {
  if (unpublished.length === 0 || !warehouse.publishedRows || !warehouse.ledgerNodes) return [];
  const nodes = await warehouse.ledgerNodes();
  if (!nodes) return [];
  const off = new Map<string, Map<string, Set<number>>>();
  for (const u of unpublished) {
    const partitions = off.get(u.node) ?? off.set(u.node, new Map()).get(u.node)!;
    (partitions.get(u.partition) ?? partitions.set(u.partition, new Set()).get(u.partition)!).add(u.version);
  }
  // Each node's replaced partitions in order: whether a range read holds one is a binary search.
  const offKeys = new Map([...off].map(([node, partitions]) => [node, [...partitions.keys()].sort()]));
  const holdsOne = (node: string, from: string, to: string) => {
    const keys = offKeys.get(node) ?? [];
    let [lo, hi] = [0, keys.length];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    return lo < keys.length && keys[lo]! <= to;
  };
  const stale: StaleDownstream[] = [];
  for (const { node } of nodes) {
    const found: string[] = [];
    let maybe = 0;
    for (const row of await warehouse.publishedRows(node)) {
      // A version the rollback takes off itself is no stale leftover.
      if (off.get(node)?.get(row.partition)?.has(row.version)) continue;
      const read = row.inputs.some((input) => Object.entries(input.versions ?? {}).some(([p, v]) => off.get(input.node)?.get(p)?.has(v) === true));
      if (read) found.push(row.partition);
      // Above MAX_LISTED_INPUTS the ledger keeps a digest: a replaced partition within the range read may have been read.
      else if (row.inputs.some((input) => input.versions === undefined && holdsOne(input.node, input.from, input.to))) maybe++;
    }
    if (found.length > 0 || maybe > 0) stale.push({ node, partitions: found.length, examples: found.slice(0, EXAMPLES), ...(maybe > 0 ? { maybe } : {}) });
  }
  return stale;
}
