/** The report's graph: the plan's datasets, each coloured by how its partitions ended (client/graph/ draws it). */
import { OUTCOMES, OUTCOME_COLORS, number, outcomeOf, planGraph, type Outcome, type PlanGraph } from '../graph/model.ts';
import type { Report } from './model.ts';

export function reportGraph(report: Report): PlanGraph {
  const outcomes = new Map<string, { outcome: Outcome; note: string }>();
  for (const node of report.nodes) {
    const outcome = outcomeOf(node);
    const parts = [`${number(node.done)}/${number(node.partitions)} done`];
    if ((node.failed ?? 0) > 0) parts.push(`${number(node.failed!)} failed`);
    if ((node.blocked ?? 0) > 0) parts.push(`${number(node.blocked!)} blocked`);
    outcomes.set(node.id, { outcome, note: parts.join(' · ') });
  }
  return planGraph({ name: report.spec.name, nodes: report.plan.nodes }, outcomes);
}

const WORDS: Record<Outcome, string> = {
  completed: 'every partition done',
  failed: 'some partitions failed',
  blocked: 'some wait on a failed partition',
  incomplete: 'not all done yet',
  planned: 'planned',
};

/** The colours the graph uses, and what each means. */
export function legend(graph: PlanGraph): Array<{ outcome: Outcome; fill: string; line: string; words: string }> {
  return OUTCOMES.filter((o) => graph.nodes.some((n) => n.outcome === o)).map((o) => ({ outcome: o, ...OUTCOME_COLORS[o], words: WORDS[o] }));
}
