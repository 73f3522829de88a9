/**
 * `NodeScheduler`: everything a node workflow decides, without a server. It holds the
 * partitions ready to run, the batches in flight, the token bucket and AIMD pacing, the
 * counts the parent displays, and the news not yet reported; the workflow is a thin loop
 * that starts the batches it hands out, feeds back their outcomes and the time, and
 * carries its state across continue-as-new.
 *
 * In-flight batches are carried too (those the workflow's short drain before continue-as-new
 * did not see land): the next run starts their partitions again first, marked `recheck`, and
 * the partition activity skips any that the previous run's activity had published in the
 * meantime (a partition is published once either way).
 */
import { AutoBatcher, DEFAULT_BATCH_TARGET, type AutoBatchJSON } from './batching.ts';
import { deferredMessage, deferredOf, noResultMessage, unaccountedFor } from './batch-details.ts';
import { parseDuration } from './duration.ts';
import type { WaitReason } from './details.ts';
import { addFailure } from './failures.ts';
import { Aimd, LatencyPacer, TokenBucket, type AimdJSON, type LatencyPacerJSON } from './pacing.ts';
import type { FailureGroup, NodeSettings, PartitionResult } from './protocol.ts';
import { RangeSet, type RangesJSON } from './ranges.ts';
import type { ResolvedNode } from './spec.ts';

/** How many recent partition start times estimate the pace a node achieves. */
const RECENT_STARTS = 20;
/** Starts older than this (before the latest) do not count towards the observed pace. */
const RECENT_WINDOW_MS = 5000;
/** While throttled, the pace is re-examined at least this often, so that it climbs back smoothly. */
const THROTTLED_TICK_MS = 1000;
const DEFAULT_BATCH_TARGET_MS = parseDuration(DEFAULT_BATCH_TARGET)!;
/** The failure type of a partition that completed batches did not account for (`SchedulerOptions.unaccounted`). */
export const NO_RESULT_FAILURE = 'NoResult';
/** The failure type of a partition deferred too often with no run window closing (`SchedulerOptions.deferrals`). */
export const DEFERRED_FAILURE = 'Deferred';
/** How many times a partition may be deferred with no run window closing before it fails (`SchedulerOptions.deferrals`). */
export const DEFAULT_MAX_DEFERRALS = 10;
/** The first back-off after a partition's second deferral; it doubles with each more, up to 30 times this. */
export const DEFAULT_DEFERRAL_BACKOFF_MS = 1000;

/** How long a node starts nothing after a partition's `times`-th deferral: none after the first (a worker stopping in a deploy), then doubling. */
export function deferralBackoffMs(times: number, baseMs: number): number {
  return times < 2 ? 0 : Math.min(baseMs * 2 ** (times - 2), baseMs * 30);
}

export type SchedulerOptions = {
  /** Partitions per activity, or `auto`: sized from the partitions' measured durations (core/batching.ts). */
  batchSize: number | 'auto';
  /** With `auto`, about how long one activity should run. */
  batchTargetMs?: number;
  /** Pacing on measured load: the p95 latency of partitions (or the one their transform reports) to stay under. */
  latencyTargetMs?: number | null;
  /** Times one partition may be throttled before it fails. */
  maxThrottles: number;
  /**
   * A change in how many partitions run is news too, so that the parent shows a node's first
   * (slow) partitions running before any of them finishes. Off in runs from before it existed.
   */
  reportRunning?: boolean;
  /**
   * A concurrency of 0 (a hold: a budget, a run window, a share of nothing) starts nothing under
   * a latency cap too. Before, the cap's floor of one let an activity start. Off in runs from
   * before it existed.
   */
  zeroHolds?: boolean;
  /**
   * With `batchSize: auto`, the batches started together share the queue evenly (43 waiting on 4
   * slots: 11, 11, 11, 10). Before, each took a share of what the ones before it left (11, 8, 6,
   * 5), so a round left partitions for more, smaller activities. Off in runs from before it existed.
   */
  evenShares?: boolean;
  /**
   * The latency cap climbs only while it is what holds work back (not paused, as many running
   * as it allows, below the concurrency), and time is counted under the settings it passed
   * under; a concurrency of 0 never lifts it. Before, it climbed whenever work waited, so a
   * hold, a night outside the run windows or a lowered concurrency lifted it, and the node
   * went on at full concurrency against a system it had measured as overloaded. Off in runs
   * from before it existed.
   */
  climbWhenBinding?: boolean;
  /**
   * With a latency target, a fresh node starts at one activity at a time and climbs while its
   * latencies stay under the target, each step at most doubling the cap and decided by latencies
   * of activities started since the step before (`LatencyPacer.onCalm`). Before, every slot took
   * a batch before any latency was known (with `batchSize: auto`, seconds of partitions each),
   * and a climb after a long batch added many activities at once. Off in runs from before it
   * existed.
   */
  slowStart?: boolean;
  /**
   * A partition that a completed batch did not account for (`unaccountedFor`: a worker that says
   * nothing of it) counts as a failed attempt: it runs again until it has `maxAttempts` of them,
   * then fails, naming `taskQueue`. Absent in runs from before it existed: it ran again as it
   * came, for ever when every batch came back so.
   */
  unaccounted?: { maxAttempts: number; taskQueue: string };
  /**
   * A partition a completed batch deferred (its last `deferred`, not started) while no run window
   * closed (`windowClosed` of the outcome) is counted, though not as an attempt: a worker that
   * stops in a deploy defers each of its partitions once, and they run again at once; after a
   * second deferral the node starts nothing for `backoffMs`, doubling with each more (up to 30
   * times it), and after `max` deferrals the partition fails (naming `taskQueue`). Absent in runs
   * from before it existed: a worker that deferred every batch kept the node starting the same
   * partitions again, at once, for ever.
   */
  deferrals?: { max: number; backoffMs: number; taskQueue: string };
};

/**
 * The scheduler's options from a node's spec. Specs of runs started before `batchTarget` and
 * `pace` existed have neither (and a whole-number batch size).
 */
export function schedulerOptionsOf(node: ResolvedNode, reportRunning: boolean): SchedulerOptions {
  return {
    batchSize: node.batchSize,
    maxThrottles: node.retry.maxThrottles,
    reportRunning,
    ...(node.batchSize === 'auto' ? { batchTargetMs: parseDuration(node.batchTarget ?? DEFAULT_BATCH_TARGET)! } : {}),
    ...(node.pace?.latencyTarget ? { latencyTargetMs: parseDuration(node.pace.latencyTarget)! } : {}),
  };
}

/** What the parent shows of a node. */
export type NodeStats = {
  running: number;
  rate: number | null;
  concurrency: number;
  throttles: number;
  completed: number;
  firstStartedAt: number | null;
  lastFinishedAt: number | null;
  /** Of the time from the first start to the last finish, how long the node was paused (absent: none counted). */
  pausedMs?: number;
  /** With `batchSize: auto`, the size of the node's next batch. */
  batchSize?: number;
  /** With a latency target, the p95 of the latest latencies (null before any). */
  latencyP95Ms?: number | null;
};

export type SchedulerState = {
  queue: RangesJSON;
  /** Partitions in flight when the previous run continued as new: started again first, without tokens. */
  carried: RangesJSON;
  /** Partitions that an earlier workflow may have published already: the activity looks first. */
  recheck: RangesJSON;
  settings: NodeSettings;
  /** The bucket's tokens and the workflow time they were counted at. */
  bucket: { tokens: number; at: number | null };
  aimd: AimdJSON;
  unreported: { done: RangesJSON; failures: FailureGroup[] };
  stats: Omit<NodeStats, 'running'>;
  recentStarts: number[];
  /** Partitions throttled before and not yet done, by how many times. */
  throttled: Record<string, RangesJSON>;
  /** Partitions completed batches did not account for, not yet done or failed, by how many times (absent: none). */
  unaccounted?: Record<string, RangesJSON>;
  /** Partitions deferred with no run window closing, not yet done or failed, by how many times (absent: none). */
  deferred?: Record<string, RangesJSON>;
  /** The workflow time before which nothing starts: the back-off after repeated deferrals (absent: none). */
  deferredUntil?: number;
  /** With `batchSize: auto`: what it measured. */
  autoBatch?: AutoBatchJSON;
  /** With a latency target: its pacing. */
  latency?: LatencyPacerJSON;
  /** Pauses not yet counted in `stats.pausedMs`: [paused at, went on at (null: still paused)]. */
  pauses?: Pause[];
};

/** When the node was paused, and when it went on (null: it still is). */
export type Pause = [from: number, to: number | null];

export type Batch = { id: number; indices: number[]; recheck: boolean[]; throttled: number[] };

export type BatchOutcome =
  | {
      kind: 'completed';
      finished: PartitionResult[];
      throttled?: { index: number; message: string };
      deferred?: number;
      /** The batch's run window had closed when it completed: its deferred partitions wait for the next window, uncounted. */
      windowClosed?: boolean;
    }
  | { kind: 'failed'; finished: PartitionResult[]; failedIndex: number | null; message: string; type: string }
  /** `finished`: what the batch committed before it was cancelled (an older worker sends nothing). */
  | { kind: 'cancelled'; finished?: PartitionResult[] };

export type NodeReportBody = { done: RangesJSON; failures: FailureGroup[]; stats: NodeStats };

export class NodeScheduler {
  private readonly queue: RangeSet;
  private readonly carried: RangeSet;
  private readonly recheck: RangeSet;
  private options: SchedulerOptions;
  private settings: NodeSettings;
  private readonly bucket: TokenBucket;
  private readonly aimd: Aimd;
  private latency: LatencyPacer;
  /** With `batchSize: auto`: what it measured (null: a fixed batch size). */
  private autoBatch: AutoBatcher | null;
  private countedAt: number | null;
  private readonly unreportedDone: RangeSet;
  private unreportedFailures: FailureGroup[];
  private readonly stats: Omit<NodeStats, 'running'>;
  private readonly recentStarts: number[];
  private readonly throttleCounts: Map<number, number>;
  /** Partitions completed batches did not account for, by how many times (SchedulerOptions.unaccounted). */
  private readonly unaccountedCounts: Map<number, number>;
  /** Partitions deferred with no run window closing, by how many times (SchedulerOptions.deferrals). */
  private readonly deferralCounts: Map<number, number>;
  /** Nothing starts before this workflow time: the back-off after repeated deferrals (SchedulerOptions.deferrals). */
  private deferredUntil: number | null;
  /** When the back-off was last set: the workflow time may not have been counted since (`countedAt`). */
  private deferredAt = 0;
  /** Batches in flight: their partitions, the congestion epoch and the workflow time they started in. */
  private readonly inFlight = new Map<number, { indices: number[]; epoch: number; climb: number; at: number }>();
  private nextBatchId = 1;
  /** Throttles of batches started before the last slow-down belong to the same congestion event. */
  private congestionEpoch = 0;
  /** Steps the latency cap climbed under `slowStart`: a batch's latencies decide the next step only if none came since it started. */
  private climbs = 0;
  private throttledSinceAdvance = false;
  /** Something the parent displays changed (rate, throttling) since the last report. */
  private stateChanged = false;
  /** Partitions running at the last report (a new run's parent heard nothing of this run yet). */
  private reportedRunning = 0;
  /** Pauses the last finish has not passed yet (a span counts a pause once it holds all of it). */
  private pauses: Pause[];
  /**
   * The latency cap held work back when batches were last started (or settings last changed):
   * the time until the next `advance` lets it climb. Batches that land in between leave it set.
   */
  private capHolds = false;

  /**
   * A fresh scheduler holds `ready` (of which `recheck` may have been published by a node
   * workflow that closed without finishing); a carried one resumes from `state`.
   */
  constructor(options: SchedulerOptions, settings: NodeSettings, ready: RangeSet = new RangeSet(), state?: SchedulerState, recheck?: RangeSet) {
    this.options = options;
    this.settings = state?.settings ?? settings;
    this.queue = state ? RangeSet.fromJSON(state.queue) : ready.clone();
    this.carried = RangeSet.fromJSON(state?.carried);
    this.recheck = RangeSet.fromJSON(state?.recheck).addAll(recheck ?? new RangeSet());
    this.aimd = new Aimd(state?.aimd);
    this.latency = new LatencyPacer(state?.latency);
    if (options.slowStart && options.latencyTargetMs && !state) this.latency.startSlow();
    this.autoBatch = options.batchSize === 'auto' ? new AutoBatcher(options.batchTargetMs ?? DEFAULT_BATCH_TARGET_MS, state?.autoBatch) : null;
    const [rate, burst] = this.pace();
    this.bucket = new TokenBucket(rate, burst, state?.bucket.tokens);
    this.countedAt = state?.bucket.at ?? null;
    this.unreportedDone = RangeSet.fromJSON(state?.unreported.done);
    this.unreportedFailures = state?.unreported.failures ?? [];
    this.stats = state?.stats ?? {
      rate: this.settings.rate,
      concurrency: this.settings.concurrency,
      throttles: 0,
      completed: 0,
      firstStartedAt: null,
      lastFinishedAt: null,
    };
    this.recentStarts = state?.recentStarts ?? [];
    this.pauses = state?.pauses ?? [];
    this.throttleCounts = countsOf(state?.throttled);
    this.unaccountedCounts = countsOf(state?.unaccounted);
    this.deferralCounts = countsOf(state?.deferred);
    this.deferredUntil = state?.deferredUntil ?? null;
    this.applyPace();
  }

  // ---- what the parent says ----

  release(ready: RangeSet): void {
    this.queue.addAll(ready);
  }

  /** New settings from the parent at workflow time `now`; older ones (a lower seq) are ignored. Returns whether they applied. */
  configure(settings: NodeSettings, now: number): boolean {
    if (settings.seq <= this.settings.seq) return false;
    // The time before the change counts under the settings it passed under (a pause lets no cap climb).
    if (this.options.climbWhenBinding) this.advance(now);
    if (settings.paused !== this.settings.paused) this.notePause(settings.paused, now);
    this.settings = settings;
    this.applyPace();
    this.noteCapHolds();
    this.stateChanged = true;
    return true;
  }

  /** A new spec of the node may change its batch size, throttle budget and latency target. */
  reconfigure(options: SchedulerOptions): void {
    const auto = options.batchSize === 'auto';
    if (!auto) this.autoBatch = null;
    else if (!this.autoBatch || options.batchTargetMs !== this.options.batchTargetMs) {
      this.autoBatch = new AutoBatcher(options.batchTargetMs ?? DEFAULT_BATCH_TARGET_MS, this.autoBatch?.toJSON());
    }
    this.options = options;
    // Without a latency target, nothing lifts a cap it left.
    if (!options.latencyTargetMs && this.latency.active) {
      this.latency = new LatencyPacer();
      this.applyPace();
    }
  }

  get paused(): boolean {
    return this.settings.paused;
  }

  // ---- time ----

  private notePause(paused: boolean, now: number): void {
    const last = this.pauses[this.pauses.length - 1];
    if (paused) this.pauses.push([now, null]);
    else if (last && last[1] === null) last[1] = now;
  }

  /** Counts in `pausedMs` the pauses within the span from the first start to the last finish. */
  private countPauses(): void {
    const { firstStartedAt: first, lastFinishedAt: last } = this.stats;
    if (first === null || last === null) return;
    const passed = this.pauses.filter(([, to]) => to !== null && to <= last);
    if (passed.length === 0) return;
    const ms = passed.reduce((sum, [from, to]) => sum + Math.max(0, to! - Math.max(from, first)), 0);
    this.stats.pausedMs = (this.stats.pausedMs ?? 0) + ms;
    this.pauses = this.pauses.filter((pause) => !passed.includes(pause));
  }

  /**
   * The workflow's time is `now`: refill the bucket for the time since it was last counted
   * and let a throttled pace climb. `scheduledMs` is how long the caller meant to wait (a
   * pacing tick): a tick that came late may make up for its lateness (see TokenBucket.refill).
   */
  advance(now: number, scheduledMs?: number): void {
    const elapsed = this.countedAt === null ? 0 : Math.max(0, now - this.countedAt);
    this.countedAt = now;
    if (elapsed === 0) return;
    this.bucket.refill(elapsed, scheduledMs === undefined ? elapsed : Math.min(elapsed, scheduledMs));
    if (this.aimd.active && !this.throttledSinceAdvance) {
      this.aimd.onCalm(this.settings.rate, elapsed);
      this.applyPace();
      this.stateChanged = true;
    }
    const target = this.options.latencyTargetMs;
    // The latency cap climbs only while it holds work back.
    if (target && (this.capHolds || !this.options.climbWhenBinding) && !this.queue.isEmpty && this.bucket.available >= 1 && this.latency.onCalm(target, this.settings.concurrency, elapsed, this.options.climbWhenBinding, this.options.slowStart)) {
      // The next step is decided by latencies of activities started under this one.
      if (this.options.slowStart) this.climbs++;
      this.applyPace();
      this.stateChanged = true;
    }
    this.throttledSinceAdvance = false;
  }

  /** Whether the latency cap holds work back from now on (SchedulerOptions.climbWhenBinding). */
  private noteCapHolds(): void {
    this.capHolds = !this.settings.paused && !this.queue.isEmpty && this.latency.binds(this.inFlight.size, this.settings.concurrency);
  }

  /** How long to wait before the next pacing tick, or null when no tick is needed. */
  tickMs(): number | null {
    if (this.settings.paused) return null;
    const waiting = !this.queue.isEmpty;
    const backingOff = this.backingOff();
    if (backingOff !== null && (waiting || !this.carried.isEmpty)) return backingOff;
    if (this.aimd.active && waiting) return Math.min(this.bucket.tick, THROTTLED_TICK_MS);
    const probe = this.probeDeadline();
    if (probe !== null && waiting) return Math.max(1, probe - (this.countedAt ?? 0));
    if (this.bucket.limited && !this.bucket.full) return this.bucket.tick;
    return null;
  }

  /** How long the back-off after repeated deferrals still holds every start (null: it does not). */
  private backingOff(): number | null {
    const now = Math.max(this.countedAt ?? 0, this.deferredAt);
    return this.deferredUntil !== null && now < this.deferredUntil ? this.deferredUntil - now : null;
  }

  /** With `batchSize: auto` and nothing measured, while the first partition runs: when the node stops waiting for it. */
  private probeDeadline(): number | null {
    return this.autoBatch?.probeDeadline(this.countedAt ?? 0, this.inFlight.size) ?? null;
  }

  // ---- dispatch ----

  /** Batches to start now: within the concurrency, paced by the bucket; carried partitions first. */
  startable(): Batch[] {
    const batches: Batch[] = [];
    let share: number | undefined;
    const size = () => (this.options.evenShares ? (share ??= this.nextBatchSize()) : this.nextBatchSize());
    while (!this.settings.paused && this.inFlight.size < this.concurrency && this.probeDeadline() === null && this.backingOff() === null) {
      let indices: number[];
      if (!this.carried.isEmpty) {
        // Their tokens were spent by the run that started them.
        indices = this.carried.take(size());
      } else {
        if (this.queue.isEmpty || this.bucket.available < 1) break;
        indices = this.queue.take(this.bucket.take(Math.min(size(), this.queue.size)));
      }
      const recheck = indices.map((i) => this.recheck.has(i));
      for (const i of indices) this.recheck.delete(i);
      const id = this.nextBatchId++;
      const at = this.countedAt ?? 0;
      this.autoBatch?.started(at);
      this.inFlight.set(id, { indices, epoch: this.congestionEpoch, climb: this.climbs, at });
      batches.push({ id, indices, recheck, throttled: indices.map((i) => this.throttleCounts.get(i) ?? 0) });
    }
    this.noteCapHolds();
    return batches;
  }

  /** Partitions for the next activity: the node's batch size, or with `auto`, as many as its measured durations fit in the target. */
  private nextBatchSize(): number {
    const { batchSize } = this.options;
    if (batchSize !== 'auto' || !this.autoBatch) return batchSize === 'auto' ? 1 : batchSize;
    return this.autoBatch.size(this.queue.size + this.carried.size, this.concurrency);
  }

  // ---- outcomes ----

  /**
   * A batch ended (at workflow time `now`: a back-off after repeated deferrals counts from it).
   * Returns the failed attempts it counted of its own, beyond the activity's (its partitions a
   * completed batch did not account for, `SchedulerOptions.unaccounted`).
   */
  settle(batchId: number, outcome: BatchOutcome, now = this.countedAt ?? 0): number {
    const batch = this.inFlight.get(batchId);
    if (!batch) return 0;
    this.inFlight.delete(batchId);
    if (outcome.kind === 'cancelled') {
      // Cancelled, not failed: what it committed is done, the rest may run again later.
      const finished = outcome.finished ?? [];
      this.markDone(finished);
      const done = new Set(finished.map((r) => r.index));
      for (const i of batch.indices) if (!done.has(i)) this.queue.add(i);
      return 0;
    }
    this.markDone(outcome.finished);
    this.autoBatch?.finished(batch.at, outcome.finished);
    // Only batches started under the concurrency now in force (since the last slow-down and, starting slowly, the last climb): they never ran beside more than it.
    if (batch.epoch === this.congestionEpoch && batch.climb === this.climbs) this.observeLatency(outcome.finished);
    const finished = new Set(outcome.finished.map((r) => r.index));
    const rest = batch.indices.filter((i) => !finished.has(i));
    if (outcome.kind === 'failed') {
      const failedIndex = outcome.failedIndex !== null && rest.includes(outcome.failedIndex) ? outcome.failedIndex : rest[0];
      for (const i of rest) {
        if (i === failedIndex) this.fail(i, outcome.message, outcome.type);
        else this.queue.add(i);
      }
      return 0;
    }
    const unaccounted = this.options.unaccounted ? unaccountedFor(batch.indices, outcome) : [];
    const deferred = this.options.deferrals && outcome.windowClosed !== true ? deferredOf(batch.indices, outcome) : [];
    const throttled = outcome.throttled;
    for (const i of rest) if (i !== throttled?.index && !unaccounted.includes(i) && !deferred.includes(i)) this.queue.add(i);
    for (const i of unaccounted) this.noResult(i);
    this.deferAll(deferred, now);
    if (throttled && rest.includes(throttled.index)) this.throttle(batch.epoch, throttled);
    return unaccounted.length;
  }

  /** A completed batch did not account for partition `index`: a failed attempt of it. */
  private noResult(index: number): void {
    const { maxAttempts, taskQueue } = this.options.unaccounted!;
    const times = (this.unaccountedCounts.get(index) ?? 0) + 1;
    if (times >= maxAttempts) {
      this.fail(index, noResultMessage(times, taskQueue), NO_RESULT_FAILURE);
    } else {
      this.unaccountedCounts.set(index, times);
      this.queue.add(index);
    }
  }

  /** A completed batch deferred these partitions while no run window closed (SchedulerOptions.deferrals). */
  private deferAll(indices: readonly number[], now: number): void {
    if (indices.length === 0) return;
    const { max, backoffMs, taskQueue } = this.options.deferrals!;
    let most = 0;
    for (const index of indices) {
      const times = (this.deferralCounts.get(index) ?? 0) + 1;
      if (times > max) {
        this.fail(index, deferredMessage(times, taskQueue), DEFERRED_FAILURE);
        continue;
      }
      this.deferralCounts.set(index, times);
      this.queue.add(index);
      most = Math.max(most, times);
    }
    const wait = deferralBackoffMs(most, backoffMs);
    if (wait === 0) return;
    this.deferredUntil = Math.max(this.deferredUntil ?? 0, now + wait);
    this.deferredAt = Math.max(this.deferredAt, now);
  }

  /** A batch started in congestion epoch `epoch` was throttled on one of its partitions. */
  private throttle(epoch: number, throttled: { index: number; message: string }): void {
    const times = (this.throttleCounts.get(throttled.index) ?? 0) + 1;
    this.stats.throttles++;
    this.throttledSinceAdvance = true;
    this.stateChanged = true;
    if (times > this.options.maxThrottles) {
      this.fail(
        throttled.index,
        `throttled ${times} times by the downstream system (last: ${throttled.message}): lower the node's rate, or raise retry.maxThrottles`,
        'ThrottleBudget',
      );
    } else {
      this.throttleCounts.set(throttled.index, times);
      this.queue.add(throttled.index);
    }
    if (epoch === this.congestionEpoch) {
      this.aimd.onThrottle(this.settings.rate, this.observedRate());
      this.congestionEpoch++;
      this.applyPace();
    }
  }

  /** Latencies of partitions started since the last slow-down: over the target, fewer run at once. */
  private observeLatency(results: readonly PartitionResult[]): void {
    const target = this.options.latencyTargetMs;
    if (!target || results.length === 0) return;
    const latencies = results.map((r) => r.latencyMs ?? Math.max(0, r.finishedAt - r.startedAt));
    // This batch has just left: it was running too.
    if (!this.latency.observe(latencies, target, this.inFlight.size + 1, this.settings.concurrency)) return;
    this.congestionEpoch++;
    this.applyPace();
    this.stateChanged = true;
  }

  /** Activities the node runs at once: its concurrency, or fewer while its latency target holds it back. */
  private get concurrency(): number {
    const limited = this.latency.limit(this.settings.concurrency);
    return this.options.zeroHolds ? Math.min(limited, this.settings.concurrency) : limited;
  }

  private fail(index: number, message: string, type: string): void {
    this.throttleCounts.delete(index);
    this.unaccountedCounts.delete(index);
    this.deferralCounts.delete(index);
    this.unreportedFailures = addFailure(this.unreportedFailures, message, type, index);
  }

  private markDone(results: readonly PartitionResult[]): void {
    if (results.length === 0) return;
    for (const r of results) {
      this.unreportedDone.add(r.index);
      this.throttleCounts.delete(r.index);
      this.unaccountedCounts.delete(r.index);
      this.deferralCounts.delete(r.index);
      this.stats.completed++;
      this.stats.firstStartedAt = this.stats.firstStartedAt === null ? r.startedAt : Math.min(this.stats.firstStartedAt, r.startedAt);
      this.stats.lastFinishedAt = this.stats.lastFinishedAt === null ? r.finishedAt : Math.max(this.stats.lastFinishedAt, r.finishedAt);
      this.recentStarts.push(r.startedAt);
    }
    this.countPauses();
    this.recentStarts.sort((a, b) => a - b);
    this.recentStarts.splice(0, Math.max(0, this.recentStarts.length - RECENT_STARTS));
  }

  /** Partitions started per second over the last few seconds of starts (unknown: Infinity). */
  private observedRate(): number {
    const last = this.recentStarts[this.recentStarts.length - 1];
    if (last === undefined) return Infinity;
    // Only recent starts: a pause waiting for upstream work is not a slow pace.
    const recent = this.recentStarts.filter((t) => t >= last - RECENT_WINDOW_MS);
    if (recent.length < 2) return Infinity;
    const span = (last - recent[0]!) / 1000;
    return span > 0 ? (recent.length - 1) / span : Infinity;
  }

  /** The pace after throttling; while throttled, the burst shrinks with it. */
  private pace(): [rate: number | null, burst: number] {
    const rate = this.aimd.effective(this.settings.rate);
    if (rate === null) return [null, 1];
    return [rate, this.aimd.active ? Math.min(this.settings.burst, TokenBucket.defaultBurst(rate)) : this.settings.burst];
  }

  private applyPace(): void {
    const [rate, burst] = this.pace();
    this.bucket.configure(rate, burst);
    this.stats.rate = rate;
    this.stats.concurrency = this.concurrency;
  }

  // ---- reporting ----

  /** Partitions held by batches in flight. */
  get running(): number {
    let n = 0;
    for (const batch of this.inFlight.values()) n += batch.indices.length;
    return n;
  }

  get inFlightBatches(): number {
    return this.inFlight.size;
  }

  get queued(): number {
    return this.queue.size + this.carried.size;
  }

  /** Nothing runs and nothing waits to run. */
  get idle(): boolean {
    return this.inFlight.size === 0 && this.queue.isEmpty && this.carried.isEmpty;
  }

  /** Something completed, failed, or changed that the parent shows. */
  get hasNews(): boolean {
    return (
      !this.unreportedDone.isEmpty ||
      this.unreportedFailures.length > 0 ||
      this.stateChanged ||
      (this.options.reportRunning === true && this.running !== this.reportedRunning)
    );
  }

  /** Completions and failures the parent must hear of (state-only news can wait). */
  get hasResults(): boolean {
    return !this.unreportedDone.isEmpty || this.unreportedFailures.length > 0;
  }

  /** Why nothing more starts right now (null: nothing holds it back). */
  waitReason(): WaitReason {
    if (this.settings.paused) return 'paused';
    if (this.queue.isEmpty && this.carried.isEmpty) return this.inFlight.size === 0 ? 'upstream' : null;
    if (this.inFlight.size >= this.concurrency) return this.concurrency < this.settings.concurrency ? 'slowed' : 'concurrency';
    if (this.probeDeadline() !== null) return 'measuring';
    if (this.backingOff() !== null) return 'deferred';
    if (this.bucket.available < 1) return this.aimd.active ? 'throttled' : 'rate';
    return null;
  }

  currentStats(): NodeStats {
    return {
      ...this.stats,
      running: this.running,
      ...(this.autoBatch ? { batchSize: this.nextBatchSize() } : {}),
      ...(this.options.latencyTargetMs ? { latencyP95Ms: this.latency.recentP95 } : {}),
    };
  }

  /** The news since the last report; it is cleared (a report that leaves always arrives or the parent is gone). */
  takeReport(): NodeReportBody {
    const body = { done: this.unreportedDone.toJSON(), failures: this.unreportedFailures, stats: this.currentStats() };
    this.unreportedDone.clear();
    this.unreportedFailures = [];
    this.stateChanged = false;
    this.reportedRunning = body.stats.running;
    return body;
  }

  /** The state to carry across continue-as-new: batches in flight become partitions to recheck. */
  toState(): SchedulerState {
    const carried = this.carried.clone();
    const recheck = this.recheck.clone();
    for (const batch of this.inFlight.values()) {
      for (const i of batch.indices) {
        carried.add(i);
        recheck.add(i);
      }
    }
    return {
      queue: this.queue.toJSON(),
      carried: carried.toJSON(),
      recheck: recheck.toJSON(),
      settings: this.settings,
      bucket: { tokens: this.bucket.tokens, at: this.countedAt },
      aimd: this.aimd.toJSON(),
      unreported: { done: this.unreportedDone.toJSON(), failures: this.unreportedFailures },
      stats: { ...this.stats },
      recentStarts: [...this.recentStarts],
      throttled: countsJSON(this.throttleCounts),
      ...(this.unaccountedCounts.size > 0 ? { unaccounted: countsJSON(this.unaccountedCounts) } : {}),
      ...(this.deferralCounts.size > 0 ? { deferred: countsJSON(this.deferralCounts) } : {}),
      ...(this.backingOff() !== null ? { deferredUntil: this.deferredUntil! } : {}),
      ...(this.autoBatch ? { autoBatch: this.autoBatch.toJSON() } : {}),
      ...(this.options.latencyTargetMs || this.latency.active ? { latency: this.latency.toJSON() } : {}),
      ...(this.pauses.length > 0 ? { pauses: this.pauses.map(([from, to]): Pause => [from, to]) } : {}),
    };
  }
}

/** Counts by partition, from partitions by count (as carried). */
function countsOf(json: Record<string, RangesJSON> | undefined): Map<number, number> {
  const counts = new Map<number, number>();
  for (const [count, ranges] of Object.entries(json ?? {})) {
    for (const index of RangeSet.fromJSON(ranges)) counts.set(index, Number(count));
  }
  return counts;
}

/** Partitions by count, to carry. */
function countsJSON(counts: ReadonlyMap<number, number>): Record<string, RangesJSON> {
  const sets: Record<string, RangeSet> = {};
  for (const [index, count] of counts) (sets[count] ??= new RangeSet()).add(index);
  return Object.fromEntries(Object.entries(sets).map(([count, set]) => [count, set.toJSON()]));
}
