/**
 * A canary backfill (`start --canary N`, `canary:` in the spec): it first runs a slice, N
 * partitions per node picked newest, oldest or spread, and every upstream partition they need,
 * as staged versions; then it waits. `backfill approve` publishes the slice's staged versions and
 * lets the rest of the backfill run as usual; `backfill discard` drops them and ends the backfill;
 * `canary.auto` goes on by itself when every partition of the slice passed its checks and each
 * dataset's diff is within its bounds. A failure in the slice stops the backfill: nothing beyond
 * the slice is ever released.
 *
 * Phases: `running` (the slice computes) → `awaiting` (settled, the diff known) → `approving`
 * (its staged versions being published) → `approved` (the rest runs), or → `discarding` →
 * `discarded`; `failed` when a partition of the slice failed. Pure: the workflow asks it what is
 * allowed and tells it what happened. Its decisions arrive as updates from anyone who can reach
 * the workflow, so their argument is parsed here (validator and handler alike).
 *
 * This is not the policy's approval: a policy approval (signed, by an allowed signer) lets a
 * backfill start; the canary approval is an operator's judgement of the slice's data, like a
 * staged backfill's publish, and the policy judges it as a publish (its required reason applies).
 */
import { rowChangePercent, type DiffCounts, type DiffSummary } from './diff.ts';
import { refuseReservedIdentity } from './audit.ts';
import { BackfillError } from './errors.ts';
import type { Plan } from './plan.ts';
import { RangeSet, receivedRanges, type RangesJSON } from './ranges.ts';
import { CanarySchema, percentOf, type Canary } from './spec.ts';
import { zodProblem } from './zod-errors.ts';
import { formatPath } from './errors.ts';
import { valueText } from './value-text.ts';

const PHASES = ['running', 'awaiting', 'approving', 'approved', 'discarding', 'discarded', 'failed'] as const;
export type CanaryPhase = (typeof PHASES)[number];
export type CanaryAction = 'approve' | 'discard';

/** Who decided, and why (`canary.auto` when the bounds decided). */
export type CanaryDecision = { action: CanaryAction; by: string; reason: string | null; at: number; auto: boolean };

/** The slice's diff as status shows it: counts per dataset (the columns stay with `backfill diff`). */
export type CanaryDiff = DiffCounts & { nodes: Array<DiffCounts & { node: string }> };

/** What the backfill carries across continue-as-new and into a resumed run. */
export type CanaryCarry = {
  phase: CanaryPhase;
  config: Canary;
  /** The slice, by node (index ranges): what runs before the approval. */
  scope: Record<string, RangesJSON>;
  /** The slice's partitions that --only-changed keeps, by node (only nodes with some): done already, they never run. */
  kept?: Record<string, RangesJSON>;
  diff?: CanaryDiff;
  decision?: CanaryDecision;
  /** Why the slice stopped the backfill, or why `auto` did not go on. */
  note?: string;
};

/** What `status` and the Web UI show of a canary. */
export type CanaryView = {
  phase: CanaryPhase;
  pick: Canary['pick'];
  perNode: number;
  /** Partitions the slice runs, upstream closure included (not those --only-changed keeps). */
  partitions: number;
  auto: { maxRowChange: string } | null;
  diff: CanaryDiff | null;
  decision: CanaryDecision | null;
  note: string | null;
};

const MAX_TEXT = 500;

/** A canary's settings as they arrive in a workflow's input (anyone may start one): parsed, or a BackfillError naming the field. */
export function parseCanary(value: unknown): Canary {
  const parsed = CanarySchema.safeParse(value);
  if (!parsed.success) {
    const { path, message } = zodProblem(parsed.error);
    const where = formatPath(['canary', ...path]);
    throw new BackfillError('invalid_spec', `${where} ${message}`, where);
  }
  return parsed.data;
}

/**
 * The canary a new backfill runs, from its input as it arrives (anyone may start one with
 * Temporal's CLI): `canary` (start --canary, over the spec's), else the spec's `canary:`, parsed;
 * null without one. A staged backfill has none (both at once is refused).
 */
export function canaryOfInput(input: { canary?: unknown; stage?: boolean; spec: { canary?: unknown } }): Canary | null {
  const raw = input.canary ?? input.spec.canary;
  if (raw === undefined || raw === null) return null;
  const canary = parseCanary(raw);
  if (input.stage === true) {
    throw new BackfillError('invalid_argument', '--stage and a canary do not go together: a canary stages its slice and publishes the rest as it runs; start with one or the other', 'canary');
  }
  return canary;
}

/**
 * The canary a start's `--canary n` asks for (n partitions, over the spec's `canary:` pick and
 * auto), undefined without the flag; a start with --stage and any canary is refused.
 */
export function startCanary(spec: { canary?: Canary }, partitions: number | undefined, stage: boolean): Canary | undefined {
  const canary = partitions === undefined ? undefined : parseCanary({ ...spec.canary, partitions });
  canaryOfInput({ spec, ...(canary ? { canary } : {}), ...(stage ? { stage: true } : {}) });
  return canary;
}

/** `count` indices of [0, size) picked as `pick` says, among those not in `skip`. */
function pickIndices(size: number, count: number, pick: Canary['pick'], skip: RangeSet): number[] {
  const candidates: number[] = [];
  for (const [start, end] of RangeSet.of([0, size]).minus(skip).ranges()) for (let j = start; j < end; j++) candidates.push(j);
  if (candidates.length <= count) return candidates;
  if (pick === 'oldest') return candidates.slice(0, count);
  if (pick === 'newest') return candidates.slice(candidates.length - count);
  // Spread: the first, the last and evenly between (one: the middle).
  if (count === 1) return [candidates[Math.floor((candidates.length - 1) / 2)]!];
  return [...new Set(Array.from({ length: count }, (_, k) => candidates[Math.round((k * (candidates.length - 1)) / (count - 1))]!))];
}

/**
 * The slice of a plan: per node, `partitions` partitions picked as `pick` says (among those not
 * skipped by --only-changed), then every upstream partition they need, node by node against the
 * dependency order. Upstream partitions outside the backfill's range are not in it (they are not
 * run by this backfill at all).
 */
export function canaryScope(plan: Plan, canary: Canary, skip: Record<string, RangesJSON> = {}): Map<string, RangeSet> {
  const scope = new Map<string, RangeSet>();
  for (const node of plan.nodes) {
    const skipped = RangeSet.fromJSON(skip[node.id]).slice(0, node.partitions.size);
    scope.set(node.id, RangeSet.of(...pickIndices(node.partitions.size, canary.partitions, canary.pick, skipped).map((j): [number, number] => [j, j + 1])));
  }
  for (const node of [...plan.nodes].reverse()) {
    const mine = scope.get(node.id)!;
    for (const edge of node.upstream) {
      const up = scope.get(edge.node)!;
      for (const j of mine) if (edge.hi[j]! > edge.lo[j]!) up.addRange(edge.lo[j]!, edge.hi[j]!);
    }
  }
  return scope;
}

/**
 * The partitions of the slice that `skip` (--only-changed) keeps, by node (only nodes with some):
 * upstream partitions the picked ones need. They stay in the slice (what it releases), but they
 * are done from the start and never run.
 */
export function keptInScope(plan: Plan, scope: ReadonlyMap<string, RangeSet>, skip: Record<string, RangesJSON> = {}): Map<string, RangeSet> {
  const kept = new Map<string, RangeSet>();
  for (const node of plan.nodes) {
    const slice = scope.get(node.id);
    if (!slice || skip[node.id] === undefined) continue;
    const inSlice = slice.minus(slice.minus(RangeSet.fromJSON(skip[node.id]).slice(0, node.partitions.size)));
    if (!inSlice.isEmpty) kept.set(node.id, inSlice);
  }
  return kept;
}

function text(value: unknown, field: string, required: string | null): string | null {
  if (value === undefined || value === null) {
    if (required !== null) throw new BackfillError('invalid_argument', `${field} is missing: ${required}`, field);
    return null;
  }
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_TEXT) {
    throw new BackfillError('invalid_argument', `${field} must be a non-empty string of at most ${MAX_TEXT} characters`, field);
  }
  return value.trim();
}

/** Whether the slice's diff is within `auto`'s bounds: null when it is, else why not. */
export function outsideBounds(diff: CanaryDiff, maxRowChange: string): string | null {
  const most = percentOf(maxRowChange);
  for (const node of diff.nodes) {
    const change = rowChangePercent(node);
    if (change > most) {
      const shown = Number.isFinite(change) ? `${Number(change.toFixed(2))}%` : 'all new (nothing was published before)';
      return `${node.node} changes ${shown} of its rows, above canary.auto.maxRowChange ${maxRowChange}`;
    }
  }
  return null;
}

/** The counts of a diff summary, without its columns (they stay with `backfill diff`). */
export function canaryDiffOf(summary: DiffSummary): CanaryDiff {
  const counts = ({ partitions, rowsBefore, rowsAfter, added, removed, changed }: DiffCounts): DiffCounts => ({ partitions, rowsBefore, rowsAfter, added, removed, changed });
  return { ...counts(summary), nodes: summary.nodes.map((n) => ({ node: n.node, ...counts(n) })) };
}

export class CanaryGate {
  private phase: CanaryPhase;
  readonly config: Canary;
  private readonly scopeSets: Map<string, RangeSet>;
  /** The slice's partitions --only-changed keeps (`keptInScope`): not counted among those it runs. */
  private readonly keptSets: Map<string, RangeSet>;
  private diff: CanaryDiff | undefined;
  private decision: CanaryDecision | undefined;
  private note: string | undefined;

  /**
   * A new canary (`config` and the slice of `plan`), or a carried one. A run that ended while
   * approving or discarding waits again (the warehouse's publish and discard are idempotent); one
   * the slice stopped runs the slice again (its failures are retried by the resumed run).
   */
  constructor(init: { carry: CanaryCarry } | { config: Canary; scope: Map<string, RangeSet>; skip?: Record<string, RangesJSON> }, plan: Plan) {
    if ('carry' in init) {
      const carry = init.carry;
      const phase = PHASES.includes(carry.phase) ? carry.phase : 'running';
      this.phase = phase === 'approving' || phase === 'discarding' ? 'awaiting' : phase === 'failed' ? 'running' : phase;
      this.config = parseCanary(carry.config);
      this.scopeSets = new Map(plan.nodes.map((n) => {
        const set = receivedRanges(carry.scope?.[n.id] ?? '', n.partitions.size);
        return [n.id, typeof set === 'string' ? new RangeSet() : set];
      }));
      // A carry from before it was kept (or a hand-made one that says nothing usable) counts the whole slice.
      this.keptSets = new Map();
      for (const n of plan.nodes) {
        const set = carry.kept?.[n.id] === undefined ? '' : receivedRanges(carry.kept[n.id], n.partitions.size);
        if (typeof set !== 'string' && !set.isEmpty) this.keptSets.set(n.id, set);
      }
      if (carry.diff && this.phase !== 'running') this.diff = carry.diff;
      if (carry.decision && phase === this.phase) this.decision = carry.decision;
      if (carry.note && phase === this.phase) this.note = carry.note;
    } else {
      this.phase = 'running';
      this.config = init.config;
      this.scopeSets = init.scope;
      this.keptSets = keptInScope(plan, init.scope, init.skip);
    }
  }

  get current(): CanaryPhase {
    return this.phase;
  }

  /** The slice runs staged: its partitions are written as staged versions, and nothing beyond it is released. */
  get limiting(): boolean {
    return this.phase !== 'approved';
  }

  /** Approved or discarded or stopped by a failure: nothing more to decide. */
  get decided(): boolean {
    return this.phase === 'approved' || this.phase === 'discarded' || this.phase === 'failed';
  }

  /** Waiting for an operator (or a decision under way): what status shows as awaiting_canary. */
  get waiting(): boolean {
    return this.phase === 'awaiting' || this.phase === 'approving' || this.phase === 'discarding';
  }

  get scope(): ReadonlyMap<string, RangeSet> {
    return this.scopeSets;
  }

  get lastDecision(): CanaryDecision | undefined {
    return this.decision;
  }

  /** The slice has settled: a failure in it stops the backfill (`failed`, with why); else it waits for its diff and a decision. */
  settle(failures: string | null): void {
    if (this.phase !== 'running') return;
    if (failures !== null) {
      this.phase = 'failed';
      this.note = failures;
      return;
    }
    this.phase = 'awaiting';
  }

  /**
   * The slice's diff, once the warehouse has compared it: with `auto`, whether it goes on by
   * itself (true), or why not (kept, and shown by status).
   */
  noteDiff(diff: CanaryDiff): boolean {
    if (this.phase !== 'awaiting') return false;
    this.diff = diff;
    const auto = this.config.auto;
    if (!auto) return false;
    const outside = outsideBounds(diff, auto.maxRowChange);
    if (outside !== null) this.note = `canary.auto did not go on: ${outside}; backfill approve or discard decides`;
    return outside === null;
  }

  /** The diff could not be read: status says so; an operator decides (auto never goes on without it). */
  noteDiffFailed(why: string): void {
    if (this.phase === 'awaiting') this.note = `the canary's diff could not be read (${why}): backfill diff <id> shows it; backfill approve or discard decides`;
  }

  /** Parses a decision and says whether it may be taken now; throws a BackfillError and changes nothing otherwise (the update's validator). */
  parse(action: CanaryAction, value: unknown, auto = false): { by: string; reason: string | null } {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new BackfillError('invalid_argument', `a canary ${action} takes { by, reason }, not ${valueText(value)}`);
    }
    const request = value as Record<string, unknown>;
    const unknown = Object.keys(request).filter((k) => k !== 'by' && k !== 'reason');
    if (unknown.length > 0) throw new BackfillError('invalid_argument', `a canary ${action} takes { by, reason }: unknown field ${unknown.join(', ')}`);
    const parsed = {
      by: text(request.by, 'by', 'say who decides (the client sends its identity)')!,
      reason: text(request.reason, 'reason', action === 'approve' ? 'say why the canary may go on (backfill approve <id> --reason ...)' : null),
    };
    // Only the backfill itself decides as canary.auto.
    if (!auto) refuseReservedIdentity(parsed.by, 'by');
    switch (this.phase) {
      case 'running':
        throw new BackfillError('not_ready', `the canary is still running its ${this.partitions} partitions: wait until status says awaiting_canary, then ${action}`);
      case 'approving':
      case 'discarding':
        throw new BackfillError('already_decided', `the canary is being ${this.phase === 'approving' ? 'approved' : 'discarded'} already (by ${this.decision?.by ?? 'someone'})`);
      case 'approved':
      case 'discarded':
        throw new BackfillError('already_decided', `the canary was ${this.phase} already (by ${this.decision?.by ?? 'someone'})`);
      case 'failed':
        throw new BackfillError('already_decided', `the canary failed (${this.note ?? 'a partition failed'}): the backfill stops`);
      case 'awaiting':
        return parsed;
    }
  }

  /** Takes the decision (the update's handler, or `auto`): the phase becomes approving or discarding. */
  begin(action: CanaryAction, value: unknown, at: number, auto = false): CanaryDecision {
    const { by, reason } = this.parse(action, value, auto);
    this.decision = { action, by, reason, at, auto };
    this.phase = action === 'approve' ? 'approving' : 'discarding';
    return this.decision;
  }

  /** The warehouse did it (`ok`), or refused it: then the canary waits again. */
  end(ok: boolean): void {
    if (this.phase !== 'approving' && this.phase !== 'discarding') throw new Error(`no canary decision under way (phase ${this.phase})`);
    this.phase = ok ? (this.phase === 'approving' ? 'approved' : 'discarded') : 'awaiting';
    if (ok) this.note = undefined;
  }

  /** Partitions the slice runs, upstream closure included: not those --only-changed keeps (done already). */
  get partitions(): number {
    let n = 0;
    for (const [id, set] of this.scopeSets) {
      const kept = this.keptSets.get(id);
      n += kept ? set.minus(kept).size : set.size;
    }
    return n;
  }

  view(): CanaryView {
    return {
      phase: this.phase,
      pick: this.config.pick,
      perNode: this.config.partitions,
      partitions: this.partitions,
      auto: this.config.auto ?? null,
      diff: this.diff ?? null,
      decision: this.decision ?? null,
      note: this.note ?? null,
    };
  }

  toCarry(): CanaryCarry {
    return {
      phase: this.phase,
      config: this.config,
      scope: Object.fromEntries([...this.scopeSets].map(([id, set]) => [id, set.toJSON()])),
      ...(this.keptSets.size > 0 ? { kept: Object.fromEntries([...this.keptSets].map(([id, set]) => [id, set.toJSON()])) } : {}),
      ...(this.diff ? { diff: this.diff } : {}),
      ...(this.decision ? { decision: this.decision } : {}),
      ...(this.note ? { note: this.note } : {}),
    };
  }
}
