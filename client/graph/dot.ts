/** A plan graph in Graphviz's DOT language: `plan --format dot`, and what `svg.ts` lays out. */
import { OUTCOME_COLORS, number, type GraphNode, type PlanGraph } from './model.ts';
import { printableText } from '../printable.ts';

/**
 * Text inside an HTML-like label: the five characters that markup gives meaning to, and the
 * backslash, doubled: Graphviz expands \N, \G, \L ... in HTML-like labels too (after it decodes
 * entities, so &#92; would not do), and reads \\ there as one backslash.
 */
function html(text: string): string {
  return printableText(text)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
    .replaceAll('\\', '\\\\');
}

/**
 * A double-quoted DOT string, read back as written: in one, Graphviz takes only \" as an escape
 * (a quote) and keeps a pair \\ as two backslashes. So only quotes are escaped; an odd run of
 * backslashes before a quote or the closing quote would take it, and a space ends the run.
 */
function quoted(text: string): string {
  const body = printableText(text)
    .replace(/\\+(?="|$)/g, (run) => (run.length % 2 === 1 ? `${run} ` : run))
    .replaceAll('"', '\\"');
  return `"${body}"`;
}

function nodeLine(node: GraphNode): string {
  const colors = OUTCOME_COLORS[node.outcome ?? 'planned'];
  const lines = [`<B>${html(node.id)}</B>`, `${html(node.grain)} · ${number(node.partitions)} partition${node.partitions === 1 ? '' : 's'}`, `<FONT POINT-SIZE="9" COLOR="#59636e">${html(node.transform)}</FONT>`];
  if (node.note) lines.push(`<FONT POINT-SIZE="9">${html(node.note)}</FONT>`);
  const attributes = [
    `id=${quoted(`node-${node.id}`)}`,
    `class=${quoted(`dataset outcome-${node.outcome ?? 'planned'}`)}`,
    `label=<${lines.join('<BR/>')}>`,
    `fillcolor=${quoted(colors.fill)}`,
    `color=${quoted(colors.line)}`,
  ];
  return `  ${quoted(node.id)} [${attributes.join(', ')}];`;
}

/** The font Graphviz sizes labels for: one whose metrics its WebAssembly build has (it reads no font files), among the wider ones. */
export const FONT = 'DejaVu Sans';

export function toDot(graph: PlanGraph): string {
  return [
    `digraph ${quoted(graph.name)} {`,
    `  graph [rankdir=LR, nodesep=0.35, ranksep=0.7, pad=0.2, fontname=${quoted(FONT)}];`,
    `  node [shape=box, style="rounded,filled", penwidth=1.2, margin="0.15,0.08", fontname=${quoted(FONT)}, fontsize=11, fontcolor="#1f2328"];`,
    `  edge [color="#57606a", arrowsize=0.7, fontname=${quoted(FONT)}, fontsize=9, fontcolor="#59636e"];`,
    ...graph.nodes.map(nodeLine),
    ...graph.edges.map((e) => `  ${quoted(e.from)} -> ${quoted(e.to)} [id=${quoted(`edge-${e.from}-${e.to}`)}, class="dependency", label=${quoted(e.mapping)}];`),
    '}',
    '',
  ].join('\n');
}
