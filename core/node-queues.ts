/**
 * The task queues a backfill's nodes run their activities on, as its workflow keeps them in its
 * memo (`nodeQueues`, behind the patch `node-queues-memo`): written at the start of each run and
 * again when an accepted spec (`replaceSpec`) changes them. `set-queue-rate` reads them from the
 * list of running backfills, so it reads no run's input or history to tell which backfills to ask.
 */

export const NODE_QUEUES_KEY = 'nodeQueues';

/** Past this many characters (the names together) the memo lists none: Temporal bounds a memo's size. */
export const MAX_NODE_QUEUES_CHARS = 2000;

/** The sorted distinct queues, or 'unlisted' when there are too many to keep (a reader then asks the backfill). */
export type NodeQueuesMemo = string[] | 'unlisted';

export function nodeQueuesMemo(queues: Iterable<string>): NodeQueuesMemo {
  const distinct = [...new Set(queues)].sort();
  return distinct.reduce((chars, queue) => chars + queue.length, 0) > MAX_NODE_QUEUES_CHARS ? 'unlisted' : distinct;
}

/**
 * What a run's memo says of its nodes' queues: their list, 'unlisted', or null when it says
 * nothing this can read (a run started before the patch, whose input and history tell).
 */
export function readNodeQueuesMemo(memo: Readonly<Record<string, unknown>> | undefined): readonly string[] | 'unlisted' | null {
  const value = memo?.[NODE_QUEUES_KEY];
  if (value === 'unlisted') return value;
  if (!Array.isArray(value)) return null;
  const listed: readonly unknown[] = value;
  return listed.every((queue): queue is string => typeof queue === 'string') ? listed : null;
}
