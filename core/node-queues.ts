/**
 * The task queues a backfill's nodes run their activities on, as its workflow keeps them in its
 * memo (`nodeQueues`, behind the patch `node-queues-memo`): written at the start of each run and
 * again when an accepted spec (`replaceSpec`) changes them. `set-queue-rate` reads them from the
 * list of running backfills, so it reads no run's input or history to tell which backfills to ask.
 *
 * The value names the run that wrote it. A start's caller may give the workflow any memo
 * (Temporal's CLI can), and a run whose first task ran on code from before the patch never
 * writes its own: a memo counts only for the run whose id it names, which no caller knows
 * before the server starts the run.
 */

export const NODE_QUEUES_KEY = 'nodeQueues';

/** Past this many characters (the names together) the memo lists none: Temporal bounds a memo's size. */
export const MAX_NODE_QUEUES_CHARS = 2000;

/** The sorted distinct queues, or 'unlisted' when there are too many to keep (a reader then asks the backfill). */
export type NodeQueues = string[] | 'unlisted';

export type NodeQueuesMemo = { runId: string; queues: NodeQueues };

export function nodeQueuesMemo(runId: string, queues: Iterable<string>): NodeQueuesMemo {
  const distinct = [...new Set(queues)].sort();
  return { runId, queues: distinct.reduce((chars, queue) => chars + queue.length, 0) > MAX_NODE_QUEUES_CHARS ? 'unlisted' : distinct };
}

/**
 * What run `runId`'s memo says of its nodes' queues: their list, 'unlisted', or null when it says
 * nothing this can trust (a run started before the patch, or a memo another run or the start's
 * caller wrote), so that its input and history tell.
 */
export function readNodeQueuesMemo(memo: Readonly<Record<string, unknown>> | undefined, runId: string): readonly string[] | 'unlisted' | null {
  const value: unknown = memo?.[NODE_QUEUES_KEY];
  if (typeof value !== 'object' || value === null || !('runId' in value) || !('queues' in value) || value.runId !== runId) return null;
  const { queues } = value;
  if (queues === 'unlisted') return queues;
  if (!Array.isArray(queues)) return null;
  const listed: readonly unknown[] = queues;
  return listed.every((queue): queue is string => typeof queue === 'string') ? listed : null;
}
