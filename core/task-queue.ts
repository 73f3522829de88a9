/**
 * Task queue names Temporal takes. A name it refuses reaches no worker: the SDK refuses to poll
 * it (`__temporal_`), and no activity can be scheduled on it, so a node on it never runs.
 */
import { BackfillError } from './errors.ts';

/** The prefixes Temporal keeps for its own task queues. */
export const RESERVED_TASK_QUEUE_PREFIXES = ['__temporal_', '/_sys/'] as const;

/** Why Temporal refuses `name` for the prefix it starts with, worded to follow the name ("starts with …"), or null. */
export function reservedPrefixProblem(name: string): string | null {
  const prefix = RESERVED_TASK_QUEUE_PREFIXES.find((reserved) => name.startsWith(reserved));
  return prefix === undefined ? null : `starts with ${prefix}, which Temporal reserves for its own task queues: choose a name without that prefix`;
}

/** What is wrong with `name` as a task queue's name, or null. */
export function taskQueueProblem(name: string): string | null {
  if (name.trim() === '') return 'is empty: name a task queue';
  return reservedPrefixProblem(name);
}

/** `name`, or a BackfillError naming `field` (a flag, a variable, an option; `path` for --json) when Temporal would refuse it. */
export function checkTaskQueue(name: string, field: string, path: string = field): string {
  const problem = taskQueueProblem(name);
  if (problem !== null) throw new BackfillError('invalid_argument', `${field} '${name}' ${problem}`, path);
  return name;
}
