/**
 * `rollbackWorkflow` (id `backfill/<backfillId>/rollback`): restores every partition a
 * backfill published to the version before it, node by node in the order given (downstream
 * first), one batch activity at a time. Restores are idempotent per rollback id, so a retried
 * batch or a second run changes nothing twice. It continues as new before its history grows
 * large, carrying its cursor and its summary (whose lists are capped).
 */
import { ApplicationFailure, continueAsNew, patched, proxyActivities, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { RollbackActivities } from '../activities/rollback.ts';
import { UNKNOWN_IDENTITY, parseMeta } from '../core/audit.ts';
import { EMPTY_POLICY } from '../core/governance.ts';
import { checkControl, describeViolations } from '../core/policy.ts';
import {
  DEFAULT_ROLLBACK_TUNING,
  ROLLBACK_NON_RETRYABLE_TYPES,
  addBatch,
  emptySummary,
  type RollbackCursor,
  type RollbackInput,
  type RollbackSummary,
} from '../core/rollback.ts';
import { workflowTime } from './clock.ts';
import { governanceActivities } from './governance.ts';

/** Patch (docs/workflow-versions.md): a rollback meets the policy's reason rule first, and says who and why in its memo. */
export const ROLLBACK_GOVERNANCE = 'rollback-governance';

/** The policy judges who rolls back and why (reasons.required), before anything is restored. */
async function judgeRollback(input: RollbackInput): Promise<void> {
  let meta: ReturnType<typeof parseMeta>;
  try {
    meta = parseMeta(input.audit);
  } catch {
    meta = {};
  }
  let loaded: Awaited<ReturnType<typeof governanceActivities.loadPolicy>>;
  try {
    loaded = await governanceActivities.loadPolicy();
  } catch (error) {
    throw ApplicationFailure.create({ message: `the workers cannot read their policy file: ${error instanceof Error ? (error.cause as Error | undefined)?.message ?? error.message : String(error)}`, type: 'policy_violation', nonRetryable: true });
  }
  const policy = loaded.kind === 'policy' ? loaded.policy : EMPTY_POLICY;
  const violations = checkControl(policy, { action: 'rollback', ...(meta.reason !== undefined ? { reason: meta.reason } : {}) });
  const entry = { seq: 1, at: workflowTime(), action: 'rollback', identity: meta.identity ?? UNKNOWN_IDENTITY, verified: false, reason: meta.reason ?? null };
  if (violations.length > 0) {
    upsertMemo({ audit: { ...entry, outcome: 'refused', details: { why: describeViolations(violations) } } });
    throw ApplicationFailure.create({ message: `the policy refuses this rollback:\n${describeViolations(violations)}`, type: 'policy_violation', nonRetryable: true });
  }
  upsertMemo({ audit: { ...entry, outcome: 'applied', details: { force: input.force, policyHash: loaded.kind === 'policy' ? loaded.hash : null } } });
}

export async function rollbackWorkflow(input: RollbackInput): Promise<RollbackSummary> {
  if (patched(ROLLBACK_GOVERNANCE) && !input.carry) await judgeRollback(input);
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
