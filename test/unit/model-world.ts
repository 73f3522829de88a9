/**
 * A model of a whole backfill for the model-based test (model.test.ts): the real
 * `BackfillCoordinator` (with its `Readiness`) and one real `NodeScheduler` per node workflow,
 * joined by what Temporal does between them: signals in flight that may be delayed, duplicated,
 * or lost with their run; activities that complete, fail, are throttled or outlive the node run
 * that started them; continue-as-new of the parent and of any node (state round-tripped through
 * JSON); node workflows terminated; cancellation; retry-failed and resume of an ended backfill.
 * Every carry the parent could hand on (after each step, as a continue-as-new would, at its end,
 * to a resume) passes the shape check a start with a carry must pass (`carryShapeProblem`).
 * The loops of workflows/backfill.ts and workflows/node.ts are played by the methods below, with
 * the same decisions (they call the same core methods).
 *
 * A backfill may run under a policy (`GovernanceCase`): an approval it must wait for (approvals
 * arrive verified, refused or forged), a retry budget the node reports spend (and set-budget
 * raises), a cost budget (each partition costs 1) whose allowances the node workflows keep to,
 * and a run window the clock crosses. A governed start, like the workflow's, is
 * judged by `Governance.admit`; a resumed one is judged again. Anyone may signal it controls it
 * refuses (model-signals.ts), handled as workflows/backfill.ts handles a control signal, and
 * approvals its signature check refuses: a copy of one refused for good is refused again without
 * a check while the run lasts (the model counts the checks), and checked again by the next run.
 */
import fc from 'fast-check';
import { signedText, type SignatureCheck } from '../../core/approval.ts';
import { isNoSpending, noSpending, type Spending } from '../../core/budget.ts';
import { AUTO_BATCH_MAX } from '../../core/batching.ts';
import { AUDIT_BYTES, AUDIT_KEEP, CANARY_AUTO_IDENTITY, UNKNOWN_IDENTITY, type AuditEntry, type AuditTrailJSON } from '../../core/audit.ts';
import { carryShapeProblem, carrySpecProblem, uncheckedCarryFields } from '../../core/carry-shape.ts';
import { BackfillCoordinator, resumeCarry, type ApprovalOutcome } from '../../core/coordinator.ts';
import { BackfillError } from '../../core/errors.ts';
import { Governance } from '../../core/governance.ts';
import { parsePolicy, type PolicyInput } from '../../core/policy.ts';
import { expandPlan, type Plan } from '../../core/plan.ts';
import { parseNodeControl } from '../../core/node-control.ts';
import type { BackfillCarry, NodeControl, NodeReport, PartitionResult } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { DEFAULT_DEFERRAL_BACKOFF_MS, DEFAULT_MAX_DEFERRALS, NodeScheduler, schedulerOptionsOf, type BatchOutcome, type SchedulerOptions } from '../../core/scheduler.ts';
import { CONTROL_SIGNALS, REFUSED_TEXT } from '../../core/refused-signals.ts';
import { REFUSED_APPROVALS_REMEMBERED } from '../../core/refused-approvals.ts';
import { resolveSpec, type Canary, type ResolvedNode, type ResolvedSpec, type SpecInput } from '../../core/spec.ts';
import { valueText } from '../../core/value-text.ts';
import {
  LONG_REASON,
  MODEL_START,
  PAUSE_REASON_MIN,
  RATE_CAP,
  isRefusedSignalEntry,
  isReserved,
  keptOnSchedule,
  refusedSignalCase,
  refusedSignalsArbitrary,
  sendSignal,
  type CheckedApproval,
  type Checks,
  type RefusedSignalCase,
  type RefusedSignalsAction,
} from './model-signals.ts';

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
  /** Failed attempts and cost since its last report (the node workflow's `spending`, for the parent's budgets). */
  spent: Spending;
  /** The same since the node workflow started (across its continue-as-new): its allowance is measured against it. */
  total: Spending;
  /** Started to write staged versions (a staged backfill, or a canary's slice). */
  stage: boolean;
};
type Activity = { serial: number; node: string; instance: number; batchId: number; tasks: Array<{ index: number; recheck: boolean }>; orphan: boolean; stage: boolean };
type ControlMessage = { node: string; control: NodeControl };
type ReportMessage = { report: NodeReport; duplicate: boolean };
type Ended = { state: 'completed' | 'completed_with_failures' | 'cancelled' | 'failed' | 'discarded' | 'canary_failed'; carry: BackfillCarry };

export type Action =
  | { kind: 'parent' }
  | { kind: 'deliverControl'; pick: number }
  | { kind: 'nodeStep'; node: number }
  | { kind: 'report'; node: number }
  | { kind: 'deliverReport'; pick: number; duplicate: boolean }
  | { kind: 'activity'; pick: number; outcome: 'complete' | 'fail' | 'throttle' | 'partial' | 'defer' }
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
  | { kind: 'resume'; node: number | null }
  /** A staged backfill's publish or discard arrives (an update: `junk` sends an argument that must be refused). */
  | { kind: 'decide'; action: 'publish' | 'discard'; junk: boolean }
  /** The warehouse's publish or discard under way lands: done, or refused (another run leases a dataset). */
  | { kind: 'decisionLands'; ok: boolean }
  | { kind: 'approve'; verdict: 'valid' | 'self' | 'refused' | 'stale' }
  | { kind: 'setBudget'; value: unknown }
  /** Control signals the backfill refuses, sent by anyone (model-signals.ts), perhaps a valid one among them. */
  | RefusedSignalsAction;

/**
 * The policy a governed model backfill runs under (null: none, as before governance); `rules`: a
 * cap on the backfill's rate and a reason a pause must give (what a refused signal may break).
 */
export type GovernanceCase = { approval: boolean; retries: number | null; window: boolean; cost?: number | null; rules?: boolean } | null;

/** Any ed25519 key will do: the model's approvals arrive as the signature check's verdict. */
const key = (c: string) => `AAAAC3NzaC1lZDI1NTE5AAAAI${c.repeat(43)}`;
/** The window: 00:17 to 00:19 UTC every day; the model's clock starts at 00:16:40 on its first day. */
const WINDOW = { timeZone: 'UTC', allow: [{ days: 'daily' as const, from: '00:17', to: '00:19' }], grace: '10s' };

function policyOf(governance: NonNullable<GovernanceCase>): PolicyInput {
  return {
    version: 1,
    ...(governance.approval ? { approval: { datasets: ['*'], allowedSigners: [`starter ssh-ed25519 ${key('C')}`, `approver ssh-ed25519 ${key('D')}`] } } : {}),
    ...(governance.retries !== null || governance.cost
      ? {
          budgets: {
            ...(governance.retries !== null ? { retries: { limit: governance.retries, max: 1000 } } : {}),
            ...(governance.cost ? { cost: { metric: 'reported' as const, unit: 'partitions', limit: governance.cost, max: COST_MAX } } : {}),
          },
        }
      : {}),
    ...(governance.window ? { windows: WINDOW } : {}),
    ...(governance.rules ? { caps: { backfill: { rate: RATE_CAP } }, reasons: { required: ['pause' as const], minLength: PAUSE_REASON_MIN } } : {}),
  };
}

/** The most a model backfill's cost budget may be raised to (the drain raises it there). */
const COST_MAX = 100_000;

export class Violation extends Error {}

/** How a refused signal was refused. */
type Refusal = { code: string; message: string };

/** What the model expects of a signalled approval (World.expectApproval). */
type ExpectedApproval = { code: string; checked: boolean; signer: string | null; repeated: boolean };

/** A signalled approval's refusal by its check's answer, or null when it was accepted (or was none). */
function refusedApproval(outcome: unknown): Refusal | null {
  const o = outcome as ApprovalOutcome | undefined;
  return o !== undefined && o !== null && typeof o === 'object' && 'accepted' in o && !o.accepted ? { code: o.code, message: o.message } : null;
}

function fail(message: string): never {
  throw new Violation(message);
}

const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** The BackfillError `run` throws to refuse, or null when it applied; anything else is a bug. */
function refusal(run: () => unknown): BackfillError | null {
  try {
    run();
    return null;
  } catch (error) {
    if (error instanceof BackfillError) return error;
    throw error;
  }
}

/** Where two JSON texts part, with a little of each. */
function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `at ${i}: ${a.slice(Math.max(0, i - 80), i + 80)} became ${b.slice(Math.max(0, i - 80), i + 80)}`;
}

/**
 * A carry the backfill hands on (at continue-as-new, at its end, to a resume), as its next run
 * reads it: through JSON, and passing the shape check a start with a carry must pass
 * (`carryShapeProblem`), every field of it known to that check or to a reader of its own.
 */
function handedOn(carry: BackfillCarry, text = JSON.stringify(carry)): BackfillCarry {
  const read = JSON.parse(text) as BackfillCarry;
  const unchecked = uncheckedCarryFields(read);
  if (unchecked.length > 0) fail(`the carry has fields no one checks (${unchecked.join(', ')}): add them to carryShapeProblem (core/carry-shape.ts)`);
  const problem = carryShapeProblem(read) ?? (read.spec !== undefined ? carrySpecProblem(read.spec) : null);
  if (problem !== null) fail(`a carry the backfill made fails the shape check: ${problem}`);
  return read;
}

/** What a parent run hands on besides the coordinator's state (workflows/backfill.ts `carryOf`; the model runs under one run key). */
const runFields = (childrenRunning: boolean) => ({ runKey: 'run', childrenRunning, startedAt: 0, runs: 1 });

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
  private now = MODEL_START;
  /** When the parent last heard from each node (its prober probes one silent for a while). */
  private readonly heardFrom = new Map<string, number>();
  private instances = 0;
  private serials = 0;
  /** The last carry `check` found the next run could read (as JSON). */
  private carryChecked = '';
  /** Cost budgets: what partitions cost in all (what node runs counted), what was lost with their runs, the highest cap, the most in flight per node. */
  private chargedCost = 0;
  private lostCost = 0;
  private maxCostLimit = 0;
  private readonly maxInFlight = new Map<string, number>();
  /** What readers see of the run key's versions: all it published, or (staged) nothing until its publish commits. */
  private readonly visible = new Set<string>();
  /** A staged backfill's publish or discard, or a canary's approve or discard, under way (the activity in its update handler). */
  private deciding: 'publish' | 'discard' | 'approve' | null = null;
  /** After a canary's approval: the node workflows to start again once the ones that ran the slice have closed. */
  private startAgain = new Set<string>();

  /** Whether an approval was accepted in the current run of the parent (a resumed run needs one again). */
  private approvedThisRun = false;
  /** Audit entries written to the history so far: their seq only goes up. */
  private lastSeq = 0;
  /** Refused signals sent to governed runs of the backfill (all its runs), and the entries the history has of them. */
  private refusedSent = 0;
  private refusedWritten = 0;
  /** The audit trail the state kept at the last look: each entry's seq, and whether it is a refused signal's. */
  private trailSeen = new Map<number, boolean>();
  /** Signature checks the signalled approvals ran, and the copies this parent run must refuse again without one (oldest first), by the code refused. */
  private readonly checks: Checks = { run: 0 };
  private refusedForGood = new Map<number, string>();

  constructor(
    spec: ResolvedSpec,
    private readonly governance: GovernanceCase = null,
    private readonly staged = false,
    private readonly canary: Canary | null = null,
  ) {
    this.spec = spec;
    this.plan = expandPlan(spec);
    this.maxCostLimit = governance?.cost ?? 0;
    this.parent = this.coordinator({ rate: spec.rate, concurrency: spec.concurrency });
    this.startNodes();
  }

  /**
   * A parent run as the workflow makes one: a new start or a resume is judged by the policy
   * (what the ended run spent and its audit trail go on); a continue-as-new carries its judgement.
   */
  private coordinator(limits: { rate: number | null; concurrency: number | null }, carry?: BackfillCarry, continued = false): BackfillCoordinator {
    // A new run (continued as new too) checks again what the last one refused for good.
    this.refusedForGood = new Map();
    const parent = new BackfillCoordinator(this.plan, limits, carry, { now: () => this.now, stage: this.staged, allowances: true, quietFinalBudget: true, windowHandovers: true, canaryCountsAfresh: true, canary: this.canary });
    // Every carry the backfill makes itself (continue-as-new, resume) is consistent: only a hand-made one is refused.
    if (parent.carriedDecisionProblem !== null) fail(`a carry the backfill made was refused: ${parent.carriedDecisionProblem}`);
    if (!this.governance) return parent;
    if (continued) {
      if (!carry?.governance) fail('a governed run continued as new without its governance');
      parent.govern(Governance.fromJSON(carry.governance));
      return parent;
    }
    const carried = carry?.governance;
    const admission = Governance.admit({
      backfillId: 'model',
      policy: parsePolicy(policyOf(this.governance)),
      policyHash: 'sha256:model',
      policyPath: 'model.policy.yaml',
      spec: this.spec,
      partitions: this.plan.totalPartitions,
      limits: parent.controlState(),
      overrides: {},
      planHash: 'sha256:plan',
      request: { identity: 'starter' },
      startSignature: null,
      priority: { key: null, fairnessKey: null, fairnessWeight: null },
      now: this.now,
      ...(carried
        ? { spent: { retries: carried.budgets.retries.used, cost: carried.budgets.cost?.used ?? null, costMetric: carried.budgets.cost?.metric ?? null }, audit: carried.audit }
        : {}),
    });
    if (!admission.admitted) fail(`the model's start was refused: ${admission.message}`);
    parent.govern(admission.governance, { limits: admission.limits, nodeRates: admission.nodeRates });
    parent.recordStart({ identity: 'starter' }, { resumed: carry !== undefined });
    this.approvedThisRun = false;
    return parent;
  }

  /** What the `verifySignature` activity would answer, and when the approval was signed. */
  private signature(verdict: 'valid' | 'self' | 'refused' | 'stale'): SignatureCheck {
    if (verdict === 'refused') return { ok: false, code: 'unknown_signer', message: 'not among the allowed signers' };
    const signedAt = new Date(verdict === 'stale' ? this.now - 2 * 3_600_000 : this.now).toISOString();
    const principal = verdict === 'self' ? 'starter' : 'approver';
    return { ok: true, verified: { subject: { action: 'approve', backfillId: 'model', namespace: 'default', planHash: 'sha256:plan', reason: 'looked at it', signedAt }, principals: [principal], fingerprint: `SHA256:${principal}` } };
  }

  /**
   * The workflow writes the audit entries to its history as they come: in order, never twice.
   * `finished`: right after the report that finished every partition, which records no budget
   * pause (nothing is left to pause).
   */
  private writeAudit(finished = false): AuditEntry[] {
    const written = this.parent?.takeAudit() ?? [];
    for (const entry of written) {
      if (entry.seq <= this.lastSeq) fail(`audit entry ${entry.seq} after ${this.lastSeq}`);
      if (finished && entry.action === 'budget-pause') fail(`a budget pause recorded by the report that finished every partition: ${String(entry.details.why)}`);
      this.lastSeq = entry.seq;
      if (isRefusedSignalEntry(entry)) this.refusedWritten++;
    }
    return written;
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
    this.nodes.set(id, { id, instance: ++this.instances, scheduler, spec, finishing: false, reportInFlight: false, cancelled: false, spent: noSpending(), total: noSpending(), stage: parent.stagesWrites });
  }

  private options(spec: ResolvedNode): SchedulerOptions {
    return {
      ...schedulerOptionsOf(spec, true),
      zeroHolds: true,
      evenShares: true,
      climbWhenBinding: true,
      unaccounted: { maxAttempts: spec.retry.maxAttempts, taskQueue: spec.taskQueue },
      deferrals: { max: DEFAULT_MAX_DEFERRALS, backoffMs: DEFAULT_DEFERRAL_BACKOFF_MS, taskQueue: spec.taskQueue },
    };
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
    // The window timer has fired by now (the workflow sleeps until the next change).
    parent.applyWindows();
    parent.refreshSettings();
    this.writeAudit();
    if (this.finishing) {
      this.flush();
      if (this.sending.size > 0 || this.flushable()) return;
      // A staged backfill waits for its decision once its node workflows have ended.
      if (parent.staged && !parent.staged.decided) return parent.staged.settle();
      if (this.canaryStep(parent)) return;
      this.end(parent.endState as Ended['state']);
      return;
    }
    if (this.startAgain.size > 0) {
      // The slice's node workflows close first (a start with their id fails until then), and nothing is sent meanwhile.
      for (const id of [...this.startAgain]) {
        if (this.nodes.has(id)) continue;
        const again = parent.startAgain(id);
        this.startNode(id, again.ready, new RangeSet());
        this.startAgain.delete(id);
      }
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
      this.parent = this.coordinator({ rate: null, concurrency: null }, handedOn({ ...parent.toCarry(), ...runFields(true) }), true);
      this.unreachable.clear();
      this.handingOver = false;
    }
  }

  /**
   * The canary once its slice has settled and its node workflows have ended (workflows/backfill.ts):
   * a failure stops the backfill; else the diff is read (auto may approve) and it waits; once
   * approved, the rest is released and the node workflows start again. True: the parent waits.
   */
  private canaryStep(parent: BackfillCoordinator): boolean {
    const gate = parent.canary;
    if (!gate) return false;
    if (gate.current === 'running') {
      parent.settleCanary();
      if ((gate.current as string) === 'failed') return false;
      // The warehouse's diff of the slice: some rows change (0 to 6 of 100, around auto's 5%).
      const moved = this.published.size % 7;
      const diff = { partitions: this.published.size, rowsBefore: 100, rowsAfter: 100, added: moved, removed: 0, changed: 0 };
      if (parent.noteCanaryDiff({ ...diff, nodes: [{ node: this.plan.nodes[0]!.id, ...diff }] })) {
        if (moved > 5) fail(`canary.auto went on with ${moved}% of the rows changed`);
        parent.beginCanaryDecision('approve', { by: CANARY_AUTO_IDENTITY, reason: 'within bounds' }, this.now, true);
        this.deciding = 'approve';
      }
      return true;
    }
    if (gate.waiting) return true;
    if (!parent.canaryToLift) return false;
    parent.liftCanary();
    this.finishing = false;
    for (const node of this.plan.nodes) this.startAgain.add(node.id);
    return true;
  }

  private end(state: Ended['state']): void {
    this.ended = { state, carry: handedOn({ ...this.parent!.toCarry(), ...runFields(false) }) };
    this.parent = null;
    this.controls = [];
    this.sending.clear();
    this.unreachable.clear();
    this.handingOver = false;
    this.finishing = false;
    this.startAgain.clear();
  }

  /** Cancelled, or failed for good: node workflows are cancelled, their running partitions land or stop, and their last reports arrive. */
  private abort(state: 'cancelled' | 'failed', publishRunning: boolean): void {
    // A publish or discard under way is cancelled with the workflow: its transaction committed or it did not.
    if (this.deciding) this.landDecision(publishRunning);
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
    // What the node workflow checks on arrival and then applies (core/node-control.ts): every order of the parent passes.
    const parsed = parseNodeControl(control, run.spec, this.plan.byId.get(node)!.partitions.size);
    if (parsed.ready) run.scheduler.release(RangeSet.fromJSON(parsed.ready));
    if (parsed.settings) run.scheduler.configure(parsed.settings, this.now);
    if (parsed.node) {
      run.spec = parsed.node;
      run.scheduler.reconfigure(this.options(parsed.node));
    }
    if (parsed.finish) run.finishing = true;
  }

  private report(run: NodeRun, final?: 'cancelled'): void {
    if (!final && !run.scheduler.hasNews) return;
    const spent = isNoSpending(run.spent) ? {} : { spent: run.spent, total: run.total };
    run.spent = noSpending();
    this.reports.push({ report: json({ node: run.id, ...run.scheduler.takeReport(), ...(final ? { final } : {}), ...spent }), duplicate: false });
    if (!final) run.reportInFlight = true;
  }

  private deliverReport(pick: number, duplicate: boolean): void {
    if (this.reports.length === 0 || !this.parent) return;
    const index = pick % this.reports.length;
    const message = this.reports[index]!;
    // A duplicate stays in flight (and is never counted as holding anything).
    if (duplicate) this.reports.push({ report: json(message.report), duplicate: true });
    this.reports.splice(index, 1);
    // What earlier steps recorded is written first, so that what follows is this report's.
    this.writeAudit();
    this.parent.onReport(message.report);
    if (this.parent.settled && !this.parent.anyFailed) this.writeAudit(true);
    this.heardFrom.set(message.report.node, this.now);
    const run = this.nodes.get(message.report.node);
    if (run && !message.duplicate) run.reportInFlight = false;
  }

  // ---- node workflows (workflows/node.ts) ----

  private nodeStep(id: string): void {
    const run = this.nodes.get(id);
    if (!run) return;
    run.scheduler.advance(this.now);
    // A cost allowance spent: nothing starts until the parent grants more (workflows/node.ts, budgetAllows).
    const allowance = run.scheduler.toState().settings.allowance;
    const allowed = allowance === undefined || run.total[allowance.metric] < allowance.until;
    if (!run.finishing && allowed) {
      const startable = run.scheduler.startable();
      // Under a policy that wants an approval, nothing starts in a run that has not had one.
      if (startable.length > 0 && this.governance?.approval && !this.approvedThisRun) fail(`${id} started partitions before the backfill was approved`);
      for (const batch of startable) {
        const most = run.spec.batchSize === 'auto' ? AUTO_BATCH_MAX : run.spec.batchSize;
        if (batch.indices.length > most) fail(`${id} started a batch of ${batch.indices.length} (batch size ${run.spec.batchSize})`);
        const tasks = batch.indices.map((index, i) => ({ index, recheck: batch.recheck[i]! }));
        this.activities.push({ serial: ++this.serials, node: id, instance: run.instance, batchId: batch.id, tasks, orphan: false, stage: run.stage });
      }
      const running = this.activities.filter((a) => a.node === id && !a.orphan).reduce((sum, a) => sum + a.tasks.length, 0);
      this.maxInFlight.set(id, Math.max(this.maxInFlight.get(id) ?? 0, running));
    } else if (run.finishing && run.scheduler.inFlightBatches === 0 && !run.reportInFlight) {
      // Finished: what completed since the last report goes first, then the workflow ends.
      if (run.scheduler.hasResults) {
        const spent = isNoSpending(run.spent) ? {} : { spent: run.spent, total: run.total };
        this.reports.push({ report: json({ node: id, ...run.scheduler.takeReport(), ...spent }), duplicate: false });
      }
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
    // Its report in flight is lost with it, and so is everything it held (what they cost too).
    this.lostCost += run.spent.reported;
    if (run.reportInFlight) {
      const index = this.reports.findIndex((m) => m.report.node === id && !m.duplicate);
      if (index >= 0) this.lostCost += this.reports[index]!.report.spent?.reported ?? 0;
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
    run.spent = json(run.spent);
    run.total = json(run.total);
  }

  // ---- activities (activities/run-partitions.ts and the warehouse's publish) ----

  private settleActivity(activity: Activity, outcome: 'complete' | 'fail' | 'throttle' | 'partial' | 'defer' | 'cancel'): void {
    this.activities = this.activities.filter((a) => a !== activity);
    const finished: PartitionResult[] = [];
    const runTask = (task: { index: number; recheck: boolean }) => {
      const key = `${activity.node}/${task.index}`;
      if (!(task.recheck && this.published.has(key))) {
        // The warehouse publishes once per run key; a second publish is allowed only to an
        // activity that raced an orphaned one (the warehouse then finds it published).
        if (this.published.has(key) && !this.orphaned.has(key)) fail(`${key} published twice within the run key`);
        this.published.add(key);
        // Readers see a staged backfill's versions through its publish only, never one by one.
        if (!activity.stage && this.staged) fail(`${key} of a staged backfill was published by its own activity`);
        if (!activity.stage) this.visible.add(key);
      }
      // Durations and reported latencies vary, so that automatic batches and latency pacing act.
      const ms = (activity.serial * 37 + task.index * 11) % 1500;
      finished.push({ index: task.index, key, version: 1, rowCount: 0, checksum: '', startedAt: this.now - ms, finishedAt: this.now, cost: 1, ...(activity.serial % 3 === 0 ? { latencyMs: ms * 2 } : {}) });
    };
    let result: BatchOutcome;
    const [first, ...rest] = activity.tasks;
    if (outcome === 'cancel') result = { kind: 'cancelled' };
    else if (outcome === 'complete') {
      for (const task of activity.tasks) runTask(task);
      result = { kind: 'completed', finished };
    } else if (outcome === 'throttle') result = { kind: 'completed', finished: [], throttled: { index: first!.index, message: 'slow down' } };
    else if (outcome === 'fail') result = { kind: 'failed', finished: [], failedIndex: first!.index, message: 'boom', type: 'NonRetryable' };
    // A worker that stops (or one of another build) defers the whole batch: no attempt, and the node backs off after the second time.
    else if (outcome === 'defer') result = { kind: 'completed', finished: [], deferred: activity.tasks.length };
    else {
      runTask(first!);
      result = rest.length > 0 ? { kind: 'failed', finished, failedIndex: rest[0]!.index, message: 'half', type: 'Error' } : { kind: 'completed', finished };
    }
    const run = this.nodes.get(activity.node);
    if (!activity.orphan && run && run.instance === activity.instance) {
      if (result.kind === 'failed') run.spent.failedAttempts += 1;
      const landed = result.kind === 'cancelled' ? 0 : result.finished.length;
      run.spent.reported += landed;
      run.total.reported += landed;
      this.chargedCost += landed;
      run.spent.failedAttempts += run.scheduler.settle(activity.batchId, result);
    }
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
        target.batchSize = variant % 4 === 3 ? 'auto' : 1 + (variant % 3);
        target.pace = variant % 2 === 0 ? { latencyTarget: '300ms' } : {};
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
    if (!ended || ended.state === 'completed' || ended.state === 'discarded') return;
    // A canary that stopped on a failure runs its slice again (its failures retried).
    // Every node workflow of the ended run is closed first (the client waits for that).
    for (const run of [...this.nodes.values()]) this.terminate(run.id);
    this.reports = [];
    const carry = handedOn(resumeCarry(ended.carry, node ?? undefined));
    this.parent = this.coordinator({ rate: this.spec.rate, concurrency: this.spec.concurrency }, carry);
    this.ended = null;
    this.startNodes();
  }

  private decide(action: 'publish' | 'discard', junk: boolean): void {
    const parent = this.parent;
    if (!parent) return;
    if (parent.canary) return this.decideCanary(action === 'publish' ? 'approve' : 'discard', junk);
    const before = parent.staged?.current;
    this.control(() => {
      parent.parseStagedDecision(action, junk ? { by: 7 } : { by: 'op' });
      parent.beginStagedDecision(action, junk ? { by: 7 } : { by: 'op', reason: 'model' }, this.now);
      if (junk) fail(`a ${action} with junk was taken`);
      if (before !== 'awaiting') fail(`a ${action} was taken in phase ${String(before)}`);
      this.noneInHands(parent, action);
      this.deciding = action;
    });
  }

  /** A canary's approve or discard arrives (`publish` plays approve); only while it waits for one. */
  private decideCanary(action: 'approve' | 'discard', junk: boolean): void {
    const parent = this.parent!;
    const before = parent.canary!.current;
    if (junk) {
      // A publish of a canary is refused (approve is its word), as are an approval without a reason and an unknown field.
      const refused = (attempt: () => unknown, what: string) => {
        try {
          attempt();
        } catch (error) {
          if (error instanceof BackfillError) return;
          throw error;
        }
        fail(`${what} was taken`);
      };
      refused(() => parent.parseStagedDecision('publish', { by: 'op' }), 'a publish of a canary');
      refused(() => parent.beginCanaryDecision('approve', { by: 'op' }, this.now), 'a canary approval without a reason');
      refused(() => parent.beginCanaryDecision(action, { by: 'op', reason: 'x', extra: 1 }, this.now), 'a canary decision with an unknown field');
      if (parent.canary!.current !== before) fail(`a refused canary ${action} moved the canary from ${before} to ${parent.canary!.current}`);
      return;
    }
    this.control(() => {
      parent.parseCanaryDecision(action, { by: 'op', reason: 'model' });
      parent.beginCanaryDecision(action, { by: 'op', reason: 'model' }, this.now);
      if (before !== 'awaiting') fail(`a canary ${action} was taken in phase ${before}`);
      this.noneInHands(parent, action);
      this.deciding = action;
    });
  }

  /** A decision covers every staged version: one taken with partitions in hands leaves theirs out. */
  private noneInHands(parent: BackfillCoordinator, action: string): void {
    const busy = this.plan.nodes.filter((n) => parent.hasInHands(n.id));
    if (busy.length > 0) fail(`a ${action} was taken while ${busy[0]!.id} has partitions in hands`);
  }

  /** The warehouse's transaction commits (`ok`) or is refused; the gate hears of it unless the run is gone. */
  private landDecision(ok: boolean): void {
    const action = this.deciding;
    if (!action) return;
    this.deciding = null;
    if (ok && (action === 'publish' || action === 'approve')) for (const key of this.published) this.visible.add(key);
    // A discard drops the run key's staged versions; what an earlier publish of it published stays.
    if (ok && action === 'discard') for (const key of [...this.published]) if (!this.visible.has(key)) this.published.delete(key);
    if (action === 'approve' || (action === 'discard' && this.parent?.canary)) this.parent?.canary?.end(ok);
    else this.parent?.staged?.end(ok);
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
        // A pause gives the reason the policy's `rules` want.
        if (parent) parent.setPaused(action.paused, { identity: 'operator', reason: 'model pause' });
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
      case 'decide':
        return this.decide(action.action, action.junk);
      case 'decisionLands':
        return this.landDecision(action.ok);
      case 'approve': {
        if (!parent) return;
        // As the update's validator and the signal do first: a backfill that waits for none refuses it here.
        const check = this.signature(action.verdict);
        const text = signedText(check.ok ? check.verified.subject : { action: 'approve', backfillId: 'model', namespace: 'default', planHash: 'sha256:plan', reason: 'looked at it', signedAt: new Date(this.now).toISOString() });
        try {
          parent.parseApproval({ text, signature: 'checked by the activity' }, { identity: 'approver' });
        } catch (error) {
          if (!(error instanceof BackfillError)) throw error;
          if (parent.isAwaitingApproval) fail(`an approval was refused before its check while the backfill waits for one: ${error.message}`);
          return;
        }
        return this.approve(parent, action.verdict, parent.isAwaitingApproval);
      }
      case 'setBudget':
        if (parent) this.control(() => parent.setBudget({ budget: 'retries', limit: action.value }, { identity: 'operator', reason: 'model' }));
        if (parent && this.governance?.cost) {
          this.control(() => parent.setBudget({ budget: 'cost', limit: action.value }, { identity: 'operator', reason: 'model' }));
          if (typeof action.value === 'number' && action.value > 0) this.maxCostLimit = Math.max(this.maxCostLimit, action.value);
        }
        return;
      case 'refusedSignals':
        return this.refusedSignals(action);
    }
  }

  // ---- refused control signals (workflows/backfill.ts `ignoringInvalid`, core/refused-signals.ts) ----

  /** What a refused signal must leave as it was: everything the run carries but its audit trail, and its limits and holds. */
  private untouched(parent: BackfillCoordinator): string {
    const carry = parent.toCarry();
    const governance = carry.governance ? { ...carry.governance, audit: null } : null;
    return JSON.stringify({ ...carry, governance, control: parent.controlState(), refresh: parent.needsRefresh });
  }

  /**
   * A burst of control signals the backfill refuses, each handled as the workflow's handler does
   * (applied, refused with a BackfillError, recorded if governed, written to the history), and
   * a valid control among them (perhaps). None changes anything but the audit trail; each is
   * counted, and recorded on the schedule of core/refused-signals.ts exactly.
   */
  private refusedSignals(action: RefusedSignalsAction): void {
    const parent = this.parent;
    if (!parent) return;
    // The handlers of earlier messages have written theirs.
    this.writeAudit();
    const governance = this.governance;
    let before = this.untouched(parent);
    for (let n = 0; n <= action.count; n++) {
      if (n === action.valid) {
        const after = this.untouched(parent);
        if (after !== before) fail(`refused signals changed the backfill: ${firstDifference(before, after)}`);
        this.validAfterRefused(parent, action);
        if (parent.governed) this.checkTrailKept(parent.governed.audit.recent());
        before = this.untouched(parent);
      }
      if (n === action.count) break;
      const context = {
        governed: parent.governed !== null,
        rules: governance?.rules === true,
        budgets: { retries: typeof governance?.retries === 'number', cost: Boolean(governance?.cost) },
        awaitingApproval: parent.isAwaitingApproval,
      };
      const refused = refusedSignalCase(action.seed, n, context);
      const expected = refused.approval ? this.expectApproval(refused.approval, context.awaitingApproval) : null;
      const checksBefore = this.checks.run;
      let outcome: unknown;
      const error = refusal(() => (outcome = sendSignal(parent, refused.signal, refused.args, refused.approval ? { check: refused.approval.check, checks: this.checks } : undefined)));
      // Refused as it parsed (a BackfillError, which the handler records), or by its check's answer (recorded by the coordinator).
      const refusedAs = error ?? refusedApproval(outcome);
      if (!refusedAs) return fail(`a ${refused.signal} signal with ${refused.what} (${valueText(refused.args)}) was applied`);
      if (!refused.codes.includes(refusedAs.code)) fail(`a ${refused.signal} signal with ${refused.what} was refused as ${refusedAs.code}: ${refusedAs.message}`);
      if (parent.governed) {
        if (error) parent.refuseSignal({ signal: refused.signal, args: refused.args, code: error.code, message: error.message });
        this.refusedSent++;
      }
      if (refused.approval && expected) this.checkApproval(refused.approval, expected, this.checks.run - checksBefore, refusedAs);
      this.checkRefusedEntry(this.writeAudit(), refused, refusedAs, parent.governed !== null, expected);
      // Each signal is a step of its own: what it made the trail drop is judged on its own.
      if (parent.governed) this.checkTrailKept(parent.governed.audit.recent());
    }
    const after = this.untouched(parent);
    if (after !== before) fail(`refused signals changed the backfill: ${firstDifference(before, after)}`);
  }

  /**
   * What a signalled approval must come to (core/refused-approvals.ts): refused as it parses when
   * the backfill waits for none; a copy of one this parent run refused for good, refused again with
   * its code and no check; else checked, refused as its check's answer says, and remembered if that
   * lasts (the newest REFUSED_APPROVALS_REMEMBERED). `signer`: who its entry names (a verified
   * signature's first refusal), else its sender's declared identity. The model's plan never changes.
   */
  private expectApproval(approval: CheckedApproval, awaiting: boolean): ExpectedApproval {
    if (!awaiting) return { code: 'approval_refused', checked: false, signer: null, repeated: false };
    const code = this.refusedForGood.get(approval.copy);
    if (code !== undefined) return { code, checked: false, signer: null, repeated: true };
    if (approval.lasting) {
      this.refusedForGood.set(approval.copy, approval.code);
      if (this.refusedForGood.size > REFUSED_APPROVALS_REMEMBERED) this.refusedForGood.delete(this.refusedForGood.keys().next().value!);
    }
    return { code: approval.code, checked: true, signer: approval.signer, repeated: false };
  }

  /** A signalled approval ran the checks it should have, and was refused with the code expected. */
  private checkApproval(approval: CheckedApproval, expected: ExpectedApproval, checksRun: number, refusedAs: Refusal): void {
    const what = `copy ${approval.copy} of an approval whose check answers ${approval.code}`;
    if (checksRun !== (expected.checked ? 1 : 0)) {
      fail(`${what} ran ${checksRun} signature checks, not ${expected.checked ? 1 : 0} (${expected.repeated ? 'refused for good in this run already' : 'not refused for good in this run'})`);
    }
    if (refusedAs.code !== expected.code) fail(`${what} was refused as ${refusedAs.code}, not ${expected.code}: ${refusedAs.message}`);
  }

  /** The entries a refused signal wrote: its own if the schedule keeps it (under a policy), nothing else. */
  private checkRefusedEntry(written: AuditEntry[], refused: RefusedSignalCase, error: Refusal, governed: boolean, approval: ExpectedApproval | null): void {
    const nth = this.refusedSent;
    const expected = governed && keptOnSchedule(nth) ? 1 : 0;
    if (written.length !== expected || written.some((e) => !isRefusedSignalEntry(e))) {
      fail(`refused signal ${nth} (${refused.signal}, governed: ${governed}) wrote ${JSON.stringify(written.map((e) => [e.action, e.outcome, e.details.refusedSignal ?? null]))}, not ${expected} entry of its own`);
    }
    const entry = written[0];
    if (!entry) return;
    const unrecorded = nth - this.refusedWritten;
    const d = entry.details;
    if (d.refusedSignal !== nth) fail(`refused signal ${nth}'s entry says it is number ${String(d.refusedSignal)}`);
    if ((d.unrecorded ?? 0) !== unrecorded || d.unrecorded === 0) fail(`refused signal ${nth}'s entry says ${String(d.unrecorded)} went unrecorded before it, not ${unrecorded}`);
    const signer = approval?.signer ?? null;
    if (entry.action !== CONTROL_SIGNALS[refused.signal].action || d.signal !== refused.signal || d.code !== error.code || entry.verified !== (signer !== null) || (d.repeated === true) !== (approval?.repeated ?? false)) {
      fail(`refused signal ${nth}'s entry reads ${JSON.stringify([entry.action, d.signal, d.code, entry.verified, d.repeated])} for a ${refused.signal} refused as ${error.code}`);
    }
    const identity = signer ?? refused.identity ?? UNKNOWN_IDENTITY;
    if (entry.identity !== identity) fail(`a ${refused.signal} signal with ${refused.what} is recorded from ${JSON.stringify(entry.identity)}, not ${JSON.stringify(identity)}`);
    const long = (text: unknown, most: number) => typeof text === 'string' && text.length > most + 1;
    if (long(entry.reason, REFUSED_TEXT.reason) || long(d.why, REFUSED_TEXT.why) || long(d.sent, REFUSED_TEXT.sent)) fail(`refused signal ${nth}'s entry keeps more than its share: ${valueText(entry, 400)}`);
  }

  /** A valid control after any number of refused ones applies (and is recorded as applied, under a policy). */
  private validAfterRefused(parent: BackfillCoordinator, action: RefusedSignalsAction): void {
    const rate = [2, 5, 50][action.seed % 3]!;
    // Sometimes with the longest reason a control may give, of characters JSON writes in six bytes: one fills half the trail's bytes.
    const meta = { identity: 'ops@example.com', reason: action.seed % 2 === 0 ? 'after the flood' : LONG_REASON };
    const error = refusal(() => sendSignal(parent, 'setRate', [rate, null, meta]));
    if (error) fail(`a valid setRate of ${rate} after ${this.refusedSent} refused signals was refused: ${error.message}`);
    if (parent.controlState().rate !== rate) fail(`a valid setRate of ${rate} after ${this.refusedSent} refused signals left the rate at ${String(parent.controlState().rate)}`);
    const written = this.writeAudit();
    const applied = parent.governed ? [['set-rate', 'applied', meta.identity, rate]] : [];
    if (JSON.stringify(written.map((e) => [e.action, e.outcome, e.identity, e.details.rate])) !== JSON.stringify(applied)) {
      fail(`a valid setRate after refused signals wrote ${JSON.stringify(written.map((e) => [e.action, e.outcome, e.identity]))}`);
    }
  }

  /**
   * The audit trail the state keeps (a run's, or the ended run's carry): it counts every refused
   * signal sent, and the history has an entry for each the schedule keeps.
   */
  private checkTrail(audit: AuditTrailJSON | undefined): void {
    if ((audit?.refusedSignals ?? 0) !== this.refusedSent) fail(`the audit trail counts ${String(audit?.refusedSignals)} refused signals, ${this.refusedSent} were sent`);
    let recorded = 0;
    for (let nth = 1; nth <= this.refusedSent; nth++) if (keptOnSchedule(nth)) recorded++;
    if (this.refusedWritten !== recorded) fail(`the history has ${this.refusedWritten} refused signals' entries, the schedule ${recorded} of ${this.refusedSent}`);
    if (audit) this.checkTrailKept(audit.entries);
  }

  /**
   * The entries the trail keeps stay within its bounds, none shows a refused signal as from a
   * reserved identity, and refused signals' entries go before operators' ones, the newest too: an
   * operator's entry leaves only once none is left. Looked at after each refused signal, so
   * that each is judged by what it alone pushed out.
   */
  private checkTrailKept(entries: readonly AuditEntry[]): void {
    if (entries.length > AUDIT_KEEP) fail(`the audit trail keeps ${entries.length} entries`);
    const bytes = JSON.stringify(entries).length;
    if (bytes > AUDIT_BYTES && entries.length > 1) fail(`the audit trail is ${bytes} bytes of JSON, over its ${AUDIT_BYTES}`);
    for (const entry of entries) if (isRefusedSignalEntry(entry) && isReserved(entry.identity)) fail(`a refused signal is recorded as from ${entry.identity}`);
    const now = new Map(entries.map((e) => [e.seq, isRefusedSignalEntry(e)]));
    const gone = [...this.trailSeen].find(([seq, refused]) => !refused && !now.has(seq));
    const stayed = entries.find(isRefusedSignalEntry);
    if (gone && stayed) fail(`operator's entry ${gone[0]} left the audit trail while refused signal ${String(stayed.details.refusedSignal)}'s (entry ${stayed.seq}) stayed`);
    this.trailSeen = now;
  }

  /** An approval as the workflow handles one: the activity's verdict, then the coordinator's judgement. */
  private approve(parent: BackfillCoordinator, verdict: 'valid' | 'self' | 'refused' | 'stale', waiting: boolean): void {
    if (!parent.governed) return;
    const outcome = parent.approve(this.signature(verdict), 'looked at it', { identity: 'approver' });
    if (outcome.accepted !== (verdict === 'valid' && waiting)) fail(`approval ${verdict} (waiting: ${waiting}) came to ${JSON.stringify(outcome)}`);
    if (outcome.accepted) this.approvedThisRun = true;
    this.writeAudit();
  }

  // ---- invariants ----

  check(): void {
    const parent = this.parent;
    // Readers see nothing of a staged backfill until its publish commits, then all of it at once
    // (settleActivity and landDecision). A resumed run after a publish stages what it runs again.
    if (this.staged && parent?.staged && parent.staged.current !== 'computing' && this.activities.some((a) => !a.orphan)) fail('a partition runs after the backfill was staged');
    this.checkCanary();
    const states = new Map<string, ReturnType<NodeScheduler['toState']>>();
    for (const run of this.nodes.values()) {
      const state = run.scheduler.toState();
      states.set(run.id, state);
      if (JSON.stringify(state).length > CARRY_BUDGET) fail(`node ${run.id}'s carried state is over budget`);
      this.checkSettings(run.id, state.settings);
      // Latency pacing only ever lowers the concurrency, and never to nothing.
      const { concurrency } = run.scheduler.currentStats();
      if (concurrency > state.settings.concurrency || (state.settings.concurrency > 0 && concurrency < 1)) {
        fail(`node ${run.id} runs ${concurrency} at once under a concurrency of ${state.settings.concurrency}`);
      }
    }
    // A cost budget is overspent by what was running when it ran out, at most: each node stops by itself at its allowance.
    if (this.governance?.cost) {
      const bound = this.maxCostLimit + [...this.maxInFlight.values()].reduce((a, b) => a + b, 0);
      if (this.chargedCost - this.lostCost > bound) fail(`partitions cost ${this.chargedCost - this.lostCost} under a cost budget of at most ${this.maxCostLimit} (${bound} with what ran at once)`);
    }
    if (!parent) return this.checkTrail(this.ended?.carry.governance?.audit);
    // Read without refreshing anything: checking must not change what the model does next.
    const carried = { ...parent.toCarry(), ...runFields(true) };
    this.checkTrail(carried.governance?.audit);
    const text = JSON.stringify(carried);
    if (text.length > CARRY_BUDGET) fail(`the parent's carried state is ${text.length} bytes`);
    // What a continue-as-new would hand on now: the next run could read it (looked at again only once it changed).
    if (text !== this.carryChecked) {
      handedOn(carried, text);
      this.carryChecked = text;
    }
    const state = parent.controlState();
    const held = (state.holds ?? []).filter((h) => h.kind !== 'window' || this.governance?.window);
    if (held.length > 0) {
      for (const node of this.plan.nodes) {
        const settings = carried.settings[node.id];
        if (settings && !settings.paused && !parent.needsRefresh) fail(`${node.id}'s settings let partitions start while the backfill is held (${held.map((h) => h.kind).join(', ')})`);
      }
    }
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

  /**
   * A canary: until its approval nothing beyond its slice is released or written, and readers see
   * none of it; once stopped by a failure or discarded, nothing beyond the slice was ever written.
   */
  private checkCanary(): void {
    const gate = this.parent?.canary;
    const slice = (id: string) => gate?.scope.get(id) ?? this.scopeOf(id);
    const limited = gate ? gate.limiting : this.ended !== null && (this.ended.state === 'canary_failed' || (this.ended.state === 'discarded' && this.canary !== null));
    if (!this.canary || !limited) return;
    for (const key of this.published) {
      const [node, index] = key.split('/') as [string, string];
      if (!slice(node).has(Number(index))) fail(`${key} was written beyond the canary's slice (phase ${gate?.current ?? this.ended?.state})`);
    }
    if (gate && this.visible.size > 0 && gate.current !== 'approved') fail(`readers see ${this.visible.size} versions of a canary in phase ${gate.current}`);
    if (gate?.waiting && this.activities.some((a) => !a.orphan)) fail('a partition runs while the canary waits for its decision');
    const parent = this.parent;
    if (!parent || !gate) return;
    if ((gate.waiting || gate.current === 'approved') && gate.lastDecision?.action !== 'discard' && parent.readiness.limited && parent.anyFailed) fail(`the canary is ${gate.current} with a failure in its slice`);
    for (const node of this.plan.nodes) {
      const touched = parent.readiness.done(node.id).clone().addAll(parent.readiness.failed(node.id)).addAll(parent.readiness.inHands(node.id));
      for (const index of touched) if (!slice(node.id).has(index)) fail(`${node.id}/${index} was released beyond the canary's slice`);
    }
  }

  /** The slice as the ended run carried it. */
  private scopeOf(id: string): RangeSet {
    return RangeSet.fromJSON(this.ended?.carry.canary?.scope[id]);
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
  /** The drain's operator: a staged backfill that waits is published (a decision under way lands). */
  private endStaged(): Ended | null {
    for (let round = 0; round < 3 && !this.ended && this.parent?.staged; round++) {
      this.landDecision(true);
      if (this.parent.staged.current === 'awaiting') this.decide('publish', false);
      this.landDecision(true);
      this.parentStep();
    }
    // Published: readers see every version it staged; discarded: none of those staged since its last publish is left.
    const state = this.ended?.state;
    if (this.staged && (state === 'completed' || state === 'completed_with_failures') && this.visible.size !== this.published.size) fail(`ended ${state} with ${this.visible.size} of ${this.published.size} versions visible`);
    if (this.staged && state === 'discarded' && this.visible.size !== this.published.size) fail(`discarded with ${this.published.size - this.visible.size} staged versions left`);
    if (this.canary && (state === 'completed' || state === 'completed_with_failures') && this.visible.size !== this.published.size) fail(`a canary backfill ended ${state} with ${this.visible.size} of ${this.published.size} versions visible`);
    return this.ended;
  }

  drain(maxRounds = 400): Ended {
    this.parent?.setPaused(false);
    for (let round = 0; round < maxRounds; round++) {
      if (this.ended) break;
      // The operator approves and raises the budget; outside the run window the clock goes on to the next one.
      const parent = this.parent;
      if (parent?.governed) {
        if (parent.isAwaitingApproval) this.approve(parent, 'valid', true);
        if (parent.governed.budgetHold !== null) {
          if (parent.governed.budgets.status('retries')?.reached) parent.setBudget({ budget: 'retries', limit: 1000 }, { identity: 'operator', reason: 'drain' });
          if (parent.governed.budgets.status('cost')?.reached) {
            parent.setBudget({ budget: 'cost', limit: COST_MAX }, { identity: 'operator', reason: 'drain' });
            this.maxCostLimit = COST_MAX;
          }
        }
        const next = parent.nextWindowChange;
        if (parent.holds().some((h) => h.kind === 'window') && next !== null) this.now = Math.max(this.now, next);
      }
      if (this.parent?.canary?.current === 'awaiting') this.decideCanary('approve', false);
      if (this.parent?.canary) this.landDecision(true);
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
    const ended = this.endStaged() ?? this.ended ?? fail(`the backfill did not end: ${JSON.stringify(this.parent!.progress('model', 'running', 1).nodes.map((n) => [n.id, n.done, n.running, n.failed, n.pending]))}`);
    if (ended.state === 'completed' || ended.state === 'completed_with_failures') {
      const restored = new BackfillCoordinator(this.plan, { rate: null, concurrency: null }, ended.carry);
      if (this.governance && !ended.carry.governance) fail('a governed backfill ended without its governance in the carry');
      const progress = restored.progress('model', ended.state, 1);
      if (progress.done + progress.failed + progress.blocked !== progress.total) fail(`ended ${ended.state} with partitions unaccounted for: ${JSON.stringify(progress)}`);
      if (ended.state === 'completed' && progress.done !== progress.total) fail('completed without every partition done');
    }
    return ended;
  }
}

/**
 * A small graph of nodes of 1 to 5 days, or (one plan in four) 4 to 20 hours, enough partitions
 * for automatic batches and latency pacing to act: each may depend on earlier ones, with any mapping.
 */
export const specArbitrary = fc
  .record({
    days: fc.integer({ min: 1, max: 5 }),
    hourly: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
    nodes: fc.array(
      fc.record({
        deps: fc.array(fc.record({ on: fc.nat(), mapping: fc.constantFrom('identity', 'all', 'lag') }), { maxLength: 2 }),
        concurrency: fc.integer({ min: 1, max: 3 }),
        batchSize: fc.constantFrom<number | 'auto'>(1, 2, 3, 'auto'),
        latencyTarget: fc.constantFrom(null, '200ms', '1s'),
        rate: fc.constantFrom(null, 2),
        maxThrottles: fc.integer({ min: 0, max: 2 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    concurrency: fc.constantFrom(null, 1, 3),
  })
  .map(({ days, hourly, nodes, concurrency }) => {
    const spec: SpecInput = {
      name: 'model',
      partitions: hourly
        ? { grain: 'hour', start: '2024-01-01', end: `2024-01-01T${String(4 * days).padStart(2, '0')}` }
        : { grain: 'day', start: '2024-01-01', end: `2024-01-0${1 + days}` },
      concurrency,
      nodes: nodes.map((n, i) => {
        const seen = new Set<number>();
        const dependsOn = i === 0 ? [] : n.deps.filter((d) => !seen.has(d.on % i) && seen.add(d.on % i)).map((d) => ({ node: `n${d.on % i}`, mapping: d.mapping === 'lag' ? { lag: { from: -1, to: 0 } } : d.mapping }));
        return {
          id: `n${i}`,
          transform: 'noop',
          concurrency: n.concurrency,
          batchSize: n.batchSize,
          ...(n.latencyTarget ? { pace: { latencyTarget: n.latencyTarget } } : {}),
          rate: n.rate,
          retry: { maxThrottles: n.maxThrottles },
          dependsOn,
        };
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
      .record({ pick: fc.nat(), outcome: fc.constantFrom('complete', 'complete', 'complete', 'fail', 'throttle', 'partial', 'defer') })
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
  { weight: 2, arbitrary: fc.record({ action: fc.constantFrom<'publish' | 'discard'>('publish', 'discard'), junk: fc.boolean() }).map<Action>((r) => ({ kind: 'decide', ...r })) },
  { weight: 2, arbitrary: fc.boolean().map<Action>((ok) => ({ kind: 'decisionLands', ok })) },
  { weight: 1, arbitrary: fc.constantFrom('valid', 'self', 'refused', 'stale').map<Action>((verdict) => ({ kind: 'approve', verdict: verdict as 'valid' })) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(1, 3, 1000, 5000, 0, -1, 2.5, 'x', null).map<Action>((value) => ({ kind: 'setBudget', value })) },
  { weight: 3, arbitrary: refusedSignalsArbitrary },
);

/** A canary (one case in three): 1 to 3 partitions per node, picked any way, with or without auto. */
export const canaryArbitrary: fc.Arbitrary<Canary | null> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(null) },
  {
    weight: 1,
    arbitrary: fc
      .record({ partitions: fc.integer({ min: 1, max: 3 }), pick: fc.constantFrom<Canary['pick']>('newest', 'oldest', 'spread'), auto: fc.boolean() })
      .map(({ partitions, pick, auto }): Canary => ({ partitions, pick, ...(auto ? { auto: { maxRowChange: '5%' } } : {}) })),
  },
);

/** No policy (half the cases, as before governance), or a policy with an approval, a retry budget, a cost budget, a run window and rules (a rate cap, a reason for a pause) in any mix. */
export const governanceArbitrary: fc.Arbitrary<GovernanceCase> = fc.option(
  fc.record({ approval: fc.boolean(), retries: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }), window: fc.boolean(), cost: fc.option(fc.integer({ min: 1, max: 8 }), { nil: null }), rules: fc.boolean() }),
  { nil: null },
);

/** Runs the actions, checking the invariants after each, then drains: true when every invariant held. */
export function holds(spec: ReturnType<typeof resolveSpec>, actions: Action[], governance: GovernanceCase = null, staged = false, canary: Canary | null = null): void {
  // A backfill is staged or has a canary, not both (the start refuses both).
  const world = new World(spec, governance, staged && !canary, canary);
  world.check();
  for (const action of actions) {
    world.apply(action);
    world.check();
  }
  world.drain();
}
