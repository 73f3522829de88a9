/**
 * `backfillWorkflow`: the parent of a backfill (id `backfill/<backfillId>`), a thin loop
 * around `BackfillCoordinator` (core/coordinator.ts).
 *
 * It starts one `nodeWorkflow` per node and coordinates readiness at the partition level:
 * node workflows report what completed (batched signals); the coordinator releases each
 * downstream partition once every upstream partition it needs is done, and this loop
 * delivers it in a batched signal. Whatever cannot be delivered goes back to the outbox; a
 * node workflow that closed without finishing (terminated, failed) is started again with
 * everything it held. It owns the control surface and continues as new before its history
 * grows large; the node workflows live on across that.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  TemporalFailure,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { canaryOfInput, type CanaryAction } from '../core/canary.ts';
import { BackfillCoordinator, type ApprovalOutcome, type LateCancel } from '../core/coordinator.ts';
import { planHash, unverifiedCheck, type SignatureCheck } from '../core/approval.ts';
import { Governance } from '../core/governance.ts';
import { CANARY_AUTO_IDENTITY, MAX_IDENTITY, MAX_REASON, clipText } from '../core/audit.ts';
import type { ControlSignal } from '../core/refused-signals.ts';
import { HARD_BREAK, backfillCurrentDetails, backfillSummary, markdownText, nodeDetails, nodeSummary } from '../core/details.ts';
import { expandPlan, upstreamPartitions, type Plan, type PlanNode } from '../core/plan.ts';
import { BackfillError } from '../core/errors.ts';
import { CORE_GENERATION, DEFAULT_TUNING, type BackfillInput, type BackfillResult, type BackfillState, type NodeControl, type NodeReport } from '../core/protocol.ts';
import { RangeSet } from '../core/ranges.ts';
import { formatInstant } from '../core/calendar.ts';
import { parseStartAction, type ParsedStartAction } from '../core/start-action.ts';
import { carryShapeProblem, carrySpecProblem } from '../core/carry-shape.ts';
import { tuningProblem } from '../core/tuning.ts';
import { startInputProblem, startSpecProblem } from '../core/start-input.ts';
import { pinnedPolicy } from '../core/policy-pin.ts';
import { NODE_QUEUES_KEY, nodeQueuesMemo } from '../core/node-queues.ts';
import { parseOperatorRate } from '../core/limits.ts';
import { workflowTime } from './clock.ts';
import {
  BACKFILL_ID,
  BACKFILL_NODE,
  BACKFILL_STATUS,
  admissionUpdate,
  announceCancelUpdate,
  approveCanaryUpdate,
  approveSignal,
  approveUpdate,
  type CanaryReply,
  assertCoreGeneration,
  backfillWorkflowId,
  carryQuery,
  queueRateUpdate,
  judgeQueueRateQuery,
  judgeChangeQuery,
  setBudgetSignal,
  setBudgetUpdate,
  type Admission,
  nodeControlSignal,
  nodeOrdersQuery,
  nodeReportSignal,
  nodeWorkflowId,
  partitionsQuery,
  pauseSignal,
  pauseUpdate,
  progressQuery,
  publishUpdate,
  discardUpdate,
  refusal,
  type StagedReply,
  replaceSpecUpdate,
  resumeSignal,
  resumeUpdate,
  retryFailedSignal,
  retryFailedUpdate,
  setConcurrencySignal,
  setConcurrencyUpdate,
  setRateSignal,
  setRateUpdate,
} from './definitions.ts';
import { BackfillSession, EVERY_FAILURE_CLEANED } from './backfill-session.ts';
import type { StagedAction, StagedRequest } from '../core/staged.ts';
import { shellWord } from '../core/shell-word.ts';
import type { WarehouseActivities } from '../activities/warehouse-activities.ts';
import { failureMessage, governanceActivities, judgeStart, refusedStart } from './governance.ts';
import { nodeWorkflow } from './node.ts';

/**
 * Patch (docs/workflow-versions.md): once the backfill finishes, a node workflow found gone with
 * nothing in hands is finished (its `finish` is not put back), and whatever reaches the outbox
 * while the nodes are told to finish is sent too.
 */
export const END_AFTER_FINISH = 'end-after-finish';
/** Patch (docs/workflow-versions.md): at the history limit, sending stops and the outbox is carried. */
export const BOUNDED_CONTINUE_AS_NEW = 'bounded-continue-as-new';
/** Patch (docs/workflow-versions.md): a staged backfill writes staged versions and waits for publish or discard. */
export const STAGED_BACKFILL = 'staged-backfill';
/**
 * Patch (docs/workflow-versions.md): the policy judges the start (local activities: the policy,
 * the estimate, a signed start) before any node workflow starts; controls are checked and
 * audited; approvals, budgets and run windows hold partitions back.
 */
export const GOVERNANCE = 'governance';
/** A capped cost budget gives node workflows allowances, so they stop by themselves at the cap (more settings signals). */
export const COST_ALLOWANCE = 'cost-allowance';
/** The spending that finished every partition records no budget pause (CoordinatorOptions.quietFinalBudget). */
export const BUDGET_SPENT_AT_FINISH = 'budget-spent-at-finish';
/**
 * Patch (docs/workflow-versions.md): a canary backfill runs its slice staged, waits for approve
 * or discard (or canary.auto), then starts its node workflows again for the rest.
 */
export const CANARY = 'canary';
/**
 * Patch (docs/workflow-versions.md): a staged backfill's node runs end their OpenLineage runs at
 * its publish (COMPLETE) or discard (ABORT), not as they settle: staged outputs are no one's yet.
 */
export const STAGED_LINEAGE = 'staged-lineage';
/**
 * Patch (docs/workflow-versions.md): a canary backfill's node runs end their OpenLineage runs
 * once the slice is approved (as they settle), or at its end (a discard aborts them), not as
 * the staged slice settles.
 */
export const CANARY_LINEAGE = 'canary-lineage';
/**
 * Patch (docs/workflow-versions.md): `backfill cancel`'s announcement (who, why) is recorded
 * when the cancellation comes, if it comes within a minute; before, it was recorded at once, so
 * an announcement never followed by its cancellation stayed in the trail, and a later cancel by
 * anyone was credited to the announcer.
 */
export const CANCEL_RECORDED_WHEN_IT_COMES = 'cancel-recorded-when-it-comes';
/**
 * Patch (docs/workflow-versions.md): an `approve` signal's handler returns its verification, so
 * a continue-as-new (which waits for every handler) waits for it; before, it ran on its own and
 * was dropped with the run when the task that received it continued as new.
 */
export const APPROVE_SIGNAL_DRAINED = 'approve-signal-drained';
/**
 * Patch (docs/workflow-versions.md): a staged decision under way (publish, discard, a canary's
 * approve or discard) is not cancelled with the backfill: the cancel waits for it before the
 * datasets' leases go, and one that published is the backfill's outcome; before, the activity
 * was cancelled under a warehouse that went on and committed it with no lease held.
 */
export const DECISION_OUTLIVES_CANCEL = 'decision-outlives-cancel';
/**
 * Patch (docs/workflow-versions.md): the run-window timer wakes where one window hands over to
 * another with other limits too, not only where the windows close (CoordinatorOptions.windowHandovers).
 */
export const WINDOW_HANDOVERS = 'window-handovers';
/**
 * Patch (docs/workflow-versions.md): after a canary's approval, the node workflows started again
 * count their spending from 0, and their cost allowances from what their grants had left
 * (CoordinatorOptions.canaryCountsAfresh).
 */
export const CANARY_START_COUNTS_AFRESH = 'canary-start-counts-afresh';
/**
 * Patch (docs/workflow-versions.md): the start's action is parsed (`parseStartAction`), and the
 * new run `retry-failed` starts of an ended backfill is audited as `retry-failed`, with the nodes
 * a new spec changed; before, it was a plain `resume`, and a hand-made start's action was
 * recorded as it came.
 */
export const RETRY_FAILED_AUDITED = 'retry-failed-audited';
/**
 * Patch (docs/workflow-versions.md): a governed start that says `resume` (a resume, a
 * retry-failed) without a carry is refused (`parseStartAction`'s `carried`); before, the audit
 * trail recorded a first start as resumed, or as failed partitions run again.
 */
export const RESUME_NEEDS_CARRY = 'resume-needs-carry';
/**
 * Patch (docs/workflow-versions.md): a start whose carry says its staged versions were published
 * or discarded (or its canary discarded) while partitions are still to compute is refused
 * (`BackfillCoordinator.carriedDecisionProblem`); before, it computed them as staged versions,
 * ended at once as the carried decision said, and left them staged.
 */
export const CARRIED_DECISION_CHECKED = 'carried-decision-checked';
/**
 * Patch (docs/workflow-versions.md): a start with a carry (a resume, a retry-failed, or one made
 * by hand) whose fields are not of their types (`carryShapeProblem`) is refused; before, the
 * coordinator kept them as they came, and one read later (limits, a node's failures, settings,
 * restarts, reports) failed every workflow task of the run, for ever. Every start that is not a
 * continue-as-new asks for it.
 */
export const CARRY_SHAPE_CHECKED = 'carry-shape-checked';
/**
 * Patch (docs/workflow-versions.md): a node's lineage run ends as soon as it settles: the loop
 * wakes for it. Before, settled nodes were looked at only when something else woke the loop,
 * and at most every two seconds, so a node's end could wait for another node's long partition.
 */
export const LINEAGE_ENDS_ON_SETTLE = 'lineage-ends-on-settle';
/**
 * Patch (docs/workflow-versions.md): a new run of a backfill that ended (resume, retry-failed) is
 * judged only by a worker whose policy is the one its last run was admitted under (a regular
 * activity that other workers decline, retryably); before, by whichever workflow worker took
 * it, so one without the policy admitted it unjudged. Only a start that carries such a hash asks.
 */
export const POLICY_PINNED = 'policy-pinned';
/**
 * Patch (docs/workflow-versions.md): a node workflow that cannot be started (its id is taken by a
 * running workflow) fails the backfill after the other starts have settled, and like any failure:
 * the node workflows it did start are cancelled, their lineage runs (and the backfill's) have a
 * START and a FAIL or ABORT, the leases are released. Before, the backfill failed at once with the
 * start's error and did none of that. Only a run whose node start fails asks.
 */
export const NODE_START_FAILURE_CLEANED = 'node-start-failure-cleaned';
/**
 * Patch (docs/workflow-versions.md): a new run of an ended backfill is judged by the reasons rule
 * of the action that started it too (`resume`, or `retry` for retry-failed), besides every rule of
 * a start; before, by the start's alone, so `reasons.required: [resume]` bound a resume of a
 * running backfill but not of one that had ended. Only such a run (a parsed resume) asks.
 */
export const RESUME_REASONS_JUDGED = 'resume-reasons-judged';
/**
 * Patch (docs/workflow-versions.md): a start whose carry has a `spec` (the spec its last run ran
 * with, which a client starts the next run with) that is not a resolved spec is refused
 * (`carrySpecProblem`); before, no one looked at it (the run goes on with its input's spec, and
 * hands on a spec only when `resume --spec` replaced it). Only a start whose
 * carry has a spec asks (a client's never has: `resumeCarry` drops it).
 */
export const CARRY_SPEC_CHECKED = 'carry-spec-checked';

/**
 * Patch (docs/workflow-versions.md): an approval whose verification fails for good (the
 * `verifySignature` local activity) is refused and recorded as such (`not_verified`), and the
 * backfill goes on waiting; any other Temporal failure of an `approve` signal is logged. Before,
 * the activity's failure escaped the handler: a signal failed the backfill with no cleanup, an
 * update was refused with 'Activity task failed'. Every approval verified asks.
 */
export const APPROVAL_FAILURE_WAITS = 'approval-failure-waits';

/**
 * Patch (docs/workflow-versions.md): at a backfill's end its leases are released before its
 * lineage runs end, so that its run says COMPLETE only once its end is certain; a release that
 * fails ends it FAIL. Before, COMPLETE was emitted first, and a failing release then failed the
 * backfill after its lineage had said it completed. Every backfill that emits lineage and leases
 * its datasets asks, at its end.
 */
export const LINEAGE_ENDS_AFTER_RELEASE = 'lineage-ends-after-release';

/**
 * Patch (docs/workflow-versions.md): a start whose `tuning` is out of bounds (`tuningProblem`: a
 * report interval that is no duration, a history limit of 0) is refused before anything runs;
 * before, the workflows read it as it came, and such a start wedged its node workflows or
 * continued as new for ever. Only a refused start asks, so no recorded history meets it.
 */
export const TUNING_CHECKED = 'tuning-checked';
/**
 * Patch (docs/workflow-versions.md): a start (not a continue-as-new) whose range, limits or skip
 * is not of its shape (`startInputProblem`) is refused before its plan is expanded, and so is a
 * start whose spec its plan cannot be expanded from and is not a resolved spec
 * (`startSpecProblem`); before, such a spec, limits or skip failed every workflow task of the
 * start, for ever. A run of a Temporal cron schedule or workflow retry (the same input started
 * again, as a run continued from the last, which is not judged again) is refused too. Only a
 * refused start asks.
 */
export const START_INPUT_CHECKED = 'start-input-checked';
/**
 * Patch (docs/workflow-versions.md): an unsigned start whose workflow id is not its backfill's
 * (`backfill/<backfillId>`) is refused before anything runs; before, a workflow started by hand
 * under another id ran as that backfill, hidden from its `status` (which finds it by its id):
 * its node workflows, leases, ledger rows, versions and lineage were the named backfill's. A
 * signed start is refused for it by its signature (`other_backfill`, audited). Only such a start asks.
 */
export const WORKFLOW_ID_CHECKED = 'workflow-id-checked';

/**
 * Patch (docs/workflow-versions.md): a control signal (pause, resume, setRate, setConcurrency,
 * retryFailed, setBudget, approve) that arrives while the policy judges the start waits for the
 * judgement, then is applied (or refused) as any; before, it was dropped with a warning in the
 * worker's log, so a pause sent right after a start was lost. Only a run that receives a signal
 * then asks.
 */
export const SIGNALS_WAIT_FOR_ADMISSION = 'signals-wait-for-admission';

/**
 * Patch (docs/workflow-versions.md): a control signal (pause, resume, setRate, setConcurrency,
 * retryFailed, setBudget, approve) that the backfill refuses (a malformed payload, a policy's
 * rule) is recorded as refused in the audit trail, the first ten of a backfill one by one and
 * past them a few, each counting those not recorded (core/refused-signals.ts); before, it was
 * only logged as a warning in the worker's log. Only a governed run that refuses a signal asks.
 */
export const REFUSED_SIGNALS_AUDITED = 'refused-signals-audited';

/**
 * Patch (docs/workflow-versions.md): an `approve` signal the backfill refuses is counted with the
 * refused control signals and recorded on their schedule (core/refused-signals.ts: the first ten,
 * then a few), its entry dropped before operators' actions when the state's trail is full; one
 * whose very text and signature this run refused already for a reason that cannot change (a bad
 * signature, an unknown signer, a text for another backfill or plan) is refused again without
 * the `verifySignature` activity (core/refused-approvals.ts), and before the cap on approvals
 * waiting to be verified. Approvals, signals and updates, are verified one at a time indeed: those
 * waiting when a check ended all went on together. Before, each cost an activity and an entry of
 * its own, so a flood of copies grew the history without bound and filled the trail (a distinct
 * bad approval still costs one check). An `approve` update is answered as before. Only a run that
 * receives an approval asks.
 */
export const APPROVAL_FLOODS_BOUNDED = 'approval-floods-bounded';

/**
 * An `approve` signal that comes while the most approvals wait to be verified is refused and
 * counted as a refused signal is, and written to the trail on their schedule (each of the first
 * ten, then fewer, each entry saying how many went unwritten), not dropped with a line in the
 * worker's log only: among the first, a valid approval's sender sees in the trail that it was not
 * checked, and why; past them, the count tells it. A run that receives an approval as a signal
 * asks (one refused at once as a copy does not).
 */
export const APPROVAL_CAP_AUDITED = 'approval-cap-audited';

/**
 * Patch (docs/workflow-versions.md): the backfill keeps its nodes' task queues in its memo
 * (core/node-queues.ts), at the start of each run and when an accepted spec changes them, so
 * `set-queue-rate` tells which backfills to ask from the list of running ones, without reading
 * their histories. Every run asks, in its first workflow task.
 */
export const NODE_QUEUES_MEMO = 'node-queues-memo';

/** Approvals waiting to be verified beyond this many are refused unchecked (a flood of hand-made signals). */
const MAX_PENDING_APPROVALS = 5;

/** The lineage ABORT of a discarded backfill's runs: nothing of theirs was ever published. */
const DISCARDED_WHY = 'discarded: the staged versions were dropped and nothing was published';
/** How long a cancelled backfill waits for its node workflows to wind down. */
const CANCEL_GRACE = '10 minutes';

/** Why a backfill failed, for its lineage end: an activity's failure says which failed, its causes say why. */
function failureWhy(error: Error): string {
  const cause = error instanceof ApplicationFailure ? undefined : error.cause;
  return cause instanceof Error ? `${error.message}: ${failureWhy(cause)}` : error.message;
}

/** The refusal of a start whose carry cannot be read (`why`). */
function unreadableCarry(why: string): BackfillError {
  return new BackfillError(
    'invalid_argument',
    `the start's carry cannot be read (${why}): a carry is what a backfill hands its next run; start one with the backfill command line (start, resume, retry-failed), not with a carry of your own`,
  );
}

/**
 * The input's plan. A spec it cannot be expanded from (one made by hand) would fail every
 * workflow task, for ever: refused (`refuse` gives the failure, or null behind the patch), naming
 * what is wrong with it.
 */
function expandOrRefuse(input: BackfillInput, refuse: (problem: string) => unknown): Plan {
  try {
    return expandPlan(input.spec, input.range);
  } catch (error) {
    const problem = startSpecProblem(input.spec);
    const refused = problem !== null ? refuse(problem) : null;
    throw refused ?? error;
  }
}

export async function backfillWorkflow(input: BackfillInput): Promise<BackfillResult> {
  assertCoreGeneration(input.core);
  const info = workflowInfo();
  const badInput = (problem: string) =>
    refusal(new BackfillError('invalid_argument', `the start's ${problem}: start a backfill with the backfill command line or client, which resolve its spec and range`, problem.split(' ')[0]));
  // Temporal's cron schedule and workflow retries start the same input again, each run continued from the last: as such,
  // it would go on unjudged (a continued run is not judged again), its first run refused or not. Never from a client.
  const repeated = info.cronSchedule ? `Temporal cron schedule '${info.cronSchedule}'` : info.attempt > 1 ? `Temporal workflow retry (attempt ${info.attempt})` : null;
  if (repeated !== null && patched(START_INPUT_CHECKED)) {
    throw refusal(
      new BackfillError(
        'invalid_argument',
        `this run was started by a ${repeated}, which starts the same input again without the judgement each start of a backfill gets: terminate it (temporal workflow terminate --workflow-id ${shellWord(info.workflowId)}), and start each run with the backfill command line or client (from your scheduler: backfill start <spec> --id <id> --rerun)`,
        'cronSchedule',
      ),
    );
  }
  const continuedRun = info.continuedFromExecutionRunId !== undefined;
  // A start by a client (not a continue-as-new): its range, limits and skip as a client makes them.
  const inputProblem = continuedRun ? null : startInputProblem(input);
  if (inputProblem !== null && patched(START_INPUT_CHECKED)) throw badInput(inputProblem);
  const tuning = { ...DEFAULT_TUNING, ...input.tuning };
  // A continued run whose spec this release cannot expand fails its task (a release that can is deployed), not for good.
  const plan = expandOrRefuse(input, (problem) => (!continuedRun && patched(START_INPUT_CHECKED) ? badInput(problem) : null));
  const ownId = backfillWorkflowId(input.backfillId);
  if (!continuedRun && info.workflowId !== ownId && input.governance?.signature === undefined && patched(WORKFLOW_ID_CHECKED)) {
    throw refusal(
      new BackfillError(
        'invalid_argument',
        `this workflow's id is '${info.workflowId}', but its input is of backfill '${input.backfillId}', whose workflow id is '${ownId}': start a backfill with the backfill command line or client, which name its workflow after it`,
        'backfillId',
      ),
    );
  }
  const carry = input.carry;
  const backfillId = input.backfillId;
  const runKey = carry?.runKey ?? info.firstExecutionRunId;
  const runs = (carry?.runs ?? 0) + 1;
  const startedAt = carry?.startedAt ?? workflowTime();
  // Before any other command: whether this run is judged by the policy (histories from before governance are not).
  const governed = patched(GOVERNANCE);
  const allowances = governed && patched(COST_ALLOWANCE);
  const quietFinalBudget = governed && patched(BUDGET_SPENT_AT_FINISH);
  const cancelWhenItComes = governed && patched(CANCEL_RECORDED_WHEN_IT_COMES);
  const approveDrained = governed && patched(APPROVE_SIGNAL_DRAINED);
  const windowHandovers = governed && patched(WINDOW_HANDOVERS);
  // Only a run's own continue-as-new carries a judgement to trust: a client's carry (a resume) is judged again.
  const continued = info.continuedFromExecutionRunId !== undefined;
  // What the start is (start, resume, retry-failed), for its audit entry: parsed here; a bad one fails the start, before anything runs.
  let startAction: ParsedStartAction | null = null;
  if (governed && !continued && patched(RETRY_FAILED_AUDITED)) {
    try {
      const carried = patched(RESUME_NEEDS_CARRY) ? carry !== undefined : undefined;
      startAction = parseStartAction(input.governance ?? {}, plan.nodes.map((n) => n.id), carried !== undefined ? { carried } : {});
    } catch (error) {
      throw refusal(error);
    }
  }
  // A canary arrives in the input (anyone may start one): parsed here; a bad one fails the start, before anything runs.
  let canaryConfig;
  try {
    canaryConfig = carry ? null : canaryOfInput(input);
  } catch (error) {
    throw refusal(error);
  }
  // Only a backfill with a canary asks, so no recorded history meets this patch.
  const withCanary = (canaryConfig !== null || carry?.canary !== undefined) && patched(CANARY);
  // Only a governed backfill with a canary asks.
  const canaryCountsAfresh = withCanary && allowances && patched(CANARY_START_COUNTS_AFRESH);
  const shapeProblem = !continued && patched(CARRY_SHAPE_CHECKED) && carry !== undefined ? carryShapeProblem(carry) : null;
  if (shapeProblem !== null) throw refusal(unreadableCarry(shapeProblem));
  const specProblem = !continued && carry?.spec !== undefined && patched(CARRY_SPEC_CHECKED) ? carrySpecProblem(carry.spec) : null;
  if (specProblem !== null) throw refusal(unreadableCarry(specProblem));
  const badTuning = continued ? null : tuningProblem(input.tuning);
  if (badTuning !== null && patched(TUNING_CHECKED)) {
    throw refusal(new BackfillError('invalid_argument', `the start's ${badTuning}: tuning is for tests and benchmarks; leave it out, or keep it within its bounds`, 'tuning'));
  }
  let coordinator: BackfillCoordinator;
  try {
    coordinator = new BackfillCoordinator(
      plan,
      {
        rate: input.limits?.rate !== undefined ? input.limits.rate : input.spec.rate,
        concurrency: input.limits?.concurrency !== undefined ? input.limits.concurrency : input.spec.concurrency,
      },
      carry,
      { now: workflowTime, stage: input.stage === true, allowances, quietFinalBudget, windowHandovers, canaryCountsAfresh, canary: withCanary ? canaryConfig : null, ...(input.skip ? { skip: input.skip } : {}) },
    );
  } catch (error) {
    // A hand-made carry the coordinator cannot read would fail every workflow task, for ever: the start is refused instead.
    if (carry === undefined || continued || error instanceof BackfillError) throw refusal(error);
    throw refusal(unreadableCarry(error instanceof Error ? error.message : String(error)));
  }
  // A carry comes in the start's input, which anyone who can start a workflow writes: one that contradicts itself is refused before anything runs.
  if (!continued && patched(CARRIED_DECISION_CHECKED)) {
    try {
      coordinator.refuseCarriedDecision();
    } catch (error) {
      throw refusal(error);
    }
  }
  // Behind the patch, its marker and the upsert are both new commands: a run recorded before it replays neither.
  const keepsNodeQueues = patched(NODE_QUEUES_MEMO);
  let nodeQueuesWritten = '';
  /** Written when they change; each run writes them first, whatever its start's memo says (its caller's: Temporal's CLI can give any). */
  const writeNodeQueues = () => {
    const queues = nodeQueuesMemo(workflowInfo().runId, plan.nodes.map((n) => coordinator.nodeSpec(n.id).taskQueue));
    if (!keepsNodeQueues || JSON.stringify(queues) === nodeQueuesWritten) return;
    nodeQueuesWritten = JSON.stringify(queues);
    upsertMemo({ [NODE_QUEUES_KEY]: queues });
  };
  writeNodeQueues();
  const canary = withCanary ? coordinator.canary : null;
  // Only a backfill started with --stage asks, so no recorded history meets this patch.
  const staged = coordinator.staged !== null && patched(STAGED_BACKFILL) ? coordinator.staged : null;
  const lineageAtDecision = staged !== null && patched(STAGED_LINEAGE);
  // Only a backfill with a canary asks, so no recorded history without one meets this patch.
  const canaryLineage = withCanary && patched(CANARY_LINEAGE);
  // Only a staged or canary backfill asks, so no recorded history without one meets this patch.
  const outlivesCancel = (staged !== null || canary !== null) && patched(DECISION_OUTLIVES_CANCEL);
  if (governed && continued && carry?.governance) coordinator.govern(Governance.fromJSON(carry.governance));
  else if (governed && !continued) coordinator.awaitAdmission();
  /** Every audit entry goes to the history too (a memo upsert each): the state keeps the newest only. */
  const writeAudit = () => {
    for (const entry of coordinator.takeAudit()) upsertMemo({ audit: entry });
  };
  /** What the policy decided about the start, for the admission update (null until it has). */
  let admission: { view: Admission; refused: string | null } | null = null;
  /** Whether `backfill cancel` said who and why before the cancellation came. */
  let wasAnnounced = () => false;
  const starting = !carry?.childrenRunning;
  const session = new BackfillSession(
    {
      backfillId,
      runKey,
      startedAt,
      range: input.range,
      taskQueue: plan.nodes[0]!.spec.taskQueue,
      nodes: () => plan.nodes.map((n) => coordinator.nodeSpec(n.id)),
      name: input.spec.name,
      ...(input.spec.description !== undefined ? { description: input.spec.description } : {}),
    },
    carry,
    starting,
  );
  // Only a backfill that emits lineage asks.
  const endsOnSettle = session.emitsLineage && patched(LINEAGE_ENDS_ON_SETTLE);
  /**
   * A run not admitted (refused, or cancelled while it waited for its judgement) hands on the
   * governance it was given as it came: what the backfill spent, its audit trail and the policy it
   * was admitted under stay with it for the next run, which is judged again.
   */
  const unjudgedGovernance = () => (governed && coordinator.governed === null && carry?.governance ? { governance: carry.governance } : {});
  /** The carried state of this run: the coordinator's, and what the session keeps. */
  const carryOf = (childrenRunning: boolean) => ({ ...unjudgedGovernance(), ...coordinator.toCarry(), ...session.toCarry(), runKey, childrenRunning, startedAt, runs });
  /** The spec this run runs with: its input's, until a new one (`resume --spec`) replaces it. */
  let spec = input.spec;
  /** What a client resumes an ended run from (its result, the carry query): with the spec that replaced the input's. */
  const endCarry = () => ({ ...carryOf(false), ...(spec !== input.spec ? { spec } : {}) });

  const sending = new Set<string>();
  /** Node workflows a signal could not reach: closed, to be started again. */
  const unreachable = new Set<string>();
  const finishedNodes = new Set<string>();
  const cancelledNodes = new Set<string>();
  /** Node workflows this run could not start (their ids were taken): never its own to cancel. */
  const notStarted = new Set<string>();
  const heardFrom = new Map<string, number>();

  setHandler(nodeReportSignal, (report: NodeReport) => {
    try {
      coordinator.onReport(report);
    } catch (error) {
      // Not a report of this backfill (sent by hand?): it would have stopped the workflow.
      if (!(error instanceof BackfillError)) throw error;
      log.warn(`signal nodeReport ignored: ${error.message}`);
      return;
    }
    heardFrom.set(report.node, workflowTime());
    if (report.final === 'cancelled') cancelledNodes.add(report.node);
    writeAudit();
  });

  // Every control argument is parsed where it arrives, by the coordinator method that applies
  // it: an update's validator parses (and refuses with the BackfillError's code as the failure
  // type), its handler parses again and applies the parsed value, and a signal with an invalid
  // payload is refused: logged, and recorded in the audit trail (behind REFUSED_SIGNALS_AUDITED).
  const refusing =
    <A extends unknown[], R>(run: (...args: A) => R) =>
    (...args: A): R => {
      try {
        return run(...args);
      } catch (error) {
        throw refusal(error);
      } finally {
        writeAudit();
      }
    };
  /** A signal that came before the policy's judgement is applied once it is given (behind SIGNALS_WAIT_FOR_ADMISSION); not if it refused the start. */
  const waitsForAdmission = () => coordinator.isAdmitting && patched(SIGNALS_WAIT_FOR_ADMISSION);
  const afterAdmission = async (name: string, apply: () => unknown): Promise<void> => {
    await condition(() => admission !== null);
    if (admission!.refused !== null) return void log.warn(`signal ${name} ignored: the policy refused the start`);
    await apply();
  };
  /** A control signal refused: its sender hears nothing, so the audit trail records it (bounded; behind REFUSED_SIGNALS_AUDITED). */
  const signalRefused = (signal: ControlSignal, args: readonly unknown[], error: BackfillError) => {
    log.warn(`signal ${signal} ignored: ${error.message}`);
    if (coordinator.governed === null || !patched(REFUSED_SIGNALS_AUDITED)) return;
    try {
      coordinator.refuseSignal({ signal, args, code: error.code, message: error.message });
    } catch (failure) {
      // Recording what anyone may send must never fail the workflow task (and with it every task after).
      log.warn(`signal ${signal}: its refusal was not recorded in the audit trail: ${failure instanceof Error ? failure.message : String(failure)}`);
    }
  };
  const ignoringInvalid =
    <A extends unknown[]>(name: ControlSignal, run: (...args: A) => unknown) =>
    (...args: A): void | Promise<void> => {
      if (waitsForAdmission()) return afterAdmission(name, () => ignoringInvalid(name, run)(...args));
      try {
        run(...args);
      } catch (error) {
        if (!(error instanceof BackfillError)) throw error;
        signalRefused(name, args, error);
      } finally {
        writeAudit();
      }
    };
  const setRate = (rate: unknown, node?: unknown, meta?: unknown) => coordinator.setRate(rate, node, meta);
  const setConcurrency = (concurrency: unknown, node?: unknown, meta?: unknown) => coordinator.setConcurrency(concurrency, node, meta);
  const retryFailed = (node?: unknown, meta?: unknown) => {
    const retried = coordinator.retryFailed(node, meta);
    session.retried((id) => coordinator.nodeSettled(id));
    return retried;
  };
  const setBudget = (request: unknown, meta?: unknown) => coordinator.setBudget(request, meta);
  // Runs before governance ignore what they never took (an argument; the policy's messages).
  const legacy = !governed;
  setHandler(pauseSignal, ignoringInvalid('pause', (meta?: unknown) => coordinator.setPaused(true, legacy ? undefined : meta)));
  setHandler(resumeSignal, ignoringInvalid('resume', (meta?: unknown) => coordinator.setPaused(false, legacy ? undefined : meta)));
  setHandler(setRateSignal, ignoringInvalid('setRate', setRate));
  setHandler(setConcurrencySignal, ignoringInvalid('setConcurrency', setConcurrency));
  setHandler(retryFailedSignal, ignoringInvalid('retryFailed', retryFailed));
  setHandler(pauseUpdate, refusing((meta?: unknown) => coordinator.setPaused(true, meta)), { validator: refusing((meta?: unknown) => void coordinator.parsePause(true, meta)) });
  setHandler(resumeUpdate, refusing((meta?: unknown) => coordinator.setPaused(false, meta)), { validator: refusing((meta?: unknown) => void coordinator.parsePause(false, meta)) });
  // The slowest-rate floor is the validator's alone: validators do not run on replay, so an update a history accepted before the floor still applies.
  setHandler(setRateUpdate, refusing(setRate), {
    validator: refusing((rate: unknown, node?: unknown, meta?: unknown) => void coordinator.parseRate(parseOperatorRate(rate), node, meta)),
  });
  setHandler(setConcurrencyUpdate, refusing(setConcurrency), {
    validator: refusing((concurrency: unknown, node?: unknown, meta?: unknown) => void coordinator.parseConcurrency(concurrency, node, meta)),
  });
  // The validator refuses a retry of nothing (validators do not run on replay; the handler applies what histories hold).
  setHandler(retryFailedUpdate, refusing(retryFailed), { validator: refusing((node?: unknown, meta?: unknown) => void coordinator.validateRetry(backfillId, node, meta)) });
  setHandler(judgeChangeQuery, (change: unknown, meta?: unknown) => coordinator.judgeChange(change, meta, backfillId));
  // Fix and go on: a new spec with the same nodes and partitions, for the partitions still to run.
  const planHashOf = (next: typeof spec) => planHash({ spec: next, range: input.range, ...(input.skip ? { skip: input.skip } : {}), stage: input.stage === true, canary: input.canary });
  setHandler(
    replaceSpecUpdate,
    refusing((next: unknown, meta?: unknown) => {
      const replaced = coordinator.replaceSpec(next, spec, meta, planHashOf);
      spec = replaced.spec;
      writeNodeQueues();
      return replaced.changed;
    }),
    { validator: refusing((next: unknown, meta?: unknown) => void coordinator.parseSpec(next, spec, meta)) },
  );
  /** What `status` says while the workflow runs: a staged backfill whose partitions settled waits for its decision (a waiting canary says so itself). */
  const liveState = () => (staged && staged.current !== 'computing' ? 'staged' : 'running');
  /** A decision's activity is under way (behind DECISION_OUTLIVES_CANCEL): a cancel waits for it before the leases go. */
  let deciding = false;
  /** The backfill is being cancelled, or fails: no decision begins any more (behind DECISION_OUTLIVES_CANCEL). */
  let winding = false;
  let decideCanary: (action: CanaryAction, request: unknown, auto?: boolean) => Promise<CanaryReply> = () => Promise.reject(new Error('not ready'));
  let readCanaryDiff: () => ReturnType<WarehouseActivities['diffStagedCounts']> = () => Promise.reject(new Error('not ready'));
  {
    // Publish or discard: validated where it arrives (whoever sends it; a backfill that is not
    // staged refuses it with not_staged), then done by the warehouse in one transaction for this
    // run's staged versions only; a refusal (another run leases a dataset) leaves the backfill
    // staged, waiting for the next decision.
    const stagedActivities = proxyActivities<WarehouseActivities>({
      taskQueue: plan.nodes[0]!.spec.taskQueue,
      startToCloseTimeout: '10 minutes',
      // No heartbeat timeout: a publish may run for minutes, and an older worker, which does not heartbeat, would have it run twice at once (docs/deploying.md).
      retry: { maximumAttempts: 10, maximumInterval: '10 seconds' },
      summary: 'staged versions',
    });
    const notWinding = () => {
      if (outlivesCancel && winding) throw new BackfillError('not_running', 'the backfill is being cancelled (or failed): it takes no decision any more, and nothing was published or dropped');
    };
    /**
     * A decision on the run's staged versions (a staged backfill's, or a canary's slice's): the
     * gate begins it (or refuses it), the audit trail records it, the versions are published or
     * dropped, and the gate hears how that went.
     */
    const carryOut = async <A extends string>(action: A, publish: boolean, begin: () => { by: string; reason: string | null }, gate: { end(ok: boolean): void }) => {
      let decision;
      try {
        notWinding();
        decision = begin();
      } catch (error) {
        throw refusal(error);
      } finally {
        writeAudit();
      }
      try {
        const run = { backfillId, runKey };
        const act = () => (publish ? stagedActivities.publishStaged(run) : stagedActivities.discardStaged(run));
        // Once the activity is on a worker, cancelling it does not stop its transaction: it runs to its end, and the cancel waits for it.
        deciding = outlivesCancel;
        const outcome = outlivesCancel ? await CancellationScope.nonCancellable(act) : await act();
        gate.end(true);
        return { ...outcome, action, by: decision.by, reason: decision.reason };
      } catch (error) {
        gate.end(false);
        throw error;
      } finally {
        deciding = false;
      }
    };
    const decide = (action: StagedAction) => (request: StagedRequest): Promise<StagedReply> =>
      carryOut(action, action === 'publish', () => coordinator.beginStagedDecision(action, request, workflowTime()), coordinator.staged!);
    setHandler(publishUpdate, decide('publish'), {
      validator: refusing((request: unknown) => {
        notWinding();
        coordinator.parseStagedDecision('publish', request);
      }),
    });
    // A canary's approve or discard: its slice's staged versions are published (the rest then runs) or dropped (the backfill ends).
    decideCanary = (action: CanaryAction, request: unknown, auto = false): Promise<CanaryReply> =>
      carryOut(action, action === 'approve', () => coordinator.beginCanaryDecision(action, request, workflowTime(), auto), coordinator.canary!);
    // The key columns of the spec the run uses now (a `resume --spec` replaces it), as written
    // (parsed again in the activity). No patch: replay compares an activity's type and id, not
    // its arguments, and takes its result from the history.
    readCanaryDiff = () => stagedActivities.diffStagedCounts({ backfillId, runKey }, spec.nodes.map((n) => ({ id: n.id, ...(n.key ? { key: n.key } : {}) })));
    const decideCanaryOrStaged = decideCanary;
    setHandler(discardUpdate, (request: StagedRequest) => (canary ? decideCanaryOrStaged('discard', request).then((reply) => ({ ...reply, action: 'discard' as const })) : decide('discard')(request)), {
      validator: refusing((request: unknown) => {
        notWinding();
        if (canary) coordinator.parseCanaryDecision('discard', request);
        else coordinator.parseStagedDecision('discard', request);
      }),
    });
    setHandler(approveCanaryUpdate, (request: StagedRequest) => decideCanaryOrStaged('approve', request), {
      validator: refusing((request: unknown) => {
        notWinding();
        coordinator.parseCanaryDecision('approve', request);
      }),
    });
  }

  // ---- governance: approvals, budgets, the announced cancel, queue rates, the admission ----
  if (governed) {
    setHandler(setBudgetSignal, ignoringInvalid('setBudget', setBudget));
    setHandler(setBudgetUpdate, refusing(setBudget), { validator: refusing((request: unknown, meta?: unknown) => void coordinator.parseBudget(request, meta)) });
    let cancelAnnounced = false;
    setHandler(
      announceCancelUpdate,
      refusing((meta?: unknown) => {
        if (cancelWhenItComes) return coordinator.announceCancel(meta);
        coordinator.noteCancel(meta);
        cancelAnnounced = true;
      }),
      { validator: refusing((meta?: unknown) => void coordinator.parseCancel(meta)) },
    );
    wasAnnounced = () => cancelAnnounced;
    setHandler(queueRateUpdate, refusing((request: unknown, meta?: unknown) => coordinator.noteQueueRate(request, meta)), {
      validator: refusing((request: unknown, meta?: unknown) => void coordinator.parseQueueRate(request, meta)),
    });
    setHandler(judgeQueueRateQuery, (request: unknown, meta?: unknown) => coordinator.judgeQueueRate(request, meta));

    // Approvals are verified one at a time (an activity each), in the order they arrived.
    let verifying = false;
    let pending = 0;
    // `signalled` (behind APPROVAL_FLOODS_BOUNDED): refused as a signal, and not checked again once refused for good.
    const approve = async (raw: unknown, meta?: unknown, signalled = false): Promise<ApprovalOutcome> => {
      const request = coordinator.parseApproval(raw, meta);
      // Behind the patch, one at a time indeed: the end of a turn releases every waiting approval at
      // once, so each looks again and only the first takes the turn (before, they all went on together).
      const inTurns = signalled || patched(APPROVAL_FLOODS_BOUNDED);
      let turn = false;
      pending++;
      try {
        if (inTurns) while (verifying) await condition(() => !verifying);
        else await condition(() => !verifying);
        verifying = turn = true;
        // A copy that waited behind the one refused.
        const again = signalled ? coordinator.refuseRepeatedApproval(request, meta) : null;
        if (again !== null) return again;
        const signalledKey = signalled ? coordinator.approvalKey(request) : undefined;
        const g = coordinator.governed!;
        const waits = patched(APPROVAL_FAILURE_WAITS);
        let check: SignatureCheck;
        try {
          check = await governanceActivities().verifySignature({
            signature: request.signature,
            text: request.text,
            expected: { action: 'approve', backfillId, namespace: info.namespace, planHash: g.planHash },
            allowedSigners: g.policy.signers,
            now: workflowTime(),
          });
        } catch (error) {
          // Only the activity's failure, which the history keeps (a worker without the activity fails it too); anything else fails the task.
          if (!waits || !(error instanceof TemporalFailure) || isCancellation(error)) throw error;
          check = unverifiedCheck(failureMessage(error));
        }
        return coordinator.approve(check, request.reason, meta, signalledKey);
      } finally {
        if (turn || !inTurns) verifying = false;
        pending--;
        writeAudit();
      }
    };
    setHandler(
      approveUpdate,
      async (raw: unknown, meta?: unknown) => {
        try {
          const outcome = await approve(raw, meta);
          if (!outcome.accepted) throw new BackfillError('approval_refused', `the approval is refused (${outcome.code}): ${outcome.message}`);
          return { approver: outcome.approver, state: coordinator.controlState() };
        } catch (error) {
          throw refusal(error);
        }
      },
      { validator: refusing((raw: unknown, meta?: unknown) => void coordinator.parseApproval(raw, meta)) },
    );
    /** Whether a signalled approval is one this run refused for good already: refused again at once (even with the most waiting to be verified). */
    const refusedAgain = (raw: unknown, meta?: unknown): boolean => {
      let again: ApprovalOutcome | null;
      try {
        again = coordinator.refuseRepeatedApproval(coordinator.parseApproval(raw, meta), meta);
      } catch (error) {
        // Refused as it is parsed: approve() parses it again, refuses it and records that.
        if (error instanceof BackfillError) return false;
        throw error;
      }
      if (again === null || again.accepted) return false;
      log.warn(`signal approve refused again (${again.code}): ${again.message}`);
      writeAudit();
      return true;
    };
    const approveSignalled = async (raw: unknown, meta?: unknown): Promise<void> => {
      if (waitsForAdmission()) return afterAdmission('approve', () => approveSignalled(raw, meta));
      const bounded = patched(APPROVAL_FLOODS_BOUNDED);
      if (bounded && refusedAgain(raw, meta)) return;
      const capAudited = patched(APPROVAL_CAP_AUDITED);
      if (pending >= MAX_PENDING_APPROVALS) {
        if (!capAudited) return void log.warn(`signal approve ignored: ${pending} approvals are being verified already`);
        const busy = `${pending} approvals wait to be verified already, so this one was not checked: send it again once they are, or approve with 'backfill approve' (an update, answered)`;
        signalRefused('approve', [raw, meta], new BackfillError('approval_refused', busy));
        return void writeAudit();
      }
      const verified = approve(raw, meta, bounded).then(
        (outcome) => {
          if (!outcome.accepted) log.warn(`signal approve refused (${outcome.code}): ${outcome.message}`);
        },
        (error: unknown) => {
          // Cancelled with the backfill: a handler that threw it would end the workflow before its cleanup.
          if (isCancellation(error)) return void log.warn('signal approve dropped: the backfill is being cancelled');
          if (error instanceof BackfillError) {
            signalRefused('approve', [raw, meta], error);
            return void writeAudit();
          }
          // A signal is fire-and-forget: a failure thrown from its handler would fail the backfill, uncleaned; a bug (no Temporal failure) fails the task only.
          if (!(error instanceof TemporalFailure) || !patched(APPROVAL_FAILURE_WAITS)) throw error;
          log.warn(`signal approve failed, nothing was approved: ${failureMessage(error)}`);
        },
      );
      if (approveDrained) await verified;
    };
    setHandler(approveSignal, approveSignalled);
    setHandler(admissionUpdate, async () => {
      await condition(() => admission !== null);
      if (admission!.refused !== null) throw refusal(new BackfillError('policy_violation', admission!.refused));
      return admission!.view;
    });
  }
  setHandler(progressQuery, () => coordinator.progress(backfillId, liveState(), runs));
  setHandler(carryQuery, endCarry);
  // What a node workflow asks when a nodeControl rings its bell (workflows/node.ts, ORDERS_FROM_PARENT).
  setHandler(nodeOrdersQuery, (node: string) => coordinator.ordersOf(node));
  setHandler(partitionsQuery, () =>
    Object.fromEntries(plan.nodes.map((n) => [n.id, { done: coordinator.readiness.done(n.id).toJSON(), failed: coordinator.readiness.failed(n.id).toJSON() }])),
  );

  const admissionView = (): Admission => {
    const g = coordinator.governed;
    const state = coordinator.progress(backfillId, 'running', runs).state;
    return {
      state: state === 'awaiting_approval' || state === 'waiting_for_window' ? state : 'running',
      policy: g ? { hash: g.policyHash, path: g.toJSON().policy.path } : null,
      planHash: g?.planHash ?? null,
      holds: g ? coordinator.holds() : [],
    };
  };

  let status = '';
  const showStatus = (next: string) => {
    if (next === status) return;
    status = next;
    upsertSearchAttributes([{ key: BACKFILL_STATUS, value: next }]);
  };

  // Started whatever happens: a cancellation that arrives while a start is pending would leave
  // the start unresolved (the child is abandoned, not cancelled); the cleanup below cancels it.
  const startNode = (node: PlanNode, ready: RangeSet, recheck?: RangeSet) =>
    CancellationScope.nonCancellable(() => startChild(nodeWorkflow, {
      workflowId: nodeWorkflowId(backfillId, node.id),
      args: [
        {
          core: CORE_GENERATION,
          backfillId,
          parentWorkflowId: info.workflowId,
          runKey,
          node: coordinator.nodeSpec(node.id),
          upstream: upstreamPartitions(input.spec, node.id),
          range: input.range,
          settings: coordinator.settingsOf(node.id),
          ready: ready.toJSON(),
          ...(recheck && !recheck.isEmpty ? { recheck: recheck.toJSON() } : {}),
          tuning,
          ...(session.warehouseId !== undefined ? { warehouseId: session.warehouseId } : {}),
          ...(staged || canary?.limiting ? { stage: true } : {}),
        },
      ],
      // The node workflows outlive each run of this one (continue-as-new); this workflow
      // ends, cancels or restarts them itself.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      staticSummary: nodeSummary(backfillId, node.spec, node.partitions),
      staticDetails: nodeDetails(node.spec, node.partitions),
      typedSearchAttributes: [
        { key: BACKFILL_ID, value: backfillId },
        { key: BACKFILL_NODE, value: node.id },
      ],
    }));

  /** Set once the backfill finishes, behind the patch END_AFTER_FINISH. */
  let endAfterFinish = false;
  /** The run is handing over to the next (continue-as-new): nothing more is sent, the outbox is carried. */
  let handingOver = false;
  const deliver = (id: string, control: NodeControl) => {
    sending.add(id);
    CancellationScope.nonCancellable(() => getExternalWorkflowHandle(nodeWorkflowId(backfillId, id)).signal(nodeControlSignal, control))
      .then(
        () => {
          if (control.finish) finishedNodes.add(id);
        },
        (error: unknown) => {
          // Nothing is dropped: it goes back to the outbox, and the node is started again; a
          // node with nothing left to do at the end is gone (its finish is not kept to send).
          if (endAfterFinish) {
            if (coordinator.undeliverable(id, control) === 'gone') finishedNodes.add(id);
            else unreachable.add(id);
          } else {
            coordinator.restore(id, control);
            if (!coordinator.isClosing || coordinator.hasInHands(id)) unreachable.add(id);
            else finishedNodes.add(id);
          }
          log.warn(`node workflow ${id} cannot be reached: ${String(error)}`);
        },
      )
      .finally(() => sending.delete(id));
  };
  const flushable = () => plan.nodes.some((n) => !sending.has(n.id) && !unreachable.has(n.id) && coordinator.hasOutgoing(n.id));
  const flush = () => {
    for (const n of plan.nodes) {
      if (!sending.has(n.id) && !unreachable.has(n.id) && coordinator.hasOutgoing(n.id)) deliver(n.id, coordinator.takeOutgoing(n.id));
    }
  };

  /** Starts again the node workflows that closed without finishing, or fails the backfill. */
  const restartUnreachable = async () => {
    for (const id of [...unreachable]) {
      const restart = coordinator.restartNode(id, tuning.maxNodeRestarts);
      if (!restart) {
        throw ApplicationFailure.nonRetryable(
          `node workflow ${nodeWorkflowId(backfillId, id)} closed without finishing ${tuning.maxNodeRestarts + 1} times: ` +
            `see why in its history, fix it, then run 'backfill resume ${shellWord(backfillId)}'`,
          'NodeWorkflowLost',
        );
      }
      log.warn(`node workflow ${id} closed without finishing; starting it again (${restart.attempt} of ${tuning.maxNodeRestarts})`);
      try {
        await startNode(plan.byId.get(id)!, restart.ready, restart.ready);
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError) || !patched(EVERY_FAILURE_CLEANED)) throw error;
        // Its id is taken by a workflow this run did not start (the cleanup leaves it alone: it stays in `unreachable`).
        throw ApplicationFailure.create({
          message:
            `node workflow ${nodeWorkflowId(backfillId, id)} closed without finishing and could not be started again: another running workflow took its id. ` +
            `Cancel that workflow, then run 'backfill resume ${shellWord(backfillId)}'`,
          type: 'NodeWorkflowNotStarted',
          nonRetryable: true,
        });
      }
      unreachable.delete(id);
    }
  };

  /** A node silent for a while with work in hands may be gone: an empty signal finds out. */
  const prober = async () => {
    for (;;) {
      await sleep(tuning.probeIntervalMs, { summary: 'check node workflows' });
      // A staged backfill waiting for its decision has no node workflows left to check (and sets no more timers while it waits).
      if (staged && staged.current !== 'computing') return;
      // Nor has a canary waiting for its decision; after its approval the node workflows run again.
      if (canary?.waiting) await condition(() => !canary.waiting);
      const now = workflowTime();
      for (const node of plan.nodes) {
        const silentFor = now - (heardFrom.get(node.id) ?? startedAt);
        if (!handingOver && coordinator.hasInHands(node.id) && silentFor >= tuning.probeIntervalMs && !sending.has(node.id) && !unreachable.has(node.id)) {
          deliver(node.id, {});
        }
      }
    }
  };

  // The Web UI's current details: progress per dataset, refreshed at most every two seconds.
  let shownAt = -Infinity;
  let shownHolds = '';
  const show = (state: BackfillState = 'running') => {
    const now = workflowTime();
    // A new hold (or one lifted) shows at once: the backfill may wait for a while with nothing else to show.
    const holds = coordinator.holds().map((h) => h.kind).join(',');
    if (state === 'running' && now - shownAt < 2000 && holds === shownHolds) return;
    shownAt = now;
    shownHolds = holds;
    setCurrentDetails(`**${backfillSummary(plan)}** · id ${markdownText(backfillId)}${HARD_BREAK}${backfillCurrentDetails(coordinator.progress(backfillId, state, runs))}`);
  };

  const shouldContinueAsNew = () => {
    const current = workflowInfo();
    return current.continueAsNewSuggested || current.historyLength >= tuning.historyLimit;
  };

  if (governed && !continued) {
    // The policy judges the start before anything runs; a new run of an ended backfill, a worker with the policy it was admitted under.
    const pinned = pinnedPolicy(carry?.governance);
    const goesOn = startAction !== null && startAction.action !== 'start' && patched(RESUME_REASONS_JUDGED);
    const verdict = await judgeStart(input, plan, coordinator, {
      pinned: pinned !== null && patched(POLICY_PINNED) ? pinned : null,
      ...(goesOn ? { goesOnAs: startAction!.action === 'retry-failed' ? ('retry' as const) : ('resume' as const) } : {}),
    });
    const request = input.governance ?? {};
    if (!verdict.admitted) {
      admission = { view: { state: 'running', policy: verdict.policy, planHash: null, holds: [] }, refused: verdict.message };
      // A reason or an identity refused for its length is kept as its beginning (behind START_REQUEST_BOUNDED).
      const clipped = (text: string | undefined, max: number) => (verdict.boundedRequest && typeof text === 'string' ? clipText(text, max) : text);
      upsertMemo({
        governance: { policy: verdict.policy, refused: verdict.message },
        audit: {
          seq: 1,
          at: workflowTime(),
          action: startAction?.action ?? request.action ?? 'start',
          identity: clipped(request.identity, MAX_IDENTITY) ?? 'unknown',
          verified: false,
          reason: clipped(request.reason, MAX_REASON) ?? null,
          outcome: 'refused',
          details: { why: verdict.message },
        },
      });
      showStatus('refused');
      await condition(allHandlersFinished);
      throw refusedStart(verdict.message);
    }
    coordinator.govern(verdict.governance, { limits: verdict.limits, nodeRates: verdict.nodeRates });
    const g = verdict.governance;
    coordinator.recordStart(
      { ...(request.reason !== undefined ? { reason: request.reason } : {}), identity: g.starter.identity, verified: g.starter.verified },
      {
        resumed: request.action === 'resume',
        partitions: plan.totalPartitions,
        policyHash: g.policyHash,
        planHash: g.planHash,
        priority: info.priority?.priorityKey || null,
        fairnessWeight: info.priority?.fairnessWeight || null,
        // What it was asked to run: --from/--to, and the partitions --only-changed kept (memo payload only).
        ...(input.range?.from !== undefined ? { from: formatInstant(input.range.from) } : {}),
        ...(input.range?.to !== undefined ? { to: formatInstant(input.range.to) } : {}),
        ...(input.skip ? { onlyChangedKept: plan.nodes.reduce((sum, node) => sum + RangeSet.fromJSON(input.skip?.[node.id]).slice(0, node.partitions.size).size, 0) } : {}),
        ...startAction?.details,
      },
      startAction?.action,
      // A start's own --rate and --concurrency, as a resume's are (memo payload only: no command changes).
      startAction?.limitsSet ?? (startAction === null || startAction.action === 'start' ? (['rate', 'concurrency'] as const).filter((key) => input.limits?.[key] !== undefined) : undefined),
    );
    writeAudit();
    upsertMemo({ governance: { policy: verdict.policy, planHash: g.planHash } });
    log.info(`backfill ${backfillId} admitted by policy ${verdict.policy?.hash ?? '(none)'}${g.awaitingApproval ? '; it waits for an approval' : ''}`);
  }
  admission = { view: admissionView(), refused: null };

  /** Run windows: at each opening and closing, the limits and holds change (a timer to the next). */
  const windowWatcher = async () => {
    for (;;) {
      const next = coordinator.applyWindows();
      if (next === null) return;
      const opens = coordinator.holds().some((h) => h.kind === 'window');
      await sleep(Math.max(1, next - workflowTime()), { summary: opens ? 'until the run window opens' : 'until the run window closes' });
    }
  };
  const statusName = () => (governed ? coordinator.statusName() : coordinator.isPaused ? 'paused' : 'running');

  // Nodes whose partitions have all settled end their lineage run: as soon as one does (LINEAGE_ENDS_ON_SETTLE),
  // else looked at every two seconds at most, when the loop wakes.
  const lineageHeld = () => lineageAtDecision || (canaryLineage && canary?.limiting === true);
  const nodeSettled = (id: string) => coordinator.nodeSettled(id);
  /** A settled node's run waits for its end (wakes the loop; the same test as the end's, so the loop never spins on it). */
  const endDue = () => endsOnSettle && !lineageHeld() && plan.nodes.some((n) => session.awaitsEnd(n.id) && nodeSettled(n.id));
  let settledAt = -Infinity;
  const endSettledNodes = () => {
    if (lineageHeld()) return;
    if (endsOnSettle) {
      if (endDue()) session.nodesSettled(() => coordinator.progress(backfillId, 'running', runs).nodes, nodeSettled);
      return;
    }
    const now = workflowTime();
    if (now - settledAt < 2000) return;
    settledAt = now;
    session.nodesSettled(() => coordinator.progress(backfillId, 'running', runs).nodes);
  };

  /**
   * The canary's slice has settled and its node workflows have been told to end: a failure in it
   * stops the backfill; else its diff is read (canary.auto may go on by itself) and it waits for
   * approve or discard.
   */
  const canaryDecided = async () => {
    const gate = canary!;
    if (gate.current === 'running') {
      coordinator.settleCanary();
      writeAudit();
      if (gate.decided) return void log.warn(`backfill ${backfillId}: ${gate.view().note ?? 'the canary failed'}`);
      showStatus('awaiting_canary');
      show('awaiting_canary');
      let goes = false;
      try {
        goes = coordinator.noteCanaryDiff(await readCanaryDiff());
      } catch (error) {
        gate.noteDiffFailed(error instanceof Error ? error.message : String(error));
      }
      if (goes) {
        const bound = gate.config.auto!.maxRowChange;
        await decideCanary('approve', { by: CANARY_AUTO_IDENTITY, reason: `every partition of the canary passed its checks, and each dataset's rows changed within ${bound}` }, true).catch((error: unknown) => {
          log.warn(`canary.auto could not go on: ${String(error)}`);
        });
      }
    }
    showStatus('awaiting_canary');
    show('awaiting_canary');
    await condition(() => gate.decided);
    await condition(allHandlersFinished);
  };

  /** After the canary's approval: a node workflow that ran the slice closes first (until then a start with its id fails). */
  const startAgain = async (node: PlanNode) => {
    const again = coordinator.startAgain(node.id);
    for (let attempt = 1; ; attempt++) {
      try {
        return await startNode(node, again.ready);
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        if (attempt >= 120) {
          throw ApplicationFailure.nonRetryable(`node workflow ${nodeWorkflowId(backfillId, node.id)} did not close after the canary: see its history, then 'backfill resume ${shellWord(backfillId)}'`, 'NodeWorkflowLost');
        }
        await sleep(Math.min(attempt, 5) * 1000, { summary: 'until the canary\'s node workflow closes' });
      }
    }
  };

  /**
   * A node workflow could not be started (behind NODE_START_FAILURE_CLEANED): once the other
   * starts have settled, the runs that did start have their lineage START, and the backfill fails
   * like any failure (below: the started node workflows are cancelled, their runs end, the leases
   * go); a node workflow it did not start is not its own to cancel.
   */
  const nodeStartFailed = async (starts: ReadonlyArray<Promise<unknown>>, first: unknown): Promise<never> => {
    const outcomes = await Promise.allSettled(starts);
    const started = plan.nodes.filter((_, i) => outcomes[i]!.status === 'fulfilled').map((n) => n.id);
    for (const node of plan.nodes) if (!started.includes(node.id)) notStarted.add(node.id);
    session.started(started);
    const node = plan.nodes.find((n) => notStarted.has(n.id))!;
    const id = nodeWorkflowId(backfillId, node.id);
    const why =
      first instanceof WorkflowExecutionAlreadyStartedError
        ? `node workflow ${id} is already running, so backfill '${backfillId}' could not start it (left running by an earlier run of the backfill, or started by hand): ` +
          `run 'backfill resume ${shellWord(backfillId)}', which closes node workflows left running and goes on, or cancel that workflow first`
        : `node workflow ${id} could not be started (${first instanceof Error ? first.message : String(first)}): see why, fix it, then run 'backfill resume ${shellWord(backfillId)}'`;
    throw ApplicationFailure.create({ message: why, type: 'NodeWorkflowNotStarted', nonRetryable: true });
  };

  /** The end of a backfill whose partitions settled (and whose decision, staged or canary, is taken). */
  const end = async (): Promise<BackfillResult> => {
    const state = coordinator.endState as 'completed' | 'completed_with_failures' | 'discarded' | 'canary_failed';
    const progress = coordinator.progress(backfillId, state, runs);
    // Lineage: discarded versions were never anyone's output; a canary stopped by a failure failed.
    const why = state === 'canary_failed' ? (canary?.view().note ?? undefined) : state === 'discarded' ? DISCARDED_WHY : undefined;
    const lineageEnd = [state === 'discarded' ? 'cancelled' : state === 'canary_failed' ? 'failed' : state, progress.nodes, why, state === 'canary_failed'] as const;
    if (session.emitsLineage && session.releases && patched(LINEAGE_ENDS_AFTER_RELEASE)) {
      try {
        await session.release();
      } catch (error) {
        // The nodes' runs end as their outputs stand; the backfill's run fails with the release (its cleanup ends nothing again).
        if (!isCancellation(error)) session.ended(...lineageEnd, error instanceof Error ? failureWhy(error) : String(error));
        throw error;
      }
      session.ended(...lineageEnd);
    } else {
      session.ended(...lineageEnd);
      await session.release();
    }
    await session.landed();
    showStatus(state);
    show(state);
    return { state, progress, carry: endCarry() };
  };

  /**
   * Once a decision under way has landed (the leases are released only after it): what it did
   * that a cancel no longer undoes, and whether it ended the backfill; null: nothing was decided.
   */
  const decisionLanded = async (): Promise<LateCancel | null> => {
    await condition(() => !deciding);
    if (staged?.current === 'published') return { note: 'the staged versions were published before the cancel took effect', ended: true };
    if (staged?.current === 'discarded' || canary?.current === 'discarded') return { note: 'the staged versions were dropped before the cancel took effect', ended: true };
    if (coordinator.canaryToLift) return { note: "the canary's slice was published before the cancel took effect; the rest does not run", ended: false };
    return null;
  };

  try {
    showStatus(statusName());
    if (starting) {
      // The warehouse the workers write to, and a lease on every dataset, before anything is written
      // (after the policy's judgement: a refused start leases nothing).
      if (session.leasing) await session.begin();
      // Partitions that --only-changed keeps count as done before anything is released.
      coordinator.releaseInitial(input.skip);
      coordinator.refreshSettings();
      // A resumed run: what the ended run had in hands may be published already (recheck).
      const starts = plan.nodes.map((node) => startNode(node, coordinator.takeInitial(node.id), coordinator.recheckOf(node.id)));
      try {
        await Promise.all(starts);
      } catch (error) {
        if (!patched(NODE_START_FAILURE_CLEANED)) throw error;
        await nodeStartFailed(starts, error);
      }
      session.started();
    }
    void prober().catch((error: unknown) => {
      if (!isCancellation(error)) log.error(`node checks failed: ${String(error)}`);
    });
    if (governed) {
      void windowWatcher().catch((error: unknown) => {
        if (!isCancellation(error)) log.error(`run window timer failed: ${String(error)}`);
      });
    }

    // A canary runs this twice: its slice, then (approved) the rest.
    for (;;) {
      for (;;) {
        await condition(
          () =>
            coordinator.needsRefresh ||
            (!handingOver && (flushable() || unreachable.size > 0)) ||
            (sending.size === 0 && (coordinator.settled || shouldContinueAsNew())) ||
            endDue(),
        );
        coordinator.refreshSettings();
        showStatus(statusName());
        show();
        endSettledNodes();
        // With reports streaming in there may never be a moment with nothing to send: once the
        // history is long enough, nothing more is sent, the signals in flight land, and the
        // outbox is carried. The run then ends within a bounded number of events of the limit.
        if (!handingOver && !coordinator.settled && shouldContinueAsNew() && patched(BOUNDED_CONTINUE_AS_NEW)) handingOver = true;
        if (!handingOver) {
          await restartUnreachable();
          flush();
        }
        if (sending.size > 0 || (!handingOver && (flushable() || unreachable.size > 0))) continue;
        if (coordinator.settled) break;
        if (shouldContinueAsNew()) {
          await session.landed();
          await condition(allHandlersFinished);
          return await continueAsNew<typeof backfillWorkflow>({
            ...input,
            spec,
            carry: carryOf(true),
          });
        }
      }

      // Settled: every partition is done, failed or blocked. Let the node workflows end.
      coordinator.finishAll();
      endAfterFinish = patched(END_AFTER_FINISH);
      flush();
      if (endAfterFinish) {
        // Whatever is put back in the outbox while the nodes are told to finish is sent too.
        for (;;) {
          await condition(() => sending.size === 0 || flushable());
          if (sending.size === 0 && !flushable()) break;
          flush();
        }
      } else {
        await condition(() => sending.size === 0 && !flushable());
      }
      if (canary && !canary.decided) await canaryDecided();
      if (canary && coordinator.canaryToLift) {
        // Approved and published: the rest is released, and the node workflows (which ended with the slice) start again.
        coordinator.liftCanary();
        finishedNodes.clear();
        await Promise.all(plan.nodes.map((node) => startAgain(node)));
        continue;
      }
      break;
    }
    if (staged) {
      // Every partition is staged (or failed): the datasets stay leased while the backfill waits.
      staged.settle();
      showStatus('staged');
      show('staged');
      await condition(() => staged.decided);
      await condition(allHandlersFinished);
    }
    return await end();
  } catch (error) {
    const cancelled = isCancellation(error);
    // A bug (an error that is no TemporalFailure, nor a continue-as-new) fails the workflow task, which is retried: the run is not over, so nothing is cleaned.
    const failed = !cancelled && (error instanceof ApplicationFailure || (error instanceof TemporalFailure && patched(EVERY_FAILURE_CLEANED)));
    if (!cancelled && !failed) throw error;
    winding = true;
    const late = outlivesCancel ? await CancellationScope.nonCancellable(decisionLanded) : null;
    if (cancelled && late?.ended) {
      // The decision ended the backfill before the cancel could: it ends as the decision says (the decision's caller hears it first).
      if (cancelWhenItComes) coordinator.noteCancelCame(late);
      writeAudit();
      return await CancellationScope.nonCancellable(async () => {
        await condition(allHandlersFinished);
        return await end();
      });
    }
    // Cancelled, or failed for good: the node workflows stop too.
    await CancellationScope.nonCancellable(async () => {
      if (cancelled && cancelWhenItComes) coordinator.noteCancelCame(late ?? undefined);
      else if (cancelled && governed && !wasAnnounced()) coordinator.noteUnannouncedCancel();
      writeAudit();
      showStatus(cancelled ? 'cancelled' : 'failed');
      const live = plan.nodes.filter((n) => !finishedNodes.has(n.id) && !unreachable.has(n.id) && !notStarted.has(n.id));
      await Promise.all(
        live.map((n) =>
          getExternalWorkflowHandle(nodeWorkflowId(backfillId, n.id))
            .cancel()
            .catch(() => cancelledNodes.add(n.id)),
        ),
      );
      const wound = await condition(() => live.every((n) => cancelledNodes.has(n.id)), CANCEL_GRACE);
      if (!wound) log.warn('node workflows did not confirm cancellation in time');
      session.ended(cancelled ? 'cancelled' : 'failed', coordinator.progress(backfillId, cancelled ? 'cancelled' : 'failed', runs).nodes, cancelled ? late?.note : failureWhy(error as TemporalFailure));
      await session.release().catch((failure: unknown) => log.warn(`the datasets' leases were not released: ${String(failure)}`));
      await session.landed();
    });
    throw error;
  }
}
