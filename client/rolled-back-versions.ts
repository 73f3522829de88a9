/**
 * Which published versions of a partition a rollback took off: those the published version now
 * is neither nor built on (a version only superseded by later publishes is still under it).
 * `lineage` shows them as rolled back, naming the rollback, rather than as published.
 */
import type { LedgerRow, RollbackRecord } from '../activities/warehouse/types.ts';
import { versionStanding, type UndoneBy } from '../core/rollback.ts';

/** Each rolled-back version, with the rollback that took the pointer off it (null: the audit has none). */
export function rolledBackVersions(
  versions: ReadonlyArray<Pick<LedgerRow, 'version' | 'previousVersion' | 'status' | 'current'>>,
  rollbacks: readonly RollbackRecord[],
): Map<number, UndoneBy | null> {
  const published = versions.filter((v) => v.status === 'published');
  const current = published.find((v) => v.current)?.version ?? null;
  const links = new Map(published.map((v) => [v.version, { previousVersion: v.previousVersion }]));
  const rolledBack = new Map<number, UndoneBy | null>();
  for (const v of published) {
    if (v.current) continue;
    const standing = versionStanding(v.version, current, links, rollbacks);
    if (!standing.onTop) rolledBack.set(v.version, standing.undoneBy);
  }
  return rolledBack;
}

/** The status column's words for a rolled-back version: `rolled back (b6/rollback-…, forced)`. */
export function rolledBackText(by: UndoneBy | null): string {
  return by === null ? 'rolled back' : `rolled back (${by.rollbackId}${by.forced ? ', forced' : ''})`;
}
