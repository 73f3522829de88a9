/**
 * `Governance`: what the policy the workers were given decided about one backfill, and what
 * follows from it while the backfill runs. Pure and plain-JSON (it crosses continue-as-new in
 * the parent's carry); the coordinator owns one and asks it:
 *
 * - at the start, `admit`: the policy's verdict on the start (violations, each naming its rule
 *   and how to comply), or the governance it runs under: the limits and budgets it gets, whether
 *   it waits for an approval, its run windows;
 * - for every control: `check` (refused with `policy_violation`, naming the rule) and `record`
 *   (the audit trail);
 * - for the holds that keep partitions from starting: an approval not yet given, a spent
 *   budget, a closed run window;
 * - for approvals: `judgeApproval` (the signature was verified by the `verifySignature`
 *   activity; what is left needs the backfill's own knowledge: who started it, and the time).
 */
import { AuditTrail, MAX_IDENTITY, MAX_REASON, POLICY_IDENTITY, VIEW_RECENT_ACTIONS, UNKNOWN_IDENTITY, clipText, type AuditEntry, type AuditTrailJSON, type ControlMeta } from './audit.ts';
import { decideApproval, type ApprovalDecision, type SignatureCheck, type VerifiedSignature } from './approval.ts';
import { BudgetLedger, type BudgetKind, type BudgetLedgerJSON, type BudgetStatus, type Spending } from './budget.ts';
import { BackfillError } from './errors.ts';
import type { Limits } from './limits.ts';
import {
  carriedOverrideViolations,
  checkControl,
  checkStart,
  describeViolations,
  maxSignatureAgeMs,
  parsePolicy,
  queueConcurrencyViolations,
  specViolations,
  type Control,
  type Policy,
  type Violation,
} from './policy.ts';
import type { NodeOverrides, StartGovernance } from './protocol.ts';
import { REFUSED_TEXT, onRefusedSchedule, refusedSignalEntry, type RefusedSignal } from './refused-signals.ts';
import type { ResolvedSpec } from './spec.ts';
import { RunWindows, backfillWindows, describeWindows, effectiveLimits, finishThroughWindows, startDeadline, type EffectiveLimits, type Windows } from './windows.ts';
import { valueText } from './value-text.ts';

/** The policy of workers given none: it allows everything (and asks for nothing). */
export const EMPTY_POLICY: Policy = parsePolicy({ version: 1 });


export type Priority = { key: number | null; fairnessWeight: number | null };

export type GovernanceJSON = {
  policy: { hash: string | null; path: string | null; document: Policy };
  /** planHash of what this backfill runs (approvals sign it). */
  planHash: string;
  /** Who started it: a verified principal (signed start), else the declared identity. */
  starter: { identity: string; verified: boolean; signature: VerifiedSignature | null };
  approval: { needed: boolean; reasons: string[]; approvedBy: string | null; approvedAt: number | null };
  budgets: BudgetLedgerJSON;
  /** The budget pause last recorded in the audit trail (recorded once each time a cap is reached). */
  budgetHold: string | null;
  /** The spec's run windows and the policy's: every one must allow. */
  windows: Windows[];
  audit: AuditTrailJSON;
  priority: Priority;
  /** The trusted estimate of partition-seconds (computed by the workers from the ledger), when it was needed. */
  estimate: number | null;
};

export type HoldKind = 'operator' | 'approval' | 'window' | 'budget';
export type Hold = { kind: HoldKind; reason: string };

export type WindowView = { open: boolean; description: string; opensAt: number | null; closesAt: number | null };

/** What `status`, the Web UI and the report show of a backfill's governance. */
export type GovernanceView = {
  policy: { hash: string | null; path: string | null };
  planHash: string;
  starter: { identity: string; verified: boolean };
  approval: { needed: boolean; reasons: string[]; approvedBy: string | null; approvedAt: number | null };
  holds: Hold[];
  window: WindowView | null;
  budgets: { retries: BudgetStatus | null; cost: BudgetStatus | null };
  priority: Priority;
  estimate: number | null;
  lastAction: AuditEntry | null;
  recentActions: AuditEntry[];
  /** Entries recorded in all (the history holds them all, the state the newest). */
  actions: number;
};

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

export class Governance {
  readonly audit: AuditTrail;
  readonly budgets: BudgetLedger;
  readonly schedules: RunWindows[];
  private readonly state: Omit<GovernanceJSON, 'audit' | 'budgets'>;

  private constructor(json: GovernanceJSON) {
    const { audit, budgets, ...rest } = json;
    this.state = clone(rest);
    this.audit = AuditTrail.fromJSON(audit);
    this.budgets = BudgetLedger.fromJSON(budgets);
    this.schedules = rest.windows.map((w) => new RunWindows(w));
  }

  /** Governance carried by the run's own continue-as-new. */
  static fromJSON(json: GovernanceJSON): Governance {
    return new Governance(json);
  }

  toJSON(): GovernanceJSON {
    return { ...clone(this.state), audit: this.audit.toJSON(), budgets: this.budgets.toJSON() };
  }

  get policy(): Policy {
    return this.state.policy.document;
  }

  get policyHash(): string | null {
    return this.state.policy.hash;
  }

  get planHash(): string {
    return this.state.planHash;
  }

  get starter(): GovernanceJSON['starter'] {
    return this.state.starter;
  }

  // ---- approval ----

  get awaitingApproval(): boolean {
    return this.state.approval.needed && this.state.approval.approvedBy === null;
  }

  get approvalReasons(): string[] {
    return [...this.state.approval.reasons];
  }

  /**
   * Whether a signature the activity checked approves this backfill: refused when the check
   * refused it, when nothing waits for an approval, when its signer started the backfill, or
   * when it is too old.
   */
  judgeApproval(check: SignatureCheck, now: number): ApprovalDecision | { accepted: false; code: string; message: string } {
    if (!check.ok) return { accepted: false, code: check.code, message: check.message };
    if (!this.awaitingApproval) {
      const why = this.state.approval.needed ? `it was approved already by ${this.state.approval.approvedBy}` : 'the policy did not ask for an approval';
      return { accepted: false, code: 'not_awaiting_approval', message: `this backfill is not waiting for an approval: ${why}` };
    }
    // The signature was checked against the plan of its arrival; a new spec may have come while it
    // was checked (the check is an activity), and an approval is for one plan only.
    const signed = check.verified.subject.planHash;
    if (signed !== this.state.planHash) {
      return {
        accepted: false,
        code: 'other_plan',
        message: `the signature approves the plan ${signed}, but this backfill now runs ${this.state.planHash} (a new spec came meanwhile): review this plan and sign it`,
      };
    }
    return decideApproval({
      approval: check.verified,
      start: this.state.starter.signature,
      ...(this.state.starter.verified ? {} : { starterIdentity: this.state.starter.identity }),
      now,
      maxAgeMs: maxSignatureAgeMs(this.policy),
    });
  }

  /** An accepted approval lets the backfill go. */
  approve(approver: string, now: number): void {
    this.state.approval.approvedBy = approver;
    this.state.approval.approvedAt = now;
  }

  /**
   * The backfill now runs another plan (a new spec): an approval was for the old one, so a
   * backfill that needed one needs one again, of the new plan.
   */
  replacePlan(planHash: string): boolean {
    const changed = planHash !== this.state.planHash;
    this.state.planHash = planHash;
    if (changed && this.state.approval.needed) {
      this.state.approval.approvedBy = null;
      this.state.approval.approvedAt = null;
    }
    return changed && this.state.approval.needed;
  }

  // ---- controls and the audit trail ----

  /** Throws `policy_violation` naming every rule a control breaks. */
  check(control: Control, spec: Pick<ResolvedSpec, 'nodes'>): void {
    const violations = checkControl(this.policy, control, spec);
    if (violations.length > 0) throw violationError(violations);
  }

  /** A set-concurrency: what the backfill runs at once on each task queue stays within its caps (see queueConcurrencyViolations). */
  checkQueues(before: Parameters<typeof queueConcurrencyViolations>[1], after: Parameters<typeof queueConcurrencyViolations>[2]): void {
    const violations = queueConcurrencyViolations(this.policy, before, after);
    if (violations.length > 0) throw violationError(violations);
  }

  /** A new spec sent to the running backfill: its nodes' own limits meet the dataset and queue caps. */
  checkSpec(spec: Pick<ResolvedSpec, 'nodes'>, concurrency: number | null): void {
    const violations = specViolations(this.policy, spec, concurrency, 'running');
    if (violations.length > 0) throw violationError(violations);
  }

  record(action: AuditEntry['action'], meta: ControlMeta, at: number, details: AuditEntry['details'] = {}, outcome: AuditEntry['outcome'] = 'applied'): AuditEntry {
    return this.audit.record({ at, action, identity: meta.identity ?? UNKNOWN_IDENTITY, verified: false, reason: meta.reason ?? null, outcome, details });
  }

  /** A control signal refused (core/refused-signals.ts): counted, and recorded unless a flood of them is past its cap; returns its entry if recorded. */
  recordRefusedSignal(refused: RefusedSignal, at: number): AuditEntry | null {
    const entry = refusedSignalEntry(refused, this.audit.countRefusedSignal(), at);
    return entry ? this.audit.record(entry) : null;
  }

  /**
   * A refused approval: by the principal of its verified signature (`signer`), else by who its
   * sender declared. One sent as a signal (`signalled`) is counted with the refused signals and
   * recorded on their schedule (core/refused-signals.ts), as anyone may send thousands; returns
   * its entry if recorded.
   */
  recordRefusedApproval(signer: string | null, meta: ControlMeta, reason: string, at: number, details: AuditEntry['details'], signalled: boolean): AuditEntry | null {
    const entry: Omit<AuditEntry, 'seq'> =
      signer !== null
        ? { at, action: 'approve', identity: signer, verified: true, reason, outcome: 'refused', details }
        : // The approval's own reason, as a verified one's: the client sends it there, not in the meta (an unknown signer's lost it).
          { at, action: 'approve', identity: meta.identity ?? UNKNOWN_IDENTITY, verified: false, reason: reason !== '' ? reason : (meta.reason ?? null), outcome: 'refused', details };
    if (!signalled) return this.audit.record(entry);
    // Cut short as any refused signal's: its reason and the refusal's text are the sender's.
    const reasonText = entry.reason === null ? null : clipText(entry.reason, REFUSED_TEXT.reason);
    const cut: AuditEntry['details'] = { ...details, signal: 'approve' };
    if (typeof details.why === 'string') cut.why = clipText(details.why, REFUSED_TEXT.why);
    const kept = onRefusedSchedule({ ...entry, reason: reasonText, details: cut }, this.audit.countRefusedSignal());
    return kept ? this.audit.record(kept) : null;
  }

  /** An entry whose identity is a verified principal (a signed approval). */
  recordVerified(action: AuditEntry['action'], principal: string, reason: string, at: number, details: AuditEntry['details'], outcome: AuditEntry['outcome'] = 'applied'): AuditEntry {
    return this.audit.record({ at, action, identity: principal, verified: true, reason, outcome, details });
  }

  // ---- budgets ----

  /** Adds what a report says was spent; returns the pause reason when a cap is newly reached (to record), else null. */
  spend(spent: Spending): string | null {
    this.budgets.addSpending(spent);
    return this.noteBudgetHold();
  }

  /** `set-budget`: a new cap; what was spent stays counted. */
  setBudget(budget: BudgetKind, limit: number): void {
    try {
      this.budgets.setLimit(budget, limit);
    } catch (error) {
      throw new BackfillError('invalid_argument', (error as Error).message, 'budget');
    }
    this.noteBudgetHold();
  }

  /** Updates which budget pause was last recorded; returns it when it is new. */
  private noteBudgetHold(): string | null {
    const reason = this.budgets.pauseReason();
    const fresh = reason !== null && this.state.budgetHold === null;
    this.state.budgetHold = reason;
    return fresh ? reason : null;
  }

  get budgetHold(): string | null {
    return this.budgets.pauseReason();
  }

  // ---- run windows ----

  get hasWindows(): boolean {
    return this.schedules.length > 0;
  }

  /**
   * What the windows say at `now`: paused, lower limits, and when that changes (with `handovers`,
   * where one window hands over to another with other limits too); null without windows.
   */
  windowLimits(now: number, handovers = false): EffectiveLimits | null {
    return this.hasWindows ? effectiveLimits(this.schedules, now, { rate: null, concurrency: null }, handovers) : null;
  }

  /** How long `workMs` of work begun at `now` takes with the hours the windows are closed on top; null where none opens again. */
  workThroughWindows(now: number, workMs: number): number | null {
    const finish = finishThroughWindows(this.schedules, now, workMs);
    return finish === null ? null : finish - now;
  }

  /** While partitions may start: when no new one may (the window's close) and when running ones stop (close + grace). */
  deadline(now: number): { notAfter: number; stopBy: number } | null {
    return this.hasWindows ? startDeadline(this.schedules, now) : null;
  }

  windowView(now: number): WindowView | null {
    const limits = this.windowLimits(now);
    if (!limits) return null;
    const names = this.state.windows.length > 1 ? ['the spec', 'the policy'] : [];
    const description = this.schedules.map((s, i) => `${names[i] ? `${names[i]}: ` : ''}${describeWindows(s, now)}`).join('; ');
    return { open: limits.open, description, opensAt: limits.paused ? limits.nextChangeAt : null, closesAt: limits.paused ? null : limits.nextChangeAt };
  }

  // ---- views ----

  view(now: number, holds: Hold[]): GovernanceView {
    return {
      policy: { hash: this.state.policy.hash, path: this.state.policy.path },
      planHash: this.state.planHash,
      starter: { identity: this.state.starter.identity, verified: this.state.starter.verified },
      approval: { ...this.state.approval, reasons: [...this.state.approval.reasons] },
      holds,
      window: this.windowView(now),
      budgets: { retries: this.budgets.status('retries'), cost: this.budgets.status('cost') },
      priority: { ...this.state.priority },
      estimate: this.state.estimate,
      lastAction: this.audit.last,
      recentActions: this.audit.recent(VIEW_RECENT_ACTIONS),
      actions: this.audit.total,
    };
  }

  // ---- the start ----

  /** The policy's verdict on a start: the violations, or the governance the backfill runs under. */
  static admit(input: AdmissionInput): Admission {
    const { policy, request } = input;
    // The client sends a well-formed request; Temporal's own CLI can send anything in its place.
    const malformed = startRequestViolations(request, { bounded: input.boundedRequest === true });
    if (malformed.length > 0) return { admitted: false, violations: malformed, message: describeViolations(malformed) };
    const violations: Violation[] = [];
    let starter: GovernanceJSON['starter'] = { identity: request.identity ?? UNKNOWN_IDENTITY, verified: false, signature: null };
    if (input.startSignature) {
      if (input.startSignature.ok) {
        const verified = input.startSignature.verified;
        starter = { identity: verified.principals[0]!, verified: true, signature: verified };
      } else {
        violations.push({ rule: 'start signature', message: `the start's signature was refused (${input.startSignature.code}): ${input.startSignature.message}` });
      }
    }
    const decision = checkStart(policy, {
      spec: input.spec,
      partitions: input.partitions,
      limits: input.limits,
      ...(input.estimate !== undefined ? { estimatedPartitionSeconds: input.estimate } : {}),
      ...(request.reason !== undefined ? { reason: request.reason } : {}),
      ...(request.budgets ? { budgets: request.budgets } : {}),
      ...(starter.verified ? { signedBy: starter.identity } : {}),
      at: input.now,
      priority: { key: input.priority.key, fairnessWeight: input.priority.fairnessWeight },
      ...(input.goesOnAs ? { goesOnAs: input.goesOnAs } : {}),
    });
    violations.push(...decision.violations);
    if (input.priority.fairnessKey !== null && input.priority.fairnessKey !== input.backfillId) {
      violations.push({
        rule: 'fairness key',
        message: `the fairness key '${input.priority.fairnessKey}' is not this backfill's id: a backfill's fairness key is its id ('${input.backfillId}'), so that it never takes another's share; start it with backfill start --fairness-weight, or leave the key out`,
      });
    } else if (input.priority.fairnessKey === null && input.priority.fairnessWeight !== null) {
      // Without a key the weight is the empty key's: every unkeyed task of the queue would share it.
      violations.push({
        rule: 'fairness key',
        message: `a fairness weight of ${input.priority.fairnessWeight} without a fairness key would weigh every task of the queue that has no key, not this backfill: give the key too, this backfill's id ('${input.backfillId}'), or start it with backfill start --fairness-weight`,
      });
    }
    // Limits an operator set on an earlier run (a resume): each meets the caps as a control would.
    // Not their reasons: each was judged, with its reason, when it was set (see carriedOverrideViolations).
    violations.push(...carriedOverrideViolations(policy, input.overrides, input.spec, input.goesOnAs, { reasons: input.overrideReasons === true }));
    if (violations.length > 0) return { admitted: false, violations, message: describeViolations(violations) };

    const approval = decision.waitFor.find((w) => w.kind === 'approval');
    const budgets = BudgetLedger.start(decision.budgets).toJSON();
    // A resume goes on spending from where the ended run was (its carry).
    if (input.spent) {
      budgets.retries.used = input.spent.retries;
      if (budgets.cost && input.spent.cost !== null && input.spent.costMetric === budgets.cost.metric) budgets.cost.used = input.spent.cost;
    }
    const governance = new Governance({
      policy: { hash: input.policyHash, path: input.policyPath, document: policy },
      planHash: input.planHash,
      starter,
      approval: { needed: approval !== undefined, reasons: approval?.kind === 'approval' ? approval.reasons : [], approvedBy: null, approvedAt: null },
      budgets,
      budgetHold: null,
      windows: backfillWindows(input.spec.windows, policy.windows).map((w) => w.windows),
      audit: input.audit ?? { next: 1, entries: [] },
      priority: { key: input.priority.key, fairnessWeight: input.priority.fairnessWeight },
      estimate: input.estimate ?? null,
    });
    governance.noteBudgetHold();
    return { admitted: true, governance, limits: decision.limits, nodeRates: decision.nodeRates };
  }
}

export type AdmissionInput = {
  backfillId: string;
  policy: Policy;
  policyHash: string | null;
  policyPath: string | null;
  spec: ResolvedSpec;
  /** Partitions it would run (the plan's, less what is skipped or done already). */
  partitions: number;
  /** The backfill-wide limits it asks for (a start's, or a resumed run's carried ones). */
  limits: Limits;
  /** Node limits an operator set on the run a resume goes on from. */
  overrides: NodeOverrides;
  /** They are asked for a reason too, as a control sent without one (a history from before the patch carried-overrides-caps-only). */
  overrideReasons?: boolean;
  planHash: string;
  /** Partition-seconds, estimated by the workers from the ledger (only when the policy needs it). */
  estimate?: number;
  request: StartGovernance;
  /** The checked signature of a signed start. */
  startSignature: SignatureCheck | null;
  /** The priority the workflow was started with (workflowInfo().priority: what the server schedules by). */
  priority: Priority & { fairnessKey: string | null };
  now: number;
  /** A new run of an ended backfill: the operator action that started it, whose reasons rule applies too (StartRequest.goesOnAs). */
  goesOnAs?: 'resume' | 'retry';
  /** The request's reason and identity are held to a control's bounds (behind the patch start-request-bounded). */
  boundedRequest?: boolean;
  /** A resume: what the ended run had spent, and its audit trail. */
  spent?: { retries: number; cost: number | null; costMetric: string | null };
  audit?: AuditTrailJSON;
};

/**
 * Whether a start's reason or identity is longer than a control's may be (MAX_REASON,
 * MAX_IDENTITY): kept in the governance state, the audit trail, every memo upsert and every
 * continue-as-new, it would grow them without bound.
 */
export function startTextTooLong(request: unknown): boolean {
  return startTextProblems(request).length > 0;
}

/** What is too long of a start's reason and identity (`startTextTooLong`), each as a message: what the workflow refuses, and the client before it starts one. */
export function startTextProblems(request: unknown): Array<{ field: 'reason' | 'identity'; message: string }> {
  if (request === null || typeof request !== 'object') return [];
  const r = request as Record<string, unknown>;
  const out: Array<{ field: 'reason' | 'identity'; message: string }> = [];
  for (const [field, max] of [['reason', MAX_REASON], ['identity', MAX_IDENTITY]] as const) {
    const text = r[field];
    if (typeof text === 'string' && text.length > max) out.push({ field, message: `the start's ${field} is longer than ${max} characters (${text.length}): keep it short` });
  }
  return out;
}

/**
 * What is wrong with a start's governance request (its input's `governance`): a reason or an
 * identity that is not text, a budget that is not a number above 0 (a whole number of retries),
 * a signature that is not its text and signature. Such a request is refused as it is, never read
 * as something else: a budget of null or "unbounded" would otherwise run with no cap at all.
 */
export function startRequestViolations(request: unknown, options: { bounded?: boolean } = {}): Violation[] {
  const out: Violation[] = [];
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    return [{ rule: 'start request', message: "a start's governance is an object ({ reason?, identity?, budgets?, signature? }): start it with backfill start" }];
  }
  const r = request as Record<string, unknown>;
  for (const field of ['reason', 'identity'] as const) {
    if (r[field] !== undefined && typeof r[field] !== 'string') out.push({ rule: 'start request', message: `the start's ${field} must be text (got ${valueText(r[field])})` });
  }
  if (options.bounded) for (const { message } of startTextProblems(r)) out.push({ rule: 'start request', message });
  if (typeof r.identity === 'string' && r.identity.trim().toLowerCase() === POLICY_IDENTITY) {
    out.push({ rule: 'start request', message: `identity '${r.identity.trim()}' is reserved for what the policy does by itself: start with your own (e.g. you@example.com)` });
  }
  if (r.budgets !== undefined) {
    const budgets = r.budgets as Record<string, unknown> | null;
    if (budgets === null || typeof budgets !== 'object' || Array.isArray(budgets)) {
      out.push({ rule: 'start request', message: "the budgets a start asks for are { retries?, cost? }: leave them out to take the policy's" });
    } else {
      for (const [kind, asked] of Object.entries(budgets)) {
        const whole = kind === 'retries';
        const valid = (kind === 'retries' || kind === 'cost') && typeof asked === 'number' && Number.isFinite(asked) && asked > 0 && (!whole || Number.isInteger(asked));
        if (!valid) {
          out.push({
            rule: `budgets.${kind}`,
            message: `a start's ${kind} budget must be ${whole ? 'a whole number' : 'a number'} above 0 (got ${valueText(asked)}): leave it out to take the policy's`,
          });
        }
      }
    }
  }
  if (r.signature !== undefined) {
    const sig = r.signature as Record<string, unknown> | null;
    if (sig === null || typeof sig !== 'object' || typeof sig.text !== 'string' || typeof sig.signature !== 'string') {
      out.push({ rule: 'start signature', message: "a start's signature is { text, signature }, both text: sign it with backfill start --sign-key" });
    }
  }
  return out;
}

export type Admission =
  | { admitted: false; violations: Violation[]; message: string }
  | { admitted: true; governance: Governance; limits: Limits; nodeRates: Record<string, number> };

function violationError(violations: readonly Violation[]): BackfillError {
  return new BackfillError('policy_violation', `refused by the policy: ${describeViolations(violations).replaceAll('\n', '; ')}`, violations[0]?.rule);
}
