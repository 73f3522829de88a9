/** What a retry-failed of an ended backfill would retry, read from the readiness its last run left. */
import { RangeSet } from './ranges.ts';
import type { ReadinessJSON } from './readiness.ts';
import { shellWord } from './shell-word.ts';

/** The failed partitions of each node that has any, in the readiness' order. */
export function failedPerNode(state: ReadinessJSON): Array<{ node: string; failed: number }> {
  return Object.entries(state)
    .map(([node, readiness]) => ({ node, failed: RangeSet.fromJSON(readiness.failed).size }))
    .filter((n) => n.failed > 0);
}

/**
 * Why `retry-failed` (of every node: `node` undefined) would retry nothing: no node has a failed
 * partition. `resume`: the backfill ended short of its end (cancelled, failed), so resume is what
 * runs the rest. Null when there is something to retry.
 */
export function nothingFailed(backfillId: string, state: ReadinessJSON, resume: boolean): string | null {
  if (failedPerNode(state).length > 0) return null;
  const nothing = `backfill '${backfillId}' has no failed partitions: there is nothing to retry`;
  return resume ? `${nothing} (to run the partitions it did not reach, resume it: backfill resume ${shellWord(backfillId)})` : nothing;
}

/**
 * Why `retry-failed --node <node>` of an ended backfill would retry nothing (its node has no
 * failed partition), naming the nodes that do have some; null when it retries something, or when
 * the node is not one of the backfill's (refused later, as an unknown node).
 */
export function nothingToRetryOn(backfillId: string, node: string, state: ReadinessJSON): string | null {
  if (!Object.hasOwn(state, node)) return null;
  const failing = failedPerNode(state);
  if (failing.some((n) => n.node === node)) return null;
  const nothing = `node '${node}' of backfill '${backfillId}' has no failed partitions: there is nothing to retry`;
  if (failing.length === 0) return `${nothing} (no node of it has any)`;
  const counts = failing.map((n) => `${n.node} ${n.failed}`).join(', ');
  const other = failing.length === 1 ? shellWord(failing[0]!.node) : '<node>';
  return `${nothing} (failed partitions: ${counts}; retry them with 'backfill retry-failed ${shellWord(backfillId)} --node ${other}', or every node's without --node)`;
}
