/**
 * Restoring a partition's published version, decided once for both warehouses: whether to
 * move the pointer, and how to prove that the version it moves to still holds the rows that
 * were published (its checksum, recomputed over the columns that version wrote).
 */
import type { UndoneBy } from '../../core/rollback.ts';
import { schemaHash } from './checksum.ts';
import { ChecksumMismatchError, type RestoreOutcome, type RestoreRequest } from './types.ts';

/** What the warehouse found for the partition, in the restore's transaction. */
export type RestoreState = {
  /** The published version now (null: none) and the backfill that published it. */
  found: number | null;
  foundBackfillId: string | null;
  /** This rollback's earlier restore of the partition (a retried activity), if there was one. */
  recorded: { fromVersion: number | null; fromBackfillId: string | null; toVersion: number | null; forced: boolean } | null;
  /** Where the backfill's version (`from`) stands under the published one (core/rollback.ts `versionStanding`). */
  onTop: boolean;
  undoneBy: UndoneBy | null;
};

/**
 * `move`: the pointer moves to `to`; `record`: the outcome is recorded (all but a replay), also
 * when nothing moves, for the backfill's versions count as rolled back from then on (`changesBy`).
 * Only a move is replayed: a partition left as it was is decided again (`force` may move it).
 */
export type RestoreDecision = { move: boolean; record: boolean; outcome: RestoreOutcome };

export function decideRestore(request: RestoreRequest, state: RestoreState): RestoreDecision {
  const { node, partition } = request;
  const { recorded } = state;
  if (recorded) {
    const status = recorded.toVersion === null ? 'removed' : 'restored';
    return { move: false, record: false, outcome: { node, partition, status, found: recorded.fromVersion, foundBackfillId: recorded.fromBackfillId, to: recorded.toVersion, forced: recorded.forced } };
  }
  const found = { node, partition, found: state.found, foundBackfillId: state.foundBackfillId };
  const ours = state.found === request.from;
  if (!ours && !state.onTop) {
    // Nothing published there descends from the backfill's version: a rollback took the pointer off it, and
    // whatever was published since is no change made on top of it, which not even --force may undo.
    const { undoneBy } = state;
    if (undoneBy && undoneBy.backfillId !== request.backfillId) return { move: false, record: true, outcome: { ...found, status: 'undone', to: state.found, forced: false, undoneBy } };
    return { move: false, record: true, outcome: { ...found, status: 'already_restored', to: state.found, forced: false } };
  }
  if (!ours && !request.force) return { move: false, record: true, outcome: { ...found, status: 'changed_since', to: state.found, forced: false } };
  return { move: true, record: true, outcome: { ...found, status: request.to === null ? 'removed' : 'restored', to: request.to, forced: !ours } };
}

/** Above this many columns that hold only NULLs in a version, its columns are not guessed from its schema hash. */
const MAX_AMBIGUOUS_COLUMNS = 16;

/**
 * The columns a version wrote, for versions published before the ledger recorded them: the
 * columns with a value in it, plus those of the all-NULL ones that make up its schema hash.
 */
export function columnsFromSchemaHash(expected: string, tableColumns: readonly string[], withValues: ReadonlySet<string>): string[] | undefined {
  const certain = tableColumns.filter((c) => withValues.has(c));
  const ambiguous = tableColumns.filter((c) => !withValues.has(c));
  if (ambiguous.length > MAX_AMBIGUOUS_COLUMNS) return undefined;
  for (let mask = 0; mask < 2 ** ambiguous.length; mask++) {
    const columns = [...certain, ...ambiguous.filter((_, i) => mask & (2 ** i))];
    if (schemaHash(columns) === expected) return columns;
  }
  return undefined;
}

/** What the ledger recorded for the version a restore moves to, and what its rows give now. */
export type VersionSummary = { checksum: string; rowCount: number };

export function assertSameChecksum(what: string, recorded: VersionSummary, now: VersionSummary): void {
  if (recorded.checksum === now.checksum && recorded.rowCount === now.rowCount) return;
  throw new ChecksumMismatchError(
    `${what}: its rows hash to ${now.checksum.slice(0, 16)}… (${now.rowCount} rows), but the ledger recorded ${recorded.checksum.slice(0, 16)}… ` +
      `(${recorded.rowCount} rows) when it was published: the stored version was changed since, so it was not restored. ` +
      `Find out what changed it before restoring anything there; nothing else of this partition was touched`,
  );
}
