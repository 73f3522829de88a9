/**
 * The life of a staged backfill (`start --stage`) after its partitions: it computes and checks
 * every partition as staged versions (`computing`), then waits (`awaiting`) until an operator
 * publishes them all at once or discards them; `publishing` and `discarding` are the activity
 * under way. Pure: the backfill workflow asks it what is allowed and tells it what happened.
 *
 * A decision arrives as an update from anyone who can reach the workflow (the client, or
 * Temporal's own CLI), so its argument is parsed here, once, by the validator and again by the
 * handler: an unknown shape, a decision before the partitions have settled, a second decision
 * or one for a backfill that is not staged is refused with a stable code and changes nothing.
 */
import { refuseReservedIdentity } from './audit.ts';
import { BackfillError } from './errors.ts';
import { valueText } from './value-text.ts';

const PHASES = ['computing', 'awaiting', 'publishing', 'discarding', 'published', 'discarded'] as const;
export type StagedPhase = (typeof PHASES)[number];
export type StagedAction = 'publish' | 'discard';

/** Who decided, and why: kept in the workflow's state as the audit trail of the decision. */
export type StagedDecision = { action: StagedAction; by: string; reason: string | null; at: number };

/** What the backfill carries across continue-as-new and into a resumed run. */
export type StagedCarry = { phase: StagedPhase; decision?: StagedDecision };

/** A decision's argument as it travels: who sends it (the client's identity) and why. */
export type StagedRequest = { by: string; reason?: string | null };

const MAX_TEXT = 500;

function text(value: unknown, field: string, required: boolean): string | null {
  if (value === undefined || value === null) {
    if (required) throw new BackfillError('invalid_argument', `${field} is missing: say who decides (the client sends its identity)`, field);
    return null;
  }
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_TEXT) {
    throw new BackfillError('invalid_argument', `${field} must be a non-empty string of at most ${MAX_TEXT} characters`, field);
  }
  return value.trim();
}

export class StagedGate {
  private phase: StagedPhase;
  private decision: StagedDecision | undefined;

  constructor(carry?: StagedCarry) {
    // A run that ended while publishing or discarding (cancelled, failed) waits again: the
    // warehouse's publish and discard are idempotent, so deciding again finishes the work.
    // A carry comes in the start's input, which anyone who can start a workflow writes: a phase
    // it does not know starts from the beginning.
    const phase = carry && PHASES.includes(carry.phase) ? carry.phase : 'computing';
    this.phase = phase === 'publishing' || phase === 'discarding' ? 'awaiting' : phase;
    this.decision = phase === carry?.phase ? carry.decision : undefined;
  }

  get current(): StagedPhase {
    return this.phase;
  }

  get lastDecision(): StagedDecision | undefined {
    return this.decision;
  }

  /** Published or discarded: the backfill ends. */
  get decided(): boolean {
    return this.phase === 'published' || this.phase === 'discarded';
  }

  /** Every partition has settled and the node workflows have ended: the backfill waits for a decision. */
  settle(): void {
    if (this.phase === 'computing') this.phase = 'awaiting';
  }

  /** Parses a decision and says whether it may be taken now; throws a BackfillError and changes nothing otherwise (the update's validator). */
  parse(action: StagedAction, value: unknown): { by: string; reason: string | null } {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new BackfillError('invalid_argument', `${action} takes { by, reason? }, not ${valueText(value)}`);
    }
    const request = value as Record<string, unknown>;
    const unknown = Object.keys(request).filter((k) => k !== 'by' && k !== 'reason');
    if (unknown.length > 0) throw new BackfillError('invalid_argument', `${action} takes { by, reason? }: unknown field ${unknown.join(', ')}`);
    const parsed = { by: text(request.by, 'by', true)!, reason: text(request.reason, 'reason', false) };
    refuseReservedIdentity(parsed.by, 'by');
    switch (this.phase) {
      case 'computing':
        throw new BackfillError('not_ready', `the staged backfill is still computing its partitions: wait until status says staged, then ${action}`);
      case 'publishing':
      case 'discarding':
        throw new BackfillError('already_decided', `the staged versions are being ${this.phase === 'publishing' ? 'published' : 'discarded'} already (by ${this.decision?.by ?? 'someone'})`);
      case 'published':
      case 'discarded':
        throw new BackfillError('already_decided', `the staged versions were ${this.phase} already (by ${this.decision?.by ?? 'someone'})`);
      case 'awaiting':
        return parsed;
    }
  }

  /** Takes the decision (the update's handler): the phase becomes publishing or discarding. */
  begin(action: StagedAction, value: unknown, at: number): StagedDecision {
    const { by, reason } = this.parse(action, value);
    this.decision = { action, by, reason, at };
    this.phase = action === 'publish' ? 'publishing' : 'discarding';
    return this.decision;
  }

  /** The warehouse did it (`ok`), or refused it: then the backfill waits again, still staged. */
  end(ok: boolean): void {
    if (this.phase !== 'publishing' && this.phase !== 'discarding') throw new Error(`no decision under way (phase ${this.phase})`);
    this.phase = ok ? (this.phase === 'publishing' ? 'published' : 'discarded') : 'awaiting';
  }

  toCarry(): StagedCarry {
    return { phase: this.phase, ...(this.decision ? { decision: this.decision } : {}) };
  }
}

/**
 * The gate a resumed run (`resume`, `retry-failed` of an ended backfill) starts with. Whatever
 * the resumed run computes again is written as staged versions, so it stages, waits and is
 * decided like the first: a run that ended before its decision (cancelled while computing,
 * awaiting or deciding) computes again; one that published computes again when `rerun` (its
 * failures run again), else stays published with nothing left to stage. A discarded one stays
 * discarded (the client refuses to resume it: its versions are gone).
 */
export function resumedStaged(carry: StagedCarry, rerun: boolean): StagedCarry {
  if (carry.phase === 'discarded' || (carry.phase === 'published' && !rerun)) return carry;
  return { phase: 'computing' };
}

/** `backfill discard` of a staged backfill that ended (cancelled or failed) before its decision: the workflow that drops what it staged. */
export function discardWorkflowId(backfillId: string): string {
  return `backfill/${backfillId}/discard`;
}

/** What `discardEndedWorkflow` drops: the versions one ended run of a backfill staged. */
export type DiscardEndedInput = {
  backfillId: string;
  /** The run whose staged versions go (the backfill's run key, which its carry keeps). */
  runKey: string;
  /** The task queue of workers that reach the backfill's warehouse (its first node's). */
  taskQueue: string;
  /** Who asked for it (the client's declared identity) and why: judged by the policy, kept in the memo. */
  audit?: { identity?: string; reason?: string };
  /** The hash of the policy the backfill was admitted under: only a worker with a policy judges the discard (core/policy-pin.ts). */
  admittedUnder?: string;
};
