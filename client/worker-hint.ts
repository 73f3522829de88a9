/**
 * The `backfill worker` command line that runs a spec: its transform modules and the activity
 * task queues its nodes use (and its workflow task queue, when not the default). Told where a
 * backfill (or a rollback) waits for a worker, so that the worker a user starts from the hint can
 * run its partitions (one without the spec's transforms fails them all).
 */
import { isAbsolute, relative } from 'node:path';
import { closestNames } from '../core/closest.ts';
import { DEFAULT_TASK_QUEUE } from '../core/protocol.ts';
import { shellWord } from '../core/shell-word.ts';

export function workerCommand(spec: { nodes: ReadonlyArray<{ taskQueue: string }> }, transformModules: readonly string[], cwd = process.cwd(), workflowQueue = DEFAULT_TASK_QUEUE): string {
  const shown = transformModules.map((module) => {
    const near = relative(cwd, module);
    return shellWord(near.startsWith('..') || isAbsolute(near) ? module : `./${near}`);
  });
  const queues = [...new Set(spec.nodes.map((node) => node.taskQueue))];
  const onlyDefault = queues.every((queue) => queue === DEFAULT_TASK_QUEUE);
  return [
    'backfill worker',
    ...(workflowQueue === DEFAULT_TASK_QUEUE ? [] : [`--workflow-queue ${shellWord(workflowQueue)}`]),
    ...(shown.length > 0 ? [`--transforms ${shown.join(' ')}`] : []),
    // --task-queue replaces the default queue: name every queue the nodes use.
    ...(onlyDefault ? [] : [`--task-queue ${queues.map(queueWord).join(' ')}`]),
  ].join(' ');
}

/** A queue after the first of --task-queue's list: one that starts with '-' gets a flag of its own, or the parser would take it for an option (`--warehouse=…`). */
const queueWord = (queue: string, i: number): string => (i > 0 && queue.startsWith('-') ? `--task-queue ${shellWord(queue)}` : shellWord(queue));

/**
 * What `start` notes of the spec's activity task queues that no worker polls: their nodes wait
 * until one does. Workers not started yet look the same as a mistyped `taskQueue`, so it names
 * the spec's polled queue the name is near, if any, and both ways out.
 */
export function unpolledQueueNotes(spec: { nodes: ReadonlyArray<{ id: string; taskQueue: string }> }, unpolled: readonly string[], worker: string): string[] {
  const idle = new Set(unpolled);
  const polled = [...new Set(spec.nodes.map((n) => n.taskQueue))].filter((q) => !idle.has(q));
  return unpolled.map((queue) => {
    const nodes = spec.nodes.filter((n) => n.taskQueue === queue).map((n) => n.id);
    const [near] = closestNames(queue, polled, 1);
    const typo = near === undefined ? '' : ` (a typo of ${shellWord(near)}, which a worker polls? then cancel the backfill and correct the spec's taskQueue)`;
    return `no worker polls task queue ${shellWord(queue)}, so ${nodes.length === 1 ? `node ${nodes[0]} waits` : `nodes ${nodes.join(', ')} wait`} until one does${typo}: start one with '${worker}'`;
  });
}
