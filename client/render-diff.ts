/** Human output of `backfill diff`: what publishing a staged backfill would change, per dataset. */
import Table from 'cli-table3';
import pc from 'picocolors';
import { columnDelta, formatPercent, rowChangePercent, type DiffSummary, type PartitionDiff } from '../core/diff.ts';
import { printable, printableText } from './printable.ts';
import { shellWord } from '../core/shell-word.ts';
import { number } from './counts.ts';
import { endedText, type StagedDecided, type StagedEnd } from './ended.ts';
import { utcTime } from './utc-time.ts';

/** The phase as the diff's first line says it: an ended run's, in the past tense, with what became of what it staged. */
function stagedPhaseText(phase: string, end: StagedEnd | null): string {
  if (!end) return phase;
  const ended = `${endedText(end.state)} before its decision`;
  if (end.discarded) return `${ended}; what it staged was discarded since`;
  return `${ended}: what it staged is kept unpublished, and no reader sees it`;
}

/**
 * Why nothing is staged: a decision took the staged versions (when, and by whom), with what
 * shows the change a publish made; else they were dropped after the run ended, or none is computed yet.
 */
function nothingStaged(id: string, phase: string, decided: StagedDecided | null): string {
  const [report, rollback] = ['report', 'rollback'].map((command) => `'backfill ${command} ${shellWord(id)}'`);
  const how = decided ? ` at ${utcTime(decided.at)} by ${decided.by}` : '';
  if (phase === 'published') return `nothing is staged now: the staged versions were published${how}, and readers see them. ${report} shows what the publish changed; ${rollback} undoes it`;
  if (phase === 'approved') return `nothing is staged now: the canary's slice was approved${how} and published. ${report} shows what it changed`;
  if (phase === 'discarded') return `nothing is staged now: the staged versions were discarded${how}, and none of them was published`;
  return 'nothing staged: published or discarded already, or nothing computed yet';
}

/** What to do with the staged versions: an ended run takes no publish (its workflow is closed). */
function nextStep(id: string, end: StagedEnd | null): string {
  const [discard, publish, resume] = ['discard', 'publish', 'resume'].map((command) => `'backfill ${command} ${shellWord(id)}'`);
  return end ? `drop them with ${discard}, or go on with ${resume}, then publish or discard` : `publish with ${publish}, or drop with ${discard}`;
}

/**
 * A change as it is, without the noise of binary fractions (0.1 + 0.2 is 0.30000000000000004):
 * 15 significant digits, every one shown. Rounded to fewer, a total that moved by 1 read as
 * unchanged, and one that did not move read as moved (+5,949,450 for 5,949,449).
 */
const signed = (n: number | null) => (n === null ? '–' : `${n > 0 ? '+' : ''}${Number(n.toPrecision(15)).toLocaleString('en-US', { maximumFractionDigits: 20 })}`);

/** `partitions` (--partitions): the table lists those whose rows changed. */
/**
 * What a publish leaves out: partitions that failed, and those blocked behind them, were never
 * staged (null when there are none). `diff` and `publish` say it; a publish said nothing before.
 */
export function unstagedNote(id: string, counts: { failed: number; blocked: number } | null): string | null {
  if (counts === null || counts.failed + counts.blocked === 0) return null;
  const n = counts.failed + counts.blocked;
  const blocked = counts.blocked > 0 ? `, ${number(counts.blocked)} blocked behind them` : '';
  return `${number(n)} partition${n === 1 ? ' is' : 's are'} not staged (${number(counts.failed)} failed${blocked}): a publish leaves ${n === 1 ? 'it' : 'them'} out; after it, 'backfill retry-failed ${shellWord(id)}' stages ${n === 1 ? 'it' : 'them'} again`;
}

/**
 * Why `publish` of a staged backfill with failed or blocked partitions is refused without
 * `--partial`: the upstream versions it publishes would disagree with the older versions its
 * failed partitions leave downstream. Null when every partition is staged.
 */
export function partialPublishRefusal(id: string, nodes: ReadonlyArray<{ id: string; done: number; failed: number; blocked: number }>): string | null {
  const left = nodes.filter((n) => n.failed + n.blocked > 0);
  if (left.length === 0) return null;
  const n = left.reduce((sum, x) => sum + x.failed + x.blocked, 0);
  // What they read: nodes before the last one left out (the nodes are in dependency order).
  const last = nodes.indexOf(left[left.length - 1]!);
  const staged = nodes.slice(0, last).filter((x) => x.done > 0).map((x) => `${x.id} ${number(x.done)}`);
  const out = left.map((x) => `${x.id} ${number(x.failed + x.blocked)}`).join(', ');
  const word = shellWord(id);
  return (
    `${number(n)} partition${n === 1 ? ' is' : 's are'} not staged (${out}): a publish would leave ${n === 1 ? 'it' : 'them'} at ${n === 1 ? 'its' : 'their'} older version${n === 1 ? '' : 's'} ` +
    `while publishing what ${n === 1 ? 'it reads' : 'they read'} (${staged.join(', ') || 'nothing'}), so the datasets would disagree. ` +
    `Publish anyway with 'backfill publish ${word} --partial' (then 'backfill retry-failed ${word}' stages the rest in a new run), or drop it with 'backfill discard ${word}' and stage the fix: backfill start <spec> --id ${word} --rerun --stage`
  );
}

export function renderDiff(
  id: string,
  phase: string,
  diff: DiffSummary,
  changedPartitions?: readonly PartitionDiff[],
  end: StagedEnd | null = null,
  unstaged: string | null = null,
  decided: StagedDecided | null = null,
): string {
  // Column names come from the node's SQL (SELECT 1 AS "..."): any text.
  const [backfillId, summary, partitions] = [printableText(id), printable(diff), changedPartitions && printable(changedPartitions)];
  const style = process.stdout.isTTY ? { head: ['cyan'] } : { head: [], border: [] };
  const lines = [
    `${pc.bold(backfillId)}: ${number(summary.partitions)} staged partition${summary.partitions === 1 ? '' : 's'} against what is published (${stagedPhaseText(phase, end)})`,
    ...(unstaged !== null ? [pc.yellow(`  ⚠ ${printableText(unstaged)}`)] : []),
  ];
  if (summary.partitions === 0) {
    lines.push(`  ${printableText(nothingStaged(id, phase, decided))}`);
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
  lines.push(nextStep(backfillId, end));
  return lines.join('\n');
}
