/**
 * `BackfillCoordinator`: everything the parent workflow decides, without a server. It keeps
 * partition-level readiness, the limits and who gets which share of them, the failures, and
 * an outbox per node of what the node has not been told yet. The workflow delivers the
 * outbox in signals and hands back what could not be delivered, so nothing released is
 * ever lost: a node workflow that closed without finishing is started again with every
 * partition it held.
 */
import { parseSignedText, type SignatureCheck } from './approval.ts';
import { POLICY_IDENTITY, clipText, parseMeta, unchangedSince, type AuditEntry, type ControlMeta, type Unchanged } from './audit.ts';
import { parseSpending, type BudgetKind, type Spending } from './budget.ts';
import { mergeFailures, withoutPartitions } from './failures.ts';
import { BackfillError, formatPath, type ErrorCode } from './errors.ts';
import type { Governance, Hold } from './governance.ts';
import { minRate, nodeShares, parseConcurrency, parseRate, type Limits, type NodeLimits } from './limits.ts';
import { TokenBucket } from './pacing.ts';
import { capNodeRates } from './policy.ts';
import type { Plan, PlanNode } from './plan.ts';
import { paceSoFar, progressOf } from './progress.ts';
import { StagedGate, resumedStaged, type StagedAction, type StagedDecision } from './staged.ts';
import type { RunLimit, StartAction } from './start-action.ts';
import { REFUSED_TEXT, type RefusedSignal } from './refused-signals.ts';
import { RefusedApprovals, refusalLasts, refusedApprovalKey } from './refused-approvals.ts';
import { CanaryGate, canaryScope, type CanaryAction, type CanaryDecision, type CanaryDiff } from './canary.ts';
import type { BackfillCarry, BackfillState, CostAllowance, FailureGroup, NodeControl, NodeOrders, NodeOverrides, NodeReport, NodeSettings, NodeStats, PaceSoFar, Progress } from './protocol.ts';
import { initialRelease } from './only-changed.ts';
import { RangeSet, receivedRanges, type RangesJSON } from './ranges.ts';
import { Readiness, resumeRunsAgain, resumedReadiness } from './readiness.ts';
import type { Canary, ResolvedNode, ResolvedSpec } from './spec.ts';
import { nothingFailed, nothingToRetryOn } from './retry-failed.ts';
import { changedNodes, parseResolvedSpec, readResolvedSpec } from './spec-changes.ts';
import type { EffectiveLimits } from './windows.ts';
import { nameText, valueText } from './value-text.ts';

type Outgoing = { ready: RangeSet; settingsDirty: boolean; specDirty: boolean; finish: boolean };

/** The effective control state after a change: what `set-rate` and friends print. */
export type ControlState = {
  paused: boolean;
  rate: number | null;
  concurrency: number | null;
  nodes: Array<{ id: string; rate: number | null; concurrency: number }>;
  /** Under a policy: what keeps partitions from starting besides `paused` (an approval, a budget, a window). */
  holds?: Hold[];
  /** The control asked for what was already in force (a pause of a paused backfill, the rate it has, a budget's cap): it changed nothing. */
  unchanged?: Unchanged;
};

/** A signed approval as it arrives: the canonical text and its SSH signature. */
export type ApprovalRequest = { text: string; signature: string };

/** What an approval came to: who approved, or why it was refused (a code and a message with the fix). */
export type ApprovalOutcome = { accepted: true; approver: string } | { accepted: false; code: string; message: string };

/** A budget change as it arrives (set-budget). */
export type BudgetRequest = { budget: BudgetKind; limit: number };

/**
 * Options of a coordinator: the workflow's clock (for the audit trail and the run windows),
 * whether a new backfill is staged (`start --stage`; a carried one keeps what it started with),
 * and whether it gives node workflows cost allowances.
 */
export type CoordinatorOptions = {
  now?: () => number;
  stage?: boolean;
  /** Give node workflows cost allowances (NodeSettings.allowance): a workflow change, behind the patch `cost-allowance`. */
  allowances?: boolean;
  /**
   * Record no budget pause for the spending that finished the backfill (every partition done,
   * none failed): nothing is left to pause. A workflow change, behind the patch `budget-spent-at-finish`.
   */
  quietFinalBudget?: boolean;
  /**
   * The run windows' limits change where one window hands over to another with other limits,
   * not only where the windows close: a workflow change (a timer at each hand-over), behind the
   * patch `window-handovers`.
   */
  windowHandovers?: boolean;
  /**
   * After a canary's approval, a node workflow started again counts its spending from 0, so its
   * cost allowance goes on from what its grant had left, as after a restart. Before, it kept the
   * grant in the old workflow's running total: a new node could spend the whole cap again. A
   * workflow change (the settings it starts with, then its signals), behind the patch `canary-start-counts-afresh`.
   */
  canaryCountsAfresh?: boolean;
  /** A new canary backfill (parsed: `parseCanary`); its slice skips what `skip` (--only-changed) keeps. A carried one keeps its own. */
  canary?: Canary | null;
  skip?: Record<string, RangesJSON>;
};

/** How a backfill's policy judges a change without applying it (a query's answer): `refused` holds the BackfillError applying it would throw. */
export type Judgement = { refused: { code: ErrorCode; message: string; path?: string } | null };
/** How a backfill's policy judges a new task-queue rate, and whether the queue is its own. */
export type QueueRateJudgement = Judgement & { mine: boolean };
/** A staged decision (publish, discard, a canary's) that landed while a cancel waited for it: what it did, and whether it ended the backfill. */
export type LateCancel = { note: string; ended: boolean };

/**
 * How long after `backfill cancel` announced itself (who, why) a cancellation is taken as that
 * announcement's: the client sends it at once after, so a minute covers a busy worker; a later
 * one is recorded as nobody's (its requester is in the history's cancel-request event).
 */
export const ANNOUNCED_CANCEL_WINDOW_MS = 60_000;

/** A change judged before it is applied (`judgeChange`). */
export type JudgedChange = { action: 'set-budget'; budget: BudgetKind; limit: number } | { action: 'retry'; node?: string };

/** The judgement of `parse`, which throws a BackfillError to refuse. */
function judged<T>(parse: () => T): { value: T; refused: null } | { value?: undefined; refused: NonNullable<Judgement['refused']> } {
  try {
    return { value: parse(), refused: null };
  } catch (error) {
    if (error instanceof BackfillError) return { refused: error.toJSON() };
    throw error;
  }
}

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
  /** A staged backfill (`start --stage`): its versions wait for publish or discard; null: it publishes as it goes. */
  readonly staged: StagedGate | null;
  /** A canary backfill: its slice runs staged first and waits for approve or discard; null: no canary. */
  readonly canary: CanaryGate | null;
  /** The policy's judgement (null: a backfill from before governance, or not judged yet). */
  private governance: Governance | null = null;
  /** Signalled approvals refused for good in this run (not carried: core/refused-approvals.ts). */
  private readonly refusedApprovals = new RefusedApprovals();
  /** Governed, but the policy has not judged the start yet: controls wait for that. */
  private admitting = false;
  /** What the run windows said when last looked at (null: no windows). */
  private windows: EffectiveLimits | null = null;
  private deadline: { notAfter: number; stopBy: number } | null = null;
  /** Audit entries not yet written to the history (the workflow upserts each into its memo). */
  private unwritten: AuditEntry[] = [];
  private readonly now: () => number;
  /** The last `backfill cancel` announcement of this run, and when it came. */
  private announcedCancel: { meta: ControlMeta; at: number } | undefined;
  private readonly allowances: boolean;
  private readonly quietFinalBudget: boolean;
  private readonly windowHandovers: boolean;
  private readonly canaryCountsAfresh: boolean;
  /** The running spending total each node workflow last reported. */
  private readonly spentTotals: Record<string, Spending>;
  /**
   * When the backfill let nothing start (BackfillCarry.held): held by an operator or the policy
   * (noted where the settings are computed), or a canary waiting for its decision (noted as the
   * slice settles and as the rest is released), with the workflow's clock.
   */
  private readonly heldSpans: Array<[from: number, to: number | null]>;
  /** What the runs before this one did (a resume's, a retry-failed's carry): shown only, never decides. */
  private readonly before: PaceSoFar | undefined;
  /**
   * What contradicts itself in the carry this run started from (anyone who can start a workflow
   * writes one): a decision that ended the backfill while partitions are still to compute. Null:
   * none, or no carry. The workflow refuses such a start (`refuseCarriedDecision`).
   */
  readonly carriedDecisionProblem: string | null;

  constructor(
    private readonly plan: Plan,
    initialLimits: Limits,
    carry?: Omit<BackfillCarry, 'runKey' | 'childrenRunning' | 'startedAt' | 'runs'>,
    options: CoordinatorOptions = {},
  ) {
    this.now = options.now ?? (() => 0);
    this.allowances = options.allowances ?? false;
    this.quietFinalBudget = options.quietFinalBudget ?? false;
    this.windowHandovers = options.windowHandovers ?? false;
    this.canaryCountsAfresh = options.canaryCountsAfresh ?? false;
    this.spentTotals = { ...carry?.spentTotals };
    this.announcedCancel = announcedOf(carry?.announcedCancel);
    this.heldSpans = (carry?.held ?? []).map(([from, to]): [number, number | null] => [from, to]);
    this.before = carry?.before ? { ...carry.before } : undefined;
    this.readiness = new Readiness(plan, carry?.readiness);
    // Decided at the first start, then carried (continue-as-new, resume).
    this.staged = carry?.staged ? new StagedGate(carry.staged) : options.stage && !carry ? new StagedGate() : null;
    this.canary = carry?.canary
      ? new CanaryGate({ carry: carry.canary }, plan)
      : options.canary && !carry
        ? new CanaryGate({ config: options.canary, scope: canaryScope(plan, options.canary, options.skip), ...(options.skip ? { skip: options.skip } : {}) }, plan)
        : null;
    // Before anything is released: while the canary's slice runs, nothing beyond it is.
    if (this.canary?.limiting) this.readiness.limitTo(this.canary.scope);
    this.carriedDecisionProblem = carry ? this.decisionProblem() : null;
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
    if (report.total) this.spentTotals[report.node] = report.total;
    if (report.spent && this.governance) {
      const paused = this.governance.spend(report.spent);
      const finished = this.quietFinalBudget && this.settled && !this.anyFailed;
      if (paused !== null && !finished) this.write(this.governance.record('budget-pause', { identity: POLICY_IDENTITY }, this.now(), { why: paused }));
    }
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
    if (stats.pausedMs !== undefined && !count(stats.pausedMs)) refuse('stats are not numbers');
    if (report.final !== undefined && report.final !== 'cancelled') refuse(`final is ${valueText(report.final)}`);
    const spent = report.spent !== undefined ? parseSpending(report.spent) : undefined;
    const total = report.total !== undefined ? parseSpending(report.total) : undefined;
    // What was parsed, never what was sent: stats and totals are kept (and carried) as they are returned here.
    const kept: NodeStats = {
      running: stats.running as number,
      rate: stats.rate as number | null,
      concurrency: stats.concurrency as number,
      throttles: stats.throttles as number,
      completed: stats.completed as number,
      firstStartedAt: stats.firstStartedAt as number | null,
      lastFinishedAt: stats.lastFinishedAt as number | null,
      ...(stats.pausedMs !== undefined ? { pausedMs: stats.pausedMs as number } : {}),
      ...(count(stats.batchSize) ? { batchSize: stats.batchSize as number } : {}),
      ...(maybe(stats.latencyP95Ms) ? { latencyP95Ms: stats.latencyP95Ms as number | null } : {}),
    };
    return {
      node: report.node,
      done: report.done as NodeReport['done'],
      failures: (report.failures as FailureGroup[]).map((g) => ({ message: g.message, type: g.type, ranges: g.ranges })),
      stats: kept,
      ...(report.final !== undefined ? { final: 'cancelled' as const } : {}),
      ...(spent !== undefined ? { spent } : {}),
      ...(total !== undefined ? { total } : {}),
    };
  }

  get settled(): boolean {
    return this.readiness.settled;
  }

  hasInHands(id: string): boolean {
    return this.readiness.hasInHands(id);
  }

  /** Every partition of the node is done, failed or blocked: its lineage run may end. */
  nodeSettled(id: string): boolean {
    return this.readiness.nodeSettled(id);
  }

  // ---- control ----

  /** The node a control message names (null: the whole backfill); throws `unknown_node`. */
  private nodeArg(node: unknown): string | null {
    if (node === undefined || node === null) return null;
    if (typeof node !== 'string' || !this.plan.byId.has(node)) {
      throw new BackfillError('unknown_node', `unknown node ${nameText(node)}: this backfill's nodes are ${this.plan.nodes.map((n) => n.id).join(', ')}`, 'node');
    }
    return node;
  }

  /**
   * Refuses a change once the backfill has settled: it is finishing (`what`: go on in a new run
   * once it has ended), or it waits for a decision on what it staged, which no change can touch
   * (`whileDeciding`). Only text differs: a refusal leaves nothing in the history.
   */
  private refuseWhenClosing(what: string, whileDeciding: string): void {
    if (!this.closing) return;
    if (this.staged && !this.staged.decided) throw new BackfillError('finishing', `the backfill has staged its partitions and waits for publish or discard: ${whileDeciding}`);
    if (this.canary && !this.canary.decided) {
      throw new BackfillError('finishing', `the backfill has run its canary's slice and waits for approve or discard: ${whileDeciding}`);
    }
    throw new BackfillError('finishing', `the backfill has settled and is finishing: ${what}`);
  }

  /*
   * Control messages arrive from anyone (the client, Temporal's CLI) as raw JSON. Each is parsed
   * here, once: `parseX` throws a BackfillError naming the problem and changes nothing (the
   * updates' validators); `setX` parses the same way and applies the parsed value (the update
   * handlers, the signals), so no raw argument is ever applied.
   */

  /** The nodes as the policy's checks see them (their task queues, their own limits). */
  private specView(): Pick<ResolvedSpec, 'nodes'> {
    return { nodes: [...this.specs.values()] };
  }

  /** A control's `{ reason, identity }`, checked: not before the policy has judged the start. */
  private meta(meta: unknown): ControlMeta {
    const parsed = parseMeta(meta);
    if (this.admitting) throw new BackfillError('not_running', 'the backfill is starting: the policy has not judged it yet; send this again in a moment');
    return parsed;
  }

  private record(action: AuditEntry['action'], meta: ControlMeta, details: AuditEntry['details'] = {}, outcome: AuditEntry['outcome'] = 'applied'): void {
    if (this.governance) this.write(this.governance.record(action, meta, this.now(), details, outcome));
  }

  /**
   * A control signal the backfill refused (it threw a BackfillError): recorded as refused in the
   * audit trail (bounded: core/refused-signals.ts), since its sender hears nothing. A backfill
   * under no governance (it started before governance existed) keeps no trail.
   */
  refuseSignal(refused: RefusedSignal): void {
    const entry = this.governance?.recordRefusedSignal(refused, this.now());
    if (entry) this.write(entry);
  }

  private write(entry: AuditEntry): void {
    this.unwritten.push(entry);
  }

  parseRate(rate: unknown, node?: unknown, meta?: unknown): { rate: number | null; node: string | null; meta: ControlMeta } {
    const parsed = { node: this.nodeArg(node), rate: parseRate(rate), meta: this.meta(meta) };
    this.governance?.check({ action: 'set-rate', rate: parsed.rate, ...(parsed.node !== null ? { node: parsed.node } : {}), ...(parsed.meta.reason !== undefined ? { reason: parsed.meta.reason } : {}) }, this.specView());
    return parsed;
  }

  parseConcurrency(concurrency: unknown, node?: unknown, meta?: unknown): { concurrency: number | null; node: string | null; meta: ControlMeta } {
    const id = this.nodeArg(node);
    const parsed = { node: id, concurrency: parseConcurrency(concurrency, id), meta: this.meta(meta) };
    this.governance?.check(
      { action: 'set-concurrency', concurrency: parsed.concurrency, ...(id !== null ? { node: id } : {}), ...(parsed.meta.reason !== undefined ? { reason: parsed.meta.reason } : {}) },
      this.specView(),
    );
    if (this.governance) {
      // The nodes of a task queue together, as the start was judged (a node's own check sees it alone).
      const nodes = (changed: boolean) =>
        this.plan.nodes.map((n) => ({ id: n.id, taskQueue: this.specs.get(n.id)!.taskQueue, concurrency: changed && n.id === id ? parsed.concurrency! : this.ownLimits(n).concurrency }));
      this.governance.checkQueues(
        { nodes: nodes(false), concurrency: this.limits.concurrency },
        { nodes: nodes(true), concurrency: id === null ? parsed.concurrency : this.limits.concurrency },
      );
    }
    return parsed;
  }

  /**
   * `parseRetry`, and a retry that would retry nothing refused (its validator, and the judgement
   * `retry-failed --spec` asks first). Not the handler's: histories hold retries of nothing applied.
   */
  validateRetry(backfillId: string, node?: unknown, meta?: unknown): { node: string | null; meta: ControlMeta } {
    const parsed = this.parseRetry(node, meta);
    const state = this.readiness.toJSON();
    const nothing = parsed.node === null ? nothingFailed(backfillId, state, false) : nothingToRetryOn(backfillId, parsed.node, state);
    if (nothing !== null) throw new BackfillError('invalid_argument', nothing);
    return parsed;
  }

  parseRetry(node?: unknown, meta?: unknown): { node: string | null; meta: ControlMeta } {
    const id = this.nodeArg(node);
    const parsed = this.meta(meta);
    this.refuseWhenClosing('run retry-failed again once it has ended', 'decide first; after a publish, retry-failed stages the failed partitions again in a new run');
    this.governance?.check({ action: 'retry', ...(parsed.reason !== undefined ? { reason: parsed.reason } : {}) }, this.specView());
    return { node: id, meta: parsed };
  }

  parsePause(paused: boolean, meta?: unknown): ControlMeta {
    const parsed = this.meta(meta);
    this.governance?.check({ action: paused ? 'pause' : 'resume', ...(parsed.reason !== undefined ? { reason: parsed.reason } : {}) }, this.specView());
    return parsed;
  }

  /** A new spec (what `resume --spec` and `retry-failed --spec` send): parsed, and the nodes it changes from `current`. */
  parseSpec(next: unknown, current: ResolvedSpec, meta?: unknown): { spec: ResolvedSpec; changed: string[]; meta: ControlMeta } {
    this.refuseWhenClosing(
      'send the new spec with retry-failed or resume once it has ended (they go on in a new run)',
      'a new spec cannot change what it staged; decide first (a fix after staging is a new staged run: backfill start <spec> --id <id> --rerun, with --stage or --canary)',
    );
    const parsed = this.meta(meta);
    const spec = parseResolvedSpec(next);
    const changed = changedNodes(current, spec);
    if (this.governance) {
      this.governance.check({ action: 'resume', ...(parsed.reason !== undefined ? { reason: parsed.reason } : {}) }, this.specView());
      this.governance.checkSpec(spec, this.limits.concurrency);
    }
    return { spec, changed, meta: parsed };
  }

  setPaused(paused: boolean, meta?: unknown): ControlState {
    const parsed = this.parsePause(paused, meta);
    const previous = this.paused;
    this.paused = paused;
    this.settingsStale = true;
    this.record(paused ? 'pause' : 'resume', parsed, { paused, previous });
    return this.stateAfter('paused', paused, previous, { node: null });
  }

  setRate(rate: unknown, node?: unknown, meta?: unknown): ControlState {
    const parsed = this.parseRate(rate, node, meta);
    const previous = parsed.node === null ? this.limits.rate : this.ownLimits(this.plan.byId.get(parsed.node)!).rate;
    if (parsed.node === null) this.limits.rate = parsed.rate;
    else this.overrides[parsed.node] = { ...this.overrides[parsed.node], rate: parsed.rate };
    this.settingsStale = true;
    this.record('set-rate', parsed.meta, { rate: parsed.rate, previous, ...(parsed.node !== null ? { node: parsed.node } : {}) });
    return this.stateAfter('rate', parsed.rate, previous, { node: parsed.node });
  }

  setConcurrency(concurrency: unknown, node?: unknown, meta?: unknown): ControlState {
    const parsed = this.parseConcurrency(concurrency, node, meta);
    const previous = parsed.node === null ? this.limits.concurrency : this.ownLimits(this.plan.byId.get(parsed.node)!).concurrency;
    if (parsed.node === null) this.limits.concurrency = parsed.concurrency;
    // parseConcurrency gives a node a whole number, never null.
    else this.overrides[parsed.node] = { ...this.overrides[parsed.node], concurrency: parsed.concurrency! };
    this.settingsStale = true;
    this.record('set-concurrency', parsed.meta, { concurrency: parsed.concurrency, previous, ...(parsed.node !== null ? { node: parsed.node } : {}) });
    return this.stateAfter('concurrency', parsed.concurrency, previous, { node: parsed.node });
  }

  /** The state a control replies with: marked unchanged when it asked for what was in force, with when and by whom that was set if the trail tells. */
  private stateAfter(key: string, value: boolean | number | null, previous: boolean | number | null, scope: Readonly<Record<string, string | null>>): ControlState {
    const state = this.controlState();
    if (value !== previous) return state;
    return { ...state, unchanged: unchangedSince(this.governance?.audit.recent() ?? [], key, value, scope) };
  }

  /** Hands failed partitions (of one node or all) back to run again; returns how many. */
  retryFailed(node?: unknown, meta?: unknown): number {
    const { node: id, meta: parsed } = this.parseRetry(node, meta);
    const retried = this.readiness.retryFailed(id ?? undefined);
    let count = 0;
    for (const [nodeId, ranges] of retried) {
      this.failures = { ...this.failures, [nodeId]: [] };
      count += ranges.size;
    }
    this.release(retried);
    this.settingsStale = true;
    this.record('retry', parsed, { retried: count, ...(id !== null ? { node: id } : {}) });
    return count;
  }

  /**
   * Applies a new spec to the partitions still to run; returns it and the nodes it changed.
   * Under a policy that wanted an approval, the new plan (`planHashOf` the new spec) needs one again.
   */
  replaceSpec(next: unknown, current: ResolvedSpec, meta?: unknown, planHashOf?: (spec: ResolvedSpec) => string): { spec: ResolvedSpec; changed: string[] } {
    const parsed = this.parseSpec(next, current, meta);
    for (const id of parsed.changed) this.replaceNodeSpec(parsed.spec.nodes.find((n) => n.id === id)!);
    if (this.governance) {
      // A node the new spec leaves without a rate meets its dataset caps' rate, as at the start.
      for (const [node, rate] of Object.entries(capNodeRates(this.governance.policy, parsed.spec))) {
        if (this.overrides[node]?.rate === undefined) this.overrides[node] = { ...this.overrides[node], rate };
      }
      const again = planHashOf ? this.governance.replacePlan(planHashOf(parsed.spec)) : false;
      this.record('replace-spec', parsed.meta, { changed: parsed.changed.join(', '), approvalAgain: again });
      this.settingsStale = true;
    }
    return { spec: parsed.spec, changed: parsed.changed };
  }

  // ---- governance ----

  /** Governed: controls wait until `govern` (the policy judges the start first). */
  awaitAdmission(): void {
    this.admitting = true;
  }

  /** The policy's judgement of the start (or the one carried across continue-as-new); `limits` replace the requested ones. */
  govern(governance: Governance, options: { limits?: Limits; nodeRates?: Record<string, number> } = {}): void {
    this.governance = governance;
    this.admitting = false;
    if (options.limits) {
      this.limits.rate = options.limits.rate;
      this.limits.concurrency = options.limits.concurrency;
    }
    for (const [node, rate] of Object.entries(options.nodeRates ?? {})) {
      if (this.overrides[node]?.rate === undefined && this.plan.byId.has(node)) this.overrides[node] = { ...this.overrides[node], rate };
    }
    this.applyWindows();
    this.settingsStale = true;
  }

  /** The policy has not judged the start yet: controls are refused (`not_running`) until it has. */
  get isAdmitting(): boolean {
    return this.admitting;
  }

  get governed(): Governance | null {
    return this.governance;
  }

  /**
   * Records the start (or its refusal) in the audit trail: as `action` (`parseStartAction`), else
   * a start or, `resumed`, a resume; with the run's own value of each limit in `limitsSet`.
   */
  recordStart(
    meta: ControlMeta & { verified?: boolean },
    given: AuditEntry['details'],
    action: StartAction = given.resumed === true ? 'resume' : 'start',
    limitsSet: readonly RunLimit[] = [],
  ): void {
    if (!this.governance) return;
    const details = { ...given, ...Object.fromEntries(limitsSet.map((key) => [key, this.limits[key]])) };
    if (meta.verified && meta.identity !== undefined) this.write(this.governance.recordVerified(action, meta.identity, meta.reason ?? '', this.now(), details));
    else this.record(action, meta, details);
  }

  /**
   * Where the run windows stand now: whether partitions may start, lower limits, and when
   * that changes next (the workflow sets a timer for it). Null without windows.
   */
  applyWindows(): number | null {
    if (!this.governance?.hasWindows) return null;
    const now = this.now();
    const next = this.governance.windowLimits(now, this.windowHandovers);
    const deadline = next && !next.paused ? this.governance.deadline(now) : null;
    const before = JSON.stringify([this.windows && { ...this.windows, nextChangeAt: null }, this.deadline]);
    this.windows = next;
    this.deadline = deadline;
    if (JSON.stringify([next && { ...next, nextChangeAt: null }, deadline]) !== before) this.settingsStale = true;
    return next?.nextChangeAt ?? null;
  }

  /** When the run windows change next (null: never, or no windows). */
  get nextWindowChange(): number | null {
    return this.windows?.nextChangeAt ?? null;
  }

  /** What keeps partitions from starting, besides nothing to do. */
  holds(): Hold[] {
    const holds: Hold[] = [];
    if (this.paused) holds.push({ kind: 'operator', reason: 'paused by an operator (backfill resume goes on)' });
    const g = this.governance;
    if (!g) return holds;
    if (g.awaitingApproval) holds.push({ kind: 'approval', reason: `waits for an approval: ${g.approvalReasons.join('; ')} (backfill approve <id> --reason ... --sign-key <key>)` });
    const budget = g.budgetHold;
    if (budget !== null) holds.push({ kind: 'budget', reason: budget });
    if (this.windows?.paused) holds.push({ kind: 'window', reason: g.windowView(this.now())?.description ?? 'outside the run windows' });
    return holds;
  }

  private get held(): boolean {
    if (this.paused || this.admitting) return true;
    const g = this.governance;
    return g !== null && (g.awaitingApproval || g.budgetHold !== null || this.windows?.paused === true);
  }

  get isAwaitingApproval(): boolean {
    return this.governance?.awaitingApproval === true;
  }

  /** An approval as it arrives (the update's validator, the signal): its text and signature, and the reason it signs. */
  parseApproval(value: unknown, meta?: unknown): ApprovalRequest & { reason: string } {
    this.meta(meta);
    const v = value as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || typeof v.text !== 'string' || typeof v.signature !== 'string') {
      throw new BackfillError('invalid_argument', 'an approval is { text, signature }: the signed text and its SSH signature (backfill approve makes both)', 'approval');
    }
    if (!this.governance) throw new BackfillError('approval_refused', 'this backfill runs under no policy (it started before governance existed): there is nothing to approve');
    const subject = parseSignedText(v.text);
    if ('error' in subject) throw new BackfillError('approval_refused', `the signed text ${subject.error}`, 'approval');
    if (!this.governance.awaitingApproval) {
      const verdict = this.governance.judgeApproval({ ok: false, code: '', message: '' }, this.now());
      const why = this.isAwaitingApproval || verdict.accepted ? '' : `: ${verdict.message.replace(/^[^:]*: /, '')}`;
      throw new BackfillError('approval_refused', `this backfill is not waiting for an approval${why}`);
    }
    this.governance.check({ action: 'approve', reason: subject.reason }, this.specView());
    return { text: v.text, signature: v.signature, reason: subject.reason };
  }

  /**
   * The key a signalled approval's lasting refusal is remembered by (core/refused-approvals.ts):
   * its text and signature, with the plan the backfill checks them against now.
   */
  approvalKey(request: ApprovalRequest): string {
    return refusedApprovalKey(request, this.governance?.planHash ?? '');
  }

  /**
   * A signalled approval whose very text and signature this run refused already, for a reason
   * that cannot change (core/refused-approvals.ts): refused again without a check, counted and
   * recorded as a refused signal; null when it was not.
   */
  refuseRepeatedApproval(request: ApprovalRequest & { reason: string }, meta?: unknown): ApprovalOutcome | null {
    const g = this.governance;
    const before = g === null ? null : this.refusedApprovals.find(this.approvalKey(request));
    if (g === null || before === null) return null;
    const message = `this very approval was refused before, so it was not checked again: ${before.message}`;
    const details = { code: before.code, why: message, planHash: g.planHash, repeated: true };
    const entry = g.recordRefusedApproval(null, parseMeta(meta), request.reason, this.now(), details, true);
    if (entry) this.write(entry);
    return { accepted: false, code: before.code, message };
  }

  /**
   * What the `verifySignature` activity said of an approval, judged with what only the backfill
   * knows (who started it, the time); recorded in the audit trail either way. One sent as a
   * signal (`signalledKey`: approvalKey, taken when it was checked) is recorded as a refused
   * signal, and its refusal remembered by that key if it cannot change.
   */
  approve(check: SignatureCheck, reason: string, meta?: unknown, signalledKey?: string): ApprovalOutcome {
    const parsed = parseMeta(meta);
    const g = this.governance;
    if (!g) return { accepted: false, code: 'no_policy', message: 'this backfill runs under no policy: there is nothing to approve' };
    const now = this.now();
    const decision = g.judgeApproval(check, now);
    const signer = check.ok ? check.verified.principals[0]! : null;
    if (!decision.accepted) {
      // A signal's entry is cut short where it is recorded (Governance.recordRefusedApproval), and so is what the run remembers.
      const details = { code: decision.code, why: decision.message, planHash: g.planHash, ...(check.ok ? { fingerprint: check.verified.fingerprint } : {}) };
      const entry = g.recordRefusedApproval(signer, parsed, reason, now, details, signalledKey !== undefined);
      if (entry) this.write(entry);
      if (signalledKey !== undefined && refusalLasts(decision.code, !check.ok)) {
        this.refusedApprovals.remember(signalledKey, { code: decision.code, message: clipText(decision.message, REFUSED_TEXT.why) });
      }
      return { accepted: false, code: decision.code, message: decision.message };
    }
    g.approve(decision.approver, now);
    this.write(g.recordVerified('approve', decision.approver, reason, now, { planHash: g.planHash, fingerprint: check.ok ? check.verified.fingerprint : '' }));
    this.settingsStale = true;
    return { accepted: true, approver: decision.approver };
  }

  /** A budget change as it arrives; throws what is wrong (a junk value, the policy's most). */
  parseBudget(value: unknown, meta?: unknown): BudgetRequest & { meta: ControlMeta } {
    const parsed = this.meta(meta);
    const v = value as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || (v.budget !== 'retries' && v.budget !== 'cost') || typeof v.limit !== 'number' || !Number.isFinite(v.limit) || v.limit <= 0) {
      throw new BackfillError('invalid_argument', "a budget change is { budget: 'retries' | 'cost', limit: <a number above 0> }", 'budget');
    }
    if (v.budget === 'retries' && !Number.isInteger(v.limit)) throw new BackfillError('invalid_argument', `a retries budget counts failed attempts: a whole number (got ${v.limit})`, 'budget');
    if (!this.governance) throw new BackfillError('invalid_argument', 'this backfill started before budgets existed: it has none to set', 'budget');
    if (v.budget === 'cost' && this.governance.budgets.status('cost') === null) {
      throw new BackfillError('invalid_argument', 'this backfill has no cost budget (the policy defines no budgets.cost): there is none to raise', 'budget');
    }
    this.governance.check({ action: 'set-budget', budget: v.budget, limit: v.limit, ...(parsed.reason !== undefined ? { reason: parsed.reason } : {}) }, this.specView());
    return { budget: v.budget, limit: v.limit, meta: parsed };
  }

  /**
   * The first round of a command that sends more than one update (a query: it applies and records
   * nothing): how the policy judges one of its changes. `set-budget --retries --cost` and
   * `retry-failed --spec` judge every change first, so that one refused applies none.
   */
  judgeChange(change: unknown, meta: unknown, backfillId: string): Judgement {
    const c = change as { action?: unknown; node?: unknown } | null;
    return {
      refused: judged(() => {
        if (c?.action === 'set-budget') return this.parseBudget(c, meta);
        if (c?.action === 'retry') return this.validateRetry(backfillId, c.node ?? undefined, meta);
        throw new BackfillError('invalid_argument', "a change to judge is { action: 'set-budget', budget, limit } or { action: 'retry', node? }", 'action');
      }).refused,
    };
  }

  /** `set-budget`: a new cap; what was spent stays, so a raised budget lets a paused backfill go on where it was. */
  setBudget(value: unknown, meta?: unknown): ControlState {
    const parsed = this.parseBudget(value, meta);
    const g = this.governance!;
    const previous = g.budgets.status(parsed.budget)?.limit ?? null;
    g.setBudget(parsed.budget, parsed.limit);
    this.settingsStale = true;
    this.record('set-budget', parsed.meta, { budget: parsed.budget, limit: parsed.limit, previous, used: g.budgets.status(parsed.budget)?.used ?? 0 });
    return this.stateAfter('limit', parsed.limit, previous, { budget: parsed.budget });
  }

  parseCancel(meta?: unknown): ControlMeta {
    const parsed = this.meta(meta);
    this.governance?.check({ action: 'cancel', ...(parsed.reason !== undefined ? { reason: parsed.reason } : {}) }, this.specView());
    return parsed;
  }

  /**
   * `cancel` says who and why before it cancels (a cancellation itself carries neither),
   * recorded at once: what histories from before `cancel-recorded-when-it-comes` do.
   */
  noteCancel(meta?: unknown): void {
    this.record('cancel', this.parseCancel(meta), { requested: true });
  }

  /**
   * `cancel` says who and why before it cancels: kept until the cancellation comes
   * (`noteCancelCame`). An announcement no cancellation follows (the client lost its connection
   * before it sent it) records nothing: the backfill was not cancelled.
   */
  announceCancel(meta?: unknown): void {
    this.announcedCancel = { meta: this.parseCancel(meta), at: this.now() };
  }

  /**
   * The cancellation came: it was the announcer's if they announced it just before (the client
   * sends it right after); else nobody said who, as with Temporal's CLI or the Web UI, even if
   * someone announced one long ago and never sent it.
   */
  noteCancelCame(late?: LateCancel): void {
    const announced = this.announcedCancel;
    if (announced && this.now() - announced.at <= ANNOUNCED_CANCEL_WINDOW_MS) this.recordCancel(announced.meta, { requested: true }, late);
    else this.noteUnannouncedCancel(late);
  }

  /** A cancellation nobody announced (Temporal's CLI, the Web UI): recorded as it is. */
  noteUnannouncedCancel(late?: LateCancel): void {
    this.recordCancel({ identity: 'unknown (cancelled without backfill cancel: the WorkflowExecutionCancelRequested event names the requester)' }, { requested: true, announced: false }, late);
  }

  /** A decision that landed before the cancel took effect: one that ended the backfill leaves the cancel nothing to do (refused, and why). */
  private recordCancel(meta: ControlMeta, details: AuditEntry['details'], late: LateCancel | undefined): void {
    if (late?.ended) this.record('cancel', meta, { ...details, why: late.note }, 'refused');
    else this.record('cancel', meta, late ? { ...details, note: late.note } : details);
  }

  /**
   * `set-queue-rate` on a task queue some of this backfill's nodes run on: judged by this
   * backfill's policy and recorded in its trail (the change itself is a task-queue RPC the
   * client sends once every backfill on the queue has agreed). False: none of its nodes use the queue.
   */
  parseQueueRate(value: unknown, meta?: unknown): { queue: string; rate: number | null; meta: ControlMeta; mine: boolean } {
    const parsed = this.meta(meta);
    const v = value as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || typeof v.queue !== 'string') throw new BackfillError('invalid_argument', 'a queue rate is { queue, rate }', 'queue');
    const rate = parseRate(v.rate);
    const mine = [...this.specs.values()].some((n) => n.taskQueue === v.queue);
    if (mine) this.governance?.check({ action: 'set-queue-rate', queue: v.queue, rate, ...(parsed.reason !== undefined ? { reason: parsed.reason } : {}) }, this.specView());
    return { queue: v.queue, rate, meta: parsed, mine };
  }

  /**
   * `set-queue-rate`'s first round (a query: it records nothing): whether the queue is this
   * backfill's, and its policy's refusal, if any. The client asks every backfill with nodes on
   * the queue (or whose nodes it cannot tell) before it changes the cap, then sends
   * `noteQueueRate` to record it, so no trail keeps a change that a later backfill refused.
   */
  judgeQueueRate(value: unknown, meta?: unknown): QueueRateJudgement {
    const judgement = judged(() => this.parseQueueRate(value, meta));
    return judgement.refused ? { mine: true, refused: judgement.refused } : { mine: judgement.value.mine, refused: null };
  }

  noteQueueRate(value: unknown, meta?: unknown): boolean {
    const parsed = this.parseQueueRate(value, meta);
    if (parsed.mine) this.record('set-queue-rate', parsed.meta, { queue: parsed.queue, rate: parsed.rate });
    return parsed.mine;
  }

  /**
   * The BackfillStatus search attribute: awaiting_approval, paused (by an operator or a spent
   * budget), waiting_for_window, or running.
   */
  statusName(): 'awaiting_approval' | 'paused' | 'waiting_for_window' | 'running' {
    const holds = this.holds();
    if (holds.some((h) => h.kind === 'approval')) return 'awaiting_approval';
    if (holds.some((h) => h.kind === 'operator' || h.kind === 'budget')) return 'paused';
    if (holds.some((h) => h.kind === 'window')) return 'waiting_for_window';
    return 'running';
  }

  /** Audit entries since the last call, for the workflow to write to its history. */
  takeAudit(): AuditEntry[] {
    const out = this.unwritten;
    this.unwritten = [];
    return out;
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
    this.refuseWhenClosing('send the new spec once it has ended', 'a new spec cannot change what it staged; decide first');
    this.specs.set(spec.id, spec);
    this.out(spec.id).specDirty = true;
    this.settingsStale = true;
  }

  nodeSpec(id: string): ResolvedNode {
    return this.specs.get(id)!;
  }

  /**
   * A node's settings and spec as this workflow last decided them (the `nodeOrders` query): read
   * only, for a query must change nothing. Settings not recomputed yet reach the node with the
   * next control, whose bell makes it ask again.
   */
  ordersOf(id: unknown): NodeOrders {
    const settings = typeof id === 'string' ? this.settings.get(id) : undefined;
    if (settings === undefined) throw new BackfillError('invalid_argument', `no orders for node ${valueText(id)}: it is not a node of this backfill, or has none yet`, 'node');
    return { settings, node: this.specs.get(id as string)! };
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
      ...(this.governance ? { holds: this.holds().filter((h) => h.kind !== 'operator') } : {}),
    };
  }

  /** Recomputes each node's share of the limits when something changed; marks changed settings for delivery. */
  refreshSettings(): void {
    if (!this.settingsStale) return;
    this.settingsStale = false;
    // Run windows may lower the limits (a lower rate at night's edges), never raise them.
    const w = this.windows;
    const limits: Limits = w
      ? { rate: minRate(this.limits.rate, w.rate), concurrency: w.concurrency === null ? this.limits.concurrency : Math.min(this.limits.concurrency ?? Infinity, w.concurrency) }
      : this.limits;
    const paused = this.held;
    this.noteHeld(paused || this.canaryWaiting);
    const deadline = this.deadline;
    const shares = nodeShares(
      limits,
      this.plan.nodes.map((n) => ({ id: n.id, own: this.ownLimits(n), active: this.readiness.hasInHands(n.id), previous: this.settings.get(n.id) })),
    );
    // Kept while held: a node that has not heard of the hold yet may still spend what it was granted.
    const allowances = this.costAllowances(shares);
    for (const node of this.plan.nodes) {
      const share = shares.get(node.id)!;
      const allowance = allowances?.get(node.id);
      const next: Omit<NodeSettings, 'seq'> = {
        ...share,
        burst: this.specs.get(node.id)!.burst ?? TokenBucket.defaultBurst(share.rate),
        paused,
        ...(deadline && !paused ? { openUntil: deadline.notAfter, stopBy: deadline.stopBy } : {}),
        ...(allowance ? { allowance } : {}),
      };
      const prev = this.settings.get(node.id);
      if (
        prev &&
        prev.rate === next.rate &&
        prev.burst === next.burst &&
        prev.concurrency === next.concurrency &&
        prev.paused === next.paused &&
        prev.openUntil === next.openUntil &&
        prev.stopBy === next.stopBy &&
        prev.allowance?.metric === next.allowance?.metric &&
        prev.allowance?.until === next.allowance?.until
      ) {
        continue;
      }
      this.settings.set(node.id, { ...next, seq: (prev?.seq ?? 0) + 1 });
      this.out(node.id).settingsDirty = true;
    }
  }

  /**
   * Every change of what holds the backfill marks its settings stale, so this sees each hold
   * begin and end. Only queries and the carry read the spans: no command depends on them.
   */
  private noteHeld(held: boolean): void {
    // `held`: whether anything holds it, so a window that closes while a canary waits counts once.
    const last = this.heldSpans[this.heldSpans.length - 1];
    const holding = last !== undefined && last[1] === null;
    if (held && !holding) this.heldSpans.push([this.now(), null]);
    else if (!held && holding) last[1] = this.now();
  }

  /**
   * Under a capped cost budget: the running total (in the budget's metric) up to which each
   * node may spend before it stops starting batches by itself, without waiting for the parent's
   * pause. Grants never exceed the budget: what was spent plus what is granted and not yet spent
   * stays within the cap, and what is free goes to the nodes that can run (work in hands and a
   * share of the concurrency), by their concurrency. A grant is never lowered while its node may
   * start batches (it may still act on older settings); a node without work is granted nothing
   * beyond what it spent, which frees its rest for the others. So the backfill overspends by the
   * batches already running at most.
   *
   * One exception keeps the backfill from waiting for ever: when every node that can run has
   * spent its grant, the grants of nodes left without concurrency are freed too. Such a node
   * starts nothing under its new settings, but until those reach it, it may still spend what it
   * held, once more than the budget allows.
   */
  private costAllowances(shares: ReadonlyMap<string, { concurrency: number }>): Map<string, CostAllowance> | null {
    const cost = this.allowances ? this.governance?.budgets.status('cost') : null;
    const metric = this.governance?.budgets.toJSON().cost?.metric;
    if (!cost || cost.limit === null || metric === undefined) return null;
    const seen = (id: string) => this.spentTotals[id]?.[metric] ?? 0;
    const held = (id: string) => Math.max(seen(id), this.settings.get(id)?.allowance?.until ?? 0);
    const ids = this.plan.nodes.map((n) => n.id);
    const active = ids.filter((id) => this.readiness.hasInHands(id));
    const runnable = active.filter((id) => shares.get(id)!.concurrency > 0);
    const stuck = runnable.every((id) => held(id) <= seen(id));
    const keeps = new Set(stuck ? runnable : active);
    const base = new Map(ids.map((id) => [id, keeps.has(id) ? held(id) : seen(id)]));
    const granted = ids.reduce((sum, id) => sum + base.get(id)! - seen(id), 0);
    const free = Math.max(0, cost.limit - cost.used - granted);
    const weight = runnable.reduce((sum, id) => sum + shares.get(id)!.concurrency, 0);
    const more = (id: string) => (weight > 0 && runnable.includes(id) ? (free * shares.get(id)!.concurrency) / weight : 0);
    return new Map(ids.map((id) => [id, { metric, until: base.get(id)! + more(id) }]));
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
    this.countAfresh(id);
    this.refreshSettings();
    // What it held is in hands; what was on its way to it is in the outbox: one new start carries both.
    const ready = this.readiness.inHands(id);
    this.outbox.set(id, { ready: new RangeSet(), settingsDirty: false, specDirty: false, finish: false });
    return { ready, settings: this.settings.get(id)!, node: this.specs.get(id)!, attempt };
  }

  /**
   * After the canary's approval: what a node workflow starts with again (it ended with the
   * slice): every partition in hands, and its settings. Not counted as a restart.
   */
  startAgain(id: string): { ready: RangeSet; settings: NodeSettings; node: ResolvedNode } {
    if (this.canaryCountsAfresh) this.countAfresh(id);
    this.refreshSettings();
    const ready = this.readiness.inHands(id);
    this.outbox.set(id, { ready: new RangeSet(), settingsDirty: false, specDirty: false, finish: false });
    return { ready, settings: this.settings.get(id)!, node: this.specs.get(id)! };
  }

  /** A new node workflow counts its spending from 0: what its grant had left goes with it. */
  private countAfresh(id: string): void {
    const allowance = this.settings.get(id)?.allowance;
    if (allowance) {
      this.settings.set(id, { ...this.settings.get(id)!, allowance: { ...allowance, until: Math.max(0, allowance.until - (this.spentTotals[id]?.[allowance.metric] ?? 0)) } });
      this.settingsStale = true;
    }
    delete this.spentTotals[id];
  }

  /** The canary is approved and published, and the rest is not released yet: `liftCanary` next. */
  get canaryToLift(): boolean {
    return this.canary?.current === 'approved' && this.readiness.limited;
  }

  restartsOf(id: string): number {
    return this.restarts[id] ?? 0;
  }

  // ---- views ----

  progress(backfillId: string, state: BackfillState, runs: number): Progress {
    const g = this.governance;
    const holds = g ? this.holds() : [];
    // A backfill that runs nothing because of its policy says why in its state.
    const name = g ? this.statusName() : 'running';
    const held: BackfillState = state !== 'running' ? state : name === 'awaiting_approval' || name === 'waiting_for_window' ? name : state;
    const shown: BackfillState = held === 'running' && this.canary?.waiting ? 'awaiting_canary' : held;
    const progress = progressOf({
      backfillId,
      name: this.plan.name,
      state: shown,
      paused: this.paused || holds.some((h) => h.kind === 'budget'),
      limits: this.limits,
      plan: this.plan,
      readiness: this.readiness,
      reports: this.reports,
      failures: this.failures,
      lastSettings: this.settings,
      runs,
      held: this.heldSpans,
      ...(this.before ? { before: this.before } : {}),
      ...(g?.hasWindows ? { throughWindows: (workMs: number) => g.workThroughWindows(this.now(), workMs) } : {}),
    });
    const decision = this.staged?.lastDecision;
    const staged = this.staged ? { staged: { phase: this.staged.current, ...(decision ? { by: decision.by, at: decision.at } : {}) } } : {};
    return { ...progress, ...(g ? { governance: g.view(this.now(), holds) } : {}), ...(this.canary ? { canary: this.canary.view() } : {}), ...staged };
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
      ...(this.staged ? { staged: this.staged.toCarry() } : {}),
      ...(this.canary ? { canary: this.canary.toCarry() } : {}),
      ...(this.governance ? { governance: this.governance.toJSON() } : {}),
      ...(Object.keys(this.spentTotals).length > 0 ? { spentTotals: { ...this.spentTotals } } : {}),
      ...(this.announcedCancel ? { announcedCancel: { meta: { ...this.announcedCancel.meta }, at: this.announcedCancel.at } } : {}),
      ...(this.heldSpans.length > 0 ? { held: this.heldSpans.map(([from, to]): [number, number | null] => [from, to]) } : {}),
      ...(this.before ? { before: { ...this.before } } : {}),
    };
  }

  /**
   * The state `status` shows once the partitions have settled: a staged backfill waits for a
   * decision (`staged`), then ends as its decision says; any other ends completed or with failures.
   */
  get endState(): 'staged' | 'discarded' | 'completed' | 'completed_with_failures' | 'canary_failed' {
    if (this.staged && !this.staged.decided) return 'staged';
    if (this.staged?.current === 'discarded' || this.canary?.current === 'discarded') return 'discarded';
    if (this.canary?.current === 'failed') return 'canary_failed';
    return this.anyFailed ? 'completed_with_failures' : 'completed';
  }

  /** Parses a publish or discard (the update's validator); refuses a backfill that is not staged. */
  parseStagedDecision(action: StagedAction, value: unknown): void {
    const { reason } = this.stagedGate(action).parse(action, value);
    this.assertSettled(action);
    this.governance?.check({ action, ...(reason !== null ? { reason } : {}) }, this.specView());
  }

  /** Takes a publish or discard (the update's handler): parsed again, then the gate moves on; the audit trail records who and why. */
  beginStagedDecision(action: StagedAction, value: unknown, at: number): StagedDecision {
    this.parseStagedDecision(action, value);
    const decision = this.stagedGate(action).begin(action, value, at);
    this.record(action, { identity: decision.by, ...(decision.reason !== null ? { reason: decision.reason } : {}) });
    return decision;
  }

  /**
   * A decision covers every staged version, so none is taken while partitions are in hands: their
   * versions, staged later, would be left out of a publish (or a discard) for good. The gates wait
   * for the settled run already; this holds whatever phase a carry brought.
   */
  private assertSettled(action: StagedAction | CanaryAction): void {
    const busy = this.plan.nodes.filter((n) => this.readiness.hasInHands(n.id)).map((n) => n.id);
    if (busy.length > 0) {
      throw new BackfillError('not_ready', `partitions of ${busy.join(', ')} are still being computed: wait until status says ${this.staged ? 'staged' : 'awaiting_canary'}, then ${action}`);
    }
  }

  private stagedGate(action: StagedAction): StagedGate {
    if (!this.staged && this.canary) {
      throw new BackfillError('not_staged', `this is a canary backfill: backfill approve <id> --reason ... publishes its slice and lets the rest run, backfill discard <id> drops it (there is nothing to ${action} on its own)`);
    }
    if (!this.staged) throw new BackfillError('not_staged', `this backfill was not started with --stage: its partitions are published as they finish, there is nothing to ${action}`);
    return this.staged;
  }

  /**
   * A staged backfill whose versions were published or discarded, or a canary that was discarded,
   * has nothing left to compute: what it computed now would be written as staged versions that
   * no decision publishes or drops, and it would end `completed` (or `discarded`) with them left
   * over. So a carry whose decision ended the backfill while partitions still wait or are in
   * hands (a canary's: in its slice) contradicts itself. A legitimate carry never does: a
   * resumed run whose failures run again computes again (`resumedStaged`), and no run continues
   * as new after its decision.
   */
  private decisionProblem(): string | null {
    const decided = this.staged?.current === 'published' || this.staged?.current === 'discarded' ? `the staged versions were ${this.staged.current}` : this.canary?.current === 'discarded' ? 'the canary was discarded' : null;
    if (decided === null) return null;
    const slice = this.staged ? null : this.canary!.scope;
    for (const node of this.plan.nodes) {
      const counts = this.readiness.counts(node.id);
      const waiting = slice
        ? slice.get(node.id)!.minus(this.readiness.done(node.id)).deleteAll(this.readiness.failed(node.id)).deleteAll(this.readiness.blocked(node.id)).size
        : counts.waiting + counts.inHands;
      if (waiting > 0) {
        return (
          `the carry says ${decided}, but node '${node.id}' has ${waiting} partition${waiting === 1 ? '' : 's'} still to compute: ` +
          `they would be written as staged versions that nothing publishes, and the backfill would end ${decided.includes('published') ? 'completed' : 'discarded'} with them left over. ` +
          `A carry is what a run hands the next: resume a backfill with backfill resume or retry-failed, or compute it again with backfill start <spec> --id <id> --rerun`
        );
      }
    }
    return null;
  }

  /** Refuses a start whose carry contradicts itself (`carriedDecisionProblem`): `invalid_argument`, naming the problem. */
  refuseCarriedDecision(): void {
    if (this.carriedDecisionProblem !== null) throw new BackfillError('invalid_argument', this.carriedDecisionProblem, 'carry');
  }

  // ---- canary ----

  /** Partitions are written as staged versions: a staged backfill, or a canary's slice. */
  get stagesWrites(): boolean {
    return this.staged !== null || this.canary?.limiting === true;
  }

  /** The canary's slice has settled (the node workflows have ended): a failure in it stops the backfill, else it waits. */
  settleCanary(): void {
    const gate = this.canary;
    if (!gate || gate.current !== 'running') return;
    const failed = this.plan.nodes.filter((n) => !this.readiness.failed(n.id).isEmpty);
    if (failed.length === 0) {
      gate.settle(null);
      // Nothing runs until the decision, which may take hours: throughput and the ETA leave the wait out.
      return this.noteHeld(this.held || this.canaryWaiting);
    }
    const count = failed.reduce((sum, n) => sum + this.readiness.failed(n.id).size, 0);
    const first = failed[0]!;
    const message = this.failures[first.id]?.[0]?.message ?? 'failed';
    gate.settle(`${count} partition${count === 1 ? '' : 's'} of the canary failed (first: ${first.id}: ${message.slice(0, 300)}); nothing beyond the canary was written`);
    this.record('discard', { identity: POLICY_IDENTITY }, { canary: true, stopped: gate.view().note ?? '' });
  }

  /** The slice's diff is known: true when `canary.auto` goes on by itself. */
  noteCanaryDiff(diff: CanaryDiff): boolean {
    return this.canary?.noteDiff(diff) ?? false;
  }

  /** Parses a canary approve or discard (the update's validator); the policy judges it as a publish or a discard. */
  parseCanaryDecision(action: CanaryAction, value: unknown, auto = false): void {
    if (!this.canary) {
      throw new BackfillError(
        'not_canary',
        action === 'approve'
          ? this.staged
            ? 'this backfill is staged, not a canary: publish what it staged (backfill publish <id>), or discard it; a policy approval is signed (backfill approve <id> --reason ... --sign-key <key>)'
            : 'this backfill has no canary: a policy approval is signed (backfill approve <id> --reason ... --sign-key <key>)'
          : 'this backfill has no canary and is not staged: there is nothing to discard',
      );
    }
    const { reason } = this.canary.parse(action, value, auto);
    this.assertSettled(action);
    this.governance?.check({ action: action === 'approve' ? 'publish' : 'discard', ...(reason !== null ? { reason } : {}) }, this.specView());
  }

  /** Takes a canary decision (the update's handler, or `auto`): parsed again; the audit trail records who and why. */
  beginCanaryDecision(action: CanaryAction, value: unknown, at: number, auto = false): CanaryDecision {
    this.parseCanaryDecision(action, value, auto);
    const decision = this.canary!.begin(action, value, at, auto);
    this.record(action === 'approve' ? 'publish' : 'discard', { identity: decision.by, ...(decision.reason !== null ? { reason: decision.reason } : {}) }, { canary: true, auto });
    return decision;
  }

  /**
   * The canary's slice is published: the backfill runs on as usual. Everything whose upstream is
   * done is released; the node workflows (which ended with the slice) are started again.
   */
  liftCanary(): void {
    if (this.canary?.current !== 'approved') throw new Error(`the canary is ${this.canary?.current ?? 'absent'}, not approved`);
    this.closing = false;
    for (const out of this.outbox.values()) out.finish = false;
    this.release(this.readiness.lift());
    this.settingsStale = true;
    this.noteHeld(this.held || this.canaryWaiting);
  }

  /** A canary waits for its decision (or one is under way): its node workflows have ended, so nothing runs. Queries and the carry only. */
  private get canaryWaiting(): boolean {
    return this.canary?.waiting === true;
  }
}

/**
 * The carry that resumes an ended backfill in a new run (`resume`, `retry-failed` after it
 * ended): what is done stays done, the failures of `node` (or of every node) run again, and
 * every partition that was released but not finished is released again to the new run's node
 * workflows (see `resumedReadiness`). The operator's limits and the run key stay; what
 * described the ended run's node workflows (outbox, settings, restarts, running) goes. The
 * carried spec goes too: the new run takes it as its input's (`resumedSpec`). A staged
 * backfill's gate goes back to computing when the new run writes anything (`resumedStaged`).
 */
export function resumeCarry(carry: BackfillCarry, node?: string): BackfillCarry {
  // An announcement was of the ended run's cancel: the new run's is announced again.
  const { spec: _inTheInput, announcedCancel: _ofTheEndedRun, ...kept } = carry;
  // What the ended runs did, for the headline throughput over every run (the new run's reports alone are its own).
  const before = paceSoFar(carry.reports, carry.held, carry.before);
  return {
    ...kept,
    ...(before ? { before } : {}),
    ...(carry.staged ? { staged: resumedStaged(carry.staged, resumeRunsAgain(carry.readiness, node)) } : {}),
    readiness: resumedReadiness(carry.readiness, node),
    childrenRunning: false,
    paused: false,
    failures: node === undefined ? {} : { ...carry.failures, [node]: [] },
    reports: Object.fromEntries(Object.entries(carry.reports).map(([id, stats]) => [id, { ...stats, running: 0 }])),
    outbox: {},
    settings: {},
    restarts: {},
    // The new run's node workflows count their spending afresh.
    spentTotals: {},
    // What the ended run had in hands may have been published by a node workflow it lost.
    recheck: Object.fromEntries(
      Object.entries(carry.readiness)
        .map(([id, state]) => [id, RangeSet.fromJSON(state.inHands).addAll(RangeSet.fromJSON(carry.recheck?.[id])).deleteAll(RangeSet.fromJSON(state.done)).toJSON()])
        .filter(([, ranges]) => ranges !== ''),
    ),
  };
}

/**
 * The spec a new run of an ended backfill goes on with (unless the operator gives another): the
 * one its last run ran with, which a `resume --spec` may have sent it while it ran (carried in
 * its end state), else that run's input's. The new run's policy judges it like any start's.
 */
export function resumedSpec(carry: BackfillCarry, input: ResolvedSpec): ResolvedSpec {
  if (carry.spec === undefined) return input;
  // Written by the ended run (or a worker of another build that answered its carry query), or by hand: read as a `resume --spec` is.
  const read = readResolvedSpec(carry.spec);
  if ('spec' in read) return read.spec;
  throw new BackfillError(
    'invalid_spec',
    `the spec the ended run hands its next run cannot be read (${formatPath(['carry', 'spec', ...read.path])} ${read.message}): a build of backfill other than this one, or a carry made by hand, wrote it. ` +
      `Give the spec to go on with (backfill resume <id> --spec <file>, or retry-failed --spec), or compute it again (backfill start <spec> --id <id> --rerun)`,
    'carry.spec',
  );
}

/** A carried announcement, as anyone may write a start's carry: one that does not parse is none. */
function announcedOf(value: unknown): { meta: ControlMeta; at: number } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { meta, at } = value as Record<string, unknown>;
  if (typeof at !== 'number' || !Number.isFinite(at)) return undefined;
  try {
    return { meta: parseMeta(meta), at };
  } catch {
    return undefined;
  }
}
