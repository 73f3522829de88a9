/**
 * `--only-changed`: which partitions of a plan must be computed again, and which can keep
 * their published version. A partition runs again when it was never published, when its
 * node's spec or the code changed since its published version, when the upstream versions
 * it would read differ from those it read, or when an upstream partition it needs runs
 * again itself. Pure: the facts (published versions, digests of what would be read now)
 * are gathered by the caller.
 */
import { canonicalJson } from './canonical.ts';
import type { Plan } from './plan.ts';
import { RangeSet, type RangesJSON } from './ranges.ts';
import type { Readiness } from './readiness.ts';

/** Why a partition runs again, in order of precedence: a partition is counted under its first reason. */
export const RECOMPUTE_REASONS = ['unpublished', 'spec', 'code', 'inputs', 'upstream'] as const;
export type RecomputeReason = (typeof RECOMPUTE_REASONS)[number];
/** The reasons a partition's own facts give; `upstream` comes from the plan's edges. */
export type OwnReason = Exclude<RecomputeReason, 'upstream'>;
const OWN_REASONS = RECOMPUTE_REASONS.filter((r): r is OwnReason => r !== 'upstream');

/** The digest of the (partition, version) pairs read from one upstream node. */
export type InputDigest = { node: string; digest: string };

/** What a version is made from: what the ledger records, or what a run would use now. */
export type Making = {
  transform: string;
  params: Record<string, unknown>;
  codeVersion: string;
  /** A hash of the node's transform, SQL, parameters and checks; absent from ledgers that do not record it. */
  specHash?: string | null;
  inputs: readonly InputDigest[];
};

/** Why a partition's own facts make it run again, or null when its published version still holds. */
export function ownReason(published: Making | null, now: Making): OwnReason | null {
  if (!published) return 'unpublished';
  const specHashDiffers = typeof published.specHash === 'string' && typeof now.specHash === 'string' && published.specHash !== now.specHash;
  if (published.transform !== now.transform || canonicalJson(published.params) !== canonicalJson(now.params) || specHashDiffers) return 'spec';
  if (published.codeVersion !== now.codeVersion) return 'code';
  return sameInputs(published.inputs, now.inputs) ? null : 'inputs';
}

/** The upstream nodes whose versions as read differ between `published` and `now` (a node read by one side only counts too). */
export function changedInputs(published: readonly InputDigest[], now: readonly InputDigest[]): string[] {
  const was = new Map(published.map((i) => [i.node, i.digest]));
  const is = new Map(now.map((i) => [i.node, i.digest]));
  return [...new Set([...was.keys(), ...is.keys()])].filter((node) => was.get(node) !== is.get(node)).sort();
}

function sameInputs(a: readonly InputDigest[], b: readonly InputDigest[]): boolean {
  if (a.length !== b.length) return false;
  const digests = new Map(a.map((i) => [i.node, i.digest]));
  return b.every((i) => digests.get(i.node) === i.digest);
}

/** The partitions of each node that its own facts send to run again, by reason (disjoint sets). */
export type OwnReasons = ReadonlyMap<string, Partial<Record<OwnReason, RangeSet>>>;

export type NodeDecision = {
  run: RangeSet;
  skip: RangeSet;
  /** How many partitions run for each reason. */
  reasons: Record<RecomputeReason, number>;
  /** The partitions that run for each reason (a partition under its first reason only). */
  runFor: Partial<Record<RecomputeReason, RangeSet>>;
};

/**
 * Decides, node by node in dependency order, which partitions run: those their own facts
 * send, and every partition that needs an upstream partition that runs.
 */
export function decideRecompute(plan: Plan, own: OwnReasons): Map<string, NodeDecision> {
  const decisions = new Map<string, NodeDecision>();
  for (const node of plan.nodes) {
    const size = node.partitions.size;
    const reasons = Object.fromEntries(RECOMPUTE_REASONS.map((r) => [r, 0])) as Record<RecomputeReason, number>;
    const run = new RangeSet();
    const runFor: Partial<Record<RecomputeReason, RangeSet>> = {};
    const mine = own.get(node.id) ?? {};
    for (const reason of OWN_REASONS) {
      const fresh = (mine[reason] ?? new RangeSet()).slice(0, size).minus(run);
      reasons[reason] += fresh.size;
      if (!fresh.isEmpty) runFor[reason] = fresh;
      run.addAll(fresh);
    }
    const upstreamRuns = node.upstream.map((edge) => ({ edge, run: decisions.get(edge.node)!.run })).filter((u) => !u.run.isEmpty);
    if (upstreamRuns.length > 0) {
      for (let j = 0; j < size; j++) {
        if (run.has(j)) continue;
        if (upstreamRuns.some(({ edge, run: up }) => up.intersectsRange(edge.lo[j]!, edge.hi[j]!))) {
          run.add(j);
          (runFor.upstream ??= new RangeSet()).add(j);
          reasons.upstream++;
        }
      }
    }
    decisions.set(node.id, { run, skip: RangeSet.of([0, size]).minus(run), reasons, runFor });
  }
  return decisions;
}

/** The `skip` field of a backfill's input: only nodes with something to skip. */
export function skipOf(decisions: ReadonlyMap<string, NodeDecision>): Record<string, RangesJSON> {
  return Object.fromEntries([...decisions].filter(([, d]) => !d.skip.isEmpty).map(([id, d]) => [id, d.skip.toJSON()]));
}

/**
 * What a fresh run of the parent releases first: the skipped partitions count as done
 * (releasing what waits only on them), then everything whose upstream is done is released.
 * Without `skip` this is `readiness.releaseAll()`.
 */
export function initialRelease(plan: Plan, readiness: Readiness, skip: Record<string, RangesJSON> = {}): Map<string, RangeSet> {
  const released = new Map<string, RangeSet>();
  const collect = (more: Map<string, RangeSet>) => {
    for (const [id, set] of more) released.set(id, (released.get(id) ?? new RangeSet()).addAll(set));
  };
  for (const node of plan.nodes) {
    const skipped = RangeSet.fromJSON(skip[node.id]).slice(0, node.partitions.size);
    if (!skipped.isEmpty) collect(readiness.markDone(node.id, skipped));
  }
  collect(readiness.releaseAll());
  for (const [id, set] of released) {
    set.deleteAll(readiness.done(id));
    if (set.isEmpty) released.delete(id);
  }
  return released;
}
