/** Human output of `plan --estimate`: the prediction, per node, and the inputs it used. */
import Table from 'cli-table3';
import pc from 'picocolors';
import { formatDuration } from '../core/duration.ts';
import type { EstimateReport, TimingSource } from './estimate.ts';
import { printable } from './printable.ts';
import { number } from './counts.ts';

const tableStyle = () => (process.stdout.isTTY ? { head: ['cyan'] } : { head: [], border: [] });
const at = (ms: number | null) => (ms === null ? '–' : formatDuration(ms));

function sourceText(source: TimingSource): string {
  if (source.kind === 'assumed') return source.why;
  if (source.kind === 'sample') {
    const keys = source.partitions.length > 6 ? `${source.partitions.slice(0, 5).join(', ')} … ${source.partitions[source.partitions.length - 1]}` : source.partitions.join(', ');
    return `sampled ${number(source.ledgerRows)} partition${source.ledgerRows === 1 ? '' : 's'} (${keys})`;
  }
  const backfills = source.backfills.slice(0, 3).map((b) => `${b.backfillId} (${number(b.rows)})`).join(', ');
  const more = source.backfills.length > 3 ? ` and ${source.backfills.length - 3} more` : '';
  const day = (iso: string) => iso.slice(0, 10);
  const when = day(source.from) === day(source.to) ? day(source.from) : `${day(source.from)} to ${day(source.to)}`;
  return `${number(source.ledgerRows)} ledger rows (${number(source.ownDurations)} of this plan's partitions) from ${backfills}${more}, finished ${when}`;
}

export function renderEstimate(report: EstimateReport): string {
  const estimate = printable(report);
  const table = new Table({ head: ['node', 'partitions', 'runs', 'per partition', 'starts', 'finishes', 'rows'], style: tableStyle() });
  for (const node of estimate.nodes) {
    table.push([node.id, number(node.partitions), number(node.runs), formatDuration(node.meanMs), at(node.firstStartMs), at(node.finishMs), node.rows === null ? '?' : number(node.rows)]);
  }
  const sample = estimate.sample;
  const history = sample
    ? `a sample: ${sample.perNode} partition${sample.perNode === 1 ? '' : 's'} per node run as staged backfill ${sample.backfillId} in ${formatDuration(sample.wallMs)}, then discarded (${number(sample.discarded)} staged versions dropped, nothing published)${sample.failed > 0 ? `; ${number(sample.failed)} failed` : ''}, read from the ledger of ${estimate.warehouse}`
    : estimate.warehouseFound
      ? `the ledger of ${estimate.warehouse}`
      : `no ledger (no warehouse at ${estimate.warehouse})`;
  const rows = estimate.rows === null ? 'rows written unknown (no history for some nodes)' : `about ${number(estimate.rows)} rows written`;
  const o = estimate.overhead;
  const c = estimate.calibration;
  const calibration = c
    ? `calibrated on ${c.backfillId}: its ${number(c.partitions)} partitions ran in ${formatDuration(c.spanMs)} from the first start to the last finish${c.stillMs > 0 ? `, less ${formatDuration(c.stillMs)} in which none ran (paused, or waiting for a worker)` : ''}, which the model takes with its costs ×${c.factor}${c.clamped ? ' (the most it scales: the history is far off the model)' : ''}`
    : estimate.sample
      ? 'not calibrated (a sample is too small to calibrate on): the defaults of docs/estimate.md'
      : 'not calibrated (no earlier backfill ran 10 or more of these partitions): the defaults of docs/estimate.md';
  return [
    `${pc.bold('estimate')}: about ${pc.bold(formatDuration(estimate.wallMs))} from start to end · ${number(estimate.runs)} partitions in ${number(estimate.activities)} activities · ${rows}`,
    table.toString(),
    `durations from ${history}:`,
    ...estimate.nodes.map((n) => `  ${n.id}: ${sourceText(n.source)}`),
    ...(estimate.assumed.length > 0 ? [pc.yellow(`  no history for ${estimate.assumed.join(', ')}: their figures are assumptions, not measurements`)] : []),
    `limits: rate ${estimate.limits.rate === null ? 'per node' : `${estimate.limits.rate}/s`} · concurrency ${estimate.limits.concurrency ?? 'per node'} · task queues ${Object.entries(estimate.queues)
      .map(([name, cap]) => `${name} (${cap.ratePerSecond === null ? 'no rate cap' : `${cap.ratePerSecond}/s`}, ${cap.slots ?? '∞'} worker slots)`)
      .join(', ')}`,
    ...(estimate.windows
      ? [`run windows, from a start now (${estimate.windows.startsAt.slice(0, 16).replace('T', ' ')} UTC): partitions start only while they allow; ${estimate.windows.description.join('; ')}`]
      : []),
    ...(estimate.policy ? policyLines(estimate.policy) : []),
    ...estimate.warnings.map((w) => pc.yellow(`not in the estimate: ${w}`)),
    `orchestration ${calibration}:`,
    `  start ${formatDuration(o.startMs)}, ${o.activityMs}ms per activity, ${o.hopMs}ms per signal, reports every ${formatDuration(o.reportIntervalMs)}, ${o.activityCostMs}ms + ${o.partitionCostMs}ms per partition of server and worker work, end ${formatDuration(o.endMs)}; no failures or retries`,
  ].join('\n');
}

/** What the policy did to the estimate: its run windows, the limits its caps set, and what it would refuse. */
function policyLines(policy: NonNullable<EstimateReport['policy']>): string[] {
  const caps = policy.caps;
  const set = caps
    ? [
        ...(caps.rate !== null ? [`the backfill's rate to ${caps.rate}/s`] : []),
        ...(caps.concurrency !== null ? [`its concurrency to ${caps.concurrency}`] : []),
        ...Object.entries(caps.nodeRates).map(([node, rate]) => `${node}'s rate to ${rate}/s`),
      ]
    : [];
  const windows = policy.windows ? 'its run windows are followed too (a partition starts only while every window allows)' : 'no run windows';
  return [
    `policy ${policy.path}: ${windows}${set.length > 0 ? `; its caps set ${set.join(', ')}, where the start sets none (as at the start)` : ''}`,
    ...(caps?.refused ?? []).map((refused) => pc.yellow(`the policy refuses a start with these limits: ${refused}`)),
  ];
}
