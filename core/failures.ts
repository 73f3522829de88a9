/** Failure groups: partitions that failed with the same message, kept small enough to carry. */
import type { FailureGroup } from './protocol.ts';
import { RangeSet } from './ranges.ts';

/** Distinct failure messages kept per node; further ones are counted under one group. */
export const MAX_FAILURE_GROUPS = 20;
const MAX_MESSAGE_LENGTH = 500;
/** A failure's type is a short name (CheckFailed, SqlError); a longer one came from elsewhere (a hand-made report). */
const MAX_TYPE_LENGTH = 100;
const OTHER = 'other failures (more distinct messages than are kept; see the ledger)';

/** Adds `ranges` under `message`, merging with an existing group of the same message and type. */
export function addFailures(groups: readonly FailureGroup[], message: string, type: string, ranges: RangeSet): FailureGroup[] {
  if (ranges.isEmpty) return [...groups];
  let text = message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH)}…` : message;
  let kind = type.length > MAX_TYPE_LENGTH ? `${type.slice(0, MAX_TYPE_LENGTH)}…` : type;
  if (!groups.some((g) => g.message === text && g.type === kind) && groups.length >= MAX_FAILURE_GROUPS) {
    text = OTHER;
    kind = 'Mixed';
  }
  const existing = groups.find((g) => g.message === text && g.type === kind);
  if (!existing) return [...groups, { message: text, type: kind, ranges: ranges.toJSON() }];
  return groups.map((g) => (g === existing ? { ...g, ranges: RangeSet.fromJSON(g.ranges).addAll(ranges).toJSON() } : g));
}

export function addFailure(groups: readonly FailureGroup[], message: string, type: string, index: number): FailureGroup[] {
  return addFailures(groups, message, type, RangeSet.of([index, index + 1]));
}

/** Merges `incoming` groups into `groups`. */
export function mergeFailures(groups: readonly FailureGroup[], incoming: readonly FailureGroup[]): FailureGroup[] {
  return incoming.reduce((acc, g) => addFailures(acc, g.message, g.type, RangeSet.fromJSON(g.ranges)), [...groups]);
}

/** Removes partitions (those that completed after all, or are being retried) from every group. */
export function withoutPartitions(groups: readonly FailureGroup[], ranges: RangeSet): FailureGroup[] {
  return groups
    .map((g) => ({ ...g, ranges: RangeSet.fromJSON(g.ranges).deleteAll(ranges).toJSON() }))
    .filter((g) => g.ranges.length > 0);
}
