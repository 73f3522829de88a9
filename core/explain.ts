/**
 * `plan --explain`: why each node and each of its partitions is in a backfill. A node's
 * partitions are those whose period overlaps the range (all of a static node's keys); a
 * coarser node's partition that sticks out of the range widens the backfill. Each upstream
 * edge says through which mapping the node waits on which upstream partitions of the
 * backfill, which upstream partitions outside the range it reads as they are (treated as
 * present, not recomputed), and which the mapping names that the upstream node does not have
 * (read as far as published, for periods outside the node's own).
 * With `--only-changed`, each node also says how many partitions run and why.
 */
import { describeMapping, grainOf, upstreamRange, type UpstreamRange } from './mapping.ts';
import { RECOMPUTE_REASONS, type NodeDecision, type RecomputeReason } from './only-changed.ts';
import type { Plan, PlanEdge, PlanNode } from './plan.ts';
import { RangeSet } from './ranges.ts';
import type { PartitionRange } from './spec.ts';

/** Partitions as a count, and their runs of consecutive keys (`first … last`), the first few of them. */
export type KeySpan = { partitions: number; runs: string[]; moreRuns: number };

/** Runs of consecutive keys a KeySpan lists at most. */
const RUNS = 3;

export type EdgeExplanation = {
  node: string;
  /** The grain of `node`, or `static`. */
  grain: string;
  mapping: string;
  /** Partitions of this node that wait for partitions of `node` in the backfill. */
  waiting: number;
  /** Distinct partitions of `node` in the backfill that this node waits for. */
  waitsFor: KeySpan;
  /** Distinct partitions of `node` outside the backfill's range that this node reads: treated as present, not recomputed. */
  readsOutside: KeySpan;
  /**
   * Partitions the mapping names that `node` does not have: periods before its first or after
   * its last partition, which are read as far as they are published (an earlier backfill's),
   * or static keys it lacks, which read nothing.
   */
  missing: number;
};

export type Widening = {
  /** This node's partitions that reach outside the range. */
  partitions: number;
  /** How far its first partition starts before the range, and its last ends after it, in ms. */
  beforeMs: number;
  afterMs: number;
};

export type ChangeExplanation = {
  run: number;
  keep: number;
  /** Partitions that run, by their first reason. */
  reasons: Record<RecomputeReason, number>;
  /** For partitions that run because an upstream partition runs: the upstream nodes, with how many of this node's partitions each sends. */
  becauseOf: Array<{ node: string; partitions: number }>;
};

export type NodeExplanation = {
  id: string;
  grain: string;
  partitions: number;
  first: string | null;
  last: string | null;
  /** `range`: its partitions overlap the range; `static`: every key, whatever the range; `outside`: none overlaps the range. */
  why: 'range' | 'static' | 'outside';
  widened: Widening;
  upstream: EdgeExplanation[];
  /** Nodes that wait on this one. */
  downstream: string[];
  changed?: ChangeExplanation;
};

export type Explanation = {
  range: { from: number | null; to: number | null };
  nodes: NodeExplanation[];
  /** Partitions in the plan; with --only-changed, those that run. These are what the backfill executes. */
  totalPartitions: number;
  totalToRun: number;
};

function span(keys: (i: number) => string, set: RangeSet): KeySpan {
  const runs: string[] = [];
  for (const [start, end] of set.ranges()) {
    if (runs.length === RUNS) break;
    runs.push(end - start === 1 ? keys(start) : `${keys(start)} … ${keys(end - 1)}`);
  }
  return { partitions: set.size, runs, moreRuns: set.rangeCount - runs.length };
}

/** Where `edge.source` (the upstream partitions in the range) starts in `edge.full` (all of them). */
function sourceOffset(edge: PlanEdge): number {
  if (edge.source.size === 0) return 0;
  return edge.full.indexOf(edge.source.key(0));
}

/**
 * Adds the periods of [namedLo, namedHi) that `size` partitions from index 0 do not hold: those
 * before the first counted back from it in `before` (index -1 is 0), those after the last in `after`.
 */
function addBeyond(range: UpstreamRange, size: number, before: RangeSet, after: RangeSet): void {
  const { namedLo, namedHi } = range;
  if (namedLo < Math.min(namedHi, 0)) before.addRange(-Math.min(namedHi, 0), -namedLo);
  if (namedHi > Math.max(namedLo, size)) after.addRange(Math.max(namedLo, size) - size, namedHi - size);
}

function explainEdge(edge: PlanEdge): EdgeExplanation {
  const waitsFor = new RangeSet();
  const read = new RangeSet();
  const before = new RangeSet();
  const after = new RangeSet();
  let waiting = 0;
  let missing = 0;
  const n = edge.target.size;
  for (let j = 0; j < n; j++) {
    if (edge.hi[j]! > edge.lo[j]!) {
      waiting++;
      waitsFor.addRange(edge.lo[j]!, edge.hi[j]!);
    }
    const full = upstreamRange(edge.target, j, edge.full, edge.mapping);
    if (full.hi > full.lo) read.addRange(full.lo, full.hi);
    addBeyond(full, edge.full.size, before, after);
    // Each static partition names its own key: a key one lacks is no other's.
    missing += full.missing;
  }
  const offset = sourceOffset(edge);
  const outside = read.minus(RangeSet.of([offset, offset + edge.source.size]));
  return {
    node: edge.node,
    grain: edge.full.grain,
    mapping: describeMapping(edge.mapping),
    waiting,
    waitsFor: span((i) => edge.source.key(i), waitsFor),
    readsOutside: span((i) => edge.full.key(i), outside),
    missing: missing + before.size + after.size,
  };
}

function widening(node: PlanNode, range: PartitionRange): Widening {
  const parts = node.partitions;
  if (parts.grain === 'static' || parts.size === 0) return { partitions: 0, beforeMs: 0, afterMs: 0 };
  const first = parts.window(0)!;
  const last = parts.window(parts.size - 1)!;
  const beforeMs = range.from !== undefined ? Math.max(0, range.from - first.start) : 0;
  const afterMs = range.to !== undefined ? Math.max(0, last.end - range.to) : 0;
  const partitions = parts.size === 1 ? (beforeMs > 0 || afterMs > 0 ? 1 : 0) : (beforeMs > 0 ? 1 : 0) + (afterMs > 0 ? 1 : 0);
  return { partitions, beforeMs, afterMs };
}

function explainChange(node: PlanNode, decisions: ReadonlyMap<string, NodeDecision>): ChangeExplanation {
  const decision = decisions.get(node.id)!;
  const becauseOf: Array<{ node: string; partitions: number }> = [];
  const sent = decision.runFor.upstream;
  if (sent) {
    // Partitions that run for no reason of their own: an upstream partition they need runs.
    for (const edge of node.upstream) {
      const up = decisions.get(edge.node)!.run;
      let count = 0;
      for (const j of sent) if (up.intersectsRange(edge.lo[j]!, edge.hi[j]!)) count++;
      if (count > 0) becauseOf.push({ node: edge.node, partitions: count });
    }
  }
  return { run: decision.run.size, keep: decision.skip.size, reasons: { ...decision.reasons }, becauseOf };
}

/** Why each node and partition is in the backfill; `decisions` from `--only-changed`. */
export function explainPlan(plan: Plan, range: PartitionRange = {}, decisions?: ReadonlyMap<string, NodeDecision>): Explanation {
  const nodes = plan.nodes.map((node): NodeExplanation => {
    const size = node.partitions.size;
    return {
      id: node.id,
      grain: grainOf(node.spec.partitions),
      partitions: size,
      first: size > 0 ? node.partitions.key(0) : null,
      last: size > 0 ? node.partitions.key(size - 1) : null,
      why: node.partitions.grain === 'static' ? 'static' : size > 0 ? 'range' : 'outside',
      widened: widening(node, range),
      upstream: node.upstream.map(explainEdge),
      downstream: node.downstream,
      ...(decisions ? { changed: explainChange(node, decisions) } : {}),
    };
  });
  const totalPartitions = plan.totalPartitions;
  return {
    range: { from: range.from ?? null, to: range.to ?? null },
    nodes,
    totalPartitions,
    totalToRun: decisions ? nodes.reduce((sum, n) => sum + n.changed!.run, 0) : totalPartitions,
  };
}

export { RECOMPUTE_REASONS };
