/**
 * `expandPlan` turns a resolved spec into the partition graph a backfill runs: every node's
 * ordered partitions and, for each partition, the upstream partitions it waits for.
 *
 * Every mapping sends a downstream partition to one contiguous run of an upstream node's
 * partitions, so a dependency is stored as an index range [lo, hi) per partition and edge
 * (two Int32Arrays), whatever the mapping: 100,000 partitions cost under a megabyte.
 */
import { formatInstant } from './calendar.ts';
import { BackfillError } from './errors.ts';
import { NodePartitions } from './partitions.ts';
import { topologicalOrder } from './graph.ts';
import { specNotes } from './spec-notes.ts';
import { grainOf, upstreamRanges } from './mapping.ts';
import type { Mapping, PartitionRange, ResolvedNode, ResolvedPartitions, ResolvedSpec } from './spec.ts';
import type { Windows } from './windows.ts';

export type PlanEdge = {
  /** The upstream node. */
  node: string;
  mapping: Mapping;
  /** Upstream index range [lo[j], hi[j]) that downstream partition j needs (empty when lo == hi). */
  lo: Int32Array;
  hi: Int32Array;
  /** lo and hi never decrease with j, which lets `dependents` use binary search. */
  monotone: boolean;
  /** The upstream node's partitions within the backfill's range, to turn index ranges back into keys. */
  source: NodePartitions;
  /**
   * The upstream node's partitions whatever the range: a partition reads every upstream
   * partition it maps to, also those outside the range (they are not waited for: they are
   * treated as present), and of a time node the periods before and after them too, so its
   * inputs are named in this index space (`partitionInputs`).
   */
  full: NodePartitions;
  /** The downstream node's partitions (this edge's `j`). */
  target: NodePartitions;
};

export type PlanNode = {
  id: string;
  spec: ResolvedNode;
  partitions: NodePartitions;
  upstream: PlanEdge[];
  /** Ids of the nodes that depend on this one. */
  downstream: string[];
};

export type Plan = {
  name: string;
  /** Nodes in dependency order. */
  nodes: PlanNode[];
  byId: ReadonlyMap<string, PlanNode>;
  totalPartitions: number;
};

export type PlanStats = {
  totalPartitions: number;
  /** Partitions on the longest dependency chain. */
  criticalPathLength: number;
  /** The largest number of partitions that share one depth. */
  maxWidth: number;
};

/**
 * `up` is the upstream node's partitions within the backfill's range (what partitions wait
 * for); `full` the same node's partitions whatever the range (what partitions read).
 */
function buildEdge(down: NodePartitions, up: NodePartitions, full: NodePartitions, upId: string, mapping: Mapping): PlanEdge {
  const n = down.size;
  const { lo, hi } = upstreamRanges(down, up, mapping);
  let monotone = true;
  for (let j = 1; j < n && monotone; j++) monotone = lo[j]! >= lo[j - 1]! && hi[j]! >= hi[j - 1]!;
  return { node: upId, mapping, lo, hi, monotone, source: up, full, target: down };
}

/**
 * Expands a spec into its partition graph, narrowed to `range` when given. Upstream
 * partitions outside the range are treated as already present: a dependency on them is
 * dropped. Pure and deterministic, so the client previews exactly what the workflows run.
 */
export function expandPlan(spec: ResolvedSpec, range: PartitionRange = {}): Plan {
  const order = topologicalOrder(spec.nodes.map((n) => ({ id: n.id, upstream: n.dependsOn.map((d) => d.node) })));
  const specById = new Map(spec.nodes.map((n) => [n.id, n]));
  const byId = new Map<string, PlanNode>();
  const nodes: PlanNode[] = [];
  for (const id of order) {
    const nodeSpec = specById.get(id)!;
    const partitions = NodePartitions.of(nodeSpec.partitions, range);
    const upstream = nodeSpec.dependsOn.map((dep) => {
      const up = byId.get(dep.node)!;
      up.downstream.push(id);
      return buildEdge(partitions, up.partitions, NodePartitions.of(up.spec.partitions), dep.node, dep.mapping);
    });
    const node: PlanNode = { id, spec: nodeSpec, partitions, upstream, downstream: [] };
    byId.set(id, node);
    nodes.push(node);
  }
  return { name: spec.name, nodes, byId, totalPartitions: nodes.reduce((sum, n) => sum + n.partitions.size, 0) };
}

/**
 * Refuses a `--from`/`--to` that leaves no partition of any node: a backfill started with it
 * would run nothing and report itself completed, which reads as if the range had been done.
 * Counts each node's partitions without expanding the plan (the start expands it later).
 */
export function requirePartitionsInRange(spec: ResolvedSpec, range: PartitionRange): void {
  if (range.from === undefined && range.to === undefined) return;
  const spans = spec.nodes.flatMap((n) => (n.partitions.kind === 'static' ? [] : [n.partitions]));
  // Static keys take every range: a range that holds no time partition would run only them (a mistyped year rewrote them all).
  if (spans.length === 0 || spec.nodes.some((n) => n.partitions.kind === 'time' && NodePartitions.of(n.partitions, range).size > 0)) return;
  const first = formatInstant(Math.min(...spans.map((s) => s.start)));
  const end = formatInstant(Math.max(...spans.map((s) => s.end)));
  const asked = `${range.from === undefined ? 'the start' : formatInstant(range.from)} to ${range.to === undefined ? 'the end' : formatInstant(range.to)}`;
  throw new BackfillError(
    'invalid_date',
    `--from/--to (${asked}) holds no partition of any node: the spec's partitions run from ${first} to ${end} (exclusive); choose a range that overlaps them, or leave out --from and --to for all of them${spans.length < spec.nodes.length ? " (its nodes of static keys take any range: only they would have run)" : ''}`,
    range.from === undefined ? 'to' : 'from',
  );
}

/**
 * What --from/--to asked beyond the spec's partitions, which the range is cut to without a
 * word otherwise (`--from 2024-02-01` for a spec from 2024-03-01 runs from 2024-03-01); null
 * when it asked nothing beyond them.
 */
export function rangeBeyondSpec(spec: ResolvedSpec, range: PartitionRange): string | null {
  const spans = spec.nodes.flatMap((n) => (n.partitions.kind === 'static' ? [] : [n.partitions]));
  if (spans.length === 0) return null;
  const first = Math.min(...spans.map((s) => s.start));
  const end = Math.max(...spans.map((s) => s.end));
  const beyond = [
    ...(range.from !== undefined && range.from < first ? [`--from ${formatInstant(range.from)} is before the spec's first partition, ${formatInstant(first)}`] : []),
    ...(range.to !== undefined && range.to > end ? [`--to ${formatInstant(range.to)} is after the spec's end, ${formatInstant(end)} (exclusive)`] : []),
  ];
  if (beyond.length === 0) return null;
  return `${beyond.join(', and ')}: the backfill covers only the spec's partitions in the range (widen the spec's partitions to go beyond them)`;
}

/**
 * One node of the plan with its upstream edges, without expanding the rest of the graph:
 * what a node workflow needs to run its partitions and name their inputs. It needs only the
 * node's own spec and its upstream nodes' partitions.
 */
export function expandNode(node: ResolvedNode, upstream: Readonly<Record<string, ResolvedPartitions>>, range: PartitionRange = {}): PlanNode {
  const partitions = NodePartitions.of(node.partitions, range);
  const edges = node.dependsOn.map((dep) => {
    const source = upstream[dep.node];
    if (!source) throw new RangeError(`node '${node.id}' depends on '${dep.node}', whose partitions were not given`);
    return buildEdge(partitions, NodePartitions.of(source, range), NodePartitions.of(source), dep.node, dep.mapping);
  });
  return { id: node.id, spec: node, partitions, upstream: edges, downstream: [] };
}

/** The partitions of a node's upstream nodes, from the whole spec (what `expandNode` needs). */
export function upstreamPartitions(spec: ResolvedSpec, nodeId: string): Record<string, ResolvedPartitions> {
  const byId = new Map(spec.nodes.map((n) => [n.id, n]));
  const node = byId.get(nodeId);
  if (!node) throw new RangeError(`unknown node '${nodeId}' (nodes: ${spec.nodes.map((n) => n.id).join(', ')})`);
  return Object.fromEntries(node.dependsOn.map((dep) => [dep.node, byId.get(dep.node)!.partitions]));
}

export function planNode(plan: Plan, id: string): PlanNode {
  const node = plan.byId.get(id);
  if (!node) throw new RangeError(`unknown node '${id}' (nodes: ${plan.nodes.map((n) => n.id).join(', ')})`);
  return node;
}

/** The upstream partitions that partition `index` of `nodeId` waits for, as index ranges. */
export function upstreamOf(plan: Plan, nodeId: string, index: number): Array<{ node: string; start: number; end: number }> {
  return planNode(plan, nodeId)
    .upstream.filter((edge) => edge.hi[index]! > edge.lo[index]!)
    .map((edge) => ({ node: edge.node, start: edge.lo[index]!, end: edge.hi[index]! }));
}

/** Range-maximum queries in O(1) after an O(n log n) sparse table. */
export class RangeMax {
  private readonly levels: Int32Array[];

  constructor(values: Int32Array) {
    this.levels = [values];
    for (let width = 2; width <= values.length; width *= 2) {
      const prev = this.levels[this.levels.length - 1]!;
      const half = width / 2;
      const level = new Int32Array(values.length - width + 1);
      for (let i = 0; i < level.length; i++) level[i] = Math.max(prev[i]!, prev[i + half]!);
      this.levels.push(level);
    }
  }

  /** Maximum of values[lo..hi), or 0 for an empty range. */
  max(lo: number, hi: number): number {
    if (hi <= lo) return 0;
    const k = 31 - Math.clz32(hi - lo);
    const level = this.levels[k]!;
    return Math.max(level[lo]!, level[hi - (1 << k)]!);
  }
}

/**
 * Critical path and width: a partition's depth is 1 plus the largest depth of the
 * partitions it waits for; the critical path is the largest depth and the width the
 * largest number of partitions that share one depth.
 */
export function planStats(plan: Plan): PlanStats {
  const depths = new Map<string, RangeMax>();
  const histogram = new Map<number, number>();
  let critical = 0;
  for (const node of plan.nodes) {
    const depth = new Int32Array(node.partitions.size);
    const ups = node.upstream.map((edge) => ({ edge, depth: depths.get(edge.node)! }));
    for (let j = 0; j < depth.length; j++) {
      let d = 0;
      for (const { edge, depth: upDepth } of ups) d = Math.max(d, upDepth.max(edge.lo[j]!, edge.hi[j]!));
      depth[j] = d + 1;
      histogram.set(d + 1, (histogram.get(d + 1) ?? 0) + 1);
      critical = Math.max(critical, d + 1);
    }
    if (node.downstream.length > 0) depths.set(node.id, new RangeMax(depth));
  }
  return {
    totalPartitions: plan.totalPartitions,
    criticalPathLength: critical,
    maxWidth: [...histogram.values()].reduce((a, b) => Math.max(a, b), 0),
  };
}

/** The `plan --json` document (a stable contract: keys may be added, never renamed); `windows`: the spec's run windows, when it has them. */
export function planSummary(plan: Plan, windows?: Windows) {
  const stats = planStats(plan);
  const notes = specNotes(plan.nodes);
  return {
    name: plan.name,
    ...(windows ? { windows } : {}),
    /** What looks wrong without being refused (a table read whose name is a node's with a typo, a column left unnamed, a partial first or last period). */
    ...(notes.length > 0 ? { notes } : {}),
    totalPartitions: stats.totalPartitions,
    criticalPathLength: stats.criticalPathLength,
    maxWidth: stats.maxWidth,
    nodes: plan.nodes.map((node) => ({
      id: node.id,
      grain: grainOf(node.spec.partitions),
      partitions: node.partitions.size,
      first: node.partitions.size > 0 ? node.partitions.key(0) : null,
      last: node.partitions.size > 0 ? node.partitions.key(node.partitions.size - 1) : null,
      transform: node.spec.transform,
      dependsOn: node.upstream.map((edge) => ({ node: edge.node, mapping: edge.mapping })),
    })),
  };
}

export type PlanSummary = ReturnType<typeof planSummary>;
