/**
 * What the backfill workflow asks of the policy at its start, through activities of the workflow
 * workers (on the workflow task queue's policy queue, which only they poll; local activities
 * before the patch governance-activities-regular): the workers of the workflow task queue hold
 * the policy file (every one the same file), so the policy that judges a backfill is the platform
 * team's, whoever started it and however (the command line, the client library, Temporal's own CLI).
 *
 * - `loadPolicy`: the worker's policy file and its hash (recorded in the history: the activity's
 *   result, and the memo);
 * - `estimatePartitionSeconds`: the trusted estimate, from the warehouse's ledger, only when the
 *   policy has an approval threshold in partition-seconds (a client's figure is never taken);
 * - `verifySignature`: a signed start (and, later, each approval);
 * - `earlierRuns`: the runs of a signed start's workflow id;
 * - and, a regular activity on the backfill's first node's task queue, `claimSignature`: an
 *   admitted signed start recorded in the backfill's warehouse.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, type ActivityOptions, log, patched, proxyActivities, proxyLocalActivities, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { ApprovalActivities } from '../activities/approval.ts';
import type { EstimateActivities } from '../activities/estimate.ts';
import type { PolicyActivities } from '../activities/policy.ts';
import type { WarehouseActivities } from '../activities/warehouse-activities.ts';
import { carryHash, checkRunFollowed, checkSignedStart, checkStartOnce, planHash, runsUnknownCheck, type SignatureCheck, type SignedAction } from '../core/approval.ts';
import { ANY_POLICY, policyTaskQueue } from '../core/policy-pin.ts';
import { ACTIVITY_HEARTBEAT_TIMEOUT } from '../core/heartbeat.ts';
import { UNKNOWN_IDENTITY, parseMeta, type AuditEntry } from '../core/audit.ts';
import type { BackfillCoordinator } from '../core/coordinator.ts';
import { EMPTY_POLICY, Governance, startRequestViolations, startTextTooLong, type Admission, type AdmissionInput } from '../core/governance.ts';
import type { Plan } from '../core/plan.ts';
import { POLICY_REFUSAL, carriedOverridesAskedReasons, checkControl, describeViolations, maxSignatureAgeMs } from '../core/policy.ts';
import type { BackfillInput } from '../core/protocol.ts';
import { RangeSet, type RangesJSON } from '../core/ranges.ts';
import { checkClaimed, claimUnknownCheck, signatureClaimKey, type ClaimOutcome } from '../core/signature-claim.ts';
import { workflowTime } from './clock.ts';

/**
 * Patch (docs/workflow-versions.md): a rollback or discard of a backfill admitted under a policy
 * is judged only by a worker with a policy (`admittedUnder`, core/policy-pin.ts). Only one
 * whose input gives the hash asks.
 */
export const ENDED_CONTROL_PINNED = 'ended-control-pinned';
/**
 * Patch (docs/workflow-versions.md): a signed start is bound to its run. One with a carry (a
 * resume, a retry-failed) must be signed as that action (`resume`, `retry-failed`) over the hash
 * of that carry, so that a start's signature, or one made for another end of the backfill, does
 * not admit it. Any signed start is refused when its signature was older than the policy's
 * `approval.maxSignatureAge` at the run's start (or dated ahead of it), or its request gives
 * another reason than the one signed (the audit trail keeps the request's). Before, every
 * signature was checked as a start's, with no carry, age or reason: one copied from any earlier
 * run's input admitted a later run of the same plan, with any reason. Only a start that carries
 * a signature asks.
 */
export const SIGNED_START_BOUND = 'signed-start-bound';
/**
 * Patch (docs/workflow-versions.md): a signed start, resume or retry-failed admits one backfill,
 * once. Its signature must name the backfill whose workflow id runs it (not only the one its input
 * names: refused `other_backfill`) and the run it follows (`after-run`; an older client's does
 * not: refused `old_signature`), judged by the runs of its workflow id the server lists (the
 * `earlierRuns` local activity; refused `already_used`, or `runs_unknown` when the workers cannot
 * list them): a start's must be the latest; a resume's or retry-failed's (the run whose end is
 * its carry) must be listed with no admitted run after it. Before, a signed run's input, copied
 * from its history, started the backfill again within `approval.maxSignatureAge`, under another
 * workflow id or its own once it ended. Only a start that carries a signature (judged under
 * signed-start-bound) asks.
 */
export const SIGNED_START_ONCE = 'signed-start-once';
/**
 * Patch (docs/workflow-versions.md): an admitted signed start, resume or retry-failed claims its
 * signed text in the backfill's warehouse (the `claimSignature` warehouse activity on its first
 * node's task queue; core/signature-claim.ts), and is refused `already_used`, naming the run,
 * when another run claimed it before, or `claim_unknown` when the warehouse could not answer
 * within ten minutes. Before, "once" rested on the runs the server lists alone: once the
 * signed run was deleted, reset to before its admission or past the namespace's retention, its
 * copied input ran again. Only a run admitted with a signature judged under signed-start-once asks.
 */
export const SIGNED_START_CLAIMED = 'signed-start-claimed';

/**
 * Patch (docs/workflow-versions.md): a first judgement (a start; a rollback or discard of a
 * backfill admitted without a policy) taken by a workflow worker without a policy, while a worker
 * with one polled the queue's policy queue lately (its marked identity), is passed on to the
 * policy queue, where a worker with a policy judges it (pin `ANY_POLICY`). Before, the worker
 * without a policy admitted it unjudged. Only a run whose worker reported such pollers asks.
 */
export const FIRST_JUDGEMENT_PASSED_ON = 'first-judgement-passed-on';

/**
 * Patch (docs/workflow-versions.md): a start whose reason or identity is longer than a control's
 * may be (2000 and 200 characters) is refused, and its refusal's audit entry keeps only their
 * beginnings; before, they were kept whole in the governance state, the audit trail, the memo and
 * every continue-as-new. Only such a start asks.
 */
export const START_REQUEST_BOUNDED = 'start-request-bounded';

/**
 * Patch (docs/workflow-versions.md): the governance activities (the policy's first judgement,
 * the trusted estimate, signature checks, the listing of a signed start's runs) are regular
 * activities on the workflow task queue's policy queue, which every workflow worker polls, not
 * local activities. A query that reached a workflow task while one of its local activities ran
 * made the TypeScript SDK (1.24.0) record the activity's marker in that task and what the
 * workflow did with its result in the next: a history the same code cannot replay
 * (test/replay/known-issues, test/integration/query-at-start.test.ts). Every run asks, at its
 * first such activity.
 */
export const GOVERNANCE_ACTIVITIES_REGULAR = 'governance-activities-regular';

/**
 * Patch (docs/workflow-versions.md): the node limits an operator set (set-rate, set-concurrency
 * --node) on the run a resume or retry-failed goes on from are judged by the policy's caps only,
 * not asked for a reason again: each was judged, its reason with it, when it was set. Before,
 * each was judged as that control sent with no reason, so under `reasons.required: [set-rate]`
 * every new run of a backfill whose node rate was ever set was refused ("set-rate needs a
 * reason"), whatever reason the resume gave. Only a new run whose carried limits the policy's
 * reasons rule would have refused so asks.
 */
export const CARRIED_OVERRIDES_CAPS_ONLY = 'carried-overrides-caps-only';

type GovernanceActivities = PolicyActivities & ApprovalActivities & EstimateActivities;
type GovernanceOptions = Required<Pick<ActivityOptions, 'startToCloseTimeout' | 'retry'>> & Pick<ActivityOptions, 'scheduleToCloseTimeout'>;
// A policy file the worker cannot read is not retried (InvalidPolicy); anything else a few times.
const governanceOptions: GovernanceOptions = { startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['InvalidPolicy'] } };
/**
 * A signed start's runs: a visibility store that is busy or down for a moment (rate limited,
 * restarting) is asked again for about a minute before the start is refused (`runs_unknown`),
 * not three times within seconds.
 */
const listingOptions: GovernanceOptions = {
  startToCloseTimeout: '1 minute',
  // All the attempts together: a listing that hangs holds the admission no longer than this.
  scheduleToCloseTimeout: '90 seconds',
  retry: { maximumAttempts: 10, initialInterval: '1s', maximumInterval: '10s' },
};

const localGovernance = proxyLocalActivities<GovernanceActivities>(governanceOptions);
// Backoffs stay under the SDK's local retry threshold, so no timer enters the history.
const localListing = proxyLocalActivities<GovernanceActivities>(listingOptions);

/** The governance activities this run calls: regular ones on the policy queue (behind the patch), else local. */
export function governanceActivities(options: { listing?: boolean } = {}): GovernanceActivities {
  if (!patched(GOVERNANCE_ACTIVITIES_REGULAR)) return options.listing ? localListing : localGovernance;
  return proxyActivities<GovernanceActivities>({ taskQueue: policyTaskQueue(workflowInfo().taskQueue), ...(options.listing ? listingOptions : governanceOptions), heartbeatTimeout: ACTIVITY_HEARTBEAT_TIMEOUT });
}

/**
 * The policy of the worker that judges: any workflow worker (`pinned` null), or one that has a
 * policy (the backfill was admitted under `pinned`). That one is a regular activity on the policy
 * queue of the workflow task queue (every workflow worker polls it), so that a worker that
 * declines it (no policy: retryable `PolicyMismatch`) leaves it to another, and the Web UI shows
 * why it waits; a local activity would be retried on the worker that declined it, for ever.
 */
async function loadPolicy(backfillId: string, pinned: string | null) {
  if (pinned === null) {
    // On the policy queue the activity is told the workflow queue it judges for (a local activity's own queue is that one),
    // and retried as a pinned load is: a worker from before the patch takes the request for a pin and declines it, for another.
    const first = patched(GOVERNANCE_ACTIVITIES_REGULAR)
      ? await policyQueue('policy: a workflow worker of the queue').loadPolicy({ workflowQueue: workflowInfo().taskQueue })
      : await governanceActivities().loadPolicy();
    // This worker has no policy, but others of its queue do: one of them judges (it would admit unjudged what they refuse).
    if (first.kind === 'none' && first.othersHaveOne === true && patched(FIRST_JUDGEMENT_PASSED_ON)) return pinnedLoad(backfillId, ANY_POLICY);
    return first;
  }
  return pinnedLoad(backfillId, pinned);
}

/** Policy loads on the policy queue: a worker that declines one (`PolicyMismatch`) leaves it to another, retried until one takes it. */
function policyQueue(summary: string) {
  return proxyActivities<PolicyActivities>({
    taskQueue: policyTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: ACTIVITY_HEARTBEAT_TIMEOUT,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds', nonRetryableErrorTypes: ['InvalidPolicy'] },
    summary,
  });
}

function pinnedLoad(backfillId: string, pinned: string) {
  const summary = pinned === ANY_POLICY ? 'policy: a worker of the queue with a policy' : 'policy: a worker with the policy this backfill was admitted under';
  return policyQueue(summary).loadPolicy({ backfillId, queue: workflowInfo().taskQueue, hash: pinned });
}

/** The reason a local activity failed, for a message. */
export function failureMessage(error: unknown): string {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Partitions done already (a resumed run's carry) or skipped (`--only-changed`), by node. */
function notRun(plan: Plan, coordinator: BackfillCoordinator, skip: Record<string, RangesJSON> = {}): Record<string, RangesJSON> {
  return Object.fromEntries(plan.nodes.map((n) => [n.id, coordinator.readiness.done(n.id).clone().addAll(RangeSet.fromJSON(skip[n.id])).toJSON()]));
}

/**
 * The policy's verdict on this start: the governance it runs under, or the violations. A policy
 * the worker cannot read refuses the start (running unjudged would bypass it). `pinned`: the
 * hash of the policy the backfill's last run was admitted under (a new run of one that ended,
 * behind the patch policy-pinned), which only a worker with a policy judges. `goesOnAs`: the
 * operator action that started a new run of an ended backfill, whose reasons rule applies too
 * (behind the patch resume-reasons-judged).
 */
export async function judgeStart(
  input: BackfillInput,
  plan: Plan,
  coordinator: BackfillCoordinator,
  options: { pinned?: string | null; goesOnAs?: 'resume' | 'retry' } = {},
): Promise<Admission & { policy: { hash: string | null; path: string | null } | null; boundedRequest: boolean }> {
  const info = workflowInfo();
  const boundedRequest = startTextTooLong(input.governance) && patched(START_REQUEST_BOUNDED);
  let loaded: Awaited<ReturnType<GovernanceActivities['loadPolicy']>>;
  try {
    loaded = await loadPolicy(input.backfillId, options.pinned ?? null);
  } catch (error) {
    if (isCancellation(error)) throw error;
    const message = `the workers cannot read their policy file: ${failureMessage(error)}`;
    return { admitted: false, violations: [{ rule: 'policy file', message }], message, policy: null, boundedRequest };
  }
  const policy = loaded.kind === 'policy' ? loaded.policy : EMPTY_POLICY;
  const source = loaded.kind === 'policy' ? { hash: loaded.hash, path: loaded.path } : null;
  const skipped = notRun(plan, coordinator, input.skip);
  const hash = planHash({ spec: input.spec, range: input.range, ...(input.skip ? { skip: input.skip } : {}), stage: input.stage === true, canary: input.canary });
  let estimate: number | undefined;
  if (policy.approval.maxPartitionSeconds !== undefined) {
    const result = await governanceActivities().estimatePartitionSeconds({ spec: input.spec, range: input.range, skip: skipped });
    if (result.partitionSeconds !== null) estimate = result.partitionSeconds;
  }
  const request = input.governance ?? {};
  let startSignature: SignatureCheck | null = null;
  /** The signature was judged once by the runs listed (signed-start-once): an admitted one is claimed in the warehouse too. */
  let claims = false;
  // A malformed request is refused by admit; its signature is checked only when well-formed.
  if (request.signature && startRequestViolations(request, { bounded: boundedRequest }).length === 0) {
    const bound = patched(SIGNED_START_BOUND);
    // A run with a carry goes on from an ended one: signed as its action, over the carry it starts from.
    const goesOnFrom = bound && input.carry !== undefined ? { action: (options.goesOnAs === 'retry' ? 'retry-failed' : 'resume') as SignedAction, carryHash: carryHash(input.carry) } : null;
    const check = await governanceActivities().verifySignature({
      signature: request.signature.signature,
      text: request.signature.text,
      expected: { action: goesOnFrom?.action ?? 'start', backfillId: input.backfillId, namespace: info.namespace, planHash: hash, ...(goesOnFrom ? { carryHash: goesOnFrom.carryHash } : {}) },
      allowedSigners: policy.signers,
      now: workflowTime(),
    });
    // Aged at the run's start as the server recorded it: workers that were down a while do not expire it.
    startSignature = bound ? checkSignedStart(check, request, { now: info.runStartTime.getTime(), maxAgeMs: maxSignatureAgeMs(policy) }) : check;
    if (bound && patched(SIGNED_START_ONCE)) {
      startSignature = await startedOnce(startSignature);
      claims = true;
    }
  }
  const done = plan.nodes.reduce((sum, n) => sum + RangeSet.fromJSON(skipped[n.id]).size, 0);
  const state = coordinator.controlState();
  const carried = input.carry?.governance;
  const priority = info.priority;
  const overrides = input.carry?.overrides ?? {};
  const overrideReasons = carriedOverridesAskedReasons(policy, overrides) && !patched(CARRIED_OVERRIDES_CAPS_ONLY);
  const admission: AdmissionInput = {
    backfillId: input.backfillId,
    policy,
    policyHash: source?.hash ?? null,
    policyPath: source?.path ?? null,
    spec: input.spec,
    partitions: Math.max(0, plan.totalPartitions - done),
    limits: { rate: state.rate, concurrency: state.concurrency },
    overrides,
    ...(overrideReasons ? { overrideReasons } : {}),
    planHash: hash,
    ...(estimate !== undefined ? { estimate } : {}),
    request,
    startSignature,
    priority: { key: priority?.priorityKey || null, fairnessKey: priority?.fairnessKey || null, fairnessWeight: priority?.fairnessWeight || null },
    now: workflowTime(),
    boundedRequest,
    ...(options.goesOnAs ? { goesOnAs: options.goesOnAs } : {}),
    ...(carried
      ? {
          spent: { retries: carried.budgets.retries.used, cost: carried.budgets.cost?.used ?? null, costMetric: carried.budgets.cost?.metric ?? null },
          audit: carried.audit,
        }
      : {}),
  };
  let verdict = Governance.admit(admission);
  // Only an admitted run uses its signature up: one refused for any other reason leaves it unclaimed.
  if (claims && verdict.admitted && startSignature?.ok && patched(SIGNED_START_CLAIMED)) {
    const claimed = await claimSignature(startSignature, request.signature!.text, { input, taskQueue: plan.nodes[0]!.spec.taskQueue });
    if (!claimed.ok) verdict = Governance.admit({ ...admission, startSignature: claimed });
  }
  return { ...verdict, policy: source, boundedRequest };
}

/**
 * A verified signed start (or resume, or retry-failed), bound to this workflow's backfill and to
 * the run it follows, by the runs of its workflow id the server lists. A continued run is not
 * judged again.
 */
async function startedOnce(check: SignatureCheck): Promise<SignatureCheck> {
  const info = workflowInfo();
  const own = checkStartOnce(check, { workflowId: info.workflowId });
  if (!own.ok) return own;
  let listed: Awaited<ReturnType<GovernanceActivities['earlierRuns']>>;
  try {
    listed = await governanceActivities({ listing: true }).earlierRuns({ workflowId: info.workflowId, runId: info.runId });
  } catch (error) {
    if (isCancellation(error)) throw error;
    return runsUnknownCheck(failureMessage(error), own.verified.subject);
  }
  return listed.ok ? checkRunFollowed(own, listed.runs, info.runId) : runsUnknownCheck(listed.reason, own.verified.subject);
}

/**
 * The claim of an admitted signed start in the backfill's warehouse (core/signature-claim.ts),
 * through the warehouse activities of the workers of its first node's task queue (they write to
 * the backfill's warehouse; a resumed backfill's must be the one it started on). A warehouse that
 * fails for now (or whose queue has no worker yet) is asked again for up to ten minutes, then the start is refused (`claim_unknown`);
 * one that keeps no claims says so, and the runs listed judge alone.
 */
async function claimSignature(check: Extract<SignatureCheck, { ok: true }>, text: string, where: { input: BackfillInput; taskQueue: string }): Promise<SignatureCheck> {
  const info = workflowInfo();
  const warehouse = proxyActivities<WarehouseActivities>({
    taskQueue: where.taskQueue,
    startToCloseTimeout: '1 minute',
    heartbeatTimeout: ACTIVITY_HEARTBEAT_TIMEOUT,
    // All the attempts together, a worker missing from the queue too: the admission waits no longer than this.
    scheduleToCloseTimeout: '10 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: ['WrongWarehouse'] },
    summary: 'warehouse: claim the signed start',
  });
  const warehouseId = where.input.carry?.warehouse?.id;
  let outcome: ClaimOutcome;
  try {
    outcome = await warehouse.claimSignature({
      key: signatureClaimKey(text),
      backfillId: where.input.backfillId,
      workflowId: info.workflowId,
      runId: info.runId,
      ...(warehouseId !== undefined ? { warehouseId } : {}),
    });
  } catch (error) {
    if (isCancellation(error)) throw error;
    return claimUnknownCheck(failureMessage(error), check.verified.subject, where.taskQueue);
  }
  if (!outcome.claimed) {
    log.warn(`the signed start of ${info.workflowId} is not recorded in the warehouse (${outcome.unsupported}): the runs the server lists judged it alone`);
    return check;
  }
  return checkClaimed(check, outcome, { workflowId: info.workflowId, runId: info.runId });
}

/** The failure a refused start ends with: the rules and how to comply, typed with the error code. */
export function refusedStart(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message: `${POLICY_REFUSAL}\n${message}`, type: 'policy_violation', nonRetryable: true });
}

/**
 * A control that acts on an ended backfill in a workflow of its own (a rollback, a discard of
 * what a cancelled staged backfill left): the policy's rules for it (a reason) are met first,
 * and who asked and why go to the memo, refused or applied, with `details` of the policy's hash.
 * `pin.hash`: the policy the backfill was admitted under (behind the patch ended-control-pinned),
 * whose workers alone judge it.
 */
export async function judgeEndedControl(
  action: 'rollback' | 'discard',
  audit: unknown,
  details: (policyHash: string | null) => AuditEntry['details'],
  pin: { backfillId: string; hash: string | null } = { backfillId: '', hash: null },
): Promise<void> {
  let meta: ReturnType<typeof parseMeta>;
  try {
    meta = parseMeta(audit);
  } catch {
    meta = {};
  }
  let loaded: Awaited<ReturnType<GovernanceActivities['loadPolicy']>>;
  try {
    loaded = await loadPolicy(pin.backfillId, pin.hash);
  } catch (error) {
    if (isCancellation(error)) throw error;
    throw ApplicationFailure.create({ message: `the workers cannot read their policy file: ${error instanceof Error ? (error.cause as Error | undefined)?.message ?? error.message : String(error)}`, type: 'policy_violation', nonRetryable: true });
  }
  const policy = loaded.kind === 'policy' ? loaded.policy : EMPTY_POLICY;
  const violations = checkControl(policy, { action, ...(meta.reason !== undefined ? { reason: meta.reason } : {}) });
  const entry = { seq: 1, at: workflowTime(), action, identity: meta.identity ?? UNKNOWN_IDENTITY, verified: false, reason: meta.reason ?? null };
  if (violations.length > 0) {
    upsertMemo({ audit: { ...entry, outcome: 'refused', details: { why: describeViolations(violations) } } });
    throw ApplicationFailure.create({ message: `the policy refuses this ${action}:\n${describeViolations(violations)}`, type: 'policy_violation', nonRetryable: true });
  }
  upsertMemo({ audit: { ...entry, outcome: 'applied', details: details(loaded.kind === 'policy' ? loaded.hash : null) } });
}
