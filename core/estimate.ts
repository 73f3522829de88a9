/**
 * `plan --estimate` and `status`'s ETA: a deterministic simulation of a backfill's run, with
 * the rules the workflows follow and a model of what orchestration costs on top of the work.
 *
 * What it follows, as the workflows do: partition-level readiness (`Readiness`: a partition
 * is released once every upstream partition it maps to is done, and only through a node's
 * report to the parent, which leaves at most once per report interval); each node's
 * concurrency and batch size, and its token bucket (`TokenBucket`, refilled on pacing ticks);
 * the backfill-wide rate and concurrency shared among the nodes with work (`nodeShares`);
 * per task queue, the server's cap on activities per second and the workers' slots; and run
 * windows (`SimulationInput.windows`): partitions start only while they allow, at the lower
 * limits they set inside or outside them.
 *
 * What it adds (`OverheadModel`, calibrated in docs/estimate.md): the start and the end of a
 * backfill, the time an activity holds its slot beyond its partitions' own durations, the
 * signal hops between node workflows and the parent, and the orchestration work per activity
 * and per partition, which the server and workers do with finite CPU and so bound the
 * throughput of many short partitions.
 *
 * It does not model failures, retries or throttling: every partition succeeds once. Nor does it
 * model a window's close cutting running partitions short (they run to their end), or a
 * canary's slice and its wait for an approval.
 */
import { DEFAULT_BATCH_TARGET, autoBatchSize, probeWindowMs } from './batching.ts';
import { parseDuration } from './duration.ts';
import type { Limits, NodeLimits } from './limits.ts';
import { minRate, nodeShares } from './shares.ts';
import { initialRelease } from './only-changed.ts';
import { MAX_TICK_MS, TokenBucket } from './pacing.ts';
import type { Plan, PlanNode } from './plan.ts';
import { DEFAULT_TUNING } from './protocol.ts';
import { RangeSet, type RangesJSON } from './ranges.ts';
import { Readiness, type ReadinessJSON } from './readiness.ts';
import type { EffectiveLimits } from './windows.ts';

/** What orchestration costs, in milliseconds; see docs/estimate.md for how each was measured. */
export type OverheadModel = {
  /** From the start to the first partitions handed to their node workflows (the parent's first task, the node workflows' starts). */
  startMs: number;
  /** What an activity holds its node's slot beyond its partitions' durations: its dispatch, and the workflow task that sees it complete. */
  activityMs: number;
  /** One signal between workflows with the workflow task that handles it (a node's report to the parent, the parent's release to a node). */
  hopMs: number;
  /** Node reports leave at most this often (the workflows' `reportIntervalMs`). */
  reportIntervalMs: number;
  /**
   * Orchestration CPU the server and workers spend per activity and per partition, one at a
   * time: starts queue behind it, which caps the throughput of short partitions.
   */
  activityCostMs: number;
  partitionCostMs: number;
  /** From the last report to the backfill closed. */
  endMs: number;
};

/**
 * Calibrated on a dev server on SQLite, one worker, 2 shared cores, under the load of other
 * users of the machine (docs/estimate.md has the runs and the fit).
 */
export const DEFAULT_OVERHEAD: OverheadModel = {
  startMs: 1000,
  activityMs: 160,
  hopMs: 80,
  reportIntervalMs: DEFAULT_TUNING.reportIntervalMs,
  activityCostMs: 40,
  partitionCostMs: 2.6,
  endMs: 200,
};

/** How long each partition of a node takes (its transform, checks and publish, as the ledger's duration_ms measures). */
export type NodeTiming = {
  /** For partitions without a duration of their own. */
  meanMs: number;
  /** Durations by partition index; NaN where unknown. */
  byIndex?: Float64Array;
};

/** A task queue's limits: the server-enforced activities per second, and the activity slots of the workers that poll it. */
export type QueueCap = { ratePerSecond: number | null; slots: number | null };

export type SimulationInput = {
  plan: Plan;
  /** Backfill-wide limits. */
  limits: Limits;
  /** Per-node overrides of their own limits (`set-rate --node`; a null concurrency keeps the spec's, as the coordinator reads it). */
  overrides?: Readonly<Record<string, Partial<Limits>>>;
  timings: ReadonlyMap<string, NodeTiming>;
  overhead?: OverheadModel;
  /** Caps by task queue name; a queue not named has none. */
  queues?: Readonly<Record<string, QueueCap>>;
  /** Partitions that count as done from the start (`--only-changed`). */
  skip?: Record<string, RangesJSON>;
  /**
   * A backfill under way (`status`): its readiness as carried (done, failed, in hands). The
   * simulation starts from it, at time 0 = now, with the partitions in hands queued again.
   */
  from?: ReadinessJSON;
  /**
   * Run windows (the spec's and the policy's): what they allow at a wall-clock instant, as
   * `effectiveLimits` of core/windows.ts says it (paused, or lower limits, and when that changes
   * next), and the instant of the simulation's time 0. Partitions start only while the windows
   * allow; their limits lower the backfill-wide ones, as the coordinator applies them.
   */
  windows?: { startAt: number; limitsAt: (at: number) => EffectiveLimits };
};

export type NodeForecast = {
  id: string;
  partitions: number;
  /** Partitions the simulation ran (not skipped, not already done, not blocked by a failure). */
  runs: number;
  /** Activities (batches) it started. */
  activities: number;
  /** When its first partition started and its last finished, in ms from the start; null when it ran nothing. */
  firstStartMs: number | null;
  finishMs: number | null;
};

export type Forecast = {
  /** From the start until the backfill closes. */
  wallMs: number;
  runs: number;
  activities: number;
  nodes: NodeForecast[];
};

// ---- a priority queue of events, earliest first, ties in the order they were pushed ----

type Event =
  | { kind: 'arrive'; node: number; ready: RangeSet }
  | { kind: 'deliver'; node: number }
  | { kind: 'complete'; node: number; indices: number[] }
  | { kind: 'wake'; node: number; seq: number }
  | { kind: 'report'; node: number }
  | { kind: 'parent'; node: number; done: RangeSet }
  | { kind: 'window' };

class EventQueue {
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly events: Event[] = [];
  private seq = 0;
  private working = 0;

  get size(): number {
    return this.events.length;
  }

  /** Events that are work under way (not a node's wake, which only a node with ready partitions waits for, nor a window's change). */
  get work(): number {
    return this.working;
  }

  push(time: number, event: Event): void {
    if (event.kind !== 'wake' && event.kind !== 'window') this.working++;
    this.times.push(time);
    this.seqs.push(this.seq++);
    this.events.push(event);
    let i = this.events.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { time: number; event: Event } {
    const top = { time: this.times[0]!, event: this.events[0]! };
    if (top.event.kind !== 'wake' && top.event.kind !== 'window') this.working--;
    const last = this.events.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.seqs.pop();
    this.events.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.events.length && this.before(l, m)) m = l;
      if (r < this.events.length && this.before(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    return this.times[a]! < this.times[b]! || (this.times[a] === this.times[b] && this.seqs[a]! < this.seqs[b]!);
  }

  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b]!, this.times[a]!];
    [this.seqs[a], this.seqs[b]] = [this.seqs[b]!, this.seqs[a]!];
    [this.events[a], this.events[b]] = [this.events[b]!, this.events[a]!];
  }
}

/** Start times that a rate allows: the generic cell rate algorithm (a token bucket that can book ahead). */
class Pace {
  private tat = -Infinity;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** The earliest start at or after `at`, booked. */
  book(at: number): number {
    const interval = 1000 / this.rate;
    const start = Math.max(at, this.tat - (this.burst - 1) * interval);
    this.tat = Math.max(this.tat, start) + interval;
    return start;
  }
}

/** The earliest-free of `slots` servers (a min-heap of the times each becomes free). */
class Slots {
  private readonly free: number[] = [];

  constructor(readonly count: number) {}

  /** Takes the earliest slot at or after `at`; returns when it is free. */
  take(at: number): number {
    if (this.free.length < this.count) return at;
    return Math.max(at, this.popMin());
  }

  /** The slot taken last stays busy until `until`. */
  hold(until: number): void {
    this.free.push(until);
    let i = this.free.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.free[p]! <= this.free[i]!) break;
      [this.free[p], this.free[i]] = [this.free[i]!, this.free[p]!];
      i = p;
    }
  }

  private popMin(): number {
    const min = this.free[0]!;
    const last = this.free.pop()!;
    if (this.free.length > 0) {
      this.free[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.free.length && this.free[l]! < this.free[m]!) m = l;
        if (r < this.free.length && this.free[r]! < this.free[m]!) m = r;
        if (m === i) break;
        [this.free[m], this.free[i]] = [this.free[i]!, this.free[m]!];
        i = m;
      }
    }
    return min;
  }
}

type QueueRun = { pace: Pace | null; slots: Slots | null };

type NodeRun = {
  plan: PlanNode;
  timing: NodeTiming;
  queue: number;
  own: NodeLimits;
  share: { rate: number | null; concurrency: number };
  /** Ready partitions the node workflow holds. */
  ready: RangeSet;
  inFlight: number;
  /** Partitions in flight, and as many as the last report said: a change is news the node reports. */
  running: number;
  reportedRunning: number;
  bucket: TokenBucket;
  countedAt: number;
  wakePending: boolean;
  /** The pending wake's number: a wake of another number was dropped (`rearm`) and does nothing. */
  wakeSeq: number;
  /** Whether the pending wake jumps over pacing ticks to the next token (`pacingWake`): a change of rate rearms it. */
  wakeJump: boolean;
  /** Completed, not yet reported to the parent. */
  unreported: RangeSet;
  nextReportAt: number;
  reportPending: boolean;
  /** The parent's releases not yet delivered (one signal to a node in flight at a time). */
  outbox: RangeSet;
  deliverBusyUntil: number;
  deliverPending: boolean;
  forecast: NodeForecast;
  /** With `batchSize: auto`: whether a batch of it completed, so that the workflow knows its partitions' durations; when its first started. */
  measured: boolean;
  probeStartedAt: number | null;
};

/** Simulates the run of a plan; pure and deterministic. */
export function simulate(input: SimulationInput): Forecast {
  return new Simulation(input).run();
}

class Simulation {
  private readonly overhead: OverheadModel;
  private readonly events = new EventQueue();
  private readonly readiness: Readiness;
  private readonly nodes: NodeRun[];
  private readonly index = new Map<string, number>();
  private readonly queues: QueueRun[] = [];
  private readonly orchestration = new Slots(1);
  private readonly shared: boolean;
  private lastReportAt = 0;
  private anyRan = false;
  /** What the run windows allow now (null: no windows). */
  private windowed: EffectiveLimits | null = null;

  constructor(private readonly input: SimulationInput) {
    this.overhead = input.overhead ?? DEFAULT_OVERHEAD;
    this.readiness = new Readiness(input.plan, input.from);
    // Windows change the backfill-wide limits, which the nodes share.
    this.shared = input.limits.rate !== null || input.limits.concurrency !== null || input.windows !== undefined;
    const queueIndex = new Map<string, number>();
    this.nodes = input.plan.nodes.map((plan, i) => {
      this.index.set(plan.id, i);
      const taskQueue = plan.spec.taskQueue;
      if (!queueIndex.has(taskQueue)) {
        const cap = input.queues?.[taskQueue];
        queueIndex.set(taskQueue, this.queues.length);
        this.queues.push({
          // An infinite rate caps nothing (and would book NaN start times).
          pace: cap?.ratePerSecond && Number.isFinite(cap.ratePerSecond) ? new Pace(cap.ratePerSecond, TokenBucket.defaultBurst(cap.ratePerSecond)) : null,
          slots: cap?.slots ? new Slots(cap.slots) : null,
        });
      }
      const override = input.overrides?.[plan.id] ?? {};
      const own = { rate: override.rate !== undefined ? override.rate : plan.spec.rate, concurrency: override.concurrency ?? plan.spec.concurrency };
      const timing = input.timings.get(plan.id) ?? { meanMs: 0 };
      return {
        plan,
        timing,
        queue: queueIndex.get(taskQueue)!,
        own,
        share: { rate: own.rate, concurrency: own.concurrency },
        ready: new RangeSet(),
        inFlight: 0,
        running: 0,
        reportedRunning: 0,
        bucket: new TokenBucket(null, 1),
        countedAt: 0,
        wakePending: false,
        wakeSeq: 0,
        wakeJump: false,
        unreported: new RangeSet(),
        nextReportAt: 0,
        reportPending: false,
        outbox: new RangeSet(),
        deliverBusyUntil: 0,
        deliverPending: false,
        forecast: { id: plan.id, partitions: plan.partitions.size, runs: 0, activities: 0, firstStartMs: null, finishMs: null },
        // A running backfill's node with partitions done has measured them already: no probe.
        measured: !RangeSet.fromJSON(input.from?.[plan.id]?.done).isEmpty,
        probeStartedAt: null,
      };
    });
  }

  run(): Forecast {
    const start = this.input.from ? 0 : this.overhead.startMs;
    const released = this.input.from ? this.resumed() : initialRelease(this.input.plan, this.readiness, this.input.skip);
    this.applyWindows(0, false);
    this.refreshShares(true);
    for (const node of this.nodes) {
      const burst = node.plan.spec.burst ?? TokenBucket.defaultBurst(node.share.rate);
      node.bucket = new TokenBucket(node.share.rate, burst);
      node.countedAt = start;
      const ready = released.get(node.plan.id);
      if (ready && !ready.isEmpty) this.events.push(start, { kind: 'arrive', node: this.index.get(node.plan.id)!, ready });
    }
    this.applyWindows(0);
    while (this.events.size > 0) {
      const { time, event } = this.events.pop();
      this.handle(time, event);
    }
    const runs = this.nodes.reduce((sum, n) => sum + n.forecast.runs, 0);
    return {
      // Nothing to run: a fresh backfill still starts and ends.
      wallMs: this.anyRan ? this.lastReportAt + this.overhead.endMs : start === 0 ? 0 : start + this.overhead.endMs,
      runs,
      activities: this.nodes.reduce((sum, n) => sum + n.forecast.activities, 0),
      nodes: this.nodes.map((n) => n.forecast),
    };
  }

  /** A backfill under way: what each node holds now, and anything ready that is not yet released. */
  private resumed(): Map<string, RangeSet> {
    const out = new Map<string, RangeSet>();
    for (const node of this.input.plan.nodes) {
      const held = this.readiness.inHands(node.id);
      if (!held.isEmpty) out.set(node.id, held);
    }
    for (const [id, ready] of this.readiness.releaseAll()) out.set(id, (out.get(id) ?? new RangeSet()).addAll(ready));
    return out;
  }

  /** What the windows allow at `now`, and an event at their next change (while anything is left to run). */
  private applyWindows(now: number, schedule = true): void {
    const windows = this.input.windows;
    if (!windows) return;
    this.windowed = windows.limitsAt(windows.startAt + now);
    if (!schedule) return;
    const next = this.windowed.nextChangeAt === null ? null : this.windowed.nextChangeAt - windows.startAt;
    // A change that is not ahead would never let time move on: the windows stay as they are.
    if (next !== null && next > now && (this.events.work > 0 || this.nodes.some((n) => !n.ready.isEmpty || !n.outbox.isEmpty))) this.events.push(next, { kind: 'window' });
  }

  /** A window opens or closes: the limits are shared again, and every node looks at what it may start. */
  private windowChange(now: number): void {
    this.applyWindows(now);
    this.refreshShares(false);
    for (const node of this.nodes) this.dispatch(node, now);
  }

  private handle(time: number, event: Event): void {
    if (event.kind === 'window') return this.windowChange(time);
    const node = this.nodes[event.node]!;
    switch (event.kind) {
      case 'arrive':
        node.ready.addAll(event.ready);
        this.dispatch(node, time);
        return;
      case 'wake':
        if (event.seq !== node.wakeSeq) return;
        node.wakePending = false;
        this.dispatch(node, time);
        return;
      case 'complete':
        this.complete(node, event.indices, time);
        return;
      case 'report':
        this.report(node, time);
        return;
      case 'parent':
        this.atParent(node, event.done, time);
        return;
      case 'deliver':
        node.deliverPending = false;
        this.deliver(event.node, time);
        return;
    }
  }

  private durationOf(node: NodeRun, index: number): number {
    const known = node.timing.byIndex?.[index];
    return known !== undefined && !Number.isNaN(known) ? known : node.timing.meanMs;
  }

  /** What the node workflow's loop does on every wake: refill the bucket, start what the limits allow. */
  private dispatch(node: NodeRun, now: number): void {
    const elapsed = now - node.countedAt;
    if (elapsed > 0) node.bucket.refill(elapsed);
    node.countedAt = now;
    // Outside the windows (pause): nothing starts until the next opens (`windowChange`).
    if (this.windowed?.paused) return;
    // The batches started together share the queue evenly (NodeScheduler's evenShares).
    let share: number | undefined;
    while (node.inFlight < node.share.concurrency && !node.ready.isEmpty) {
      const probe = this.probeDeadline(node, now);
      if (probe !== null) {
        this.wake(node, probe);
        return;
      }
      const wanted = Math.min((share ??= this.batchSize(node)), node.ready.size);
      const granted = node.bucket.take(wanted);
      if (granted < 1) {
        const next = this.pacingWake(node, now);
        this.wake(node, next.at, next.jump);
        return;
      }
      this.startBatch(node, node.ready.take(granted), now);
    }
  }

  /**
   * The node's batch size; with `auto`, what the workflow picks once its first batch measured
   * the partitions (the node's mean time), spread over what can run at once: its concurrency, or
   * the queue's worker slots when fewer (the workflow learns those from how long batches wait).
   */
  private batchSize(node: NodeRun): number {
    const { batchSize, batchTarget } = node.plan.spec;
    if (batchSize !== 'auto') return batchSize;
    return autoBatchSize({
      msPerPartition: node.measured ? node.timing.meanMs : null,
      targetMs: parseDuration(batchTarget ?? DEFAULT_BATCH_TARGET)!,
      queued: node.ready.size,
      parallel: Math.min(node.share.concurrency, this.queues[node.queue]!.slots?.count ?? Infinity),
    });
  }

  /** With `batchSize: auto`, while the node's first partition runs: when it stops waiting for it (as NodeScheduler does). */
  private probeDeadline(node: NodeRun, now: number): number | null {
    if (node.plan.spec.batchSize !== 'auto' || node.measured || node.probeStartedAt === null || node.inFlight === 0) return null;
    const deadline = node.probeStartedAt + probeWindowMs(parseDuration(node.plan.spec.batchTarget ?? DEFAULT_BATCH_TARGET)!);
    return now < deadline ? deadline : null;
  }

  /**
   * When a node short of tokens looks again: the workflow's pacing timer, the time to refill half
   * the bucket. At rates so low that the timer is at its longest (MAX_TICK_MS: under burst/120
   * a second), ticks go by without a token for hours or years (at 1e-9 a second, 1.7e7 of them
   * per token): the node sleeps through them to the first tick by which a whole token has come,
   * the tick at which the workflow finds it. Faster rates tick as before, token or not.
   */
  private pacingWake(node: NodeRun, now: number): { at: number; jump: boolean } {
    const tick = node.bucket.tick;
    const rate = node.share.rate;
    if (tick < MAX_TICK_MS || rate === null) return { at: now + tick, jump: false };
    // A token is whole at 1 - 1e-9 (TokenBucket.available).
    const ticks = Math.max(1, Math.ceil(((1 - 1e-9 - node.bucket.tokens) * 1000) / rate / tick));
    return { at: now + ticks * tick, jump: ticks > 1 };
  }

  private wake(node: NodeRun, at: number, jump = false): void {
    if (node.wakePending) return;
    node.wakePending = true;
    node.wakeJump = jump;
    this.events.push(at, { kind: 'wake', node: this.index.get(node.plan.id)!, seq: node.wakeSeq });
  }

  /** A wake that jumped to the next token at the old rate is dropped when the rate changes: the caller dispatches the node again. */
  private rearm(node: NodeRun): void {
    if (!node.wakePending || !node.wakeJump) return;
    node.wakeSeq++;
    node.wakePending = false;
  }

  private startBatch(node: NodeRun, indices: number[], now: number): void {
    if (node.plan.spec.batchSize === 'auto' && node.probeStartedAt === null) node.probeStartedAt = now;
    const queue = this.queues[node.queue]!;
    let start = now;
    if (queue.pace) start = queue.pace.book(start);
    if (queue.slots) start = queue.slots.take(start);
    start = this.orchestration.take(start);
    this.orchestration.hold(start + this.overhead.activityCostMs + indices.length * this.overhead.partitionCostMs);
    let work = 0;
    for (const i of indices) work += this.durationOf(node, i);
    const end = start + this.overhead.activityMs + work;
    queue.slots?.hold(end);
    node.inFlight++;
    node.running += indices.length;
    this.scheduleReport(node, now);
    node.forecast.activities++;
    node.forecast.firstStartMs = Math.min(node.forecast.firstStartMs ?? Infinity, start);
    this.anyRan = true;
    this.events.push(end, { kind: 'complete', node: this.index.get(node.plan.id)!, indices });
  }

  private complete(node: NodeRun, indices: number[], now: number): void {
    node.measured = true;
    node.inFlight--;
    node.running -= indices.length;
    node.forecast.runs += indices.length;
    node.forecast.finishMs = Math.max(node.forecast.finishMs ?? 0, now);
    for (const i of indices) node.unreported.add(i);
    this.scheduleReport(node, now);
    this.dispatch(node, now);
    // A node with nothing left to run reports its last results at once (the workflow's report-when-idle).
    if (node.inFlight === 0 && node.ready.isEmpty && !node.unreported.isEmpty) this.events.push(now, { kind: 'report', node: this.index.get(node.plan.id)! });
  }

  /**
   * The node's reporter: a report leaves as news comes, but at most once per report interval.
   * News is what completed, and a change in how many partitions run: the report that says a
   * node's first partitions started holds back the one that says they finished.
   */
  private scheduleReport(node: NodeRun, now: number): void {
    if (node.reportPending || !this.hasNews(node)) return;
    node.reportPending = true;
    this.events.push(Math.max(now, node.nextReportAt), { kind: 'report', node: this.index.get(node.plan.id)! });
  }

  private hasNews(node: NodeRun): boolean {
    return !node.unreported.isEmpty || node.running !== node.reportedRunning;
  }

  private report(node: NodeRun, now: number): void {
    node.reportPending = false;
    if (!this.hasNews(node)) return;
    node.reportedRunning = node.running;
    const done = node.unreported;
    node.unreported = new RangeSet();
    const arrives = now + this.overhead.hopMs;
    node.nextReportAt = arrives + this.overhead.reportIntervalMs;
    this.events.push(arrives, { kind: 'parent', node: this.index.get(node.plan.id)!, done });
  }

  /** The parent hears of completions: it releases the downstream partitions they complete, and re-shares the limits. */
  private atParent(node: NodeRun, done: RangeSet, now: number): void {
    this.lastReportAt = Math.max(this.lastReportAt, now);
    const released = this.readiness.markDone(node.plan.id, done);
    for (const [id, ready] of released) {
      const i = this.index.get(id)!;
      this.nodes[i]!.outbox.addAll(ready);
      this.deliver(i, now);
    }
    if (this.shared) for (const changed of this.refreshShares(false)) this.dispatch(changed, now);
  }

  /** At most one signal to a node in flight: what is released meanwhile goes in the next one. */
  private deliver(i: number, now: number): void {
    const node = this.nodes[i]!;
    if (node.outbox.isEmpty) return;
    if (node.deliverBusyUntil > now) {
      if (!node.deliverPending) {
        node.deliverPending = true;
        this.events.push(node.deliverBusyUntil, { kind: 'deliver', node: i });
      }
      return;
    }
    const arrives = now + this.overhead.hopMs;
    node.deliverBusyUntil = arrives;
    this.events.push(arrives, { kind: 'arrive', node: i, ready: node.outbox });
    node.outbox = new RangeSet();
  }

  /** Each node's share of the backfill-wide limits, among the nodes with work in hands (as the coordinator shares them). */
  private refreshShares(initial: boolean): NodeRun[] {
    // Run windows may lower the limits, never raise them (as the coordinator applies them).
    const w = this.windowed;
    const limits = w
      ? { rate: minRate(this.input.limits.rate, w.rate), concurrency: w.concurrency === null ? this.input.limits.concurrency : Math.min(this.input.limits.concurrency ?? Infinity, w.concurrency) }
      : this.input.limits;
    const shares = nodeShares(
      limits,
      this.nodes.map((n) => ({ id: n.plan.id, own: n.own, active: this.readiness.hasInHands(n.plan.id), ...(initial ? {} : { previous: n.share }) })),
    );
    const changed: NodeRun[] = [];
    for (const node of this.nodes) {
      const share = shares.get(node.plan.id)!;
      if (share.rate === node.share.rate && share.concurrency === node.share.concurrency) continue;
      if (!initial && share.rate !== node.share.rate) {
        node.bucket.configure(share.rate, node.plan.spec.burst ?? TokenBucket.defaultBurst(share.rate));
        this.rearm(node);
      }
      node.share = share;
      changed.push(node);
    }
    return changed;
  }
}

/** The overhead model with every orchestration cost multiplied by `factor` (the report interval is a setting, not a cost). */
export function scaleOverhead(overhead: OverheadModel, factor: number): OverheadModel {
  return {
    startMs: overhead.startMs * factor,
    activityMs: overhead.activityMs * factor,
    hopMs: overhead.hopMs * factor,
    reportIntervalMs: overhead.reportIntervalMs,
    activityCostMs: overhead.activityCostMs * factor,
    partitionCostMs: overhead.partitionCostMs * factor,
    endMs: overhead.endMs * factor,
  };
}

/** From the first partition's start to the last one's finish. */
export function spanOf(forecast: Forecast): number | null {
  const starts = forecast.nodes.map((n) => n.firstStartMs).filter((v): v is number => v !== null);
  const ends = forecast.nodes.map((n) => n.finishMs).filter((v): v is number => v !== null);
  return starts.length === 0 ? null : Math.max(...ends) - Math.min(...starts);
}

/** How far `fitOverhead` scales the model at most, either way. */
export const MAX_OVERHEAD_FACTOR = 16;

/**
 * Stretches with no partition running shorter than this are the orchestration's own (a batch's
 * hand-over, a queue's first poll); longer ones are a run standing still (paused, cancelled and
 * resumed, a run window closed, waiting on a queue no worker polled), which calibration leaves out.
 */
export const STILL_MIN_MS = 5_000;

/**
 * How long, between the first interval's start and the last one's end, no interval ran, counting
 * only the stretches longer than `minMs`.
 */
export function stillTime(intervals: ReadonlyArray<readonly [start: number, end: number]>, minMs: number): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let still = 0;
  let reached = sorted[0]?.[1] ?? 0;
  for (const [start, end] of sorted.slice(1)) {
    if (start - reached > minMs) still += start - reached;
    reached = Math.max(reached, end);
  }
  return still;
}

/**
 * The shortest stretch without a running partition that counts as standing still under these
 * limits: a slow rate leaves gaps of its own (three intervals of the slowest rate).
 */
export function stillThreshold(input: Pick<SimulationInput, 'plan' | 'limits' | 'overrides'>): number {
  const rates = [input.limits.rate, ...input.plan.nodes.map((n) => input.overrides?.[n.id]?.rate ?? n.spec.rate)].filter((r): r is number => typeof r === 'number' && r > 0);
  return Math.max(STILL_MIN_MS, rates.length > 0 ? (3 * 1000) / Math.min(...rates) : 0);
}

export type OverheadFit = { factor: number; modelSpanMs: number; fittedSpanMs: number; clamped: boolean };

/**
 * The factor on the orchestration costs under which the simulation of an earlier run (its
 * plan, its partitions' own durations) takes as long, from its first partition's start to its
 * last one's finish, as that run did (`spanMs`): what orchestration cost on the machines and
 * the load of then. A search on the factor's logarithm, within MAX_OVERHEAD_FACTOR.
 */
export function fitOverhead(run: SimulationInput, spanMs: number, iterations = 8): OverheadFit | null {
  const base = run.overhead ?? DEFAULT_OVERHEAD;
  const span = (factor: number) => spanOf(simulate({ ...run, overhead: scaleOverhead(base, factor) }));
  const modelSpanMs = span(1);
  if (modelSpanMs === null || modelSpanMs <= 0 || spanMs <= 0) return null;
  let lo = -Math.log2(MAX_OVERHEAD_FACTOR);
  let hi = Math.log2(MAX_OVERHEAD_FACTOR);
  if (span(2 ** hi)! < spanMs) return { factor: MAX_OVERHEAD_FACTOR, modelSpanMs, fittedSpanMs: span(MAX_OVERHEAD_FACTOR)!, clamped: true };
  if (span(2 ** lo)! > spanMs) return { factor: 1 / MAX_OVERHEAD_FACTOR, modelSpanMs, fittedSpanMs: span(1 / MAX_OVERHEAD_FACTOR)!, clamped: true };
  // The span grows with the factor: bisect, from where the model stands (factor 1) on.
  if (modelSpanMs < spanMs) lo = 0;
  else hi = 0;
  let best = { factor: 1, fittedSpanMs: modelSpanMs };
  for (let i = 0; i < iterations; i++) {
    const at = (lo + hi) / 2;
    const s = span(2 ** at)!;
    if (Math.abs(s - spanMs) < Math.abs(best.fittedSpanMs - spanMs)) best = { factor: 2 ** at, fittedSpanMs: s };
    if (Math.abs(s - spanMs) <= spanMs * 0.01) break;
    if (s < spanMs) lo = at;
    else hi = at;
  }
  return { factor: Math.round(best.factor * 1000) / 1000, modelSpanMs, fittedSpanMs: best.fittedSpanMs, clamped: false };
}

/**
 * The partition-seconds a plan would spend: each partition that runs (not skipped) for its own
 * duration where the ledger has one, else its node's mean. What the policy's
 * `approval.maxPartitionSeconds` is held against, and what a `partitionSeconds` cost budget counts.
 */
export function partitionSeconds(plan: Plan, timings: ReadonlyMap<string, NodeTiming>, skip: Readonly<Record<string, RangesJSON>> = {}): number {
  let ms = 0;
  for (const node of plan.nodes) {
    const timing = timings.get(node.id);
    if (!timing) continue;
    const skipped = RangeSet.fromJSON(skip[node.id]);
    for (let i = 0; i < node.partitions.size; i++) {
      if (skipped.has(i)) continue;
      const own = timing.byIndex?.[i];
      ms += own !== undefined && !Number.isNaN(own) ? own : timing.meanMs;
    }
  }
  return ms / 1000;
}
