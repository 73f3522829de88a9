/**
 * A model of a whole backfill for the model-based test (model.test.ts): the real
 * `BackfillCoordinator` (with its `Readiness`) and one real `NodeScheduler` per node workflow,
 * joined by what Temporal does between them: signals in flight that may be delayed, duplicated,
 * or lost with their run; activities that complete, fail, are throttled or outlive the node run
 * that started them; continue-as-new of the parent and of any node (state round-tripped through
 * JSON); node workflows terminated; cancellation; retry-failed and resume of an ended backfill.
 * The loops of workflows/backfill.ts and workflows/node.ts are played by the methods below, with
 * the same decisions (they call the same core methods).
 */
import fc from 'fast-check';
import { BackfillCoordinator, resumeCarry } from '../../core/coordinator.ts';
import { BackfillError } from '../../core/errors.ts';
import { expandPlan, type Plan } from '../../core/plan.ts';
import { parseNodeControl } from '../../core/node-control.ts';
import type { BackfillCarry, NodeControl, NodeReport, PartitionResult } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { NodeScheduler, type BatchOutcome, type SchedulerOptions } from '../../core/scheduler.ts';
import { resolveSpec, type ResolvedNode, type ResolvedSpec, type SpecInput } from '../../core/spec.ts';

/** Far below Temporal's 2 MB payload limit; these plans are small, so the carries must be too. */
export const CARRY_BUDGET = 64 * 1024;
const MAX_RESTARTS = 3;

type NodeRun = {
  id: string;
  /** One node workflow execution (a new one after a restart or a resume; the same across continue-as-new). */
  instance: number;
  scheduler: NodeScheduler;
  spec: ResolvedNode;
  finishing: boolean;
  reportInFlight: boolean;
  cancelled: boolean;
};
type Activity = { serial: number; node: string; instance: number; batchId: number; tasks: Array<{ index: number; recheck: boolean }>; orphan: boolean };
type ControlMessage = { node: string; control: NodeControl };
type ReportMessage = { report: NodeReport; duplicate: boolean };
type Ended = { state: 'completed' | 'completed_with_failures' | 'cancelled' | 'failed'; carry: BackfillCarry };

export type Action =
  | { kind: 'parent' }
  | { kind: 'deliverControl'; pick: number }
  | { kind: 'nodeStep'; node: number }
  | { kind: 'report'; node: number }
  | { kind: 'deliverReport'; pick: number; duplicate: boolean }
  | { kind: 'activity'; pick: number; outcome: 'complete' | 'fail' | 'throttle' | 'partial' }
  | { kind: 'tick'; ms: number }
  | { kind: 'probe'; node: number }
  | { kind: 'terminate'; node: number }
  | { kind: 'nodeContinueAsNew'; node: number }
  | { kind: 'parentContinueAsNew' }
  | { kind: 'retryFailed'; node: number | null }
  | { kind: 'replaceSpec'; node: number; variant: number }
  | { kind: 'pause'; paused: boolean }
  | { kind: 'setRate'; value: unknown; node: number | null }
  | { kind: 'setConcurrency'; value: unknown; node: number | null }
  | { kind: 'cancel'; publishRunning: boolean }
  | { kind: 'resume'; node: number | null };

export class Violation extends Error {}

function fail(message: string): never {
  throw new Violation(message);
}

const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

export class World {
  readonly plan: Plan;
  private spec: ResolvedSpec;
  private parent: BackfillCoordinator | null;
  private ended: Ended | null = null;
  /** The parent's loop: nodes it is signalling, nodes it could not reach, and a hand-over under way. */
  private sending = new Set<string>();
  private unreachable = new Set<string>();
  private handingOver = false;
  private finishing = false;
  private readonly nodes = new Map<string, NodeRun>();
  private controls: ControlMessage[] = [];
  private reports: ReportMessage[] = [];
  private activities: Activity[] = [];
  /** The warehouse of the run key: partitions published, and those an orphaned activity may publish again. */
  private readonly published = new Set<string>();
  private readonly orphaned = new Set<string>();
  private now = 1_000_000;
  /** When the parent last heard from each node (its prober probes one silent for a while). */
  private readonly heardFrom = new Map<string, number>();
  private instances = 0;
  private serials = 0;

  constructor(spec: ResolvedSpec) {
    this.spec = spec;
    this.plan = expandPlan(spec);
    this.parent = new BackfillCoordinator(this.plan, { rate: spec.rate, concurrency: spec.concurrency });
    this.startNodes();
  }

  get isEnded(): Ended | null {
    return this.ended;
  }

  private nodeId(index: number): string {
    return this.plan.nodes[index % this.plan.nodes.length]!.id;
  }

  /** A fresh run of the parent (the first, or a resumed one): releases what is ready and starts every node workflow. */
  private startNodes(): void {
    const parent = this.parent!;
    parent.releaseInitial();
    parent.refreshSettings();
    for (const node of this.plan.nodes) this.startNode(node.id, parent.takeInitial(node.id), parent.recheckOf(node.id));
  }

  private startNode(id: string, ready: RangeSet, recheck: RangeSet): void {
    const parent = this.parent!;
    const spec = parent.nodeSpec(id);
    const scheduler = new NodeScheduler(this.options(spec), parent.settingsOf(id), ready, undefined, recheck);
    this.nodes.set(id, { id, instance: ++this.instances, scheduler, spec, finishing: false, reportInFlight: false, cancelled: false });
  }

  private options(spec: ResolvedNode): SchedulerOptions {
    return { batchSize: spec.batchSize, maxThrottles: spec.retry.maxThrottles, reportRunning: true };
  }

  // ---- the parent's loop (workflows/backfill.ts) ----

  private flushable(): boolean {
    return this.plan.nodes.some((n) => !this.sending.has(n.id) && !this.unreachable.has(n.id) && this.parent!.hasOutgoing(n.id));
  }

  private flush(): void {
    for (const n of this.plan.nodes) {
      if (!this.sending.has(n.id) && !this.unreachable.has(n.id) && this.parent!.hasOutgoing(n.id)) this.send(n.id, this.parent!.takeOutgoing(n.id));
    }
  }

  private send(node: string, control: NodeControl): void {
    this.sending.add(node);
    this.controls.push({ node, control: json(control) });
  }

  private parentStep(): void {
    const parent = this.parent;
    if (!parent) return;
    parent.refreshSettings();
    if (this.finishing) {
      this.flush();
      if (this.sending.size === 0 && !this.flushable()) this.end(parent.anyFailed ? 'completed_with_failures' : 'completed');
      return;
    }
    if (!this.handingOver) {
      for (const id of [...this.unreachable]) {
        const restart = parent.restartNode(id, MAX_RESTARTS);
        if (!restart) return this.abort('failed', false);
        this.startNode(id, restart.ready, restart.ready);
        this.unreachable.delete(id);
      }
      this.flush();
    }
    if (this.sending.size > 0 || (!this.handingOver && (this.flushable() || this.unreachable.size > 0))) return;
    if (parent.settled) {
      parent.finishAll();
      this.finishing = true;
      this.flush();
      return;
    }
    if (this.handingOver) {
      // Continue-as-new: the state through JSON; the node workflows live on.
      this.parent = new BackfillCoordinator(this.plan, { rate: null, concurrency: null }, json({ ...parent.toCarry(), runKey: 'run', childrenRunning: true, startedAt: 0, runs: 1 }));
      this.unreachable.clear();
      this.handingOver = false;
    }
  }

  private end(state: Ended['state']): void {
    this.ended = { state, carry: json({ ...this.parent!.toCarry(), runKey: 'run', childrenRunning: false, startedAt: 0, runs: 1 }) };
    this.parent = null;
    this.controls = [];
    this.sending.clear();
    this.unreachable.clear();
    this.handingOver = false;
    this.finishing = false;
  }

  /** Cancelled, or failed for good: node workflows are cancelled, their running partitions land or stop, and their last reports arrive. */
  private abort(state: 'cancelled' | 'failed', publishRunning: boolean): void {
    for (const activity of [...this.activities]) {
      const run = this.nodes.get(activity.node);
      if (activity.orphan || !run || run.instance !== activity.instance) continue;
      this.settleActivity(activity, publishRunning ? 'complete' : 'cancel');
    }
    for (const run of this.nodes.values()) this.report(run, 'cancelled');
    for (const message of this.reports.splice(0)) if (!message.duplicate) this.parent!.onReport(message.report);
    this.nodes.clear();
    this.end(state);
  }

  // ---- signals ----

  private deliverControl(pick: number): void {
    if (this.controls.length === 0) return;
    const [message] = this.controls.splice(pick % this.controls.length, 1);
    const { node, control } = message!;
    this.sending.delete(node);
    const run = this.nodes.get(node);
    if (!run) {
      // The node workflow is closed: nothing is dropped unless it has nothing left to do.
      if (this.parent!.undeliverable(node, control) === 'restart') this.unreachable.add(node);
      return;
    }
    // What the node workflow checks on arrival (core/node-control.ts): every order of the parent passes.
    parseNodeControl(control, node, this.plan.byId.get(node)!.partitions.size);
    if (control.ready) run.scheduler.release(RangeSet.fromJSON(control.ready));
    if (control.settings) run.scheduler.configure(control.settings);
    if (control.node) {
      run.spec = control.node;
      run.scheduler.reconfigure(this.options(control.node));
    }
    if (control.finish) run.finishing = true;
  }

  private report(run: NodeRun, final?: 'cancelled'): void {
    if (!final && !run.scheduler.hasNews) return;
    this.reports.push({ report: json({ node: run.id, ...run.scheduler.takeReport(), ...(final ? { final } : {}) }), duplicate: false });
    if (!final) run.reportInFlight = true;
  }

  private deliverReport(pick: number, duplicate: boolean): void {
    if (this.reports.length === 0 || !this.parent) return;
    const index = pick % this.reports.length;
    const message = this.reports[index]!;
    // A duplicate stays in flight (and is never counted as holding anything).
    if (duplicate) this.reports.push({ report: json(message.report), duplicate: true });
    this.reports.splice(index, 1);
    this.parent.onReport(message.report);
    this.heardFrom.set(message.report.node, this.now);
    const run = this.nodes.get(message.report.node);
    if (run && !message.duplicate) run.reportInFlight = false;
  }

  // ---- node workflows (workflows/node.ts) ----

  private nodeStep(id: string): void {
    const run = this.nodes.get(id);
    if (!run) return;
    run.scheduler.advance(this.now);
    if (!run.finishing) {
      for (const batch of run.scheduler.startable()) {
        const tasks = batch.indices.map((index, i) => ({ index, recheck: batch.recheck[i]! }));
        this.activities.push({ serial: ++this.serials, node: id, instance: run.instance, batchId: batch.id, tasks, orphan: false });
      }
    } else if (run.scheduler.inFlightBatches === 0 && !run.reportInFlight) {
      // Finished: what completed since the last report goes first, then the workflow ends.
      if (run.scheduler.hasResults) this.reports.push({ report: json({ node: id, ...run.scheduler.takeReport() }), duplicate: false });
      this.nodes.delete(id);
    }
  }

  private nodeReport(id: string): void {
    const run = this.nodes.get(id);
    if (run && !run.reportInFlight && !run.finishing) this.report(run);
  }

  private orphanActivities(run: NodeRun): void {
    for (const activity of this.activities) {
      if (activity.node !== run.id || activity.instance !== run.instance || activity.orphan) continue;
      activity.orphan = true;
      for (const task of activity.tasks) this.orphaned.add(`${run.id}/${task.index}`);
    }
  }

  private terminate(id: string): void {
    const run = this.nodes.get(id);
    if (!run) return;
    this.orphanActivities(run);
    // Its report in flight is lost with it, and so is everything it held.
    if (run.reportInFlight) {
      const index = this.reports.findIndex((m) => m.report.node === id && !m.duplicate);
      if (index >= 0) this.reports.splice(index, 1);
    }
    this.nodes.delete(id);
  }

  private nodeContinueAsNew(id: string): void {
    const run = this.nodes.get(id);
    // The real run holds its reports and lets the one in flight land first.
    if (!run || run.reportInFlight || run.finishing) return;
    this.orphanActivities(run);
    const state = json(run.scheduler.toState());
    run.scheduler = new NodeScheduler(this.options(run.spec), state.settings, new RangeSet(), state);
  }

  // ---- activities (activities/run-partitions.ts and the warehouse's publish) ----

  private settleActivity(activity: Activity, outcome: 'complete' | 'fail' | 'throttle' | 'partial' | 'cancel'): void {
    this.activities = this.activities.filter((a) => a !== activity);
    const finished: PartitionResult[] = [];
    const runTask = (task: { index: number; recheck: boolean }) => {
      const key = `${activity.node}/${task.index}`;
      if (!(task.recheck && this.published.has(key))) {
        // The warehouse publishes once per run key; a second publish is allowed only to an
        // activity that raced an orphaned one (the warehouse then finds it published).
        if (this.published.has(key) && !this.orphaned.has(key)) fail(`${key} published twice within the run key`);
        this.published.add(key);
      }
      finished.push({ index: task.index, key, version: 1, rowCount: 0, checksum: '', startedAt: this.now, finishedAt: this.now });
    };
    let result: BatchOutcome;
    const [first, ...rest] = activity.tasks;
    if (outcome === 'cancel') result = { kind: 'cancelled' };
    else if (outcome === 'complete') {
      for (const task of activity.tasks) runTask(task);
      result = { kind: 'completed', finished };
    } else if (outcome === 'throttle') result = { kind: 'completed', finished: [], throttled: { index: first!.index, message: 'slow down' } };
    else if (outcome === 'fail') result = { kind: 'failed', finished: [], failedIndex: first!.index, message: 'boom', type: 'NonRetryable' };
    else {
      runTask(first!);
      result = rest.length > 0 ? { kind: 'failed', finished, failedIndex: rest[0]!.index, message: 'half', type: 'Error' } : { kind: 'completed', finished };
    }
    const run = this.nodes.get(activity.node);
    if (!activity.orphan && run && run.instance === activity.instance) run.scheduler.settle(activity.batchId, result);
  }

  // ---- operators ----

  private control(run: () => unknown): void {
    try {
      run();
    } catch (error) {
      // Refused, as the update's validator would; anything else is a bug.
      if (!(error instanceof BackfillError)) throw error;
    }
  }

  private specVariant(node: string, variant: number): unknown {
    const next = json(this.spec);
    const target = next.nodes.find((n) => n.id === node)!;
    switch (variant % 6) {
      case 0:
        target.params = { ...target.params, fix: variant };
        break;
      case 1:
        target.batchSize = 1 + (variant % 3);
        break;
      case 2:
        target.retry = { ...target.retry, maxThrottles: variant % 3 };
        break;
      case 3:
        target.timeout = '0s';
        break;
      case 4:
        target.partitions = { kind: 'static', keys: ['x'] };
        break;
      default:
        return { nodes: [{ id: node }] };
    }
    return next;
  }

  private resume(node: string | null): void {
    const ended = this.ended;
    if (!ended || ended.state === 'completed') return;
    // Every node workflow of the ended run is closed first (the client waits for that).
    for (const run of [...this.nodes.values()]) this.terminate(run.id);
    this.reports = [];
    const carry = json(resumeCarry(ended.carry, node ?? undefined));
    this.parent = new BackfillCoordinator(this.plan, { rate: this.spec.rate, concurrency: this.spec.concurrency }, carry);
    this.ended = null;
    this.startNodes();
  }

  apply(action: Action): void {
    const parent = this.parent;
    switch (action.kind) {
      case 'parent':
        return this.parentStep();
      case 'deliverControl':
        return this.deliverControl(action.pick);
      case 'nodeStep':
        return this.nodeStep(this.nodeId(action.node));
      case 'report':
        return this.nodeReport(this.nodeId(action.node));
      case 'deliverReport':
        return this.deliverReport(action.pick, action.duplicate);
      case 'activity': {
        if (this.activities.length === 0) return;
        return this.settleActivity(this.activities[action.pick % this.activities.length]!, action.outcome);
      }
      case 'tick':
        this.now += action.ms;
        return;
      case 'probe': {
        const id = this.nodeId(action.node);
        if (parent && !this.handingOver && parent.hasInHands(id) && !this.sending.has(id) && !this.unreachable.has(id)) this.send(id, {});
        return;
      }
      case 'terminate':
        return this.terminate(this.nodeId(action.node));
      case 'nodeContinueAsNew':
        return this.nodeContinueAsNew(this.nodeId(action.node));
      case 'parentContinueAsNew':
        // The history is long: nothing more is sent, and once the signals in flight have landed the run continues as new.
        if (parent && !this.finishing && !parent.settled) this.handingOver = true;
        return this.parentStep();
      case 'retryFailed':
        if (!parent) return this.resume(action.node === null ? null : this.nodeId(action.node));
        return this.control(() => parent.retryFailed(action.node === null ? null : this.nodeId(action.node)));
      case 'replaceSpec': {
        if (!parent) return;
        return this.control(() => {
          this.spec = parent.replaceSpec(this.specVariant(this.nodeId(action.node), action.variant), this.spec).spec;
        });
      }
      case 'pause':
        if (parent) parent.setPaused(action.paused);
        return;
      case 'setRate':
        if (parent) this.control(() => parent.setRate(action.value, action.node === null ? null : this.nodeId(action.node)));
        return;
      case 'setConcurrency':
        if (parent) this.control(() => parent.setConcurrency(action.value, action.node === null ? null : this.nodeId(action.node)));
        return;
      case 'cancel':
        if (parent) this.abort('cancelled', action.publishRunning);
        return;
      case 'resume':
        return this.resume(action.node === null ? null : this.nodeId(action.node));
    }
  }

  // ---- invariants ----

  check(): void {
    const parent = this.parent;
    const states = new Map<string, ReturnType<NodeScheduler['toState']>>();
    for (const run of this.nodes.values()) {
      const state = run.scheduler.toState();
      states.set(run.id, state);
      if (JSON.stringify(state).length > CARRY_BUDGET) fail(`node ${run.id}'s carried state is over budget`);
      this.checkSettings(run.id, state.settings);
    }
    if (!parent) return;
    // Read without refreshing anything: checking must not change what the model does next.
    const carried = parent.toCarry();
    const size = JSON.stringify(carried).length;
    if (size > CARRY_BUDGET) fail(`the parent's carried state is ${size} bytes`);
    const state = parent.controlState();
    if (!(state.rate === null || (Number.isFinite(state.rate) && state.rate > 0))) fail(`backfill rate ${String(state.rate)}`);
    if (!(state.concurrency === null || (Number.isInteger(state.concurrency) && state.concurrency >= 1))) fail(`backfill concurrency ${String(state.concurrency)}`);
    for (const node of state.nodes) {
      if (!(node.rate === null || (Number.isFinite(node.rate) && node.rate > 0))) fail(`node ${node.id} rate ${String(node.rate)}`);
      if (!(Number.isInteger(node.concurrency) && node.concurrency >= 1)) fail(`node ${node.id} concurrency ${String(node.concurrency)}`);
    }
    // Every released partition is delivered, carried or reported: it is held by exactly one live place.
    for (const node of this.plan.nodes) {
      const id = node.id;
      const settings = carried.settings[id];
      if (settings) this.checkSettings(id, settings);
      const holders = new Set<number>();
      const hold = (set: RangeSet, where: string) => {
        for (const index of set) {
          if (holders.has(index)) fail(`${id}/${index} is held twice (again in ${where})`);
          holders.add(index);
        }
      };
      const settled = parent.readiness.done(id).clone().addAll(parent.readiness.failed(id));
      hold(RangeSet.fromJSON(carried.outbox[id]?.ready), 'the outbox');
      for (const message of this.controls) if (message.node === id) hold(RangeSet.fromJSON(message.control.ready), 'a control in flight');
      for (const message of this.reports) {
        if (message.report.node !== id || message.duplicate) continue;
        const reported = RangeSet.fromJSON(message.report.done);
        for (const group of message.report.failures) reported.addAll(RangeSet.fromJSON(group.ranges));
        hold(reported.deleteAll(settled), 'a report in flight');
      }
      const nodeState = states.get(id);
      if (nodeState) {
        hold(RangeSet.fromJSON(nodeState.queue).addAll(RangeSet.fromJSON(nodeState.carried)), "the node's queue");
        const news = RangeSet.fromJSON(nodeState.unreported.done);
        for (const group of nodeState.unreported.failures) news.addAll(RangeSet.fromJSON(group.ranges));
        hold(news.deleteAll(settled), "the node's unreported news");
      }
      // A closed node workflow's partitions come back when the parent finds it gone (a signal, a probe).
      if (!nodeState && !this.finishing) continue;
      for (const index of parent.readiness.inHands(id)) if (!holders.has(index)) fail(`${id}/${index} is in hands but nobody holds it`);
    }
  }

  private checkSettings(id: string, settings: { rate: number | null; concurrency: number; burst: number }): void {
    if (!(settings.rate === null || (Number.isFinite(settings.rate) && settings.rate > 0))) fail(`node ${id} settings rate ${String(settings.rate)}`);
    if (!(Number.isInteger(settings.concurrency) && settings.concurrency >= 0)) fail(`node ${id} settings concurrency ${String(settings.concurrency)}`);
    if (!(Number.isInteger(settings.burst) && settings.burst >= 1)) fail(`node ${id} settings burst ${String(settings.burst)}`);
  }

  /**
   * No more faults: the operator un-pauses and lifts the limits, everything in flight lands and
   * every partition succeeds. The backfill must end, and a completed one must account for every
   * partition.
   */
  drain(maxRounds = 400): Ended {
    this.parent?.setPaused(false);
    for (let round = 0; round < maxRounds; round++) {
      if (this.ended) break;
      this.parentStep();
      while (this.controls.length > 0) this.deliverControl(0);
      for (const node of this.plan.nodes) this.nodeStep(node.id);
      while (this.activities.length > 0) this.settleActivity(this.activities[0]!, 'complete');
      for (const node of this.plan.nodes) this.nodeReport(node.id);
      while (this.reports.length > 0 && this.parent) this.deliverReport(0, false);
      this.now += 1000;
      // The prober: a node silent for a while with work in hands is sent an empty signal.
      for (const node of this.plan.nodes) {
        const silent = this.now - (this.heardFrom.get(node.id) ?? 0) >= 5000;
        if (silent && this.parent?.hasInHands(node.id) && !this.sending.has(node.id) && !this.unreachable.has(node.id)) {
          this.heardFrom.set(node.id, this.now);
          this.send(node.id, {});
        }
      }
      this.check();
    }
    const ended = this.ended ?? fail(`the backfill did not end: ${JSON.stringify(this.parent!.progress('model', 'running', 1).nodes.map((n) => [n.id, n.done, n.running, n.failed, n.pending]))}`);
    if (ended.state === 'completed' || ended.state === 'completed_with_failures') {
      const restored = new BackfillCoordinator(this.plan, { rate: null, concurrency: null }, ended.carry);
      const progress = restored.progress('model', ended.state, 1);
      if (progress.done + progress.failed + progress.blocked !== progress.total) fail(`ended ${ended.state} with partitions unaccounted for: ${JSON.stringify(progress)}`);
      if (ended.state === 'completed' && progress.done !== progress.total) fail('completed without every partition done');
    }
    return ended;
  }
}

/** A small graph of day-partitioned nodes: each may depend on earlier ones, with any mapping. */
export const specArbitrary = fc
  .record({
    days: fc.integer({ min: 1, max: 5 }),
    nodes: fc.array(
      fc.record({
        deps: fc.array(fc.record({ on: fc.nat(), mapping: fc.constantFrom('identity', 'all', 'lag') }), { maxLength: 2 }),
        concurrency: fc.integer({ min: 1, max: 3 }),
        batchSize: fc.integer({ min: 1, max: 3 }),
        rate: fc.constantFrom(null, 2),
        maxThrottles: fc.integer({ min: 0, max: 2 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    concurrency: fc.constantFrom(null, 1, 3),
  })
  .map(({ days, nodes, concurrency }) => {
    const spec: SpecInput = {
      name: 'model',
      partitions: { grain: 'day', start: '2024-01-01', end: `2024-01-0${1 + days}` },
      concurrency,
      nodes: nodes.map((n, i) => {
        const seen = new Set<number>();
        const dependsOn = i === 0 ? [] : n.deps.filter((d) => !seen.has(d.on % i) && seen.add(d.on % i)).map((d) => ({ node: `n${d.on % i}`, mapping: d.mapping === 'lag' ? { lag: { from: -1, to: 0 } } : d.mapping }));
        return { id: `n${i}`, transform: 'noop', concurrency: n.concurrency, batchSize: n.batchSize, rate: n.rate, retry: { maxThrottles: n.maxThrottles }, dependsOn };
      }),
    };
    return resolveSpec(spec);
  });

/** Limits as anyone may send them, junk included. */
const limitValue = fc.constantFrom<unknown>('unlimited', '7', -1, null, 'abc', 0, 0.5, 3, 1000, 10_001, Number.NaN, Infinity, {}, true, '');
const nodeRef = fc.option(fc.nat({ max: 7 }), { nil: null });

export const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Action>({ kind: 'parent' }) },
  { weight: 8, arbitrary: fc.nat().map<Action>((pick) => ({ kind: 'deliverControl', pick })) },
  { weight: 8, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'nodeStep', node })) },
  { weight: 6, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'report', node })) },
  { weight: 6, arbitrary: fc.record({ pick: fc.nat(), duplicate: fc.boolean() }).map<Action>((r) => ({ kind: 'deliverReport', pick: r.pick, duplicate: r.duplicate && r.pick % 4 === 0 })) },
  {
    weight: 8,
    arbitrary: fc
      .record({ pick: fc.nat(), outcome: fc.constantFrom('complete', 'complete', 'complete', 'fail', 'throttle', 'partial') })
      .map<Action>((r) => ({ kind: 'activity', pick: r.pick, outcome: r.outcome as 'complete' })),
  },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 3000 }).map<Action>((ms) => ({ kind: 'tick', ms })) },
  { weight: 1, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'probe', node })) },
  { weight: 1, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'terminate', node })) },
  { weight: 2, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'nodeContinueAsNew', node })) },
  { weight: 2, arbitrary: fc.constant<Action>({ kind: 'parentContinueAsNew' }) },
  { weight: 1, arbitrary: nodeRef.map<Action>((node) => ({ kind: 'retryFailed', node })) },
  { weight: 1, arbitrary: fc.record({ node: fc.nat({ max: 7 }), variant: fc.nat({ max: 11 }) }).map<Action>((r) => ({ kind: 'replaceSpec', ...r })) },
  { weight: 1, arbitrary: fc.boolean().map<Action>((paused) => ({ kind: 'pause', paused })) },
  { weight: 1, arbitrary: fc.record({ value: limitValue, node: nodeRef }).map<Action>((r) => ({ kind: 'setRate', ...r })) },
  { weight: 1, arbitrary: fc.record({ value: limitValue, node: nodeRef }).map<Action>((r) => ({ kind: 'setConcurrency', ...r })) },
  { weight: 1, arbitrary: fc.boolean().map<Action>((publishRunning) => ({ kind: 'cancel', publishRunning })) },
  { weight: 1, arbitrary: nodeRef.map<Action>((node) => ({ kind: 'resume', node })) },
);

/** Runs the actions, checking the invariants after each, then drains: true when every invariant held. */
export function holds(spec: ReturnType<typeof resolveSpec>, actions: Action[]): void {
  const world = new World(spec);
  world.check();
  for (const action of actions) {
    world.apply(action);
    world.check();
  }
  world.drain();
}
