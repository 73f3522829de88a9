/** Human output of `plan --explain`: why each node and partition is in the backfill, and with --only-changed, what changed. */
import pc from 'picocolors';
import { formatDuration } from '../core/duration.ts';
import { RECOMPUTE_REASONS, type EdgeExplanation, type Explanation, type KeySpan, type NodeExplanation } from '../core/explain.ts';
import type { ChangeDetails } from './only-changed.ts';
import { number, plural } from './counts.ts';

const keys = (s: KeySpan) => (s.runs.length === 0 ? '' : ` (${s.runs.join(', ')}${s.moreRuns > 0 ? ` and ${plural(s.moreRuns, 'more run')}` : ''})`);
const day = (ms: number) => new Date(ms).toISOString().replace(/T00:00:00\.000Z$/, '').replace(/:00:00\.000Z$/, '').replace('T', 'T');
const length = (ms: number) => (ms % 86_400_000 === 0 ? plural(ms / 86_400_000, 'day') : formatDuration(ms));

const REASON_WORDS: Record<(typeof RECOMPUTE_REASONS)[number], string> = {
  unpublished: 'never published',
  spec: 'spec changed',
  code: 'code changed',
  inputs: 'upstream versions changed',
  upstream: 'an upstream partition they need runs again',
};

/** The explanation with what changed merged in: the `plan --explain --json` document's `explain`. */
export function explainDocument(explanation: Explanation, details?: ReadonlyMap<string, ChangeDetails>) {
  if (!details) return explanation;
  return { ...explanation, nodes: explanation.nodes.map((n) => (n.changed ? { ...n, changed: { ...n.changed, details: details.get(n.id) ?? null } } : n)) };
}

/** What the mapping names that the upstream node does not have, and what is read of it. */
function missingPart(edge: EdgeExplanation): string {
  if (edge.grain === 'static') return `the mapping names ${plural(edge.missing, 'key')} ${edge.node} does not have: reads none of them`;
  return `the mapping names ${plural(edge.missing, 'partition')} outside ${edge.node} (before its start or after its end): reads them as published, never computes them`;
}

function edgeLine(edge: EdgeExplanation): string {
  const parts = [`waits on ${edge.node} through ${edge.mapping}: ${plural(edge.waiting, 'partition')} ${edge.waiting === 1 ? 'waits' : 'wait'} for ${number(edge.waitsFor.partitions)} of it${keys(edge.waitsFor)}`];
  if (edge.readsOutside.partitions > 0) parts.push(`reads ${number(edge.readsOutside.partitions)} outside the range as published${keys(edge.readsOutside)}, not recomputed`);
  if (edge.missing > 0) parts.push(missingPart(edge));
  return `    ${parts.join('; ')}`;
}

function whyLine(node: NodeExplanation): string {
  if (node.why === 'static') return 'static keys: every key, whatever the range';
  if (node.why === 'outside') return 'none of its partitions overlaps the range: nothing runs';
  const w = node.widened;
  const widened = w.partitions > 0 ? `; widened: ${plural(w.partitions, 'partition')} reach${w.partitions === 1 ? 'es' : ''} outside the range (${[w.beforeMs > 0 && `${length(w.beforeMs)} before`, w.afterMs > 0 && `${length(w.afterMs)} after`].filter(Boolean).join(', ')})` : '';
  return `${node.partitions === 1 ? 'its period overlaps' : 'their periods overlap'} the range${widened}`;
}

function changeLines(node: NodeExplanation, details: ChangeDetails | undefined): string[] {
  const c = node.changed;
  if (!c) return [];
  const why = RECOMPUTE_REASONS.filter((r) => c.reasons[r] > 0).map((r) => `${number(c.reasons[r])} ${REASON_WORDS[r]}`);
  const lines = [`    only changed: ${number(c.run)} run, ${number(c.keep)} keep their published versions${why.length > 0 ? ` (${why.join(', ')})` : ''}`];
  if (c.becauseOf.length > 0) lines.push(`      upstream that runs again: ${c.becauseOf.map((b) => `${b.node} (${number(b.partitions)})`).join(', ')}`);
  if (details) {
    const short = (v: string | null) => (v === null ? 'unrecorded' : v.length > 16 ? `${v.slice(0, 12)}…` : v);
    if (c.reasons.spec > 0) lines.push(`      spec: made with ${details.spec.was.map((w) => `${short(w.value)} (${number(w.partitions)})`).join(', ')}; now ${short(details.spec.now)}`);
    if (c.reasons.code > 0) lines.push(`      code version: made with ${details.codeVersion.was.map((w) => `${w.value} (${number(w.partitions)})`).join(', ')}; now ${details.codeVersion.now}`);
    if (details.inputs.length > 0) lines.push(`      upstream versions changed since they were read: ${details.inputs.map((i) => `${i.node} (${number(i.partitions)})`).join(', ')}`);
  }
  return lines;
}

export function renderExplain(explanation: Explanation, details?: ReadonlyMap<string, ChangeDetails>): string {
  const { from, to } = explanation.range;
  const range = from === null && to === null ? "over the spec's whole range" : `over ${from === null ? "the spec's start" : day(from)} → ${to === null ? "the spec's end" : day(to)} (end exclusive)`;
  const lines = [`${pc.bold('why each node is in the backfill')}, ${range}:`];
  for (const node of explanation.nodes) {
    const span = node.first === null ? '' : node.first === node.last ? ` ${node.first}` : ` ${node.first} … ${node.last}`;
    lines.push(`  ${pc.bold(node.id)} (${node.grain}): ${plural(node.partitions, 'partition')}${span}: ${whyLine(node)}`);
    lines.push(...node.upstream.map(edgeLine));
    lines.push(...changeLines(node, details?.get(node.id)));
  }
  const changed = explanation.nodes.some((n) => n.changed);
  lines.push(
    changed
      ? `total: ${plural(explanation.totalToRun, 'partition')} run of ${number(explanation.totalPartitions)} (the others keep their published versions)`
      : `total: ${plural(explanation.totalPartitions, 'partition')} run`,
  );
  return lines.join('\n');
}
