/**
 * `backfill rollback --dry-run`: what a rollback would restore, remove and leave alone, read
 * from the ledger. It walks the nodes the rollback walks (those the kept histories name and
 * those the ledger holds versions of, `withLedger`), pages the same `changesBy` the rollback's
 * batches read, and decides each partition with the same `decideRestore` the warehouse's
 * restore does (as a new rollback, which has restored nothing yet), so the preview adds up as
 * the rollback's summary would. It starts nothing and writes nothing; only the checksums,
 * verified as each version is restored, are not checked ahead.
 */
import { ledgerNodes, type LineageReader } from '../activities/rollback-nodes.ts';
import { decideRestore } from '../activities/warehouse/restore.ts';
import type { ChangeCursor, LeaseHolder, Warehouse } from '../activities/warehouse/types.ts';
import { BackfillError } from '../core/errors.ts';
import { staleDownstream, type StaleDownstream, type Unpublished } from './stale-downstream.ts';
import { withLedger } from '../core/rollback-order.ts';
import { addBatch, addOutcome, emptyBatch, emptySummary, type RollbackBatchResult, type RollbackSummary } from '../core/rollback.ts';

/** The rollback id of a preview: no rollback was started. */
export const PREVIEW_ROLLBACK_ID = 'dry-run';

const PAGE = 1000;

export type RollbackPreview = RollbackSummary & {
  dryRun: true;
  /** The server keeps no history of the backfill (the namespace's retention): its nodes and their order come from the ledger. */
  historyGone: boolean;
  /** Nodes the ledger holds versions of that no run the server still keeps names: walked all the same, ordered by the ledger's lineage. */
  fromLedger: string[];  /** Other backfills that lease datasets the rollback would restore in now: it would be refused until they end (the first one stops it). */
  refusedBy: LeaseHolder[];
  /** Downstream partitions computed from versions the rollback would take off, per node (left as they are). */
  downstream: StaleDownstream[];
};

/** `kept.order`: the nodes the kept histories name, downstream first (`BackfillClient.rollbackOrder`); none when they are gone. */
export async function previewRollback(
  warehouse: LineageReader & Pick<Warehouse, 'location' | 'leaseHolders'> & Partial<Pick<Warehouse, 'publishedRows' | 'ledgerNodes'>>,
  backfillId: string,
  kept: { order: readonly string[]; historyGone: boolean },
  force: boolean,
): Promise<RollbackPreview> {
  const { order } = withLedger(kept.order, {}, await ledgerNodes(warehouse, backfillId));
  if (order.length === 0) {
    throw new BackfillError(
      'not_found',
      `backfill '${backfillId}' is known neither to the server (no history of it is kept) nor to the ledger of ${warehouse.location} (no version of it): check the id, and give --warehouse the workers' warehouse`,
    );
  }
  const byNode = new Map<string, RollbackBatchResult>();
  const unpublished: Unpublished[] = [];
  let after: ChangeCursor | null = null;
  do {
    const page = await warehouse.changesBy(backfillId, { limit: PAGE, ...(after ? { after } : {}) });
    for (const change of page.changes) {
      const { outcome } = decideRestore(
        { rollbackId: PREVIEW_ROLLBACK_ID, backfillId, node: change.node, partition: change.partition, from: change.version, to: change.previousVersion, force },
        { found: change.currentVersion, foundBackfillId: change.currentBackfillId, recorded: null, onTop: change.onTop ?? false, undoneBy: change.undoneBy ?? null },
      );
      byNode.set(change.node, addOutcome(byNode.get(change.node) ?? emptyBatch(), outcome, change.version));
      if ((outcome.status === 'restored' || outcome.status === 'removed') && outcome.found !== null) unpublished.push({ node: change.node, partition: change.partition, version: outcome.found });
    }
    after = page.next;
  } while (after !== null);
  let summary = emptySummary({ backfillId, rollbackId: PREVIEW_ROLLBACK_ID, force });
  // As the workflow does, every node it walks is in the summary, with nothing to do or not.
  for (const node of order) summary = addBatch(summary, node, byNode.get(node) ?? emptyBatch());
  const named = new Set(kept.order);
  // The rollback's restores are refused in a dataset another backfill leases (it runs and writes it), as the warehouse's restore is.
  const touched = summary.nodes.filter((n) => n.restored + n.removed + n.alreadyRestored + n.leftAlone + (n.undone ?? 0) > 0).map((n) => n.node);
  const holders = (await warehouse.leaseHolders?.(touched)) ?? [];
  const refusedBy = holders.filter((h) => h.backfillId !== backfillId).sort((a, b) => order.indexOf(a.node) - order.indexOf(b.node));
  const downstream = await staleDownstream(warehouse, unpublished);
  return { ...summary, dryRun: true, historyGone: kept.historyGone, fromLedger: order.filter((n) => !named.has(n)), refusedBy, downstream };
}
