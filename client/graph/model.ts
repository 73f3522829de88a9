/**
 * The graph of a plan's datasets, as the pictures draw it: one box per node with its grain,
 * partition count and transform, one arrow per dependency labelled with its mapping, and,
 * in the report, each node's outcome. `dot.ts`, `mermaid.ts` and `svg.ts` draw it.
 */
import { describeMapping } from '../../core/mapping.ts';
import type { PlanSummary } from '../../core/plan.ts';

/** How a node's partitions ended, in the report: its colour. */
export const OUTCOMES = ['completed', 'failed', 'blocked', 'incomplete', 'planned'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type GraphNode = { id: string; grain: string; partitions: number; transform: string; outcome?: Outcome; note?: string };
export type GraphEdge = { from: string; to: string; mapping: string };
export type PlanGraph = { name: string; nodes: GraphNode[]; edges: GraphEdge[] };

/** The nodes and dependencies as `plan --json` and the report's plan name them. */
export type GraphSource = {
  name: string;
  nodes: ReadonlyArray<{ id: string; grain: string; partitions: number; transform: string; dependsOn: ReadonlyArray<{ node: string; mapping: string }> }>;
};

export function planGraph(source: GraphSource, outcomes?: ReadonlyMap<string, { outcome: Outcome; note: string }>): PlanGraph {
  return {
    name: source.name,
    nodes: source.nodes.map((n) => {
      const o = outcomes?.get(n.id);
      return { id: n.id, grain: n.grain, partitions: n.partitions, transform: n.transform, ...(o ? { outcome: o.outcome, note: o.note } : {}) };
    }),
    edges: source.nodes.flatMap((n) => n.dependsOn.map((d) => ({ from: d.node, to: n.id, mapping: d.mapping }))),
  };
}

/** The graph of `plan --format`: the plan summary, its mappings described. */
export function summaryGraph(summary: PlanSummary): PlanGraph {
  return planGraph({ name: summary.name, nodes: summary.nodes.map((n) => ({ ...n, dependsOn: n.dependsOn.map((d) => ({ node: d.node, mapping: describeMapping(d.mapping) })) })) });
}

/** A node's outcome from its counts: every partition done, some failed, some blocked by failures, or not all done yet. */
export function outcomeOf(counts: { partitions: number; done: number; failed: number | null; blocked: number | null }): Outcome {
  if ((counts.failed ?? 0) > 0) return 'failed';
  if ((counts.blocked ?? 0) > 0) return 'blocked';
  return counts.done >= counts.partitions ? 'completed' : 'incomplete';
}

/** Fill and line colours of each outcome (GitHub's palette, as the report's text uses). */
export const OUTCOME_COLORS: Record<Outcome, { fill: string; line: string }> = {
  completed: { fill: '#dafbe1', line: '#1a7f37' },
  failed: { fill: '#ffebe9', line: '#d1242f' },
  blocked: { fill: '#fff8c5', line: '#9a6700' },
  incomplete: { fill: '#ddf4ff', line: '#0969da' },
  planned: { fill: '#f6f8fa', line: '#57606a' },
};

export { number } from '../counts.ts';
