/**
 * `BackfillCoordinator`: everything the parent workflow decides, without a server. It keeps
 * partition-level readiness, the limits and who gets which share of them, the failures, and
 * an outbox per node of what the node has not been told yet. The workflow delivers the
 * outbox in signals and hands back what could not be delivered, so nothing released is
 * ever lost: a node workflow that closed without finishing is started again with every
 * partition it held.
 */
import { mergeFailures, withoutPartitions } from './failures.ts';
import { BackfillError } from './errors.ts';
import { nodeShares, parseConcurrency, parseRate, type Limits, type NodeLimits } from './limits.ts';
import { TokenBucket } from './pacing.ts';
import type { Plan, PlanNode } from './plan.ts';
import { progressOf } from './progress.ts';
import type { BackfillCarry, BackfillState, FailureGroup, NodeControl, NodeOverrides, NodeReport, NodeSettings, NodeStats, Progress } from './protocol.ts';
import { initialRelease } from './only-changed.ts';
import { RangeSet, receivedRanges, type RangesJSON } from './ranges.ts';
import { Readiness, resumedReadiness } from './readiness.ts';
import type { ResolvedNode, ResolvedSpec } from './spec.ts';
import { changedNodes, parseResolvedSpec } from './spec-changes.ts';

type Outgoing = { ready: RangeSet; settingsDirty: boolean; specDirty: boolean; finish: boolean };

/** The effective control state after a change: what `set-rate` and friends print. */
export type ControlState = {
  paused: boolean;
  rate: number | null;
  concurrency: number | null;
  nodes: Array<{ id: string; rate: number | null; concurrency: number }>;
};

export class BackfillCoordinator {
  readonly readiness: Readiness;
  private paused: boolean;
  private readonly limits: Limits;
  private readonly overrides: NodeOverrides;
  private readonly reports: Record<string, NodeStats>;
  private failures: Record<string, FailureGroup[]>;
  private readonly outbox = new Map<string, Outgoing>();
  private readonly settings: Map<string, NodeSettings>;
  private readonly restarts: Record<string, number>;
  private readonly specs = new Map<string, ResolvedNode>();
  /** Of a resumed run: partitions the ended run may have published without reporting them (see BackfillCarry.recheck). */
  private readonly recheck: Record<string, RangesJSON>;
  private settingsStale = true;
  /** Once set, the backfill is ending: nothing new is released. */
  private closing = false;

  constructor(
    private readonly plan: Plan,
    initialLimits: Limits,
    carry?: Omit<BackfillCarry, 'runKey' | 'childrenRunning' | 'startedAt' | 'runs'>,
  ) {
    this.readiness = new Readiness(plan, carry?.readiness);
    this.paused = carry?.paused ?? false;
    this.limits = carry?.limits ?? { ...initialLimits };
    this.overrides = carry?.overrides ?? {};
    this.reports = carry?.reports ?? {};
    this.failures = carry?.failures ?? {};
    this.settings = new Map(Object.entries(carry?.settings ?? {}));
    this.restarts = carry?.restarts ?? {};
    this.recheck = carry?.recheck ?? {};
    for (const node of plan.nodes) {
      const saved = carry?.outbox[node.id];
      this.outbox.set(node.id, {
        ready: RangeSet.fromJSON(saved?.ready),
        settingsDirty: saved?.settingsDirty ?? false,
        specDirty: saved?.specDirty ?? false,
        finish: false,
      });
      this.specs.set(node.id, node.spec);
    }
  }

  private out(id: string): Outgoing {
    return this.outbox.get(id)!;
  }

  // ---- readiness ----

  /** Partitions ready at the start of a fresh run (nothing upstream pending); `skip` (from --only-changed) counts as done first. */
  releaseInitial(skip: Record<string, RangesJSON> = {}): void {
    this.release(initialRelease(this.plan, this.readiness, skip));
    this.settingsStale = true;
  }

  private release(released: Map<string, RangeSet>): void {
    for (const [id, ready] of released) this.out(id).ready.addAll(ready);
  }

  /**
   * A node's report: what completed, what failed, how it is doing. Anyone may send one (with
   * Temporal's CLI): one that is not a report of this plan's partitions throws `invalid_argument`
   * and changes nothing.
   */
  onReport(value: unknown): void {
    const report = this.parseReport(value);
    if (!this.plan.byId.has(report.node)) return;
    const done = RangeSet.fromJSON(report.done);
    this.release(this.readiness.markDone(report.node, done));
    let failures = withoutPartitions(this.failures[report.node] ?? [], done);
    if (report.failures.length > 0) {
      for (const group of report.failures) this.readiness.markFailed(report.node, RangeSet.fromJSON(group.ranges));
      failures = mergeFailures(failures, report.failures);
    }
    this.failures = { ...this.failures, [report.node]: failures };
    this.reports[report.node] = report.stats;
    // Whether a node has work in hands decides its share of the limits.
    this.settingsStale = true;
  }

  private parseReport(value: unknown): NodeReport {
    const refuse = (why: string): never => {
      throw new BackfillError('invalid_argument', `not a node report of this backfill: ${why}`, 'report');
    };
    if (typeof value !== 'object' || value === null) return refuse('not an object');
    const report = value as Record<string, unknown>;
    if (typeof report.node !== 'string') return refuse('no node');
    const size = this.plan.byId.get(report.node)?.partitions.size;
    const ranges = (json: unknown, what: string) => {
      const set = receivedRanges(json, size ?? Number.POSITIVE_INFINITY);
      if (typeof set === 'string') refuse(`${what} ${set}`);
    };
    ranges(report.done, 'done');
    if (!Array.isArray(report.failures)) return refuse('failures is not a list');
    for (const group of report.failures as unknown[]) {
      const g = group as Record<string, unknown> | null;
      if (typeof g !== 'object' || g === null || typeof g.message !== 'string' || typeof g.type !== 'string') refuse('a failure group has no message or type');
      ranges(g!.ranges, 'a failure group');
    }
    const stats = report.stats as Record<string, unknown> | null;
    if (typeof stats !== 'object' || stats === null) return refuse('no stats');
    const count = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
    const maybe = (v: unknown) => v === null || count(v);
    if (!(['running', 'concurrency', 'throttles', 'completed'] as const).every((k) => count(stats[k]))) refuse('stats are not counts');
    if (!(['rate', 'firstStartedAt', 'lastFinishedAt'] as const).every((k) => maybe(stats[k]))) refuse('stats are not numbers');
    if (report.final !== undefined && report.final !== 'cancelled') refuse(`final is ${JSON.stringify(report.final)}`);
    return value as NodeReport;
  }

  get settled(): boolean {
    return this.readiness.settled;
  }

  hasInHands(id: string): boolean {
    return this.readiness.hasInHands(id);
  }

  // ---- control ----

  /** The node a control message names (null: the whole backfill); throws `unknown_node`. */
  private nodeArg(node: unknown): string | null {
    if (node === undefined || node === null) return null;
    if (typeof node !== 'string' || !this.plan.byId.has(node)) {
      const named = typeof node === 'string' ? `'${node}'` : (JSON.stringify(node) ?? String(node));
      throw new BackfillError('unknown_node', `unknown node ${named}: this backfill's nodes are ${this.plan.nodes.map((n) => n.id).join(', ')}`, 'node');
    }
    return node;
  }

  private refuseWhenClosing(what: string): void {
    if (this.closing) throw new BackfillError('finishing', `the backfill has settled and is finishing: ${what}`);
  }

  /*
   * Control messages arrive from anyone (the client, Temporal's CLI) as raw JSON. Each is parsed
   * here, once: `parseX` throws a BackfillError naming the problem and changes nothing (the
   * updates' validators); `setX` parses the same way and applies the parsed value (the update
   * handlers, the signals), so no raw argument is ever applied.
   */

  parseRate(rate: unknown, node?: unknown): { rate: number | null; node: string | null } {
    return { node: this.nodeArg(node), rate: parseRate(rate) };
  }

  parseConcurrency(concurrency: unknown, node?: unknown): { concurrency: number | null; node: string | null } {
    const id = this.nodeArg(node);
    return { node: id, concurrency: parseConcurrency(concurrency, id) };
  }

  parseRetry(node?: unknown): string | null {
    const id = this.nodeArg(node);
    this.refuseWhenClosing('run retry-failed again once it has ended');
    return id;
  }

  /** A new spec (what `resume --spec` and `retry-failed --spec` send): parsed, and the nodes it changes from `current`. */
  parseSpec(next: unknown, current: ResolvedSpec): { spec: ResolvedSpec; changed: string[] } {
    this.refuseWhenClosing('send the new spec with retry-failed or resume once it has ended (they go on in a new run)');
    const spec = parseResolvedSpec(next);
    return { spec, changed: changedNodes(current, spec) };
  }

  setPaused(paused: boolean): ControlState {
    this.paused = paused;
    this.settingsStale = true;
    return this.controlState();
  }

  setRate(rate: unknown, node?: unknown): ControlState {
    const parsed = this.parseRate(rate, node);
    if (parsed.node === null) this.limits.rate = parsed.rate;
    else this.overrides[parsed.node] = { ...this.overrides[parsed.node], rate: parsed.rate };
    this.settingsStale = true;
    return this.controlState();
  }

  setConcurrency(concurrency: unknown, node?: unknown): ControlState {
    const parsed = this.parseConcurrency(concurrency, node);
    if (parsed.node === null) this.limits.concurrency = parsed.concurrency;
    // parseConcurrency gives a node a whole number, never null.
    else this.overrides[parsed.node] = { ...this.overrides[parsed.node], concurrency: parsed.concurrency! };
    this.settingsStale = true;
    return this.controlState();
  }

  /** Hands failed partitions (of one node or all) back to run again; returns how many. */
  retryFailed(node?: unknown): number {
    const id = this.parseRetry(node);
    const retried = this.readiness.retryFailed(id ?? undefined);
    let count = 0;
    for (const [nodeId, ranges] of retried) {
      this.failures = { ...this.failures, [nodeId]: [] };
      count += ranges.size;
    }
    this.release(retried);
    this.settingsStale = true;
    return count;
  }

  /** Applies a new spec to the partitions still to run; returns it and the nodes it changed. */
  replaceSpec(next: unknown, current: ResolvedSpec): { spec: ResolvedSpec; changed: string[] } {
    const parsed = this.parseSpec(next, current);
    for (const id of parsed.changed) this.replaceNodeSpec(parsed.spec.nodes.find((n) => n.id === id)!);
    return parsed;
  }

  /** What a node workflow starts with (its ready partitions; its settings go with the start too). */
  takeInitial(id: string): RangeSet {
    const out = this.out(id);
    const ready = out.ready;
    this.outbox.set(id, { ready: new RangeSet(), settingsDirty: false, specDirty: false, finish: out.finish });
    return ready;
  }

  /**
   * Of the partitions a node workflow of a resumed run starts with, those the ended run may have
   * published without reporting (its node workflow lost): the activity looks before it runs them.
   */
  recheckOf(id: string): RangeSet {
    return RangeSet.fromJSON(this.recheck[id]).deleteAll(this.readiness.done(id));
  }

  /** A new spec for a node (transform, SQL, parameters, checks): sent to its workflow for the partitions still to run. */
  replaceNodeSpec(spec: ResolvedNode): void {
    this.refuseWhenClosing('send the new spec once it has ended');
    this.specs.set(spec.id, spec);
    this.out(spec.id).specDirty = true;
    this.settingsStale = true;
  }

  nodeSpec(id: string): ResolvedNode {
    return this.specs.get(id)!;
  }

  private ownLimits(node: PlanNode): NodeLimits {
    const own = this.overrides[node.id] ?? {};
    const spec = this.specs.get(node.id)!;
    return { rate: own.rate !== undefined ? own.rate : spec.rate, concurrency: own.concurrency ?? spec.concurrency };
  }

  controlState(): ControlState {
    return {
      paused: this.paused,
      rate: this.limits.rate,
      concurrency: this.limits.concurrency,
      nodes: this.plan.nodes.map((n) => ({ id: n.id, ...this.ownLimits(n) })),
    };
  }

  /** Recomputes each node's share of the limits when something changed; marks changed settings for delivery. */
  refreshSettings(): void {
    if (!this.settingsStale) return;
    this.settingsStale = false;
    const shares = nodeShares(
      this.limits,
      this.plan.nodes.map((n) => ({ id: n.id, own: this.ownLimits(n), active: this.readiness.hasInHands(n.id), previous: this.settings.get(n.id) })),
    );
    for (const node of this.plan.nodes) {
      const share = shares.get(node.id)!;
      const next = { ...share, burst: this.specs.get(node.id)!.burst ?? TokenBucket.defaultBurst(share.rate), paused: this.paused };
      const prev = this.settings.get(node.id);
      if (prev && prev.rate === next.rate && prev.burst === next.burst && prev.concurrency === next.concurrency && prev.paused === next.paused) continue;
      this.settings.set(node.id, { ...next, seq: (prev?.seq ?? 0) + 1 });
      this.out(node.id).settingsDirty = true;
    }
  }

  get needsRefresh(): boolean {
    return this.settingsStale;
  }

  settingsOf(id: string): NodeSettings {
    this.refreshSettings();
    return this.settings.get(id)!;
  }

  // ---- outbox ----

  hasOutgoing(id: string): boolean {
    const out = this.out(id);
    return !out.ready.isEmpty || out.settingsDirty || out.specDirty || out.finish;
  }

  /** What `id` has not been told yet, taken out of the outbox; `restore` puts it back if it could not be delivered. */
  takeOutgoing(id: string): NodeControl {
    const out = this.out(id);
    const control: NodeControl = {};
    if (!out.ready.isEmpty) control.ready = out.ready.toJSON();
    if (out.settingsDirty) control.settings = this.settings.get(id)!;
    if (out.specDirty) control.node = this.specs.get(id)!;
    if (out.finish) control.finish = true;
    this.outbox.set(id, { ready: new RangeSet(), settingsDirty: false, specDirty: false, finish: false });
    return control;
  }

  /**
   * A control could not be delivered because its node workflow has closed. While the backfill
   * runs, or while the node holds partitions, what it carried goes back to the outbox and the
   * node must be started again (`restart`). A node with nothing in hands once the backfill is
   * finishing has nothing left to be told (`gone`): an idle node workflow that was terminated
   * must not keep the backfill from ending.
   */
  undeliverable(id: string, control: NodeControl): 'restart' | 'gone' {
    if (this.closing && !this.readiness.hasInHands(id)) return 'gone';
    this.restore(id, control);
    return 'restart';
  }

  restore(id: string, control: NodeControl): void {
    const out = this.out(id);
    if (control.ready) out.ready.addAll(RangeSet.fromJSON(control.ready));
    if (control.settings) out.settingsDirty = true;
    if (control.node) out.specDirty = true;
    if (control.finish) out.finish = true;
  }

  /** Every node is told to finish once it has nothing left in hands. */
  finishAll(): void {
    this.closing = true;
    for (const out of this.outbox.values()) out.finish = true;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /**
   * A node workflow closed without finishing: what to start it again with (every partition
   * it held, and its settings), or null once it has been restarted too often.
   */
  restartNode(id: string, maxRestarts: number): { ready: RangeSet; settings: NodeSettings; node: ResolvedNode; attempt: number } | null {
    const attempt = (this.restarts[id] ?? 0) + 1;
    if (attempt > maxRestarts) return null;
    this.restarts[id] = attempt;
    this.refreshSettings();
    // What it held is in hands; what was on its way to it is in the outbox: one new start carries both.
    const ready = this.readiness.inHands(id);
    this.outbox.set(id, { ready: new RangeSet(), settingsDirty: false, specDirty: false, finish: false });
    return { ready, settings: this.settings.get(id)!, node: this.specs.get(id)!, attempt };
  }

  restartsOf(id: string): number {
    return this.restarts[id] ?? 0;
  }

  // ---- views ----

  progress(backfillId: string, state: BackfillState, runs: number): Progress {
    return progressOf({
      backfillId,
      name: this.plan.name,
      state,
      paused: this.paused,
      limits: this.limits,
      plan: this.plan,
      readiness: this.readiness,
      reports: this.reports,
      failures: this.failures,
      lastSettings: this.settings,
      runs,
    });
  }

  get isPaused(): boolean {
    return this.paused;
  }

  get anyFailed(): boolean {
    return this.plan.nodes.some((n) => !this.readiness.failed(n.id).isEmpty);
  }

  toCarry(): Omit<BackfillCarry, 'runKey' | 'childrenRunning' | 'startedAt' | 'runs'> {
    return {
      readiness: this.readiness.toJSON(),
      paused: this.paused,
      limits: this.limits,
      overrides: this.overrides,
      reports: this.reports,
      failures: this.failures,
      outbox: Object.fromEntries(
        this.plan.nodes.map((n) => {
          const out = this.out(n.id);
          return [n.id, { ready: out.ready.toJSON(), settingsDirty: out.settingsDirty, ...(out.specDirty ? { specDirty: true } : {}) }];
        }),
      ),
      settings: Object.fromEntries(this.settings),
      restarts: this.restarts,
    };
  }
}

/**
 * The carry that resumes an ended backfill in a new run (`resume`, `retry-failed` after it
 * ended): what is done stays done, the failures of `node` (or of every node) run again, and
 * every partition that was released but not finished is released again to the new run's node
 * workflows (see `resumedReadiness`). The operator's limits and the run key stay; what
 * described the ended run's node workflows (outbox, settings, restarts, running) goes.
 */
export function resumeCarry(carry: BackfillCarry, node?: string): BackfillCarry {
  return {
    ...carry,
    readiness: resumedReadiness(carry.readiness, node),
    childrenRunning: false,
    paused: false,
    failures: node === undefined ? {} : { ...carry.failures, [node]: [] },
    reports: Object.fromEntries(Object.entries(carry.reports).map(([id, stats]) => [id, { ...stats, running: 0 }])),
    outbox: {},
    settings: {},
    restarts: {},
    // What the ended run had in hands may have been published by a node workflow it lost.
    recheck: Object.fromEntries(
      Object.entries(carry.readiness)
        .map(([id, state]) => [id, RangeSet.fromJSON(state.inHands).addAll(RangeSet.fromJSON(carry.recheck?.[id])).deleteAll(RangeSet.fromJSON(state.done)).toJSON()])
        .filter(([, ranges]) => ranges !== ''),
    ),
  };
}
