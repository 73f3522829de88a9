/**
 * The report's figures as plain tables of text, shared by the HTML and Markdown renderers so
 * that both say the same thing in the same words.
 */
import { columnDelta, formatPercent, rowChangePercent } from '../../core/diff.ts';
import { formatDuration } from '../../core/duration.ts';
import { POLICY_IDENTITY, UNKNOWN_IDENTITY, isCanaryStop } from '../../core/audit.ts';
import type { MessageGroup, Report, Span } from './model.ts';
import { shellWord } from '../../core/shell-word.ts';

export type Table = { head: string[]; rows: string[][]; numeric?: boolean[] };

const n = (value: number | null) => (value === null ? '–' : value.toLocaleString('en-US'));
const ms = (value: number | undefined) => (value === undefined ? '–' : formatDuration(value));
const iso = (msSinceEpoch: number) => new Date(msSinceEpoch).toISOString().replace('.000Z', 'Z');
const signed = (value: number) => (value > 0 ? `+${n(value)}` : n(value));

/** A time bin's length in words: `one second`, `1.5s`, `150ms` (under a second it is not 0s). */
export function binText(binMs: number): string {
  return binMs === 1000 ? 'one second' : formatDuration(binMs);
}

export function when(at: string | null): string {
  return at === null ? '–' : at.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** The headline facts, as label and value. */
export function overview(report: Report): Array<[string, string]> {
  const { backfill, parameters, totals } = report;
  const duration = backfill.endedAt ? formatDuration(Date.parse(backfill.endedAt) - Date.parse(backfill.startedAt)) : 'still running';
  const day = (at: string | null, open: string) => (at === null ? open : when(at).replace(/ 00:00:00Z$/, ''));
  const range = `${day(parameters.from, 'the spec\'s start')} → ${day(parameters.to, 'the spec\'s end')} (end exclusive)`;
  return [
    ['state', `${backfill.state}${backfill.paused ? ' (paused)' : ''}`],
    ['started', when(backfill.startedAt)],
    ['ended', `${when(backfill.endedAt)} (${duration})`],
    ['range', range],
    ['partitions', `${n(totals.done)} done of ${n(totals.partitions)} · ${n(totals.failed)} failed · ${n(totals.blocked)} blocked${totals.skipped > 0 ? ` · ${n(totals.skipped)} kept (only changed)` : ''}`],
    [
      'published',
      `${n(totals.published)} versions · ${n(totals.retried)} after a retry${totals.publishedAfterFailing > 0 ? ` · ${n(totals.publishedAfterFailing)} after they failed (retry-failed)` : ''} · ${n(totals.failedChecks)} failed checks · throttled ${n(totals.throttles)} times` +
        // Read from the warehouse after the workflow's counts, which hear of a partition only once its activity reports: ahead of them while it runs.
        (backfill.endedAt === null ? ' (still running: read from the warehouse a moment after the partitions above, so it may count more)' : ''),
    ],
    ...(report.rolledBack
      ? ([['rolled back', `${n(report.rolledBack.partitions)} partitions put back as they were before it (last ${when(report.rolledBack.lastAt)}) · ${n(report.rolledBack.stillPublished)} of its versions still published`]] as Array<[string, string]>)
      : []),
    ...(report.undoneByOthers?.length
      ? ([['undone by others', report.undoneByOthers.map((u) => `${n(u.partitions)} partition${u.partitions === 1 ? '' : 's'} by rollback ${u.rollbackId} of backfill ${u.backfillId}${u.forced ? ' (--force)' : ''}`).join(' · ') + ': its versions are no longer the data there']] as Array<[string, string]>)
      : []),
    ['limits', `rate ${parameters.rate === null ? 'unlimited' : `${parameters.rate}/s`} · concurrency ${parameters.concurrency ?? 'per node'} at the start${limitChanges(report)}`],
    ['code version', parameters.codeVersions.join(', ') || '–'],
    ['warehouse', parameters.warehouse],
    ['workflow', `${backfill.workflowId} in ${backfill.namespace} · ${backfill.runs} run(s) · run key ${backfill.runKey}`],
  ];
}

function limitChanges(report: Report): string {
  const changes = report.actions.filter((a) => a.limitChange).length;
  return changes === 0 ? '' : ` · changed ${n(changes)} time${changes === 1 ? '' : 's'} while it ran (see operator actions)`;
}

/** Every operator action: when, what, who (and whether a signature proved it), why, and what it changed. */
export function actionsTable(report: Report): Table {
  return {
    head: ['#', 'when', 'action', 'who', 'identity', 'why', 'what changed'],
    numeric: [true, false, false, false, false, false, false],
    rows: report.actions.map((a) => [
      String(a.seq),
      when(a.at),
      `${a.action}${a.outcome === 'applied' ? '' : ` (${a.outcome})`}`,
      // Recorded under the policy's identity, or under none: the identity as recorded would mislead.
      isCanaryStop(a) || a.identity === UNKNOWN_IDENTITY ? a.actor : a.identity,
      a.verified ? 'verified signature' : isCanaryStop(a) ? 'no one decided: the canary failed' : a.identity === POLICY_IDENTITY ? 'the policy itself' : 'declared by the client',
      a.reason ?? '–',
      a.change || '–',
    ]),
  };
}

export function nodesTable(report: Report): Table {
  return {
    head: ['node', 'grain', 'partitions', 'done', 'failed', 'blocked', 'failed, then published', 'p50', 'p95', 'max', 'total time', 'retried', 'ran twice', 'throttled'],
    numeric: [false, false, true, true, true, true, true, true, true, true, true, true, true, true],
    rows: report.nodes.map((node) => [
      node.id,
      node.grain,
      n(node.partitions),
      n(node.done),
      n(node.failed),
      n(node.blocked),
      n(node.fixedFailures.reduce((t, f) => t + f.partitions, 0)),
      ms(node.durations?.p50Ms),
      ms(node.durations?.p95Ms),
      ms(node.durations?.maxMs),
      ms(node.durations?.totalMs),
      n(node.retries.retried),
      n(node.retries.reExecuted),
      n(node.throttles),
    ]),
  };
}

export function changesTable(report: Report): Table {
  return {
    head: ['node', 'published', 'new', 'changed', 'unchanged', 'rows before', 'rows after', 'row delta', 'rows in new'],
    numeric: [false, true, true, true, true, true, true, true, true],
    rows: report.nodes.map((node) => {
      const c = node.changes;
      return [node.id, n(node.published), n(c.new), n(c.changed), n(c.unchanged), n(c.rowsBefore), n(c.rowsAfter), signed(c.rowsAfter - c.rowsBefore), n(c.rowsNew)];
    }),
  };
}

/** What the staged section compares, in one sentence (null: the backfill was not staged). */
export function stagedText(report: Report): string | null {
  const staged = report.staged;
  if (!staged) return null;
  const id = report.backfill.id;
  if (staged.phase === 'discarded') return `The staged versions were discarded: nothing of this backfill was published.`;
  if (staged.phase === 'published') return `Published from staging: what the publish changed, each version against the version it replaced (rows compared by the node's key columns, else whole rows).`;
  return `Staged, not published: what 'backfill publish ${shellWord(id)}' would change against the versions published now (rows compared by the node's key columns, else whole rows). Nobody reads these versions yet.`;
}

/** Per node, rows added, removed and changed by the staged versions (as `backfill diff` prints them). */
export function stagedTable(report: Report): Table {
  return {
    head: ['node', 'partitions', 'rows before', 'rows after', 'added', 'removed', 'changed', 'rows moved', 'compared by'],
    numeric: [false, true, true, true, true, true, true, true, false],
    rows: (report.staged?.summary.nodes ?? []).map((d) => [
      d.node,
      n(d.partitions),
      n(d.rowsBefore),
      n(d.rowsAfter),
      n(d.added),
      n(d.removed),
      n(d.changed),
      formatPercent(rowChangePercent(d)),
      d.key ? d.key.join(', ') : 'whole rows',
    ]),
  };
}

/** Per numeric column of each node: its sum after, and the change of its sum, minimum and maximum. */
export function stagedColumnsTable(report: Report): Table {
  const delta = (value: number | null) => (value === null ? '–' : `${value > 0 ? '+' : ''}${Number(value.toPrecision(6)).toLocaleString('en-US')}`);
  return {
    head: ['node', 'column', 'sum before', 'sum after', 'Δ sum', 'Δ min', 'Δ max'],
    numeric: [false, false, true, true, true, true, true],
    rows: (report.staged?.summary.nodes ?? []).flatMap((d) =>
      d.columns.map((c) => {
        const change = columnDelta(c);
        const sum = (stats: typeof c.before) => (stats === null ? '–' : Number(stats.sum.toPrecision(12)).toLocaleString('en-US'));
        return [d.node, c.column, sum(c.before), sum(c.after), delta(change.sum), delta(change.min), delta(change.max)];
      }),
    ),
  };
}

const examples = (group: MessageGroup) => `${group.examples.join(', ')}${group.partitions > group.examples.length ? ` and ${n(group.partitions - group.examples.length)} more` : ''}`;

const runs = (list: readonly number[]) => `${list.length === 1 ? 'run' : 'runs'} ${list.join(', ')}`;

/** Failures (still standing, and those fixed later: in which run they failed and which run published them), failed checks and warned checks, one row per message. */
export function problemsTable(report: Report): Table {
  const rows: string[][] = [];
  for (const node of report.nodes) {
    for (const f of node.failures) rows.push([node.id, `failed (${f.type})`, n(f.partitions), examples(f), f.message]);
    for (const f of node.fixedFailures) rows.push([node.id, `failed (${f.type}) in ${runs(f.failedInRuns)}, published in run ${f.publishedInRun}`, n(f.partitions), examples(f), f.message]);
    for (const c of node.failedChecks) rows.push([node.id, 'check failed', n(c.partitions), examples(c), c.message]);
    for (const w of node.warnedChecks) rows.push([node.id, 'check warned', n(w.partitions), examples(w), w.message]);
  }
  return { head: ['node', 'what', 'partitions', 'for example', 'message'], numeric: [false, false, true, false, false], rows };
}

export function planTable(report: Report): Table {
  return {
    head: ['node', 'grain', 'partitions', 'first', 'last', 'transform', 'depends on'],
    numeric: [false, false, true, false, false, false, false],
    rows: report.plan.nodes.map((node) => [
      node.id,
      node.grain,
      n(node.partitions),
      node.first ?? '–',
      node.last ?? '–',
      node.transform,
      node.dependsOn.map((d) => `${d.node} (${d.mapping})`).join(', ') || '–',
    ]),
  };
}

/** The rate over time in a sentence: the partitions finished per second at the peak, and on average over the run. */
export function rateText(report: Report): string {
  const { rate, startMs, endMs } = report.timeline;
  const finished = rate.reduce((sum, r) => sum + r.perSecond * ((r.endMs - r.startMs) / 1000), 0);
  if (rate.length === 0 || finished === 0) return 'No partition finished.';
  const peak = rate.reduce((best, r) => (r.perSecond > best.perSecond ? r : best));
  const mean = finished / Math.max(1, (endMs - startMs) / 1000);
  const at = new Date(peak.startMs).toISOString().slice(11, 19);
  return `Rate: ${peak.perSecond.toLocaleString('en-US')} partitions/s at its peak (from ${at} UTC), ${(Math.round(mean * 100) / 100).toLocaleString('en-US')}/s on average.`;
}

export function criticalPathText(report: Report): string {
  const path = report.plan.criticalPath.map((step) => `${step.node} ${step.partition}`).join(' → ');
  return `${n(report.plan.criticalPathLength)} partitions${path ? `: ${path}` : ''} · widest point ${n(report.plan.maxWidth)} partitions at once`;
}

export function specTable(report: Report): Table {
  return {
    head: ['node', 'transform', 'parameters', 'checks', 'concurrency', 'rate', 'retry'],
    rows: report.spec.nodes.map((node) => [
      node.id,
      node.transform,
      Object.keys(node.params).length > 0 ? JSON.stringify(node.params) : '–',
      node.checks.map((c) => ('name' in c && c.name ? c.name : c.type)).join(', ') || '–',
      String(node.concurrency),
      node.rate === null ? 'unlimited' : `${node.rate}/s`,
      `${node.retry.maxAttempts} attempts`,
    ]),
  };
}

/**
 * Paused and throttled spans, in time order. A throttled span runs from a throttle until the
 * node's pace was back where it was (`to` is the first report that says so), or, not recovered,
 * until the node's last report.
 */
export function spansTable(report: Report): Table {
  const span = (s: Span) => [when(iso(s.startMs)), when(iso(s.endMs)), formatDuration(s.endMs - s.startMs)];
  const rows = [
    ...report.timeline.paused.map((s) => ({ at: s.startMs, row: ['paused', 'all', ...span(s), '–'] })),
    ...report.timeline.throttled.map((s) => ({ at: s.startMs, row: [s.recovered ? 'throttled: pace reduced until back' : 'throttled: pace still reduced at its last report', s.node, ...span(s), n(s.count)] })),
  ].sort((a, b) => a.at - b.at);
  return { head: ['what', 'node', 'from', 'to', 'for', 'throttles'], rows: rows.map((r) => r.row) };
}
