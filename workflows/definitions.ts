/**
 * The names of every signal, update and query, shared by the workflows and the client.
 * Operators use the updates (they validate and reply); the signals with the same names
 * serve fire-and-forget callers such as `temporal workflow signal`.
 */
import { ApplicationFailure, SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { BackfillError, isErrorCode } from '../core/errors.ts';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApprovalRequest, BudgetRequest, ControlState, JudgedChange, Judgement, QueueRateJudgement } from '../core/coordinator.ts';
import type { ControlMeta } from '../core/audit.ts';
import type { Hold } from '../core/governance.ts';
import { QUERY_NAMES } from '../core/workflow-ids.ts';
import { CORE_GENERATION, type BackfillCarry, type NodeControl, type NodeOrders, type NodeReport, type Progress } from '../core/protocol.ts';
import type { ResolvedSpec } from '../core/spec.ts';
import type { RangesJSON } from '../core/ranges.ts';
import type { StagedAction, StagedRequest } from '../core/staged.ts';
import type { CanaryAction } from '../core/canary.ts';
import type { StagedOutcome } from '../activities/warehouse/types.ts';

export type { ControlState, JudgedChange, Judgement, QueueRateJudgement } from '../core/coordinator.ts';

/**
 * Workflows started by backfill 0.1 have no `core` in their input and cannot replay on this
 * code. Failing the workflow task (not the workflow) keeps them open, with this message in
 * the Web UI, until a 0.1 worker on their task queue finishes them.
 */
export function assertCoreGeneration(core: unknown): void {
  if (core !== CORE_GENERATION) {
    throw new Error(
      `this workflow was started by an earlier backfill release (workflow core ${String(core ?? 1)}; this worker runs core ${CORE_GENERATION}): ` +
        'let it finish on workers of that release (run them on its task queue until it closes), or cancel it and start it again',
    );
  }
}

/**
 * A refusal crosses the wire as an ApplicationFailure whose `type` is the BackfillError's code
 * and whose details hold its path: the client rebuilds the same error (`refusedError`). Any
 * other error is returned as it is.
 */
export function refusal(error: unknown): unknown {
  if (!(error instanceof BackfillError)) return error;
  return ApplicationFailure.create({ message: error.message, type: error.code, nonRetryable: true, details: error.path === undefined ? [] : [error.path] });
}

/** The BackfillError a workflow refused with (see `refusal`), or undefined when `failure` is not one. */
export function refusedError(failure: unknown): BackfillError | undefined {
  if (!(failure instanceof ApplicationFailure) || !isErrorCode(failure.type)) return undefined;
  const path = failure.details?.[0];
  return new BackfillError(failure.type, failure.message, typeof path === 'string' ? path : undefined);
}

/*
 * Every control takes, last, `{ reason?, identity? }` (ControlMeta): why, and who the sender's
 * client says it is. The policy may require the reason; both go into the audit trail. A
 * control that omits it (a Temporal CLI signal) is recorded with an unknown identity.
 */
export const pauseSignal = defineSignal<[meta?: ControlMeta]>('pause');
export const resumeSignal = defineSignal<[meta?: ControlMeta]>('resume');
export const setRateSignal = defineSignal<[rate: number | null, node?: string | null, meta?: ControlMeta]>('setRate');
export const setConcurrencySignal = defineSignal<[concurrency: number | null, node?: string | null, meta?: ControlMeta]>('setConcurrency');
export const retryFailedSignal = defineSignal<[node?: string | null, meta?: ControlMeta]>('retryFailed');
/** A signed approval: verified by the `verifySignature` activity, its result kept in the history and the audit trail. */
export const approveSignal = defineSignal<[request: ApprovalRequest, meta?: ControlMeta]>('approve');
export const setBudgetSignal = defineSignal<[request: BudgetRequest, meta?: ControlMeta]>('setBudget');

export const pauseUpdate = defineUpdate<ControlState, [meta: ControlMeta]>('pause');
export const resumeUpdate = defineUpdate<ControlState, [meta: ControlMeta]>('resume');
export const setRateUpdate = defineUpdate<ControlState, [rate: number | null, node?: string | null, meta?: ControlMeta]>('setRate');
export const setConcurrencyUpdate = defineUpdate<ControlState, [concurrency: number | null, node?: string | null, meta?: ControlMeta]>('setConcurrency');
/** Replies with the number of failed partitions sent back to run. */
export const retryFailedUpdate = defineUpdate<number, [node: string | null, meta?: ControlMeta]>('retryFailed');

/** A new spec for the backfill (same nodes and partitions; fixed transforms, SQL, params, checks or limits): replies with the nodes it changed. */
export const replaceSpecUpdate = defineUpdate<string[], [ResolvedSpec, meta?: ControlMeta]>('replaceSpec');

/** Replies with the approver once the signature is verified and the approval accepted; refused with `approval_refused` and why. */
export const approveUpdate = defineUpdate<{ approver: string; state: ControlState }, [request: ApprovalRequest, meta?: ControlMeta]>('approve');
/** `set-budget`: a new cap for the retry or the cost budget (within the policy's most); what was spent stays. */
export const setBudgetUpdate = defineUpdate<ControlState, [request: BudgetRequest, meta?: ControlMeta]>('setBudget');
/**
 * `cancel` announces itself first, with who and why (a workflow cancellation carries neither),
 * then cancels the workflow; the policy may require the reason. A cancellation nobody announced
 * is recorded as such.
 */
export const announceCancelUpdate = defineUpdate<void, [meta: ControlMeta]>('announceCancel');
/**
 * `set-queue-rate` asks each running backfill first: one with nodes on the queue judges the new
 * rate by its policy and records it (true); one without replies false. The rate itself is a
 * task-queue RPC the client sends once all agree.
 */
export const queueRateUpdate = defineUpdate<boolean, [request: { queue: string; rate: number | null }, meta?: ControlMeta]>('queueRate');
/**
 * `set-queue-rate`'s first round: how the backfill's policy judges the rate, recording nothing (a
 * query leaves no history). A backfill whose code predates it answers QueryNotRegistered.
 */
export const judgeQueueRateQuery = defineQuery<QueueRateJudgement, [request: { queue: string; rate: number | null }, meta?: ControlMeta]>('judgeQueueRate');
/**
 * The first round of a command that sends more than one update: how the backfill's policy judges
 * one of its changes, applying and recording nothing. A backfill whose code predates it answers
 * QueryNotRegistered.
 */
export const judgeChangeQuery = defineQuery<Judgement, [change: JudgedChange, meta?: ControlMeta]>('judgeChange');

/** What the policy decided about the start: admitted (maybe to wait), or refused (the update fails with `policy_violation`). */
export type Admission = {
  state: 'running' | 'awaiting_approval' | 'waiting_for_window';
  policy: { hash: string | null; path: string | null } | null;
  planHash: string | null;
  holds: Hold[];
};
/** Waits until the policy has judged the start: what `backfill start` reports before it returns. */
export const admissionUpdate = defineUpdate<Admission>('admission');

/**
 * A staged backfill's decision: publish every staged version at once, or discard them. Updates
 * only (no signal): each is validated where it arrives (the backfill must be staged and waiting,
 * the argument `{ by, reason? }`), whoever sends it, and replies with what the warehouse did.
 */
export type StagedReply = StagedOutcome & { action: StagedAction; by: string; reason: string | null };
export const publishUpdate = defineUpdate<StagedReply, [StagedRequest]>('publish');
/** Of a staged backfill, or of a canary backfill that waits: its staged versions are dropped and the backfill ends (a canary's reply says `action: 'discard'` too). */
export const discardUpdate = defineUpdate<StagedReply, [StagedRequest]>('discard');

/**
 * A canary's approval: `{ by, reason }` (the reason is required). Not the policy's signed
 * approval (`approve`): this one judges the slice's data, publishes its staged versions and lets
 * the rest run; the policy judges it as a publish. Refused with `not_canary` for a backfill
 * without a canary, `not_ready` while the slice runs, `already_decided` after.
 */
export type CanaryReply = StagedOutcome & { action: CanaryAction; by: string; reason: string | null };
export const approveCanaryUpdate = defineUpdate<CanaryReply, [StagedRequest]>('approveCanary');

export const progressQuery = defineQuery<Progress>(QUERY_NAMES.progress);
/** The state a new run needs to go on from this one (also of a cancelled or failed backfill). */
export const carryQuery = defineQuery<BackfillCarry>(QUERY_NAMES.carry);

/** Which partitions are done and failed, by node, as index ranges (for audits and tests). */
export type PartitionSets = Record<string, { done: RangesJSON; failed: RangesJSON }>;
export const partitionsQuery = defineQuery<PartitionSets>('partitions');

/** Node workflow → parent. */
export const nodeReportSignal = defineSignal<[NodeReport]>('nodeReport');
/** Parent → node workflow. */
export const nodeControlSignal = defineSignal<[NodeControl]>('nodeControl');

/** Parent, asked by a node workflow's `fetchNodeOrders` activity: the node's settings and spec as the parent has them. */
export const nodeOrdersQuery = defineQuery<NodeOrders, [node: string]>(QUERY_NAMES.nodeOrders);

/** A node workflow's own view, for the Web UI and tests. */
export type NodeView = {
  node: string;
  queued: number;
  running: number;
  inflightActivities: number;
  rate: number | null;
  concurrency: number;
  paused: boolean;
  runs: number;
  maxConcurrentActivities: number;
};
export const nodeViewQuery = defineQuery<NodeView>('nodeView');

/** Search attributes (registered by `backfill setup`, or by the dev server) to find a backfill's workflows in the Web UI. */
export const BACKFILL_ID = defineSearchAttributeKey('BackfillId', SearchAttributeType.KEYWORD);
export const BACKFILL_NODE = defineSearchAttributeKey('BackfillNode', SearchAttributeType.KEYWORD);
export const BACKFILL_STATUS = defineSearchAttributeKey('BackfillStatus', SearchAttributeType.KEYWORD);

export { backfillWorkflowId, nodeWorkflowId } from '../core/workflow-ids.ts';
