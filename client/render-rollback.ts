/** Human output of `backfill rollback`: what was restored, removed, and left alone (and by whom). */
import Table from 'cli-table3';
import pc from 'picocolors';
import { UNPUBLISHED, type RollbackSummary } from '../core/rollback.ts';
import type { RollbackRecord } from '../activities/warehouse/types.ts';

const number = (n: number) => n.toLocaleString('en-US');
const partitions = (n: number) => `${number(n)} partition${n === 1 ? '' : 's'}`;

export function renderRollback(summary: RollbackSummary): string {
  const { backfillId } = summary;
  const lines = [
    `${pc.bold(`rolled back ${backfillId}`)} (rollback ${summary.rollbackId})`,
    `  restored:         ${partitions(summary.restored)} to their version before ${backfillId} (checksums verified)`,
    `  removed:          ${partitions(summary.removed)} that ${backfillId} had created`,
    `  already restored: ${partitions(summary.alreadyRestored)}`,
  ];
  if (summary.forced > 0) lines.push(`  forced:           ${partitions(summary.forced)} over a later backfill's version (--force)`);
  if (summary.leftAlone > 0) {
    const who = Object.entries(summary.changedBy)
      .map(([backfill, n]) => `${backfill === UNPUBLISHED ? 'unpublished since' : backfill} (${number(n)})`)
      .join(', ');
    lines.push(pc.yellow(`  left alone:       ${partitions(summary.leftAlone)} changed since by ${who}`));
    for (const p of summary.leftAloneExamples.slice(0, 10)) {
      lines.push(`    ${p.node} ${p.partition}: ${backfillId} published version ${p.version}, now ${p.currentVersion === null ? 'none' : `version ${p.currentVersion}`} by ${p.changedBy ?? '–'}`);
    }
    if (summary.leftAlone > 10) lines.push(`    … and ${number(summary.leftAlone - 10)} more (--json lists up to ${summary.leftAloneExamples.length})`);
    lines.push(`  run 'backfill rollback ${backfillId} --force' to restore them too, undoing those later changes`);
  }
  const table = new Table({
    head: ['node', 'restored', 'removed', 'already restored', 'left alone'],
    style: process.stdout.isTTY ? { head: ['cyan'] } : { head: [], border: [] },
  });
  for (const n of summary.nodes) table.push([n.node, number(n.restored), number(n.removed), number(n.alreadyRestored), number(n.leftAlone)]);
  return [...lines, table.toString()].join('\n');
}

/** A partition's restores, for its lineage: which rollback moved its published version, from what to what. */
export function renderRestores(records: readonly RollbackRecord[]): string[] {
  if (records.length === 0) return [];
  const version = (v: number | null) => (v === null ? 'none' : `v${v}`);
  return [
    'rollbacks:',
    ...records.map(
      (r) => `  ${r.at}  ${version(r.fromVersion)} → ${version(r.toVersion)}  rolling back ${r.backfillId} (${r.rollbackId})${r.forced ? ', forced over a later backfill' : ''}`,
    ),
  ];
}
