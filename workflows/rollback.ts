/**
 * `rollbackWorkflow` (id `backfill/<backfillId>/rollback`): restores every partition a
 * backfill published to the version before it, node by node (downstream first: the order given,
 * with the nodes the ledger holds versions of added by their lineage), one batch activity at a time. Restores are idempotent per rollback id, so a retried
 * batch or a second run changes nothing twice. It continues as new before its history grows
 * large, carrying its cursor and its summary (whose lists are capped).
 */
import { ApplicationFailure, continueAsNew, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { RollbackActivities } from '../activities/rollback.ts';
import {
  DEFAULT_ROLLBACK_TUNING,
  ROLLBACK_NON_RETRYABLE_TYPES,
  addBatch,
  emptySummary,
  type RollbackCursor,
  type RollbackInput,
  type RollbackSummary,
} from '../core/rollback.ts';
import { givenPin } from '../core/policy-pin.ts';
import { withLedger } from '../core/rollback-order.ts';
import { ENDED_CONTROL_PINNED, judgeEndedControl } from './governance.ts';

/** Patch (docs/workflow-versions.md): a rollback meets the policy's reason rule first, and says who and why in its memo. */
export const ROLLBACK_GOVERNANCE = 'rollback-governance';

/**
 * Patch (docs/workflow-versions.md): a rollback walks also the nodes the ledger holds versions of
 * (ordered by their lineage), not only those the client read from the runs' histories, which the
 * namespace's retention may have removed; with none at all, it fails `not_found` (or, behind
 * ROLLBACK_NOT_FOUND_ENDS, ends saying so).
 */
export const ROLLBACK_FROM_LEDGER = 'rollback-from-ledger';

/**
 * Patch (docs/workflow-versions.md): a rollback of a backfill that neither the server nor the
 * ledger knows (a mistyped id) ends with a summary that says so (`notFound`), which the client
 * refuses as `not_found`; before, it failed `not_found`, leaving a failed workflow and a warning
 * with a stack trace in the worker's log for what is no fault.
 */
export const ROLLBACK_NOT_FOUND_ENDS = 'rollback-not-found-ends';

/**
 * The input with the ledger's nodes added to its order (the workers' warehouse: the one the
 * batches restore). The ledger is read on an activity task queue the histories name, as the
 * batches run: the rollback's own queue is the workflow queue, which a deployment may give
 * workflow workers alone (`backfill worker --no-workflows` beside them). A node only the ledger
 * knows is restored on that queue too; with no queue known (no history), on the rollback's own.
 */
async function withLedgerNodes(input: RollbackInput, notFoundEnds: boolean): Promise<RollbackInput | null> {
  const activityQueue = input.order.map((node) => input.taskQueues?.[node]).find((queue) => queue !== undefined);
  const { rollbackLedgerNodes } = proxyActivities<RollbackActivities>({
    ...(activityQueue ? { taskQueue: activityQueue } : {}),
    startToCloseTimeout: '30m',
    heartbeatTimeout: '2m',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 20 },
  });
  const ledger = await rollbackLedgerNodes({ backfillId: input.backfillId });
  const { order, taskQueues } = withLedger(input.order, input.taskQueues ?? {}, ledger);
  if (activityQueue) for (const node of order) taskQueues[node] ??= activityQueue;
  if (order.length === 0) {
    if (notFoundEnds) return null;
    throw ApplicationFailure.create({
      type: 'not_found',
      nonRetryable: true,
      message: `backfill '${input.backfillId}' is known neither to the server (no history of it is kept) nor to the ledger of the workers' warehouse (no version of it): check the id, and that these workers write the warehouse it ran on`,
    });
  }
  return { ...input, order, ...(Object.keys(taskQueues).length > 0 ? { taskQueues } : {}) };
}

export async function rollbackWorkflow(given: RollbackInput): Promise<RollbackSummary> {
  // A run after a continue-as-new carries the order its first run made.
  let input = given;
  if (!given.carry && patched(ROLLBACK_FROM_LEDGER)) {
    const found = await withLedgerNodes(given, patched(ROLLBACK_NOT_FOUND_ENDS));
    if (found === null) return { ...emptySummary(given), notFound: true };
    input = found;
  }
  if (patched(ROLLBACK_GOVERNANCE) && !input.carry) {
    const pinned = givenPin(input.admittedUnder);
    const pin = { backfillId: input.backfillId, hash: pinned !== null && patched(ENDED_CONTROL_PINNED) ? pinned : null };
    await judgeEndedControl('rollback', input.audit, (policyHash) => ({ force: input.force, policyHash }), pin);
  }
  const tuning = { ...DEFAULT_ROLLBACK_TUNING, ...input.tuning };
  let summary = input.carry?.summary ?? emptySummary(input);
  let after: RollbackCursor | null = input.carry?.after ?? null;
  const historyFull = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= tuning.historyLimit;
  };

  for (let nodeIndex = input.carry?.nodeIndex ?? 0; nodeIndex < input.order.length; nodeIndex++) {
    const node = input.order[nodeIndex]!;
    const taskQueue = input.taskQueues?.[node];
    const { rollbackBatch } = proxyActivities<RollbackActivities>({
      ...(taskQueue ? { taskQueue } : {}),
      startToCloseTimeout: '2h',
      heartbeatTimeout: tuning.heartbeatTimeout,
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 20, nonRetryableErrorTypes: ROLLBACK_NON_RETRYABLE_TYPES },
    });
    do {
      const batch = await rollbackBatch({ backfillId: input.backfillId, rollbackId: input.rollbackId, node, after, limit: tuning.batchSize, force: input.force });
      summary = addBatch(summary, node, batch);
      after = batch.next;
      if (after !== null && historyFull()) {
        return continueAsNew<typeof rollbackWorkflow>({ ...input, carry: { summary: { ...summary, runs: summary.runs + 1 }, nodeIndex, after } });
      }
    } while (after !== null);
    if (nodeIndex + 1 < input.order.length && historyFull()) {
      return continueAsNew<typeof rollbackWorkflow>({ ...input, carry: { summary: { ...summary, runs: summary.runs + 1 }, nodeIndex: nodeIndex + 1, after: null } });
    }
  }
  return summary;
}
