/** Per-node figures of the report from the ledger rows a backfill wrote and the versions they replaced. */
import type { LedgerRow } from '../../activities/warehouse/types.ts';
import type { DurationStats, MessageGroup, NodeChanges, NodeReport } from './model.ts';

/** Nearest-rank percentile of ascending `sorted` (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function durationStats(durations: readonly number[]): DurationStats | null {
  if (durations.length === 0) return null;
  const sorted = [...durations].sort((a, b) => a - b);
  return {
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    maxMs: sorted[sorted.length - 1]!,
    totalMs: sorted.reduce((sum, d) => sum + d, 0),
  };
}

/** Groups (message, partition) pairs by message, most partitions first, with a few example partitions each. */
export function groupMessages(items: ReadonlyArray<{ message: string; partition: string }>, examples = 3): MessageGroup[] {
  const groups = new Map<string, Set<string>>();
  for (const { message, partition } of items) (groups.get(message) ?? groups.set(message, new Set()).get(message)!).add(partition);
  return [...groups]
    .map(([message, partitions]) => ({ message, partitions: partitions.size, examples: [...partitions].sort().slice(0, examples) }))
    .sort((a, b) => b.partitions - a.partitions || (a.message < b.message ? -1 : 1));
}

/** The warned checks a ledger row records, as messages (`warn` checks publish, and say so here). */
export function warningsOf(row: LedgerRow): string[] {
  return row.warnings;
}

/** A key for one version of one partition of one node (datasets share partition keys and version numbers). */
export const versionKey = (node: string, partition: string, version: number) => JSON.stringify([node, partition, version]);

/** What the published versions changed against the versions they replaced (`previous`, by versionKey). */
export function nodeChanges(published: readonly LedgerRow[], previous: ReadonlyMap<string, LedgerRow>): NodeChanges {
  const changes: NodeChanges = { new: 0, changed: 0, unchanged: 0, rowsBefore: 0, rowsAfter: 0, rowsNew: 0 };
  for (const row of published) {
    const before = row.previousVersion === null ? undefined : previous.get(versionKey(row.node, row.partition, row.previousVersion));
    if (!before) {
      changes.new++;
      changes.rowsNew += row.rowCount ?? 0;
      continue;
    }
    if (before.checksum === row.checksum) changes.unchanged++;
    else changes.changed++;
    changes.rowsBefore += before.rowCount ?? 0;
    changes.rowsAfter += row.rowCount ?? 0;
  }
  return changes;
}

export type LedgerFigures = Pick<NodeReport, 'published' | 'durations' | 'retries' | 'failedChecks' | 'warnedChecks' | 'changes'>;

/** A node's figures from its ledger rows of this backfill. */
export function ledgerFigures(rows: readonly LedgerRow[], previous: ReadonlyMap<string, LedgerRow>): LedgerFigures {
  const published = rows.filter((r) => r.status === 'published');
  return {
    published: published.length,
    durations: durationStats(published.map((r) => r.durationMs)),
    retries: { retried: published.filter((r) => r.attempt > 1).length, reExecuted: published.filter((r) => r.executions > 1).length },
    failedChecks: groupMessages(rows.filter((r) => r.status === 'failed_check').map((r) => ({ message: r.error ?? 'check failed', partition: r.partition }))),
    warnedChecks: groupMessages(rows.flatMap((r) => warningsOf(r).map((message) => ({ message, partition: r.partition })))),
    changes: nodeChanges(published, previous),
  };
}
