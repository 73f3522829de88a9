/**
 * The nodes of a run's input as a reader of other backfills' histories meets them: anyone who
 * may start a workflow can start `backfillWorkflow` with any input (the workflow refuses it, but
 * it is listed as running meanwhile), so a reader takes only nodes of the right shape and never
 * throws (a hand-made input crashed `set-queue-rate` and the dataset check of every `start`).
 */
import type { BackfillInput } from '../core/protocol.ts';

export type InputNode = { id: string; taskQueue: string };

/** The input's nodes with a string id and task queue; none when its spec has no list of nodes. */
export function inputNodes(input: BackfillInput | undefined): InputNode[] {
  const nodes = (input as { spec?: { nodes?: unknown } } | undefined)?.spec?.nodes;
  if (!Array.isArray(nodes)) return [];
  return nodes.filter((n): n is InputNode => typeof (n as InputNode | null)?.id === 'string' && typeof (n as InputNode).taskQueue === 'string');
}
