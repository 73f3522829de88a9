/**
 * `backfill rollback --dry-run`: what a rollback would restore, remove and leave alone, read
 * from the ledger. It pages the same `changesBy` the rollback's batches read, and decides each
 * partition with the same `decideRestore` the warehouse's restore does (as a new rollback, which
 * has restored nothing yet), so the preview adds up as the rollback's summary would. It starts
 * nothing and writes nothing; only the checksums, verified as each version is restored, are
 * not checked ahead.
 */
import { decideRestore } from '../activities/warehouse/restore.ts';
import type { ChangeCursor, Warehouse } from '../activities/warehouse/types.ts';
import { withUnlisted } from '../core/rollback-order.ts';
import { addBatch, addOutcome, emptyBatch, emptySummary, type RollbackBatchResult, type RollbackSummary } from '../core/rollback.ts';

/** The rollback id of a preview: no rollback was started. */
export const PREVIEW_ROLLBACK_ID = 'dry-run';

const PAGE = 1000;

export type RollbackPreview = RollbackSummary & {
  dryRun: true;
  /**
   * Nodes the ledger holds versions of that no run of the backfill names (their runs' histories
   * are gone): previewed, but `backfill rollback` does not know them and would not walk them.
   */
  unlisted: string[];
};

/** `order`: the nodes the rollback walks, downstream first (`BackfillClient.rollbackOrder`). */
export async function previewRollback(warehouse: Pick<Warehouse, 'changesBy'>, backfillId: string, order: readonly string[], force: boolean): Promise<RollbackPreview> {
  const byNode = new Map<string, RollbackBatchResult>();
  let after: ChangeCursor | null = null;
  do {
    const page = await warehouse.changesBy(backfillId, { limit: PAGE, ...(after ? { after } : {}) });
    for (const change of page.changes) {
      const { outcome } = decideRestore(
        { rollbackId: PREVIEW_ROLLBACK_ID, backfillId, node: change.node, partition: change.partition, from: change.version, to: change.previousVersion, force },
        { found: change.currentVersion, foundBackfillId: change.currentBackfillId, recorded: null },
      );
      byNode.set(change.node, addOutcome(byNode.get(change.node) ?? emptyBatch(), outcome, change.version));
    }
    after = page.next;
  } while (after !== null);
  let summary = emptySummary({ backfillId, rollbackId: PREVIEW_ROLLBACK_ID, force });
  // As the workflow does, every node it walks is in the summary, with nothing to do or not.
  for (const node of withUnlisted(order, byNode.keys())) summary = addBatch(summary, node, byNode.get(node) ?? emptyBatch());
  const listed = new Set(order);
  return { ...summary, dryRun: true, unlisted: [...byNode.keys()].filter((n) => !listed.has(n)).sort() };
}
