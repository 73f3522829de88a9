/** What `rollback` tells when no worker takes the rollback, and how it tells that none does. */
import { describe, expect, it } from 'vitest';
import { rollbackWaitsLine } from '../../client/render-rollback.ts';
import { taskUntaken, type PendingTask } from '../../client/waiting.ts';
import { workerCommand } from '../../client/worker-hint.ts';

describe('taskUntaken', () => {
  const scheduled: PendingTask = { scheduledMs: 1_000, attempt: 1, started: false };

  it('is true when the same workflow task waits, started by nobody, at both looks', () => {
    expect(taskUntaken(scheduled, { ...scheduled })).toBe(true);
  });

  it('is false at the first look, once a worker started it, when another task is pending, and when none is', () => {
    expect(taskUntaken(null, scheduled)).toBe(false);
    expect(taskUntaken(scheduled, { ...scheduled, started: true })).toBe(false);
    expect(taskUntaken({ ...scheduled, started: true }, { ...scheduled, started: true })).toBe(false);
    // A worker took the first one and the workflow went on to its next step.
    expect(taskUntaken(scheduled, { ...scheduled, scheduledMs: 4_000 })).toBe(false);
    // The same step again after a failed attempt: a worker took it.
    expect(taskUntaken(scheduled, { ...scheduled, attempt: 2 })).toBe(false);
    expect(taskUntaken(scheduled, null)).toBe(false);
  });
});

describe('the worker a rollback waits for', () => {
  it("names the workflow task queue when it is not the default, and the nodes' activity queues", () => {
    expect(workerCommand({ nodes: [{ taskQueue: 'q1' }] }, [], '/work/p', 'q1')).toBe('backfill worker --workflow-queue q1 --task-queue q1');
    expect(workerCommand({ nodes: [{ taskQueue: 'backfill' }] }, [], '/work/p', 'backfill')).toBe('backfill worker');
    expect(workerCommand({ nodes: [{ taskQueue: 'backfill' }, { taskQueue: 'warehouse' }] }, [], '/work/p', 'flows')).toBe('backfill worker --workflow-queue flows --task-queue backfill warehouse');
  });

  it('says the queue, the worker to start, that the rollback starts once one does, and that Ctrl-C leaves it queued', () => {
    const line = rollbackWaitsLine('shop-2024', { taskQueue: 'flows', activityQueues: ['warehouse'] });
    expect(line).toContain("none takes it from its workflow task queue 'flows'");
    expect(line).toContain("'backfill worker --workflow-queue flows --task-queue warehouse'");
    expect(line).toContain('the rollback starts as soon as one does');
    expect(line).toContain("Ctrl-C stops only this wait: the rollback stays queued on the server ('backfill rollback shop-2024' again joins it)");
    expect(line).not.toContain('\n');
  });

  it('once a worker took it, says it waits for one with a policy to judge it, with why the last declined', () => {
    const line = rollbackWaitsLine('shop-2024', { taskQueue: 'flows', activityQueues: [], judgement: "this worker of workflow task queue 'flows' has no policy" });
    expect(line).toContain("waits for a worker with a policy to judge it; the last that took it declined: this worker of workflow task queue 'flows' has no policy.");
    expect(line).not.toContain('backfill worker');
    expect(line).toContain('Ctrl-C stops only this wait');
  });
});
