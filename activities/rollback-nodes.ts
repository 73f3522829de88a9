/**
 * The nodes a backfill published versions of, read from the ledger, with the upstream nodes
 * those versions read: where a rollback finds the nodes whose runs' histories the server no
 * longer keeps. Shared by the rollback (an activity, on the workers' warehouse) and its
 * `--dry-run` (the client, on `--warehouse`), so that both walk the same nodes.
 */
import type { LedgerLineage } from '../core/rollback-order.ts';
import type { ChangeCursor, VersionRef, Warehouse } from './warehouse/types.ts';

/** What the walk reads of a warehouse: the changes, and the lineage (inputs) of some versions. */
export type LineageReader = Pick<Warehouse, 'changesBy'> & {
  ledgerVersions(node: string, versions: readonly VersionRef[]): Promise<ReadonlyArray<{ inputs: ReadonlyArray<{ node: string }> }>>;
};

const PAGE = 1000;
/** Versions per node whose lineage is read: every version of a node reads the same upstream nodes (its mappings), so a few tell them. */
const SAMPLE = 20;

export async function ledgerNodes(warehouse: LineageReader, backfillId: string, onPage?: () => void): Promise<LedgerLineage[]> {
  const samples = new Map<string, VersionRef[]>();
  let after: ChangeCursor | null = null;
  do {
    const page = await warehouse.changesBy(backfillId, { limit: PAGE, ...(after ? { after } : {}) });
    for (const change of page.changes) {
      const refs = samples.get(change.node) ?? [];
      if (refs.length < SAMPLE) refs.push([change.partition, change.version]);
      samples.set(change.node, refs);
    }
    after = page.next;
    onPage?.();
  } while (after !== null);
  const nodes: LedgerLineage[] = [];
  for (const [node, refs] of [...samples].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const upstream = new Set<string>();
    for (const row of await warehouse.ledgerVersions(node, refs)) for (const input of row.inputs) if (input.node !== node) upstream.add(input.node);
    nodes.push({ node, upstream: [...upstream].sort() });
  }
  return nodes;
}
