/** A plan graph as a Mermaid flowchart: `plan --format mermaid`, for Markdown that renders it (GitHub, GitLab, many wikis). */
import { OUTCOMES, OUTCOME_COLORS, number, type PlanGraph } from './model.ts';
import { printableText } from '../printable.ts';

/**
 * Mermaid's entity codes for what its parser, its Markdown strings (`) or its HTML labels would
 * read as syntax, and for # that would start an entity code; `[` and `]` too, so a label is no
 * Markdown link wherever the chart's text ends up.
 */
const ENTITY: Record<string, string> = { '#': '#35;', '&': '#amp;', '"': '#quot;', '<': '#lt;', '>': '#gt;', '|': '#124;', '`': '#96;', '[': '#91;', ']': '#93;' };

/** Label text on one line (a line break would end the statement), with entity codes for syntax. */
function text(value: string): string {
  return printableText(value).replace(/[#&"<>|`[\]]/g, (c) => ENTITY[c]!);
}

export function toMermaid(graph: PlanGraph): string {
  // Node ids of the spec may be Mermaid keywords ("end", "graph"): the chart uses its own.
  const ids = new Map(graph.nodes.map((n, i) => [n.id, `n${i}`]));
  const lines = ['flowchart LR'];
  for (const node of graph.nodes) {
    const label = [`<b>${text(node.id)}</b>`, `${text(node.grain)} · ${number(node.partitions)} partition${node.partitions === 1 ? '' : 's'}`, `<small>${text(node.transform)}</small>`];
    if (node.note) label.push(`<small>${text(node.note)}</small>`);
    lines.push(`  ${ids.get(node.id)}["${label.join('<br/>')}"]`);
  }
  for (const edge of graph.edges) lines.push(`  ${ids.get(edge.from)} -->|${text(edge.mapping)}| ${ids.get(edge.to)}`);
  const used = OUTCOMES.filter((o) => graph.nodes.some((n) => (n.outcome ?? 'planned') === o));
  for (const outcome of used) {
    const c = OUTCOME_COLORS[outcome];
    lines.push(`  classDef ${outcome} fill:${c.fill},stroke:${c.line},color:#1f2328`);
    lines.push(`  class ${graph.nodes.filter((n) => (n.outcome ?? 'planned') === outcome).map((n) => ids.get(n.id)).join(',')} ${outcome}`);
  }
  return `${lines.join('\n')}\n`;
}
