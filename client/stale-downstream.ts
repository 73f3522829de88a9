/**
 * The partitions downstream of a rollback that were computed from versions it takes off: their
 * published versions read (the ledger's input versions) a version the rollback unpublishes, and
 * the rollback leaves them as they are. `rollback` and its dry run count them per node, so that
 * the operator recomputes them (`--only-changed` finds them by the same input versions).
 */
import type { Warehouse } from '../activities/warehouse/types.ts';

/** A version a rollback takes off its partition. */
export type Unpublished = { node: string; partition: string; version: number };

export type StaleDownstream = { node: string; partitions: number; examples: string[] };

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
  const stale: StaleDownstream[] = [];
  for (const { node } of nodes) {
    const found: string[] = [];
    for (const row of await warehouse.publishedRows(node)) {
      // A version the rollback takes off itself is no stale leftover.
      if (off.get(node)?.get(row.partition)?.has(row.version)) continue;
      // Only listed input versions tell (above MAX_LISTED_INPUTS the ledger keeps a digest).
      const read = row.inputs.some((input) => Object.entries(input.versions ?? {}).some(([p, v]) => off.get(input.node)?.get(p)?.has(v) === true));
      if (read) found.push(row.partition);
    }
    if (found.length > 0) stale.push({ node, partitions: found.length, examples: found.slice(0, EXAMPLES) });
  }
  return stale;
}
