/**
 * Workflows of the priority and fairness experiment (scripts/fairness.ts): a bare workflow
 * that schedules `count` activities at once, so that they wait in the task queue's backlog and
 * the matching service decides who goes first. The priority is set on the activities, or
 * (`inherit`) only on the workflow's start, through a child workflow as backfill's node
 * workflows are, to see that activities inherit it.
 */
import { executeChild, proxyActivities } from '@temporalio/workflow';
import type { Priority } from '@temporalio/common';

export type LoadInput = { label: string; count: number; priority?: Priority; inherit?: boolean; childId?: string };

type LoadActivities = { tick(label: string): Promise<void> };

export async function loadWorkflow(input: LoadInput): Promise<number> {
  if (input.inherit) return executeChild(loadChildWorkflow, { args: [input.label, input.count], workflowId: input.childId ?? `${input.label}-child` });
  const { tick } = proxyActivities<LoadActivities>({
    startToCloseTimeout: '5 minutes',
    ...(input.priority ? { priority: input.priority } : {}),
  });
  await Promise.all(Array.from({ length: input.count }, () => tick(input.label)));
  return input.count;
}

/** Schedules its activities with no priority of its own: they inherit the parent's. */
export async function loadChildWorkflow(label: string, count: number): Promise<number> {
  const { tick } = proxyActivities<LoadActivities>({ startToCloseTimeout: '5 minutes' });
  await Promise.all(Array.from({ length: count }, () => tick(label)));
  return count;
}
