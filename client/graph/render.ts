/** One entry point for every picture format of a plan graph (`plan --format`). */
import { BackfillError } from '../../core/errors.ts';
import { toDot } from './dot.ts';
import { toMermaid } from './mermaid.ts';
import type { PlanGraph } from './model.ts';
import { toSvg } from './svg.ts';

export const GRAPH_FORMATS = ['svg', 'dot', 'mermaid'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

export function graphFormat(value: string): GraphFormat {
  const format = GRAPH_FORMATS.find((f) => f === value);
  if (!format) throw new BackfillError('invalid_argument', `--format '${value}' is not a picture format: use ${GRAPH_FORMATS.join(', ')}`, 'format');
  return format;
}

export async function drawGraph(graph: PlanGraph, format: GraphFormat): Promise<string> {
  if (format === 'dot') return toDot(graph);
  if (format === 'mermaid') return toMermaid(graph);
  return `${await toSvg(graph)}\n`;
}

/** `plan --format` prints a picture only: the flags that print something else would be ignored, so they are refused. */
export function checkPictureFlags(flags: { format?: GraphFormat; json?: boolean; estimate?: boolean; explain?: boolean; onlyChanged?: boolean }): void {
  if (!flags.format) return;
  const others = (['json', 'estimate', 'explain', 'onlyChanged'] as const).filter((f) => flags[f]).map((f) => (f === 'onlyChanged' ? '--only-changed' : `--${f}`));
  if (others.length > 0) {
    throw new BackfillError('invalid_argument', `--format ${flags.format} prints a picture of the graph only: leave out ${others.join(' and ')}, or --format to print the plan`, 'format');
  }
}
