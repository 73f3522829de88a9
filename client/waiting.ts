/**
 * Stalls a backfill cannot see from inside: a node whose partitions wait on a task queue that
 * no worker polls. The server lists a queue's pollers (`DescribeTaskQueue`) with the time of
 * each one's last poll, and forgets a poller five minutes after it.
 */
import type { NodeProgress } from '../core/protocol.ts';

/**
 * `no_worker`: nobody polled the queue in the last five minutes. `workers_silent`: its workers
 * stopped polling a while ago (gone, or every one of their slots busy).
 */
export type WaitingReason = 'no_worker' | 'workers_silent';

export type Waiting = {
  node: string;
  taskQueue: string;
  reason: WaitingReason;
  /** The last poll the server remembers (ISO time), if any. */
  lastPollAt: string | null;
  /** The spec's transform modules, as it lists them (from its directory): a worker of the queue needs them. */
  transforms?: string[];
};

/** `waiting` with the spec's transform modules on each entry (none: as it is). */
export function withTransforms(waiting: Waiting[], spec: { transforms?: readonly string[] } | undefined): Waiting[] {
  const transforms = spec?.transforms ?? [];
  return transforms.length === 0 ? waiting : waiting.map((w) => ({ ...w, transforms: [...transforms] }));
}

export type QueueState = { reason: WaitingReason; lastPollAt: string | null };

export type Poller = { identity: string; lastAccessMs: number | undefined };

/** A live worker polls at least once a minute (a long poll lasts up to a minute); twice that is silence. */
export const SILENT_AFTER_MS = 2 * 60_000;

/** A live worker's last poll is at most this old: a long poll lasts up to a minute. */
export const LIVE_POLL_AGE_MS = 60_000;

/**
 * The server's time now, as the pollers tell it, for comparing with their poll times (the
 * server's clock), so that a client clock ahead or behind the server's does not make workers
 * look silent: the newest poll seen is at most LIVE_POLL_AGE_MS old when a worker is alive (a
 * workflow worker that just answered a query polls its queue), so the client's clock counts
 * only between the newest poll and that much later. No poll seen: the client's clock.
 */
export function serverNow(pollers: Iterable<Poller>, clientNow: number): number {
  let newest = 0;
  for (const poller of pollers) newest = Math.max(newest, poller.lastAccessMs ?? 0);
  if (newest === 0) return clientNow;
  return Math.min(Math.max(clientNow, newest), newest + LIVE_POLL_AGE_MS);
}

/**
 * Why each of these queues leaves work waiting (queues with a worker are left out), judged
 * against `serverNow` of every poll seen: theirs and `others` (the workflow task queue's).
 */
export function queueStates(pollersByQueue: ReadonlyMap<string, readonly Poller[]>, clientNow: number, others: readonly Poller[] = []): Map<string, QueueState> {
  const now = serverNow([...others, ...[...pollersByQueue.values()].flat()], clientNow);
  const states = new Map<string, QueueState>();
  for (const [queue, pollers] of pollersByQueue) {
    const state = queueState(pollers, now);
    if (state) states.set(queue, state);
  }
  return states;
}

/** Why a queue with these pollers leaves work waiting, or undefined when a worker is there; `now` on the server's clock (`serverNow`). */
export function queueState(pollers: readonly Poller[], now: number): QueueState | undefined {
  if (pollers.length === 0) return { reason: 'no_worker', lastPollAt: null };
  const last = Math.max(...pollers.map((p) => p.lastAccessMs ?? 0));
  if (now - last <= SILENT_AFTER_MS) return undefined;
  return { reason: 'workers_silent', lastPollAt: last > 0 ? new Date(last).toISOString() : null };
}

/** Nodes that have partitions to run (or, paused, running ones to finish) on a queue in `states`. */
export function waitingNodes(
  nodes: readonly NodeProgress[],
  paused: boolean,
  queueOf: ReadonlyMap<string, string>,
  states: ReadonlyMap<string, QueueState>,
): Waiting[] {
  const waiting: Waiting[] = [];
  for (const node of nodes) {
    const work = paused ? node.running : node.running + node.pending;
    const taskQueue = queueOf.get(node.id);
    const state = taskQueue === undefined ? undefined : states.get(taskQueue);
    if (work > 0 && taskQueue !== undefined && state) waiting.push({ node: node.id, taskQueue, ...state });
  }
  return waiting;
}

/**
 * A workflow's pending workflow task, as DescribeWorkflowExecution tells it: when the server
 * scheduled it (its clock, so looks are compared with each other, never with the client's) and
 * its attempt, and whether a worker started it. Null when none is pending.
 */
export type PendingTask = { scheduledMs: number; attempt: number; started: boolean } | null;

/**
 * Whether no worker took a workflow's next step between two looks: the same workflow task is
 * pending at both, started by nobody. Looks far enough apart (past a sticky queue's wait, and
 * unless every worker is busy) tell that no worker takes it, even while the server still lists a
 * stopped worker as a poller (for minutes).
 */
export function taskUntaken(before: PendingTask, now: PendingTask): boolean {
  return before !== null && now !== null && !before.started && !now.started && before.scheduledMs === now.scheduledMs && before.attempt === now.attempt;
}
