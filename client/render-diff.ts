/** Human output of `backfill diff`: what publishing a staged backfill would change, per dataset. */
import Table from 'cli-table3';
import pc from 'picocolors';
import { columnDelta, formatPercent, rowChangePercent, type DiffSummary, type PartitionDiff } from '../core/diff.ts';
import { printable, printableText } from './printable.ts';
import { shellWord } from '../core/shell-word.ts';
import { number } from './counts.ts';

const signed = (n: number | null) => (n === null ? '–' : `${n > 0 ? '+' : ''}${Number(n.toPrecision(6)).toLocaleString('en-US')}`);

/** `partitions` (--partitions): the table lists those whose rows changed. */
export function renderDiff(id: string, phase: string, diff: DiffSummary, changedPartitions?: readonly PartitionDiff[]): string {
  // Column names come from the node's SQL (SELECT 1 AS "..."): any text.
  const [backfillId, summary, partitions] = [printableText(id), printable(diff), changedPartitions && printable(changedPartitions)];
  const style = process.stdout.isTTY ? { head: ['cyan'] } : { head: [], border: [] };
  const lines = [
    `${pc.bold(backfillId)}: ${number(summary.partitions)} staged partition${summary.partitions === 1 ? '' : 's'} against what is published (${phase})`,
  ];
  if (summary.partitions === 0) {
    lines.push('  nothing staged: published or discarded already, or nothing computed yet');
    return lines.join('\n');
  }
  const table = new Table({ head: ['node', 'partitions', 'rows before', 'rows after', 'added', 'removed', 'changed', 'rows moved', 'compared by'], style });
  for (const n of summary.nodes) {
    table.push([n.node, number(n.partitions), number(n.rowsBefore), number(n.rowsAfter), number(n.added), number(n.removed), number(n.changed), formatPercent(rowChangePercent(n)), n.key ? n.key.join(', ') : 'whole rows']);
  }
  lines.push(table.toString());
  const columns = new Table({ head: ['node', 'column', 'sum', 'Δ sum', 'Δ min', 'Δ max'], style });
  for (const n of summary.nodes) {
    for (const c of n.columns) {
      const delta = columnDelta(c);
      columns.push([n.node, c.column, c.after === null ? '–' : number(c.after.sum), signed(delta.sum), signed(delta.min), signed(delta.max)]);
    }
  }
  if (columns.length > 0) lines.push('numeric columns (staged against published):', columns.toString());
  if (partitions) {
    const changed = partitions.filter((p) => p.added + p.removed + p.changed > 0);
    const each = new Table({ head: ['node', 'partition', 'version', 'rows before', 'rows after', 'added', 'removed', 'changed'], style });
    for (const p of changed) each.push([p.node, p.partition, `${p.publishedVersion ?? '–'} → ${p.stagedVersion}`, number(p.rowsBefore), number(p.rowsAfter), number(p.added), number(p.removed), number(p.changed)]);
    lines.push(`partitions whose rows changed: ${number(changed.length)} of ${number(partitions.length)}`, ...(changed.length > 0 ? [each.toString()] : []));
  }
  lines.push(`publish with 'backfill publish ${shellWord(backfillId)}', or drop with 'backfill discard ${shellWord(backfillId)}'`);
  return lines.join('\n');
}
