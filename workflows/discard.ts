/**
 * `discardEndedWorkflow` (id `backfill/<backfillId>/discard`): drops the versions a staged
 * backfill (or a canary's slice) staged before it was cancelled or failed. The backfill's own
 * `discard` needs it running; once it has ended, its staged versions would otherwise stay in the
 * warehouse for good. The policy's rules for a discard are met first (its memo says who and why),
 * and the warehouse refuses while the run still leases a dataset: a running backfill decides on
 * its staged versions itself, whoever starts this workflow.
 */
import { ApplicationFailure, patched, proxyActivities } from '@temporalio/workflow';
import type { WarehouseActivities } from '../activities/warehouse-activities.ts';
import type { StagedOutcome } from '../activities/warehouse/types.ts';
import type { DiscardEndedInput } from '../core/staged.ts';
import { givenPin } from '../core/policy-pin.ts';
import { ENDED_CONTROL_PINNED, judgeEndedControl } from './governance.ts';

export async function discardEndedWorkflow(input: DiscardEndedInput): Promise<StagedOutcome> {
  if (typeof input?.backfillId !== 'string' || typeof input.runKey !== 'string' || typeof input.taskQueue !== 'string' || input.runKey === '') {
    throw ApplicationFailure.create({ message: 'a discard names the backfill, its run key and a task queue of its workers', type: 'invalid_argument', nonRetryable: true });
  }
  const pinned = givenPin(input.admittedUnder);
  const pin = { backfillId: input.backfillId, hash: pinned !== null && patched(ENDED_CONTROL_PINNED) ? pinned : null };
  await judgeEndedControl('discard', input.audit, (policyHash) => ({ runKey: input.runKey, policyHash }), pin);
  const { discardEndedRun } = proxyActivities<WarehouseActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: '10 minutes',
    // No heartbeat timeout: a publish may run for minutes, and an older worker, which does not heartbeat, would have it run twice at once (docs/deploying.md).
    retry: { maximumAttempts: 10, maximumInterval: '10 seconds' },
    summary: 'staged versions of an ended run',
  });
  return discardEndedRun({ backfillId: input.backfillId, runKey: input.runKey });
}
