/** Human output of `backfill rollback`: what was restored, removed, and left alone (and by whom). */
import Table from 'cli-table3';
import pc from 'picocolors';
import { UNPUBLISHED, type RollbackSummary } from '../core/rollback.ts';
import type { RollbackRecord } from '../activities/warehouse/types.ts';

const number = (n: number) => n.toLocaleString('en-US');
const partitions = (n: number) => `${number(n)} partition${n === 1 ? '' : 's'}`;

/** `preview`: a dry run (`rollback --dry-run`): what it would do, said as such; `unlisted`: nodes it would not walk. */
export function renderRollback(summary: RollbackSummary, preview?: { unlisted: readonly string[] }): string {
  const { backfillId } = summary;
  const would = (done: string, todo: string) => (preview ? todo : done);
  const lines = [
    preview
      ? `${pc.bold(`would roll back ${backfillId}`)} (dry run: nothing was started or changed)`
      : `${pc.bold(`rolled back ${backfillId}`)} (rollback ${summary.rollbackId})`,
    `  ${would('restored:        ', 'would restore:   ')} ${partitions(summary.restored)} to their version before ${backfillId} (${would('checksums verified', 'each checksum verified as it is restored')})`,
    `  ${would('removed:         ', 'would remove:    ')} ${partitions(summary.removed)} that ${backfillId} had created`,
    `  already restored: ${partitions(summary.alreadyRestored)}`,
  ];
  if (summary.forced > 0) lines.push(`  ${would('forced:          ', 'would force:     ')} ${partitions(summary.forced)} over a later backfill's version (--force)`);
  if (summary.leftAlone > 0) {
    const who = Object.entries(summary.changedBy)
      .map(([backfill, n]) => `${backfill === UNPUBLISHED ? 'unpublished since' : backfill} (${number(n)})`)
      .join(', ');
    lines.push(pc.yellow(`  ${would('left alone:      ', 'would leave alone:')} ${partitions(summary.leftAlone)} changed since by ${who}`));
    for (const p of summary.leftAloneExamples.slice(0, 10)) {
      lines.push(`    ${p.node} ${p.partition}: ${backfillId} published version ${p.version}, now ${p.currentVersion === null ? 'none' : `version ${p.currentVersion}`} by ${p.changedBy ?? '–'}`);
    }
    if (summary.leftAlone > 10) lines.push(`    … and ${number(summary.leftAlone - 10)} more (--json lists up to ${summary.leftAloneExamples.length})`);
    lines.push(`  run 'backfill rollback ${backfillId} --force' to restore them too, undoing those later changes`);
  }
  if (preview && preview.unlisted.length > 0) {
    lines.push(
      pc.yellow(
        `  not walked:       ${preview.unlisted.join(', ')}: the ledger holds versions of ${backfillId} there, but no run of it that the server still keeps names ${preview.unlisted.length === 1 ? 'that node' : 'those nodes'}, so 'backfill rollback' would not restore ${preview.unlisted.length === 1 ? 'it' : 'them'}`,
      ),
    );
  }
  if (preview) lines.push(`  run 'backfill rollback ${backfillId}${summary.force ? ' --force' : ''}' to do it`);
  const table = new Table({
    head: ['node', ...(preview ? ['would restore', 'would remove', 'already restored', 'would leave alone'] : ['restored', 'removed', 'already restored', 'left alone'])],
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
