/**
 * `nodeWorkflow`: runs the ready partitions of one node.
 *
 * The parent hands it ready partitions (batched `nodeControl` signals); it runs them in a
 * sliding window of `runPartitions` activities bounded by its concurrency and paced by a
 * token bucket refilled on workflow timers (one timer per tick). Completions and failures
 * go back to the parent in batched `nodeReport` signals, at most one in flight and at most
 * one per report interval. Before its history grows large it drains its activities and
 * continues as new with a compact state.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  patched,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ClockActivities } from '../activities/clock.ts';
import { parseDuration } from '../core/duration.ts';
import { Aimd, TokenBucket } from '../core/pacing.ts';
import { expandNode } from '../core/plan.ts';
import { windowStrings } from '../core/partitions.ts';
import {
  DEFAULT_TUNING,
  NON_RETRYABLE_TYPES,
  type FailureGroup,
  type NodeCarry,
  type NodeControl,
  type NodeInput,
  type NodeReport,
  type NodeReportState,
  type NodeSettings,
  type PartitionFailureDetails,
  type PartitionNode,
  type PartitionResult,
  type PartitionTask,
  type RunPartitionsInput,
  type RunPartitionsResult,
} from '../core/protocol.ts';
import { RangeSet } from '../core/ranges.ts';
import { nodeControlSignal, nodeReportSignal, nodeViewQuery } from './definitions.ts';
import { addFailure } from '../core/failures.ts';

type PartitionActivities = { runPartitions(input: RunPartitionsInput): Promise<RunPartitionsResult> };

/** Pacing needs the time that really passed (timers fire late); it is read, and recorded, by a local activity. */
const clock = proxyLocalActivities<ClockActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 5 } });

/** How many recent partition start times estimate the pace a node achieves. */
const RECENT_STARTS = 20;

export type NodeSummary = { node: string; completed: number; runs: number };

export async function nodeWorkflow(input: NodeInput): Promise<NodeSummary> {
  const plan = expandNode(input.spec, input.nodeId, input.range);
  const spec = plan.spec;
  const carry = input.carry;

  const queue = RangeSet.fromJSON(carry?.queue ?? input.ready);
  let settings: NodeSettings = carry?.settings ?? input.settings;
  // Changes made after the first release; histories recorded before them replay the old way.
  const capPartitionsPerRun = patched('continue-as-new-by-partition-count');
  const makeUpForLateTicks = patched('pacing-makes-up-for-late-ticks');
  const aimdFromThrottledPace = patched('aimd-slope-from-throttled-pace');
  const aimd = new Aimd(carry?.aimd, { slopeFromOperatorRate: !aimdFromThrottledPace });
  const pacingCarriesClock = patched('pacing-carries-its-clock');
  /** The clock reading the bucket's tokens were last counted at. */
  let lastClock: number | null = null;
  let carriedClock: number | null = pacingCarriesClock ? (carry?.bucket.at ?? null) : null;
  const unreportedDone = RangeSet.fromJSON(carry?.unreported.done);
  let unreportedFailures: FailureGroup[] = carry?.unreported.failures ?? [];
  const stats: NodeReportState = carry?.stats ?? {
    running: 0,
    rate: settings.rate,
    concurrency: settings.concurrency,
    throttles: 0,
    completed: 0,
    firstStartedAt: null,
    lastFinishedAt: null,
  };
  const recentStarts: number[] = carry?.recentStarts ?? [];
  const runs = (carry?.runs ?? 0) + 1;
  // Throttled partitions waiting to run again (small: cleared as they finish).
  const throttledTimes = new Map<number, number>(carry?.throttled ?? []);

  let running = 0; // partitions held by in-flight activities
  let startedThisRun = 0;
  let inflight = 0; // in-flight activities
  let maxInflight = 0;
  let stateChanged = false; // something the parent displays changed (rate, throttling)
  let sending = false;
  let draining = false;
  let finishing = false;
  let parentGone = false;
  let settingsVersion = 0;
  let throttledThisTick = false;
  // Throttles of activities started before the last slow-down are one congestion event, not many.
  let congestionEpoch = 0;

  /** The pace after throttling; while throttled, the burst shrinks with it. */
  const pace = (): [rate: number | null, burst: number] => {
    const rate = aimd.effective(settings.rate);
    if (rate === null) return [null, 1];
    return [rate, aimd.active ? Math.min(settings.burst, TokenBucket.defaultBurst(rate)) : settings.burst];
  };
  const bucket = new TokenBucket(...pace(), carry?.bucket.tokens ?? pace()[1]);
  const applyRate = () => {
    const [rate, burst] = pace();
    bucket.configure(rate, burst);
    stats.rate = rate;
    stats.concurrency = settings.concurrency;
  };
  applyRate();

  setHandler(nodeControlSignal, (control: NodeControl) => {
    if (control.ready) queue.addAll(RangeSet.fromJSON(control.ready));
    if (control.settings && control.settings.seq > settings.seq) {
      settings = control.settings;
      settingsVersion++;
      applyRate();
      stateChanged = true;
    }
    if (control.finish) finishing = true;
  });

  setHandler(nodeViewQuery, () => ({
    node: plan.id,
    queued: queue.size,
    running,
    inflightActivities: inflight,
    rate: aimd.effective(settings.rate),
    concurrency: settings.concurrency,
    paused: settings.paused,
    runs,
    maxConcurrentActivities: maxInflight,
  }));

  const parent = getExternalWorkflowHandle(input.parentWorkflowId);
  const hasUnreported = () => !unreportedDone.isEmpty || unreportedFailures.length > 0 || stateChanged;
  const urgent = () => draining || finishing;

  const report = async (final?: 'cancelled') => {
    const message: NodeReport = {
      node: plan.id,
      done: unreportedDone.toJSON(),
      failures: unreportedFailures,
      state: { ...stats, running },
      ...(final ? { final } : {}),
    };
    unreportedDone.clear();
    unreportedFailures = [];
    stateChanged = false;
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
    }
  };

  const reporter = async () => {
    for (;;) {
      await condition(() => hasUnreported() || finishing || parentGone);
      if (!hasUnreported() || parentGone || finishing) return;
      await report();
      if (!urgent()) await condition(urgent, input.tuning.reportIntervalMs);
    }
  };

  const needsTick = () =>
    !settings.paused && !draining && ((bucket.limited && !bucket.full) || (aimd.active && !queue.isEmpty));

  const readClock = async (): Promise<number | null> => {
    try {
      return await clock.currentTimeMs();
    } catch (error) {
      if (isCancellation(error)) throw error;
      log.warn(`node ${plan.id}: no clock reading (${String(error)}); pacing by timer length`);
      return null;
    }
  };

  const ticker = async () => {
    for (;;) {
      await condition(() => finishing || needsTick());
      if (finishing) return;
      // The first tick after continue-as-new counts from the previous run's last reading, so
      // that the drain between the runs does not cost tokens (up to the lateness allowance).
      const carried = carriedClock;
      carriedClock = null;
      let last = carried ?? (await readClock());
      lastClock = last;
      while (!finishing && needsTick()) {
        const version = settingsVersion;
        // While throttled, tick at least every second so that the pace climbs back smoothly.
        const tick = aimd.active ? Math.min(bucket.tick, 1000) : bucket.tick;
        throttledThisTick = false;
        // New settings cut the tick short: the bucket then refills for the time that did pass.
        const cutShort = await condition(() => finishing || settingsVersion !== version, tick);
        if (finishing) return;
        const now = await readClock();
        // Without a clock reading, count the tick as on time rather than stop pacing.
        const elapsed = now !== null && last !== null ? Math.max(0, now - last) : tick;
        last = now;
        lastClock = now;
        bucket.refill(elapsed, makeUpForLateTicks && !cutShort ? tick : elapsed);
        if (aimd.active && !throttledThisTick) {
          aimd.onCalm(settings.rate, elapsed);
          applyRate();
          stateChanged = true;
        }
      }
    }
  };

  /** Partitions started per second over the last few seconds of starts (unknown: Infinity). */
  const observedRate = (): number => {
    if (!aimdFromThrottledPace) {
      // The first release's estimate, over all recent starts (kept for its histories).
      if (recentStarts.length < 2) return 1;
      const span = (recentStarts[recentStarts.length - 1]! - recentStarts[0]!) / 1000;
      return span > 0 ? (recentStarts.length - 1) / span : recentStarts.length;
    }
    const last = recentStarts[recentStarts.length - 1];
    if (last === undefined) return Infinity;
    // Only recent starts: a pause waiting for upstream work is not a slow pace.
    const recent = recentStarts.filter((t) => t >= last - 5000);
    if (recent.length < 2) return Infinity;
    const span = (last - recent[0]!) / 1000;
    return span > 0 ? (recent.length - 1) / span : Infinity;
  };

  const markDone = (results: PartitionResult[]) => {
    for (const r of results) {
      unreportedDone.add(r.index);
      throttledTimes.delete(r.index);
      stats.completed++;
      stats.firstStartedAt = stats.firstStartedAt === null ? r.startedAt : Math.min(stats.firstStartedAt, r.startedAt);
      stats.lastFinishedAt = stats.lastFinishedAt === null ? r.finishedAt : Math.max(stats.lastFinishedAt, r.finishedAt);
      recentStarts.push(r.startedAt);
    }
    recentStarts.sort((a, b) => a - b);
    recentStarts.splice(0, Math.max(0, recentStarts.length - RECENT_STARTS));
  };

  const onResult = (indices: number[], result: RunPartitionsResult, epoch: number) => {
    markDone(result.finished);
    const finished = new Set(result.finished.map((r) => r.index));
    const rest = indices.filter((i) => !finished.has(i));
    for (const i of rest) queue.add(i);
    if (result.throttled) {
      throttledTimes.set(result.throttled.index, (throttledTimes.get(result.throttled.index) ?? 0) + 1);
      stats.throttles++;
      throttledThisTick = true;
      stateChanged = true;
      if (epoch === congestionEpoch) {
        aimd.onThrottle(settings.rate, observedRate());
        congestionEpoch++;
        applyRate();
      }
    }
  };

  const onFailure = (indices: number[], error: unknown) => {
    const cause = error instanceof ActivityFailure ? error.cause : error;
    if (isCancellation(error) || isCancellation(cause)) {
      for (const i of indices) queue.add(i); // cancelled, not failed: it may run again later
      return;
    }
    let details: Partial<PartitionFailureDetails> | undefined;
    let message = cause instanceof Error ? cause.message : String(cause);
    let type = 'Error';
    if (cause instanceof ApplicationFailure) {
      details = cause.details?.[0] as Partial<PartitionFailureDetails> | undefined;
      type = cause.type ?? 'Error';
    } else if (cause instanceof TimeoutFailure) {
      details = cause.lastHeartbeatDetails as Partial<PartitionFailureDetails> | undefined;
      type = 'Timeout';
      message = `activity timed out (${cause.timeoutType !== undefined ? String(cause.timeoutType) : 'timeout'})`;
    }
    markDone(details?.finished ?? []);
    const finished = new Set((details?.finished ?? []).map((r) => r.index));
    const rest = indices.filter((i) => !finished.has(i));
    const failedIndex = details?.failedIndex ?? rest[0];
    for (const i of rest) {
      if (i === failedIndex) unreportedFailures = addFailure(unreportedFailures, message, type, i);
      else queue.add(i);
    }
  };

  const taskFor = (index: number): PartitionTask => ({
    index,
    throttled: throttledTimes.get(index) ?? 0,
    key: plan.partitions.key(index),
    window: windowStrings(plan.partitions.window(index)),
    inputs: plan.upstream
      .filter((edge) => edge.hi[index]! > edge.lo[index]!)
      .map((edge) => {
        const lo = edge.lo[index]!;
        const hi = edge.hi[index]!;
        const range = { node: edge.node, from: edge.source.key(lo), to: edge.source.key(hi - 1) };
        if (edge.source.grain !== 'static') return range;
        // Static keys do not sort by meaning: name them, or say "every partition" for mapping all.
        return lo === 0 && hi === edge.source.size ? { ...range, all: true } : { ...range, keys: edge.source.keys.slice(lo, hi) };
      }),
  });

  const timeoutMs = parseDuration(spec.timeout)!;
  // What the activity needs of the node; its partitions (a static node's keys) stay here.
  const activityNode: PartitionNode = {
    id: spec.id,
    transform: spec.transform,
    ...(spec.sql !== undefined ? { sql: spec.sql } : {}),
    params: spec.params,
    checks: spec.checks,
    heartbeatTimeout: spec.heartbeatTimeout,
  };
  const startBatch = (indices: number[]) => {
    const tasks = indices.map(taskFor);
    const first = tasks[0]!.key;
    const last = tasks[tasks.length - 1]!.key;
    const { runPartitions } = proxyActivities<PartitionActivities>({
      activityId: first === last ? `${plan.id}/${first}` : `${plan.id}/${first}..${last}`,
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
    const epoch = congestionEpoch;
    inflight++;
    running += indices.length;
    startedThisRun += indices.length;
    maxInflight = Math.max(maxInflight, inflight);
    runPartitions({
      backfillId: input.backfillId,
      runKey: input.runKey,
      workflowId: workflowInfo().workflowId,
      node: activityNode,
      partitions: tasks,
      maxAttempts: spec.retry.maxAttempts,
    })
      .then(
        (result) => onResult(indices, result, epoch),
        (error: unknown) => onFailure(indices, error),
      )
      .finally(() => {
        inflight--;
        running -= indices.length;
      });
  };

  const canDispatch = () =>
    !settings.paused && !draining && !finishing && !parentGone && !queue.isEmpty && inflight < settings.concurrency && bucket.available >= 1;

  const dispatch = () => {
    while (canDispatch()) {
      const granted = bucket.take(Math.min(spec.batchSize, queue.size));
      startBatch(queue.take(granted));
    }
  };

  const shouldContinueAsNew = () => {
    const info = workflowInfo();
    return (
      info.continueAsNewSuggested ||
      info.historyLength >= input.tuning.historyLimit ||
      (capPartitionsPerRun && startedThisRun >= (input.tuning.partitionsPerRun ?? DEFAULT_TUNING.partitionsPerRun))
    );
  };

  // A cancelled workflow rejects these loops' timers (the cleanup below takes over); any
  // other error is a bug to see in the logs, not to swallow.
  const background = [reporter(), ticker()].map((loop) =>
    loop.catch((error: unknown) => {
      if (!isCancellation(error)) log.error(`node ${plan.id}: background loop failed: ${String(error)}`);
    }),
  );

  try {
    for (;;) {
      await condition(() => finishing || parentGone || canDispatch() || (!draining && shouldContinueAsNew()));
      if (finishing || parentGone) break;
      if (!draining && shouldContinueAsNew()) {
        draining = true;
        await condition(() => inflight === 0 && !sending && (!hasUnreported() || parentGone));
        await condition(allHandlersFinished);
        // The parent may have said finish while this run drained: finish, do not start a new run.
        if (finishing || parentGone) break;
        const next: NodeCarry = {
          queue: queue.toJSON(),
          settings,
          // A full bucket has nothing to make up; a draining one had work waiting for tokens.
          bucket: { ...bucket.toJSON(), ...(lastClock !== null && !bucket.full ? { at: lastClock } : {}) },
          aimd: aimd.toJSON(),
          unreported: { done: unreportedDone.toJSON(), failures: unreportedFailures },
          stats,
          recentStarts,
          throttled: [...throttledTimes],
          runs,
        };
        await continueAsNew<typeof nodeWorkflow>({ ...input, carry: next });
      }
      dispatch();
    }
    await condition(() => inflight === 0);
    finishing = true;
    await Promise.all(background);
    await condition(() => !sending);
    // What completed since the last report; the parent no longer needs state-only news.
    if (!parentGone && (!unreportedDone.isEmpty || unreportedFailures.length > 0)) await report();
    if (parentGone) log.warn(`the backfill's parent workflow is gone; node ${plan.id} stops (nothing new starts)`);
    return { node: plan.id, completed: stats.completed, runs };
  } catch (error) {
    if (!isCancellation(error)) throw error;
    // Cancelled: in-flight activities are being cancelled (they finish cleanly through
    // their heartbeats); once they have, tell the parent what finished, then end cancelled.
    await CancellationScope.nonCancellable(async () => {
      await condition(() => inflight === 0 && !sending);
      await report('cancelled');
    });
    throw error;
  }
}
