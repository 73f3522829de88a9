/**
 * `nodeWorkflow`: runs the ready partitions of one node, as a thin loop around
 * `NodeScheduler` (core/scheduler.ts), which decides what starts when.
 *
 * The parent hands it ready partitions (batched `nodeControl` signals); it starts the
 * batches the scheduler allows as `runPartitions` activities, feeds their outcomes back,
 * and reports completions and failures to the parent in batched `nodeReport` signals, at
 * most one in flight and at most one per report interval. Pacing ticks are one timer each,
 * and time is the workflow's own (deterministic) clock. Before its history grows large it
 * continues as new: it lets its in-flight batches land for a short while, then carries
 * those still running instead of waiting for them.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  metricMeter,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { batchDetails } from '../core/batch-details.ts';
import { isNoSpending, noSpending, spend, type PartitionCost } from '../core/budget.ts';
import { parseDuration } from '../core/duration.ts';
import { BackfillError } from '../core/errors.ts';
import { parseNodeControl } from '../core/node-control.ts';
import { policyTaskQueue } from '../core/policy-pin.ts';
import { windowStrings } from '../core/partitions.ts';
import { expandNode, type PlanNode } from '../core/plan.ts';
import {
  DEFAULT_TUNING,
  NON_RETRYABLE_TYPES,
  type NodeControl,
  type NodeInput,
  type NodeOrders,
  type NodeOrdersRequest,
  type NodeReport,
  type NodeSettings,
  type PartitionFailureDetails,
  type PartitionNode,
  type PartitionResult,
  type PartitionTask,
  type RunPartitionsInput,
  type RunPartitionsResult,
} from '../core/protocol.ts';
import { HARD_BREAK, nodeCurrentDetails, nodeSummary } from '../core/details.ts';
import { partitionInputs } from '../core/inputs.ts';
import { NODE_GAUGES } from '../core/metrics.ts';
import { RangeSet } from '../core/ranges.ts';
import { DEFAULT_DEFERRAL_BACKOFF_MS, DEFAULT_MAX_DEFERRALS, NodeScheduler, schedulerOptionsOf, type Batch, type BatchOutcome } from '../core/scheduler.ts';
import type { ResolvedNode } from '../core/spec.ts';
import { nodeTuningProblem } from '../core/tuning.ts';
import { workflowTime } from './clock.ts';
import { assertCoreGeneration, nodeControlSignal, nodeReportSignal, nodeViewQuery, refusal } from './definitions.ts';

/**
 * Patch (docs/workflow-versions.md): a node workflow's first run whose `tuning` is missing or out
 * of bounds (`nodeTuningProblem`: one started by hand with Temporal's CLI; its backfill always
 * sends one within them) is refused `invalid_argument`, naming the field, before anything runs.
 * Before, it read it as it came: one with no tuning failed every workflow task, for ever, and
 * values out of bounds were used as timers and history limits. Only a refused node start asks
 * (`core2-v` records one); keys the node does not read pass.
 */
export const NODE_TUNING_CHECKED = 'node-tuning-checked';

/** Patch (docs/workflow-versions.md): no report leaves once the run decided to continue as new. */
export const HOLD_REPORTS_AT_CONTINUE_AS_NEW = 'hold-reports-at-continue-as-new';
/** Patch (docs/workflow-versions.md): in-flight batches land (for at most `tuning.drainMs`) before continue-as-new. */
export const DRAIN_BEFORE_CONTINUE_AS_NEW = 'drain-before-continue-as-new';
/** Patch (docs/workflow-versions.md): a change in the number of running partitions is reported. */
export const REPORT_RUNNING = 'report-running';
/** Patch (docs/workflow-versions.md): a node that runs out of work reports its last results at once, not after the report interval. */
export const REPORT_WHEN_IDLE = 'report-when-idle';
/** Patch (docs/workflow-versions.md): a concurrency of 0 (a hold) stops a node under a latency cap too. */
export const LATENCY_CAP_HOLDS = 'latency-cap-holds';
/** Patch (docs/workflow-versions.md): automatic batches started together share the queue evenly (SchedulerOptions.evenShares). */
export const EVEN_BATCH_SHARES = 'even-batch-shares';
/** Patch (docs/workflow-versions.md): the latency cap climbs only while it holds work back (SchedulerOptions.climbWhenBinding). */
export const LATENCY_CAP_CLIMBS_WHEN_IT_BINDS = 'latency-cap-climbs-when-it-binds';
/** Patch (docs/workflow-versions.md): a node with a latency target starts at one activity and at most doubles a step (SchedulerOptions.slowStart). */
export const LATENCY_SLOW_START = 'latency-slow-start';
/**
 * Patch (docs/workflow-versions.md): a batch's failure details (what it says it finished, which
 * partition failed, its attempt) are parsed against the batch (`batchDetails`); before,
 * they were taken as they came, so a worker's malformed details could count partitions of no
 * batch done, or fail the workflow task.
 */
export const BATCH_DETAILS_CHECKED = 'batch-details-checked';
/**
 * Patch (docs/workflow-versions.md): a completed batch's result (what it finished, the partition
 * throttled, its attempt) is read against the batch as its failure details are (`batchDetails`);
 * the batch's partitions it does not account for run again. Before, it was taken as it came.
 */
export const BATCH_RESULT_CHECKED = 'batch-result-checked';
/**
 * Patch (docs/workflow-versions.md): a partition's result (in a batch's result or failure
 * details) whose amounts the activity never writes (a negative row count, version or time, an
 * amount beyond 2^53) counts nothing finished; before, it counted, and its amounts, added up,
 * made every later report of the node one the parent refuses. Every node run asks for it.
 */
export const BATCH_AMOUNTS_CHECKED = 'batch-amounts-checked';
/**
 * Patch (docs/workflow-versions.md): a partition a completed batch does not account for
 * (`unaccountedFor`) counts as a failed attempt (for the retry budget too), and fails after
 * `retry.maxAttempts` of them (SchedulerOptions.unaccounted). Before, it ran again uncounted:
 * for ever when a worker completed every batch with nothing finished.
 */
export const UNACCOUNTED_COUNTS_AS_ATTEMPT = 'unaccounted-counts-as-attempt';
/**
 * Patch (docs/workflow-versions.md): a partition a completed batch deferred while its run window
 * had not closed is counted (not as an attempt): after its second deferral the node starts
 * nothing for a back-off that doubles, and after `tuning.maxDeferrals` it fails, naming the task
 * queue (SchedulerOptions.deferrals). Before, it ran again at once: for ever when a worker
 * completed every batch saying it deferred it.
 */
export const DEFERRALS_BOUNDED = 'deferrals-bounded';

/**
 * Patch (docs/workflow-versions.md): a `nodeControl` that brings settings or a spec only rings a
 * bell: the node asks its parent for them (`fetchNodeOrders`, the parent's `nodeOrders` query)
 * and applies the answer. Signals carry no sender, so before, one sent by hand with
 * `paused: false` ran a backfill held for a signed approval or a run window, and one with another
 * SQL ran it unaudited. A continued run asks once as it begins (a bell may have rung as the last
 * one handed over). Ready partitions and the order to finish are still taken from the signal.
 */
export const ORDERS_FROM_PARENT = 'orders-from-parent';

/** The parent is asked for a few minutes at most; a node whose parent never answers keeps the settings it has (the next bell asks again). */
const ORDERS_OPTIONS = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 20 },
  summary: "ask the backfill's workflow for this node's settings and spec",
} as const;

/** How far a worker's clock may run ahead of the workflow's: a batch it deferred this long before its window's close deferred for the close. */
const WINDOW_CLOCK_SKEW_MS = 60_000;

type PartitionActivities = { runPartitions(input: RunPartitionsInput): Promise<RunPartitionsResult> };
type OrdersActivities = { fetchNodeOrders(request: NodeOrdersRequest): Promise<NodeOrders> };

export type NodeSummary = { node: string; completed: number; runs: number };

/** What the activity needs of the node; its partitions (a static node's keys) stay here. */
function activityNode(spec: ResolvedNode): PartitionNode {
  return {
    id: spec.id,
    transform: spec.transform,
    ...(spec.sql !== undefined ? { sql: spec.sql } : {}),
    params: spec.params,
    checks: spec.checks,
    heartbeatTimeout: spec.heartbeatTimeout,
    timeout: spec.timeout,
    ...(spec.adopt ? { adopt: true } : {}),
  };
}

/** A partition as the activity sees it: its key, window and the upstream partitions it reads. */
function taskFor(plan: PlanNode, index: number, throttled: number, recheck: boolean): PartitionTask {
  const key = plan.partitions.key(index);
  const window = windowStrings(plan.partitions.window(index));
  const inputs = partitionInputs(plan, index);
  // Written out, not spread: in the sandbox the spread helper's reads of \`Object\` cost more than
  // the rest of the task (the million benchmark). The same fields in the same order either way.
  return recheck ? { index, key, recheck: true, throttled, window, inputs } : { index, key, throttled, window, inputs };
}

/**
 * How the workflow reads a batch's failure details (its failure's or cancellation's first
 * detail, or a timeout's last heartbeat details), which the worker that ran it wrote: parsed
 * against the batch (`batchDetails`), or, in histories from before the patch
 * `batch-details-checked`, taken as they came.
 */
type ReadDetails = (value: unknown) => Partial<PartitionFailureDetails> | undefined;
const asTheyCame: ReadDetails = (value) => value as Partial<PartitionFailureDetails> | undefined;

/**
 * How many attempts of an activity that failed for good failed: the attempt it says it was
 * (every attempt before it failed too), or, for a timeout that said nothing, all it had.
 */
function failedAttempts(error: unknown, maxAttempts: number, read: ReadDetails): number {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (isCancellation(error) || isCancellation(cause)) return 0;
  const details = read(cause instanceof ApplicationFailure ? cause.details?.[0] : cause instanceof TimeoutFailure ? cause.lastHeartbeatDetails : undefined);
  if (typeof details?.attempt === 'number' && details.attempt >= 1) return details.attempt;
  return cause instanceof TimeoutFailure ? maxAttempts : 1;
}

/** What a cancelled batch had committed before its cancellation (its details; none from an older worker). */
function cancelledFinished(cause: unknown, read: ReadDetails): PartitionResult[] {
  const details = read(cause instanceof CancelledFailure ? cause.details?.[0] : undefined);
  return Array.isArray(details?.finished) ? details.finished : [];
}

/** What an activity's failure says: which partitions it had finished, which one failed and why. */
function failureOutcome(error: unknown, read: ReadDetails): BatchOutcome {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (isCancellation(error) || isCancellation(cause)) return { kind: 'cancelled', finished: cancelledFinished(cause, read) };
  let details: Partial<PartitionFailureDetails> | undefined;
  let message = cause instanceof Error ? cause.message : String(cause);
  let type = 'Error';
  if (cause instanceof ApplicationFailure) {
    details = read(cause.details?.[0]);
    type = cause.type ?? 'Error';
  } else if (cause instanceof TimeoutFailure) {
    details = read(cause.lastHeartbeatDetails);
    type = 'Timeout';
    message = `activity timed out (${cause.timeoutType !== undefined ? String(cause.timeoutType) : 'timeout'})`;
  }
  return { kind: 'failed', finished: details?.finished ?? [], failedIndex: details?.failedIndex ?? null, message, type };
}

export async function nodeWorkflow(input: NodeInput): Promise<NodeSummary> {
  assertCoreGeneration(input.core);
  // A continued run carries the tuning its first run was started with.
  const badTuning = workflowInfo().continuedFromExecutionRunId === undefined ? nodeTuningProblem(input.tuning) : null;
  if (badTuning !== null && patched(NODE_TUNING_CHECKED)) {
    throw refusal(new BackfillError('invalid_argument', `the node workflow's ${badTuning}: a node workflow is started by its backfill, which sends its tuning; start a backfill with the backfill command line or client`, 'tuning'));
  }
  let spec = input.node;
  const plan = expandNode(spec, input.upstream, input.range);
  const runs = (input.state?.runs ?? 0) + 1;
  const reportRunning = patched(REPORT_RUNNING);
  const reportWhenIdle = patched(REPORT_WHEN_IDLE);
  const zeroHolds = patched(LATENCY_CAP_HOLDS);
  const evenShares = patched(EVEN_BATCH_SHARES);
  const climbWhenBinding = patched(LATENCY_CAP_CLIMBS_WHEN_IT_BINDS);
  const detailsChecked = patched(BATCH_DETAILS_CHECKED);
  const resultChecked = patched(BATCH_RESULT_CHECKED);
  const amountsChecked = patched(BATCH_AMOUNTS_CHECKED);
  const unaccountedCounts = patched(UNACCOUNTED_COUNTS_AS_ATTEMPT);
  const deferralsBounded = patched(DEFERRALS_BOUNDED);
  const ordersFromParent = patched(ORDERS_FROM_PARENT);
  const slowStart = patched(LATENCY_SLOW_START);
  const schedulerOptions = (node: ResolvedNode) => ({
    ...schedulerOptionsOf(node, reportRunning),
    zeroHolds,
    evenShares,
    climbWhenBinding,
    slowStart,
    ...(unaccountedCounts ? { unaccounted: { maxAttempts: node.retry.maxAttempts, taskQueue: node.taskQueue } } : {}),
    ...(deferralsBounded
      ? {
          deferrals: {
            max: input.tuning.maxDeferrals ?? DEFAULT_MAX_DEFERRALS,
            backoffMs: input.tuning.deferralBackoffMs ?? DEFAULT_DEFERRAL_BACKOFF_MS,
            taskQueue: node.taskQueue,
          },
        }
      : {}),
  });
  const scheduler = new NodeScheduler(
    schedulerOptions(spec),
    input.settings,
    RangeSet.fromJSON(input.ready),
    input.state?.scheduler,
    RangeSet.fromJSON(input.recheck),
  );

  let finishing = false;
  let parentGone = false;
  let sending = false;
  /**
   * The run is about to continue as new: no report may leave. A report whose signal is
   * initiated in the workflow task that continues as new is dropped with the run, and the
   * news it took with it (seen: 1,300 partitions done but never counted by the parent).
   */
  let holdingReports = false;
  /** The run is about to continue as new: nothing new starts while in-flight batches land. */
  let draining = false;
  /** Something happened that the loop must look at. */
  let wake = false;
  let settingsChanged = 0;
  let heardFromParent = workflowTime();
  /** A control brought settings or a spec (ORDERS_FROM_PARENT): the parent is to be asked what they are. */
  let ordersAsked = ordersFromParent && workflowInfo().continuedFromExecutionRunId !== undefined;
  let maxInflight = 0;
  /** The settings in force (the scheduler's): their run-window deadline holds back new starts. */
  let settings: NodeSettings = input.state?.scheduler.settings ?? input.settings;
  /** What the partitions cost and the attempts that failed since the last report (for the parent's budgets). */
  const spending = input.state?.spent ?? noSpending();
  /** The same since this node workflow started (carried across continue-as-new): its cost allowance is measured against it. */
  const total = input.state?.total ?? noSpending();
  const charge = (finished: readonly PartitionCost[], failed: number) => {
    spend(spending, finished, failed);
    spend(total, finished, failed);
  };
  /** A cost budget: no batch starts once the node spent its allowance (the parent's pause may arrive later). */
  const budgetAllows = () => settings.allowance === undefined || total[settings.allowance.metric] < settings.allowance.until;
  /** Run windows: no batch starts at or after the current window's close (the parent's pause may arrive later). */
  const windowAllows = () => settings.openUntil === undefined || workflowTime() < settings.openUntil;

  const applySettings = (next: NodeSettings) => {
    if (!scheduler.configure(next, workflowTime())) return;
    settings = next;
    settingsChanged++;
  };
  const applySpec = (next: ResolvedNode) => {
    spec = next;
    scheduler.reconfigure(schedulerOptions(spec));
  };

  /** The settings and spec the parent says (ORDERS_FROM_PARENT), asked whenever a control rings; a spec the node runs already changes nothing. */
  const { fetchNodeOrders } = proxyActivities<OrdersActivities>({ taskQueue: policyTaskQueue(workflowInfo().taskQueue), ...ORDERS_OPTIONS });
  const askParent = async () => {
    for (;;) {
      await condition(() => ordersAsked || finishing || parentGone);
      if (finishing || parentGone) return;
      ordersAsked = false;
      let orders: NodeControl;
      try {
        // Parsed as a control is: the answer passed through a worker.
        orders = parseNodeControl(await fetchNodeOrders({ parentWorkflowId: input.parentWorkflowId, node: plan.id }), spec, plan.partitions.size);
      } catch (error) {
        if (isCancellation(error)) throw error;
        log.warn(`node ${plan.id}: the backfill's workflow did not say its settings (they stay as they are until the next change): ${String(error)}`);
        continue;
      }
      if (orders.settings) applySettings(orders.settings);
      if (orders.node && JSON.stringify(orders.node) !== JSON.stringify(spec)) applySpec(orders.node);
      wake = true;
    }
  };

  setHandler(nodeControlSignal, (value: NodeControl) => {
    let control: NodeControl;
    try {
      control = parseNodeControl(value, spec, plan.partitions.size);
    } catch (error) {
      // Not an order of this node's parent (sent by hand?): it would have stopped the node workflow.
      if (!(error instanceof BackfillError)) throw error;
      log.warn(`signal nodeControl ignored: ${error.message}`);
      return;
    }
    heardFromParent = workflowTime();
    if (control.ready) scheduler.release(RangeSet.fromJSON(control.ready));
    if (ordersFromParent) {
      if (control.settings || control.node) ordersAsked = true;
    } else {
      if (control.settings) applySettings(control.settings);
      if (control.node) applySpec(control.node);
    }
    if (control.finish) finishing = true;
    wake = true;
  });

  setHandler(nodeViewQuery, () => ({
    node: plan.id,
    queued: scheduler.queued,
    running: scheduler.running,
    inflightActivities: scheduler.inFlightBatches,
    rate: scheduler.currentStats().rate,
    concurrency: scheduler.currentStats().concurrency,
    paused: scheduler.paused,
    runs,
    maxConcurrentActivities: maxInflight,
  }));

  const parent = getExternalWorkflowHandle(input.parentWorkflowId);
  const report = async (final?: 'cancelled') => {
    const body = scheduler.takeReport();
    const spent = isNoSpending(spending) ? undefined : { ...spending };
    Object.assign(spending, noSpending());
    const message: NodeReport = { node: plan.id, ...body, ...(final ? { final } : {}), ...(spent ? { spent, total: { ...total } } : {}) };
    sending = true;
    try {
      // Never cancelled halfway: a report that leaves must arrive, or the parent loses track.
      await CancellationScope.nonCancellable(() => parent.signal(nodeReportSignal, message));
    } catch (error) {
      // The parent was terminated or failed: nobody is left to release work or to finish us.
      parentGone = true;
      log.warn(`node ${plan.id}: cannot report to ${input.parentWorkflowId}: ${String(error)}`);
    } finally {
      sending = false;
      wake = true;
    }
  };

  const reporter = async () => {
    for (;;) {
      await condition(() => (scheduler.hasNews && !holdingReports) || finishing || parentGone);
      if (parentGone || finishing) return;
      await report();
      // The parent may be waiting for a node's last results to finish the backfill, or to
      // release what they complete downstream: a node with nothing left to run sends them at once.
      await condition(() => finishing || (reportWhenIdle && !holdingReports && scheduler.idle && scheduler.hasResults), input.tuning.reportIntervalMs, {
        summary: 'report interval',
      });
    }
  };

  const ticker = async () => {
    for (;;) {
      await condition(() => finishing || parentGone || scheduler.tickMs() !== null);
      if (finishing || parentGone) return;
      const tick = scheduler.tickMs()!;
      const version = settingsChanged;
      // New settings cut the tick short: the bucket then refills for the time that did pass.
      const cutShort = await condition(() => finishing || settingsChanged !== version, tick, { summary: 'pacing' });
      scheduler.advance(workflowTime(), cutShort ? undefined : tick);
      wake = true;
    }
  };

  /** An idle node whose parent is gone would wait forever: it says hello now and then. */
  const keepalive = async () => {
    const quiet = input.tuning.probeIntervalMs * 3;
    for (;;) {
      if (await condition(() => finishing || parentGone, quiet, { summary: 'parent check' })) return;
      if (!sending && !holdingReports && workflowTime() - heardFromParent >= quiet) await report();
    }
  };

  const start = (batch: Batch) => {
    const tasks = batch.indices.map((index, i) => taskFor(plan, index, batch.throttled[i]!, batch.recheck[i]!));
    const first = tasks[0]!.key;
    const last = tasks[tasks.length - 1]!.key;
    const timeoutMs = parseDuration(spec.timeout)!;
    const { runPartitions } = proxyActivities<PartitionActivities>({
      activityId: first === last ? `${plan.id}/${first}` : `${plan.id}/${first}..${last}`,
      summary: first === last ? `${plan.id} ${first}` : `${plan.id} ${first} … ${last} (${tasks.length})`,
      taskQueue: spec.taskQueue,
      startToCloseTimeout: timeoutMs * tasks.length,
      heartbeatTimeout: spec.heartbeatTimeout,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: {
        maximumAttempts: spec.retry.maxAttempts,
        initialInterval: spec.retry.initialInterval,
        backoffCoefficient: spec.retry.backoffCoefficient,
        maximumInterval: spec.retry.maximumInterval,
        nonRetryableErrorTypes: NON_RETRYABLE_TYPES,
      },
    });
    maxInflight = Math.max(maxInflight, scheduler.inFlightBatches);
    const maxAttempts = spec.retry.maxAttempts;
    const read: ReadDetails = detailsChecked ? (value) => batchDetails(value, tasks, maxAttempts, amountsChecked) : asTheyCame;
    // The run window the batch was given: once it has closed (give or take the worker's clock), what the batch deferred waits for the next one, uncounted.
    const window = settings.openUntil !== undefined && settings.stopBy !== undefined ? { notAfter: settings.openUntil, stopBy: settings.stopBy } : undefined;
    runPartitions({
      backfillId: input.backfillId,
      runKey: input.runKey,
      workflowId: workflowInfo().workflowId,
      node: activityNode(spec),
      partitions: tasks,
      maxAttempts,
      ...(window ? { window } : {}),
      ...(input.warehouseId !== undefined ? { warehouseId: input.warehouseId } : {}),
      ...(input.stage ? { stage: true } : {}),
    })
      // Two steps, not one: the microtask in between decides the order of commands that
      // recorded histories replay (test/replay); merging them is a workflow change.
      .then(
        (value): BatchOutcome => {
          // A worker wrote it, as it writes failure details; the batch's partitions it does not account for run again (`settle`).
          const result: RunPartitionsResult = resultChecked ? batchDetails(value, tasks, maxAttempts, amountsChecked) : value;
          charge(result.finished, Math.max(0, (result.attempt ?? 1) - 1));
          return {
            kind: 'completed',
            finished: result.finished,
            ...(result.throttled ? { throttled: result.throttled } : {}),
            ...(result.deferred !== undefined ? { deferred: result.deferred } : {}),
            ...(deferralsBounded && result.deferred !== undefined && window !== undefined && workflowTime() >= window.notAfter - WINDOW_CLOCK_SKEW_MS ? { windowClosed: true } : {}),
          };
        },
        (error: unknown): BatchOutcome => {
          const outcome = failureOutcome(error, read);
          charge(outcome.kind === 'completed' ? [] : (outcome.finished ?? []), failedAttempts(error, maxAttempts, read));
          return outcome;
        },
      )
      .then((outcome) => {
        // Partitions a completed batch did not account for: failed attempts (with the patch).
        const failed = deferralsBounded ? scheduler.settle(batch.id, outcome, workflowTime()) : scheduler.settle(batch.id, outcome);
        if (failed > 0) charge([], failed);
        wake = true;
      });
  };

  // What the Web UI shows as current details, and the pace as gauges, refreshed at most once a second.
  // Not the backfill id: the exporter keeps every series it has seen, for as long as the worker lives.
  const meter = metricMeter.withTags({ node: plan.id, task_queue: spec.taskQueue });
  const rateGauge = meter.createGauge(NODE_GAUGES.rate, 'float', 'partitions/s', "the node's current pace after throttling (0: unlimited)");
  const concurrencyGauge = meter.createGauge(NODE_GAUGES.concurrency, 'int', 'partitions', "the node's current concurrency limit");
  let shownAt = -Infinity;
  const show = () => {
    const now = workflowTime();
    if (now - shownAt < 1000) return;
    shownAt = now;
    const stats = scheduler.currentStats();
    // A run after continue-as-new has no static summary: the current details say what the node is.
    const title = `**${nodeSummary(input.backfillId, spec, plan.partitions)}**`;
    setCurrentDetails(
      `${title}${HARD_BREAK}${nodeCurrentDetails({ ...stats, queued: scheduler.queued, paused: scheduler.paused, runs, reason: scheduler.waitReason(), taskQueue: spec.taskQueue })}`,
    );
    rateGauge.set(stats.rate ?? 0);
    concurrencyGauge.set(stats.concurrency);
  };

  const shouldContinueAsNew = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= input.tuning.historyLimit;
  };

  // A cancelled workflow rejects these loops' timers (the cleanup below takes over); any
  // other error is a bug to see in the logs, not to swallow.
  const failedLoop = (error: unknown) => {
    if (!isCancellation(error)) log.error(`node ${plan.id}: background loop failed: ${String(error)}`);
  };
  const background = [reporter(), ticker(), keepalive()].map((loop) => loop.catch(failedLoop));
  // Not waited for at the end: an answer still on its way changes nothing of a node that finishes.
  if (ordersFromParent) void askParent().catch(failedLoop);

  try {
    for (;;) {
      scheduler.advance(workflowTime());
      if (!finishing && !parentGone && !draining && windowAllows() && budgetAllows()) for (const batch of scheduler.startable()) start(batch);
      show();
      if (parentGone || (finishing && scheduler.inFlightBatches === 0)) break;
      if (shouldContinueAsNew() && !finishing) {
        // Batches land first, for a while: the server refuses a continue-as-new whose workflow
        // task saw new events (UnhandledCommand), and the worker then replays the whole run.
        // With batches completing all the time that happened 3-4 times a run (seen: 3.6 times
        // the workflow work per partition). Batches still running after `drainMs` are carried.
        if (patched(DRAIN_BEFORE_CONTINUE_AS_NEW)) {
          draining = true;
          await condition(() => scheduler.inFlightBatches === 0 || finishing || parentGone, input.tuning.drainMs ?? DEFAULT_TUNING.drainMs, {
            summary: 'let batches land before continue-as-new',
          });
          if (finishing || parentGone) {
            draining = false;
            continue;
          }
        }
        // The report in flight lands first, and none leaves after it; news not yet sent and
        // batches in flight are carried.
        holdingReports = patched(HOLD_REPORTS_AT_CONTINUE_AS_NEW);
        if (holdingReports) {
          // A condition that holds resolves at once, and a report whose turn came before the
          // hold may still start after that: look again after every wait.
          do await condition(() => !sending && allHandlersFinished());
          while (sending || !allHandlersFinished());
        } else {
          await condition(() => !sending);
          await condition(allHandlersFinished);
        }
        if (!finishing && !parentGone) {
          await continueAsNew<typeof nodeWorkflow>({
            ...input,
            node: spec,
            ready: '',
            recheck: '',
            state: {
              scheduler: scheduler.toState(),
              runs,
              ...(isNoSpending(spending) ? {} : { spent: { ...spending } }),
              ...(isNoSpending(total) ? {} : { total: { ...total } }),
            },
          });
        }
        holdingReports = false;
        draining = false;
        continue;
      }
      wake = false;
      // Finishing with batches in flight: wait for them to land (each wakes the loop), not for
      // `finishing`, which already holds and would resolve at once, for ever (a busy loop).
      await condition(() => wake || parentGone || (finishing && scheduler.inFlightBatches === 0));
    }
    finishing = true;
    await Promise.all(background);
    await condition(() => !sending);
    // What completed since the last report; the parent no longer needs state-only news.
    if (!parentGone && scheduler.hasResults) await report();
    if (parentGone) log.warn(`the backfill's parent workflow is gone; node ${plan.id} stops (nothing new starts)`);
    // The exporter keeps a series at its last value: a node that ended has no concurrency.
    concurrencyGauge.set(0);
    return { node: plan.id, completed: scheduler.currentStats().completed, runs };
  } catch (error) {
    if (!isCancellation(error)) throw error;
    // Cancelled: in-flight activities are being cancelled (they finish cleanly through
    // their heartbeats); once they have, tell the parent what finished, then end cancelled.
    await CancellationScope.nonCancellable(async () => {
      await condition(() => scheduler.inFlightBatches === 0 && !sending);
      await report('cancelled');
    });
    // Not a command (the history holds no metrics): nothing to replay differently.
    concurrencyGauge.set(0);
    throw error;
  }
}
