/**
 * `rollbackBatch`: restores one batch of the partitions a backfill published, of one node,
 * to the versions before it. It heartbeats after every partition, so that a retry after a
 * crash goes on where the lost attempt was (and a restore it repeats anyway is replayed,
 * not redone: restores are idempotent per rollback id). `rollbackLedgerNodes`: the nodes the
 * ledger holds versions of the backfill in, which the rollback walks too.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { addOutcome, emptyBatch, type RollbackBatchInput, type RollbackBatchProgress, type RollbackBatchResult } from '../core/rollback.ts';
import type { LedgerLineage } from '../core/rollback-order.ts';
import { ledgerNodes } from './rollback-nodes.ts';
import { ChecksumMismatchError, InvalidDatasetError, StaleRunError, type Warehouse } from './warehouse/types.ts';

/** Failures no retry heals, as the types the workflow does not retry (ROLLBACK_NON_RETRYABLE_TYPES). */
function failureOf(error: unknown): unknown {
  if (error instanceof ChecksumMismatchError) return ApplicationFailure.nonRetryable(error.message, 'ChecksumMismatch');
  if (error instanceof InvalidDatasetError) return ApplicationFailure.nonRetryable(error.message, 'InvalidSpec');
  // Another backfill leases the dataset: it runs for as long as it runs, so the rollback stops and says whom to wait for.
  if (error instanceof StaleRunError) return ApplicationFailure.nonRetryable(error.message, 'dataset_busy');
  return error;
}

export function createRollbackActivities(deps: { warehouse: Warehouse }) {
  return {
    /** The nodes the ledger holds versions of the backfill in, with the upstream nodes they read (activities/rollback-nodes.ts). */
    async rollbackLedgerNodes(input: { backfillId: string }): Promise<LedgerLineage[]> {
      const ctx = Context.current();
      return ledgerNodes(deps.warehouse, input.backfillId, () => ctx.heartbeat());
    },

    async rollbackBatch(input: RollbackBatchInput): Promise<RollbackBatchResult> {
      const ctx = Context.current();
      const resumed = ctx.info.heartbeatDetails as RollbackBatchProgress | undefined;
      const progress: RollbackBatchProgress = resumed ?? { result: emptyBatch(), after: input.after, done: 0 };
      const remaining = input.limit - progress.done;
      // The lost attempt finished its batch but not its reply: the next batch starts after its last partition.
      if (remaining <= 0) return { ...progress.result, next: progress.after };
      const page = await deps.warehouse.changesBy(input.backfillId, {
        node: input.node,
        limit: remaining,
        ...(progress.after ? { after: progress.after } : {}),
      });
      for (const change of page.changes) {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('rollback cancelled');
        let outcome;
        try {
          outcome = await deps.warehouse.restore({
            rollbackId: input.rollbackId,
            backfillId: input.backfillId,
            node: change.node,
            partition: change.partition,
            from: change.version,
            to: change.previousVersion,
            force: input.force,
          });
        } catch (error) {
          throw failureOf(error);
        }
        progress.result = addOutcome(progress.result, outcome, change.version);
        progress.after = { node: change.node, partition: change.partition };
        progress.done++;
        ctx.heartbeat({ ...progress });
      }
      return { ...progress.result, next: page.next };
    },
  };
}

export type RollbackActivities = ReturnType<typeof createRollbackActivities>;
