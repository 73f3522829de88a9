/**
 * What the Temporal Web UI shows of a backfill: the summary and details of each workflow,
 * fixed at its start, and its current details (a small markdown table kept up to date). Pure,
 * so the workflows only call these.
 */
import { formatInstant, type Grain } from './calendar.ts';
import { grainOf } from './mapping.ts';
import type { NodePartitions } from './partitions.ts';
import type { Plan } from './plan.ts';
import type { Progress } from './protocol.ts';
import type { ResolvedNode, ResolvedSpec } from './spec.ts';

const count = (n: number) => n.toLocaleString('en-US');
const rate = (r: number | null) => (r === null ? 'unlimited' : `${Number(r.toFixed(2))}/s`);
/** A markdown line break that does not start a new paragraph (no margin between the lines). */
export const HARD_BREAK = '  \n';
const escape = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** `1,528 partitions · 2024-01-01 … 2024-12-31` */
export function describePartitions(partitions: NodePartitions): string {
  if (partitions.size === 0) return 'no partitions in range';
  const first = partitions.key(0);
  const last = partitions.key(partitions.size - 1);
  return `${count(partitions.size)} ${partitions.grain === 'static' ? 'keys' : `${partitions.grain}s`} · ${first}${first === last ? '' : ` … ${last}`}`;
}

function mappingText(mapping: ResolvedNode['dependsOn'][number]['mapping']): string {
  return typeof mapping === 'string' ? mapping : `lag ${mapping.lag.from}..${mapping.lag.to}`;
}

export function backfillSummary(plan: Plan): string {
  return `backfill ${plan.name} · ${plan.nodes.length} datasets · ${count(plan.totalPartitions)} partitions`;
}

export function backfillDetails(spec: ResolvedSpec, plan: Plan, range: { from?: number; to?: number }): string {
  const window = range.from !== undefined || range.to !== undefined ? `\n\nRange: ${range.from !== undefined ? formatInstant(range.from) : '…'} → ${range.to !== undefined ? formatInstant(range.to) : '…'}` : '';
  const rows = plan.nodes.map((node) => {
    const deps = node.spec.dependsOn.map((d) => `${d.node} (${mappingText(d.mapping)})`).join(', ') || '—';
    return `| ${node.id} | ${grainOf(node.spec.partitions)} | ${describePartitions(node.partitions)} | ${node.spec.transform} | ${deps} |`;
  });
  return [
    `**${escape(spec.name)}**${spec.description ? ` — ${escape(spec.description)}` : ''}${window}`,
    '',
    '| dataset | grain | partitions | transform | depends on |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

export function nodeSummary(backfillId: string, node: ResolvedNode, partitions: NodePartitions): string {
  return `${backfillId} · ${node.id} · ${node.transform} · ${describePartitions(partitions)}`;
}

export function nodeDetails(node: ResolvedNode, partitions: NodePartitions): string {
  const grain: Grain | 'static' = partitions.grain;
  const deps = node.dependsOn.map((d) => `${d.node} (${mappingText(d.mapping)})`).join(', ') || 'none';
  return [
    `**${node.id}**: ${node.transform}${node.sql ? ' (SQL)' : ''}, ${grain} partitions`,
    '',
    `| partitions | depends on | task queue | batch | timeout |`,
    '| --- | --- | --- | --- | --- |',
    `| ${describePartitions(partitions)} | ${deps} | ${node.taskQueue} | ${node.batchSize} | ${node.timeout} |`,
  ].join('\n');
}

/** Why a node starts nothing right now, if it does not. */
export type WaitReason = 'paused' | 'throttled' | 'slowed' | 'measuring' | 'rate' | 'concurrency' | 'upstream' | null;

export function waitReasonText(reason: WaitReason, taskQueue: string): string {
  switch (reason) {
    case 'paused':
      return 'paused by an operator';
    case 'throttled':
      return 'throttled by the downstream system: running at a reduced pace';
    case 'slowed':
      return 'slowed by its latency target: fewer partitions at once';
    case 'measuring':
      return 'timing its first partition, to size its batches (batchSize auto)';
    case 'rate':
      return 'waiting for its rate limit';
    case 'concurrency':
      return `at its concurrency: waiting for running partitions (task queue ${taskQueue}; if none start, no worker polls it)`;
    case 'upstream':
      return 'waiting for upstream partitions';
    default:
      return 'running';
  }
}

export type NodeView = {
  queued: number;
  running: number;
  completed: number;
  rate: number | null;
  concurrency: number;
  paused: boolean;
  throttles: number;
  runs: number;
  reason: WaitReason;
  taskQueue: string;
};

export function nodeCurrentDetails(view: NodeView): string {
  // Why it waits comes first: the Web UI shows current details in a frame of fixed height.
  return [
    `**${waitReasonText(view.reason, view.taskQueue)}**`,
    '',
    '| queued | running | done | rate | concurrency | throttles | run |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    `| ${count(view.queued)} | ${count(view.running)} | ${count(view.completed)} | ${rate(view.rate)} | ${view.concurrency} | ${view.throttles} | ${view.runs} |`,
  ].join('\n');
}

function eta(seconds: number | null): string {
  if (seconds === null) return '—';
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

export function backfillCurrentDetails(progress: Progress): string {
  // "40 of 100", not "40/100": the Web UI's markdown renders a/b as a typographic fraction.
  const rows = progress.nodes.map(
    (n) => `| ${n.id} | ${count(n.done)} of ${count(n.total)} | ${count(n.running)} | ${count(n.failed)} | ${count(n.blocked)} | ${rate(n.rate)} | ${n.concurrency} | ${eta(n.etaSeconds)} |`,
  );
  const lastError = progress.nodes.flatMap((n) => n.failures.map((f) => `${n.id}: ${f.message}`))[0];
  // The headline and the last error first, one paragraph: the Web UI shows current details in a frame of fixed height.
  return [
    `**${progress.paused ? 'paused' : progress.state}** · ${count(progress.done)} of ${count(progress.total)} partitions · backfill rate ${rate(progress.rate)} · ETA ${eta(progress.etaSeconds)}${lastError ? `${HARD_BREAK}Last error: ${escape(lastError.slice(0, 300))}` : ''}`,
    '',
    '| dataset | done | running | failed | blocked | rate | concurrency | ETA |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
