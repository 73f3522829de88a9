/**
 * Workflows of the priority and fairness experiment (scripts/fairness.ts): a bare workflow
 * that schedules `count` activities at once, each with the given priority, so that they wait
 * in the task queue's backlog and the matching service decides who goes first.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Priority } from '@temporalio/common';

export type LoadInput = { label: string; count: number; priority?: Priority };

type LoadActivities = { tick(label: string): Promise<void> };

export async function loadWorkflow(input: LoadInput): Promise<number> {
  const { tick } = proxyActivities<LoadActivities>({
    startToCloseTimeout: '5 minutes',
    ...(input.priority ? { priority: input.priority } : {}),
  });
  await Promise.all(Array.from({ length: input.count }, () => tick(input.label)));
  return input.count;
}
