/**
 * The audit trail of one backfill: every operator action (start, pause, resume, cancel, rate,
 * concurrency, queue rate, budget, retry, approve, rollback) with who sent it, why, and what it
 * changed; and what the policy did by itself (a budget that paused the backfill).
 *
 * Who: the identity the sender's client declared (Temporal's client identity is self-declared,
 * so it is recorded as such, `verified: false`), or for a signed approval or start the
 * principal whose key the `verifySignature` activity verified (`verified: true`).
 *
 * The workflow keeps the newest entries in its state (bounded in count and bytes, so that they
 * cross continue-as-new within the carry's budget) and writes every entry to its history (one
 * memo upsert each): `backfill audit` and the report read the history, `status` the state.
 */
import { BackfillError } from './errors.ts';
import type { Action } from './policy.ts';
import { nameText, valueText } from './value-text.ts';

/**
 * Entries beside the policy's actions: what the policy did by itself (a spent budget), a new
 * spec sent to a running backfill, the new run `retry-failed` starts of an ended backfill, and a
 * termination through Temporal itself (read from the history's terminated event: the workflow
 * records nothing of it).
 */
export type OtherAction = 'budget-pause' | 'replace-spec' | 'retry-failed' | 'terminate';

export type AuditEntry = {
  /** 1, 2, ... over the whole backfill (all its runs). */
  seq: number;
  /** The workflow's time, epoch milliseconds. */
  at: number;
  action: Action | OtherAction;
  /** Who: a declared client identity, a verified principal, or `policy` for what the policy did by itself. */
  identity: string;
  /** True when `identity` is the principal of a verified signature. */
  verified: boolean;
  reason: string | null;
  /**
   * applied; or refused (a refused approval is recorded: the attempt is worth knowing); or failed:
   * a publish or discard that was asked (its own entry, applied) and that the warehouse could not
   * carry out (read from the history's failed activity: the workflow records nothing of it).
   */
  outcome: 'applied' | 'refused' | 'failed';
  /** What it changed: e.g. { rate: 50, previous: 20, node: 'orders' }, or why it was refused. */
  details: Record<string, string | number | boolean | null>;
};

/** What a control message says about its sender (the last argument of every control). */
export type ControlMeta = { reason?: string; identity?: string };

/** The most characters of a reason, and of an identity, a message may carry. */
export const MAX_REASON = 2000;
export const MAX_IDENTITY = 200;

/** The identity recorded for what the policy did by itself (a budget that paused the backfill); no sender may declare it. */
export const POLICY_IDENTITY = 'policy';

/** The identity recorded for a canary's slice approved by itself (`canary.auto`); no sender may declare it either. */
export const CANARY_AUTO_IDENTITY = 'canary.auto';

/**
 * Refuses a declared identity (a control's, or the `by` of a staged or canary decision) that
 * would read in the audit trail as what the backfill did by itself: `policy` (shown as "the
 * policy") or `canary.auto`.
 */
export function refuseReservedIdentity(identity: string, field: string): void {
  const name = identity.trim().toLowerCase();
  if (name === POLICY_IDENTITY) {
    throw new BackfillError('invalid_argument', `${field} '${identity.trim()}' is reserved for what the policy does by itself: send your own (e.g. you@example.com)`, field);
  }
  if (name === CANARY_AUTO_IDENTITY) {
    throw new BackfillError('invalid_argument', `${field} '${identity.trim()}' is reserved for a canary that goes on by itself (canary.auto): send your own (e.g. you@example.com)`, field);
  }
}

/**
 * Who sent a message that said nothing of it (a hand-made signal), as the workflow records it
 * (its histories hold this text: keep it). The server's record of the message may name its
 * sender still (client/audit-senders.ts); UNKNOWN_ACTOR is how an entry reads when it does not.
 */
export const UNKNOWN_IDENTITY = 'unknown (no identity sent: Temporal CLI or another client)';

/**
 * Who terminated a run and why, as the server recorded it with the termination (a workflow
 * cannot record its own): an audit entry's actor of a `terminate`.
 */
export function terminatedBy(attributes: { identity?: string | null; reason?: string | null } | null | undefined): Pick<AuditEntry, 'identity' | 'verified' | 'reason'> {
  return { identity: attributes?.identity ? `${attributes.identity} (from the termination)` : UNKNOWN_IDENTITY, verified: false, reason: attributes?.reason || null };
}

/** Who, for people, when neither the control nor the server's record of it named anyone. */
export const UNKNOWN_ACTOR = "unknown: the sender named no one (backfill's commands send your identity; a client of its own should set its Temporal identity, e.g. temporal workflow signal --identity you@example.com)";

/**
 * Parses a control's `{ reason, identity }` as it arrives (anyone may send junk with Temporal's
 * CLI): absent is fine; anything else but short strings throws `invalid_argument`.
 */
export function parseMeta(value: unknown): ControlMeta {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new BackfillError('invalid_argument', `the control's last argument must be { reason?, identity? } (got ${valueText(value)})`, 'reason');
  }
  const { reason, identity, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new BackfillError('invalid_argument', `the control's last argument has unknown fields ${extra.slice(0, 5).map((key) => nameText(key)).join(', ')}${extra.length > 5 ? ', …' : ''}: it takes reason and identity`, 'reason');
  const text = (v: unknown, name: string, max: number): string | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new BackfillError('invalid_argument', `${name} must be text (got ${typeof v})`, name);
    if (v.length > max) throw new BackfillError('invalid_argument', `${name} is longer than ${max} characters: keep it short`, name);
    return v.trim() === '' ? undefined : v.trim();
  };
  const out: ControlMeta = {};
  const r = text(reason, 'reason', MAX_REASON);
  const i = text(identity, 'identity', MAX_IDENTITY);
  if (r !== undefined) out.reason = r;
  if (i !== undefined) {
    refuseReservedIdentity(i, 'identity');
    out.identity = i;
  }
  return out;
}

/** `text`, or its first `max` characters and an ellipsis: what an entry keeps of a text too long for it. */
export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** `refusedSignals`: how many control signals of the backfill were refused (core/refused-signals.ts), recorded or not. */
export type AuditTrailJSON = { next: number; entries: AuditEntry[]; refusedSignals?: number };

/** How many entries the state keeps, and how many bytes of JSON at most. */
export const AUDIT_KEEP = 50;
export const AUDIT_BYTES = 24 * 1024;
/** The newest entries a governance view shows (`GovernanceView.recentActions`). */
export const VIEW_RECENT_ACTIONS = 10;

/** How many refused signals of a backfill are recorded one by one, before only a few more are (core/refused-signals.ts). */
export const REFUSED_SIGNALS_KEPT = 10;

/** The newest entries, bounded in count and bytes; the sequence goes on across continue-as-new. */
export class AuditTrail {
  private constructor(
    private next: number,
    private readonly entries: AuditEntry[],
    private refusedSignals: number,
  ) {}

  static empty(): AuditTrail {
    return new AuditTrail(1, [], 0);
  }

  static fromJSON(json: AuditTrailJSON | undefined): AuditTrail {
    if (!json) return AuditTrail.empty();
    // Carried by the runs before it (a resume's carry comes from a client): anything but a count starts from 0.
    const refused = Number.isSafeInteger(json.refusedSignals) && json.refusedSignals! > 0 ? json.refusedSignals! : 0;
    return new AuditTrail(json.next, json.entries.map((e) => ({ ...e, details: { ...e.details } })), refused);
  }

  toJSON(): AuditTrailJSON {
    const entries = this.entries.map((e) => ({ ...e, details: { ...e.details } }));
    return this.refusedSignals > 0 ? { next: this.next, entries, refusedSignals: this.refusedSignals } : { next: this.next, entries };
  }

  /** Counts one more refused signal of the backfill; returns its number (1, 2, ...). */
  countRefusedSignal(): number {
    return ++this.refusedSignals;
  }

  /** Adds an entry (numbered here) and drops the oldest beyond the bounds; returns it. */
  record(entry: Omit<AuditEntry, 'seq'>): AuditEntry {
    const full: AuditEntry = { seq: this.next++, ...entry };
    this.entries.push(full);
    while (this.entries.length > AUDIT_KEEP) this.dropOldest();
    while (this.entries.length > 1 && JSON.stringify(this.entries).length > AUDIT_BYTES) this.dropOldest();
    return full;
  }

  /**
   * Drops the oldest refused signal's entry (the newest too), else the oldest entry: what anyone
   * may send (core/refused-signals.ts) never pushes operators' actions out of the trail the
   * state keeps. Once operators' entries fill it, a refused signal is in the history only (which
   * keeps every entry), where keeping it as the newest pushed theirs out for good.
   */
  private dropOldest(): void {
    const refused = this.entries.findIndex((e) => e.outcome === 'refused' && e.details.refusedSignal !== undefined);
    this.entries.splice(refused >= 0 ? refused : 0, 1);
  }

  /** The newest entries, oldest first. */
  recent(count = AUDIT_KEEP): AuditEntry[] {
    return this.entries.slice(-count);
  }

  get last(): AuditEntry | null {
    return this.entries[this.entries.length - 1] ?? null;
  }

  /** How many entries the backfill has recorded in all (the history has them all; the state the newest). */
  get total(): number {
    return this.next - 1;
  }
}

/** Of a control that changed nothing: when, by whom and why what it asked for was last set; null each where the trail the state keeps does not tell. */
export type Unchanged = { since: number | null; by: string | null; reason: string | null };

/**
 * A control that asked for what was already in force (pause of a paused backfill, the rate a
 * node has, a budget's cap): the newest applied entry of the same `scope` (each of its details
 * as given, absent read as null: `{ node: null }` is the backfill-wide limit, `{ budget: 'cost' }`
 * the cost budget), of any action, that changed `key`, when it set it to `value`; nulls when a
 * later change is not in the trail (a new run starts unpaused, a policy's cap) or the trail no
 * longer holds it. Entries oldest first.
 */
export function unchangedSince(entries: readonly AuditEntry[], key: string, value: string | number | boolean | null, scope: Readonly<Record<string, string | null>>): Unchanged {
  const inScope = (e: AuditEntry) => Object.entries(scope).every(([k, v]) => (e.details[k] ?? null) === v);
  const last = [...entries]
    .reverse()
    .find((e) => e.outcome === 'applied' && inScope(e) && key in e.details && e.details.previous !== e.details[key]);
  return last !== undefined && last.details[key] === value ? { since: last.at, by: describeActor(last), reason: last.reason } : { since: null, by: null, reason: null };
}

/** The actions that change a limit of a running backfill: the report marks each on its timeline. */
export const LIMIT_ACTIONS = ['set-rate', 'set-concurrency', 'set-queue-rate', 'set-budget'] as const satisfies readonly Action[];

/**
 * True for an applied change of a rate, a concurrency, a task queue's rate or a budget, and for
 * a new run of an ended backfill given a rate or a concurrency of its own (resume or
 * retry-failed with --rate, --concurrency).
 */
export function isLimitChange(entry: Pick<AuditEntry, 'action' | 'outcome' | 'details'>): boolean {
  if (entry.outcome !== 'applied') return false;
  if (entry.action === 'resume' || entry.action === 'retry-failed') return 'rate' in entry.details || 'concurrency' in entry.details;
  return (LIMIT_ACTIONS as readonly string[]).includes(entry.action);
}

/**
 * `alice@example.com (verified signature)`, `bob@laptop (declared)`, `the policy`: who, for
 * people. Every actor ends with how it is known, chosen here, so a declared identity that reads
 * like a verified one (`alice (verified signature)`) still ends in `(declared)`.
 */
export function describeActor(entry: Pick<AuditEntry, 'identity' | 'verified'> & Partial<Pick<AuditEntry, 'action' | 'details'>>, startedBy: string | null = null): string {
  if (entry.verified) return `${entry.identity} (verified signature)`;
  // Temporal's CLI does send one (temporal-cli:$USER@$HOST): `audit` takes it from the history. This sender sent none at all.
  if (entry.identity === UNKNOWN_IDENTITY) return UNKNOWN_ACTOR;
  if (entry.identity !== POLICY_IDENTITY) return `${entry.identity} (declared)`;
  // Recorded under the policy's identity, but no rule of a policy did it: its own partitions failed the canary, in the run someone started.
  if (isCanaryStop(entry)) return `the canary's own failed partitions${startedBy !== null ? `, in the run ${startedBy} started` : ''}`;
  return 'the policy';
}

/** The entry of a canary that failed and stopped the backfill by itself (recorded as a discard under the policy's identity: no one decided it). */
export function isCanaryStop(entry: Partial<Pick<AuditEntry, 'action' | 'details'>>): boolean {
  return entry.action === 'discard' && entry.details?.canary === true && typeof entry.details.stopped === 'string';
}

/**
 * Who started the run an entry belongs to, for people (`alice@example.com (declared)`): the
 * newest start, or new run of an ended backfill (resume, retry-failed), before `index` in a trail
 * oldest first; null when the trail does not hold it.
 */
export function startedBy(entries: readonly AuditEntry[], index: number): string | null {
  for (let i = Math.min(index, entries.length) - 1; i >= 0; i--) {
    const e = entries[i]!;
    const newRun = e.action === 'start' || e.action === 'retry-failed' || (e.action === 'resume' && e.details.resumed === true);
    if (newRun && e.outcome === 'applied') return describeActor(e);
  }
  return null;
}

/** Who, for people, with the run's starter for an entry that needs it (a canary's failure): `describeActor` over a whole trail, oldest first. */
export function actorsOf(entries: readonly AuditEntry[]): string[] {
  return entries.map((e, i) => describeActor(e, isCanaryStop(e) ? startedBy(entries, i) : null));
}

/** What an entry changed, in a few words: `rate 20/s → 50/s (node orders)`. */
export function describeChange(entry: Pick<AuditEntry, 'action' | 'details' | 'outcome'>): string {
  const d = entry.details;
  const show = (v: unknown, unit = '') => (v === null || v === undefined ? 'unlimited' : `${String(v)}${unit}`);
  const on = typeof d.node === 'string' ? ` (node ${d.node})` : typeof d.queue === 'string' ? ` (task queue ${d.queue})` : '';
  if (entry.outcome === 'failed') return describeFailure(entry.action, d);
  const refused = entry.outcome === 'refused' ? `refused: ${String(d.why ?? '')}` : '';
  if (refused) return typeof d.signal === 'string' ? `${refused} (${describeRefusedSignal(d)})` : refused;
  switch (entry.action) {
    case 'set-rate':
    case 'set-queue-rate':
      return `rate ${'previous' in d ? `${show(d.previous, '/s')} → ` : ''}${show(d.rate, '/s')}${on}`;
    case 'set-concurrency':
      return `concurrency ${'previous' in d ? `${show(d.previous)} → ` : ''}${show(d.concurrency)}${on}`;
    case 'set-budget':
      return `${String(d.budget)} budget ${'previous' in d ? `${show(d.previous)} → ` : ''}${show(d.limit)}`;
    case 'retry':
      return `${show(d.retried)} failed partitions sent back to run${on}`;
    case 'resume':
    case 'retry-failed':
    case 'start': {
      // A resume control (of a paused backfill) is no run's start: it has no `resumed`.
      if (entry.action === 'resume' && d.resumed !== true) {
        if (typeof d.previous !== 'boolean') return describeDetails(d);
        return d.previous ? 'resumed: new partitions start again' : 'was not paused: no change';
      }
      const count = typeof d.partitions === 'number' ? d.partitions.toLocaleString('en-US') : null;
      // A new run's `partitions` is its whole plan, published partitions included: not how many a retry runs again.
      const parts = [
        entry.action === 'retry-failed'
          ? `failed partitions${typeof d.node === 'string' ? ` of node ${d.node}` : ''} and those blocked behind them run again in a new run${count !== null ? ` (of the backfill's ${count} partitions, the published ones skipped)` : ''}`
          : d.resumed === true
            ? // Its plan's partitions, not how many were left: those published already are skipped.
              `resumed: a new run${count !== null ? ` over the backfill's ${count} partitions (those published already skipped)` : ''}`
            : `started${count !== null ? ` with ${count} partitions` : ''}`,
      ];
      if (typeof d.from === 'string' || typeof d.to === 'string') parts.push(`--from ${typeof d.from === 'string' ? d.from : "the spec's start"} --to ${typeof d.to === 'string' ? d.to : "the spec's end"} (end exclusive)`);
      if (typeof d.onlyChangedKept === 'number') parts.push(`--only-changed kept ${d.onlyChangedKept.toLocaleString('en-US')} unchanged partition${d.onlyChangedKept === 1 ? '' : 's'} as published`);
      if (typeof d.specChanged === 'string') parts.push(d.specChanged === '' ? 'a new spec that changes no node' : `a new spec that changes ${d.specChanged}`);
      if ('rate' in d) parts.push(`rate ${show(d.rate, '/s')}`);
      if ('concurrency' in d) parts.push(`concurrency ${show(d.concurrency)}`);
      if (typeof d.priority === 'number') parts.push(`priority ${d.priority}`);
      if (typeof d.fairnessWeight === 'number') parts.push(`fairness weight ${d.fairnessWeight}`);
      if (typeof d.policyHash === 'string') parts.push(`policy ${d.policyHash.slice(0, 19)}…`);
      return parts.join(', ');
    }
    case 'approve':
      return `approved plan ${String(d.planHash ?? '').slice(0, 19)}…`;
    case 'budget-pause':
      return String(d.why ?? 'a budget is spent');
    case 'terminate':
      // A node's workflow (client/node-terminations.ts): the backfill goes on, and starts it again with what it held.
      if (typeof d.node === 'string') {
        return `node ${d.node}'s workflow terminated through Temporal: ${d.restarted === true ? 'the backfill started it again with what it held' : 'not started again yet (the backfill starts it again with what it held when it next sends it work)'}`;
      }
      if (d.of === 'rollback') return "the rollback's workflow terminated through Temporal: what it restored before stays restored, the rest is as it was: 'backfill rollback' again restores the rest";
      return 'terminated through Temporal: the run ended without its cleanup (its datasets stay leased)';
    // A pause (or a resume, above) that found the backfill as it asked changed nothing: worth saying, as the raw flags did not.
    case 'pause':
      if (typeof d.previous !== 'boolean') return describeDetails(d);
      return d.previous ? 'was paused already: no change' : 'paused: no new partitions start';
    case 'cancel': {
      const how = d.announced === false ? 'cancelled through Temporal (its CLI or the Web UI), not backfill cancel' : 'cancelled';
      return typeof d.note === 'string' ? `${how}; ${d.note}` : how;
    }
    // A decision is recorded as it is taken, before the warehouse carries it out (status says while it does).
    case 'publish':
      if (d.canary !== true) return withPolicy('publish asked: every staged version, at once', d);
      return `canary approved${d.auto === true ? ' by itself (canary.auto)' : ''}: its slice published, the rest runs`;
    case 'replace-spec':
      return `a new spec that changes ${typeof d.changed === 'string' && d.changed !== '' ? d.changed : 'no node'}${d.approvalAgain === true ? ': the new plan needs an approval again' : ''}`;
    case 'rollback':
      if (d.ended === true) return describeRolledBack(d);
      // Asked, not done: the entry of how it ended says what it restored (a second one may restore nothing).
      return withPolicy(`rollback asked: each partition the backfill changed back to its version before it${d.force === true ? ', even one changed since (--force)' : ', unless changed since'}`, d);
    case 'discard':
      // A canary that failed stopped the backfill by itself: it dropped nothing, what passed stays staged.
      if (d.canary === true && typeof d.stopped === 'string') return `the canary failed and stopped the backfill${d.stopped !== '' ? `: ${d.stopped}` : ''}; nothing was dropped (what passed stays staged: resume goes on from it, discard drops it)`;
      if (d.canary === true) return `canary discarded${d.auto === true ? ' by itself (canary.auto)' : ''}: its slice dropped, nothing beyond it runs`;
      // An ended run's discard (its own workflow): a second one finds nothing left to drop.
      if (typeof d.runKey === 'string') return withPolicy('discard asked: every version the ended run staged (a second finds nothing left)', d);
      return withPolicy('discard asked: every staged version, at once', d);
    default:
      return describeDetails(d);
  }
}

/** A rollback that completed (client/audit-rollback.ts): its summary's counts, those at 0 left out. */
function describeRolledBack(d: AuditEntry['details']): string {
  if (d.notFound === true) return 'rollback ended: neither the server nor the ledger knows the backfill, nothing was looked at';
  const count = (key: string) => (typeof d[key] === 'number' ? (d[key] as number) : 0);
  const parts = [
    ['restored', 'restored to the version before it'],
    ['removed', 'removed (the backfill made them)'],
    ['alreadyRestored', 'at the version before it already'],
    ['leftAlone', 'left alone (changed since by a later backfill)'],
    ['forced', 'of them restored over a later backfill (--force)'],
    ['undone', "undone before by another backfill's rollback"],
  ]
    .filter(([key]) => count(key!) > 0)
    .map(([key, what]) => `${count(key!).toLocaleString('en-US')} ${what}`);
  return parts.length === 0 ? 'rollback done: nothing of the backfill is published, nothing changed' : `rollback done: ${parts.join(', ')}`;
}

/** A publish or discard the warehouse could not carry out (client/audit-decisions.ts), or a rollback that failed (client/audit-rollback.ts): what failed, after how many attempts, and where that leaves the backfill. */
function describeFailure(action: AuditEntry['action'], d: AuditEntry['details']): string {
  const attempts = typeof d.attempts === 'number' ? ` after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}` : '';
  const type = typeof d.failureType === 'string' ? ` (${d.failureType})` : '';
  if (action === 'rollback') {
    // Each restore is its own transaction, recorded under the rollback's id: what it did stays done.
    return `the rollback ${d.timedOut === true ? 'did not finish in time' : 'failed'}${type}: ${String(d.why ?? '')}; what it restored before it stopped stays restored, the rest is as it was: 'backfill rollback' again restores the rest`;
  }
  const what = d.canary === true ? (action === 'publish' ? "the canary's approval" : "the canary's discard") : `the ${action}`;
  const failed = `${what} ${d.timedOut === true ? 'did not finish in time' : 'failed'}${attempts}${type}: ${String(d.why ?? '')}`;
  // A timed-out transaction may have committed; one that failed did not (it is one transaction).
  const moved = d.timedOut === true ? `whether it ${action === 'publish' ? 'published' : 'dropped'} anything is not known (doing it again is safe)` : `nothing was ${action === 'publish' ? 'published' : 'dropped'}`;
  if (typeof d.runKey === 'string') return `${failed}; ${moved}: what the ended run staged stays until a discard of it succeeds`;
  if (d.canary === true) return `${failed}; ${moved}: the canary waits for approve or discard again`;
  return `${failed}; ${moved}: the backfill is staged again, waiting for publish or discard`;
}

/** How a refused signal's entry (core/refused-signals.ts) reads past its refusal: `a setRate signal of 500 null; 3 refused signals before it not recorded ...`. */
function describeRefusedSignal(d: AuditEntry['details']): string {
  const signal = String(d.signal);
  const parts = [`${/^[aeiou]/i.test(signal) ? 'an' : 'a'} ${signal} signal${typeof d.sent === 'string' && d.sent !== '' ? ` of ${d.sent}` : ''}, nobody was told`];
  if (typeof d.unrecorded === 'number' && d.unrecorded > 0) {
    parts.push(`${d.unrecorded.toLocaleString('en-US')} refused signal${d.unrecorded === 1 ? '' : 's'} before it not recorded: past the first ${REFUSED_SIGNALS_KEPT}, only a few are`);
  }
  return parts.join('; ');
}

/** A description, and the policy that judged the action when one did. */
function withPolicy(text: string, d: AuditEntry['details']): string {
  return typeof d.policyHash === 'string' ? `${text}, policy ${d.policyHash.slice(0, 19)}…` : text;
}

/** Every detail as `key value`, for an entry without words of its own. */
function describeDetails(d: AuditEntry['details']): string {
  return Object.entries(d)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
}
