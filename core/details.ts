/**
 * What the Temporal Web UI shows of a backfill: the summary and details of each workflow,
 * fixed at its start, and its current details (a small markdown table kept up to date). Pure,
 * so the workflows only call these.
 */
import { describeActor, describeChange, type AuditEntry } from './audit.ts';
import { formatInstant, type Grain } from './calendar.ts';
import { grainOf } from './mapping.ts';
import type { NodePartitions } from './partitions.ts';
import type { Plan } from './plan.ts';
import type { Progress } from './protocol.ts';
import { retryFailedHint } from './retry-hint.ts';
import type { CanaryView } from './canary.ts';
import { formatPercent, rowChangePercent } from './diff.ts';
import type { ResolvedNode, ResolvedSpec } from './spec.ts';

const count = (n: number) => n.toLocaleString('en-US');
const rate = (r: number | null) => (r === null ? 'unlimited' : `${Number(r.toFixed(2))}/s`);
/** A markdown line break that does not start a new paragraph (no margin between the lines). */
export const HARD_BREAK = '  \n';

/**
 * What markdown acts on anywhere in a line (links, images, HTML, emphasis, code, tables, entities)
 * and the Web UI's `{workflowId}` templates. An `_` inside a word (`daily_orders`) makes no
 * emphasis, so it stays as it is: ordinary names read the same unrendered.
 */
const PUNCTUATION = /[\\`*{}[\]()<>#+!|~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g;
/** What makes a list or a heading's underline of a line that starts with it: `- `, `= `, `1. `. */
const LINE_START = /^(?:[-=]|\d+\.)/;

/**
 * Text anyone may have written (an operator's reason, a declared identity), as one markdown
 * table cell that shows as written: markdown punctuation escaped (no link, image or HTML gets
 * through to the Web UI), line breaks folded, and cut to `max` characters.
 */
export function plainCell(text: string, max = 80): string {
  const folded = text.replace(/\s+/g, ' ').trim();
  const cut = folded.length > max ? `${folded.slice(0, max - 1)}…` : folded;
  return cut.replace(PUNCTUATION, (c) => `\\${c}`).replace(LINE_START, (m) => `${m.slice(0, -1)}\\${m.slice(-1)}`);
}

/**
 * Spec text (a name, a description, a node id, a transform's name, a task queue), a backfill id
 * (any workflow id under backfill/ names one), a failure's message, a declared identity: shown as
 * written, as `plainCell` shows a reason, whatever its length. The Web UI renders summaries and
 * details as markdown, so a spec's description could otherwise put a link to anywhere (or HTML,
 * or a heading) in what the operator reads.
 */
export const markdownText = (text: string) => plainCell(text, Number.MAX_SAFE_INTEGER);

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
  return `backfill ${markdownText(plan.name)} · ${plan.nodes.length} datasets · ${count(plan.totalPartitions)} partitions`;
}

export function backfillDetails(spec: ResolvedSpec, plan: Plan, range: { from?: number; to?: number }): string {
  const window = range.from !== undefined || range.to !== undefined ? `\n\nRange: ${range.from !== undefined ? formatInstant(range.from) : '…'} → ${range.to !== undefined ? formatInstant(range.to) : '…'}` : '';
  const rows = plan.nodes.map((node) => {
    const deps = node.spec.dependsOn.map((d) => `${markdownText(d.node)} (${mappingText(d.mapping)})`).join(', ') || '—';
    return `| ${markdownText(node.id)} | ${grainOf(node.spec.partitions)} | ${describePartitions(node.partitions)} | ${markdownText(node.spec.transform)} | ${deps} |`;
  });
  return [
    `**${markdownText(spec.name)}**${spec.description ? ` — ${markdownText(spec.description)}` : ''}${window}`,
    '',
    '| dataset | grain | partitions | transform | depends on |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

export function nodeSummary(backfillId: string, node: ResolvedNode, partitions: NodePartitions): string {
  return `${markdownText(backfillId)} · ${markdownText(node.id)} · ${markdownText(node.transform)} · ${describePartitions(partitions)}`;
}

export function nodeDetails(node: ResolvedNode, partitions: NodePartitions): string {
  const grain: Grain | 'static' = partitions.grain;
  const deps = node.dependsOn.map((d) => `${markdownText(d.node)} (${mappingText(d.mapping)})`).join(', ') || 'none';
  return [
    `**${markdownText(node.id)}**: ${markdownText(node.transform)}${node.sql ? ' (SQL)' : ''}, ${grain} partitions`,
    '',
    `| partitions | depends on | task queue | batch | timeout |`,
    '| --- | --- | --- | --- | --- |',
    `| ${describePartitions(partitions)} | ${deps} | ${markdownText(node.taskQueue)} | ${node.batchSize} | ${node.timeout} |`,
  ].join('\n');
}

/** Why a node starts nothing right now, if it does not. */
export type WaitReason = 'paused' | 'throttled' | 'slowed' | 'measuring' | 'rate' | 'concurrency' | 'upstream' | 'deferred' | null;

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
    case 'deferred':
      return `backing off: its workers deferred the same partitions again with no run window closing (task queue ${taskQueue}: a worker stopping, or one of another build?)`;
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
    `**${waitReasonText(view.reason, markdownText(view.taskQueue))}**`,
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

/** How many operator actions the Web UI's current details show (the newest first). */
export const RECENT_ACTIONS = 3;

/** The newest operator actions as a small table (the headline says where the whole trail is). */
export function recentActionsText(backfillId: string, actions: readonly AuditEntry[], total: number, limit = RECENT_ACTIONS): string[] {
  if (actions.length === 0) return [];
  const shown = actions.slice(-limit).reverse();
  const rows = shown.map((e) => {
    const what = plainCell(e.outcome === 'refused' ? `${e.action} (refused)` : e.action);
    return `| ${formatInstant(e.at).replace('T', ' ').replace(/\.\d+Z$/, 'Z')} | ${what} | ${plainCell(describeActor(e), 60)} | ${e.reason === null ? '—' : plainCell(e.reason)} | ${plainCell(describeChange(e), 80) || '—'} |`;
  });
  return [
    `**Recent actions** (${shown.length} of ${count(total)}; backfill audit ${plainCell(backfillId, 200)} lists them all)`,
    '',
    '| when (UTC) | action | who | why | what changed |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ];
}

/**
 * A canary in a few lines: where it is, its slice, and (once known) its diff per dataset; what to
 * do next while it waits. Empty without a canary.
 */
export function canaryDetails(canary: CanaryView | undefined, backfillId: string): string[] {
  if (!canary) return [];
  const slice = `${count(canary.partitions)} partitions (${canary.perNode} per dataset, ${canary.pick}, and what they need upstream)`;
  const phase: Record<CanaryView['phase'], string> = {
    running: `the canary runs ${slice}, staged`,
    awaiting: `the canary waits: ${slice} staged; backfill approve ${markdownText(backfillId)} --reason ... goes on, backfill discard ${markdownText(backfillId)} drops it`,
    approving: 'the canary is being approved: its staged versions are being published',
    approved: `the canary was approved${canary.decision ? ` by ${markdownText(canary.decision.by)}` : ''}: the rest runs`,
    discarding: 'the canary is being discarded',
    discarded: `the canary was discarded${canary.decision ? ` by ${markdownText(canary.decision.by)}` : ''}: nothing beyond it was written`,
    failed: 'the canary failed: the backfill stopped, nothing beyond the canary was written',
  };
  const lines = [`**Canary**: ${phase[canary.phase]}${canary.auto ? ` · auto within ${canary.auto.maxRowChange}` : ''}`];
  if (canary.note) lines.push(markdownText(canary.note.slice(0, 400)));
  const diff = canary.diff;
  if (diff && canary.phase !== 'running') {
    lines.push(
      '',
      '| dataset | partitions | rows before | rows after | added | removed | changed | rows moved |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...diff.nodes.map((n) => `| ${markdownText(n.node)} | ${count(n.partitions)} | ${count(n.rowsBefore)} | ${count(n.rowsAfter)} | ${count(n.added)} | ${count(n.removed)} | ${count(n.changed)} | ${formatPercent(rowChangePercent(n))} |`),
    );
  }
  return lines;
}

/** "paused" only while it runs: a backfill that ended while paused has ended. */
function headlineState(progress: Progress): string {
  return progress.paused && progress.state === 'running' ? 'paused' : progress.state;
}

export function backfillCurrentDetails(progress: Progress): string {
  // "40 of 100", not "40/100": the Web UI's markdown renders a/b as a typographic fraction.
  const rows = progress.nodes.map(
    // A node's rate is in force while it has partitions in hands: an idle one's is not (as status shows it).
    (n) => `| ${markdownText(n.id)} | ${count(n.done)} of ${count(n.total)} | ${count(n.running)} | ${count(n.failed)} | ${count(n.blocked)} | ${n.inHands === 0 ? '—' : rate(n.rate)} | ${n.concurrency} | ${eta(n.etaSeconds)} |`,
  );
  const shared = progress.rate !== null && progress.nodes.length > 1 ? ', shared' : '';
  const lastError = progress.nodes.flatMap((n) => n.failures.map((f) => `${n.id}: ${f.message}`))[0];
  // The operator actions last: the progress matters most in the frame's fixed height.
  const governance = progress.governance;
  const actions = governance ? recentActionsText(progress.backfillId, governance.recentActions, governance.actions) : [];
  // What the policy holds it for (an approval, a budget, a run window: which window opens next).
  const holds = (progress.governance?.holds ?? []).map((h) => `${HARD_BREAK}Held: ${markdownText(h.reason.slice(0, 300))}`).join('');
  const hint = retryFailedHint(progress);
  const next = hint === null ? '' : `${HARD_BREAK}Next: ${markdownText(hint)}`;
  // The headline, the holds and the last error first, one paragraph: the Web UI shows current details in a frame of fixed height.
  return [
    `**${headlineState(progress)}** · ${count(progress.done)} of ${count(progress.total)} partitions · backfill rate ${rate(progress.rate)}${shared} · ETA ${eta(progress.etaSeconds)}${holds}${lastError ? `${HARD_BREAK}Last error: ${markdownText(lastError.slice(0, 300))}` : ''}${next}`,
    '',
    '| dataset | done | running | failed | blocked | rate | concurrency | ETA |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    ...(progress.canary ? ['', ...canaryDetails(progress.canary, progress.backfillId)] : []),
    ...(actions.length > 0 ? ['', ...actions] : []),
  ].join('\n');
}
