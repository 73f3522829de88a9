import { describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { checkTaskQueue, taskQueueProblem } from '../../core/task-queue.ts';

describe('task queue names', () => {
  it('takes any name outside the prefixes Temporal reserves', () => {
    for (const name of ['backfill', 'warehouse.policy', 'team__temporal_x', '_temporal_x', 'a/_sys/b']) expect(taskQueueProblem(name), name).toBeNull();
  });

  it('refuses __temporal_ and /_sys/ names, and a blank one', () => {
    expect(taskQueueProblem('__temporal_x')).toBe('starts with __temporal_, which Temporal reserves for its own task queues: choose a name without that prefix');
    expect(taskQueueProblem('/_sys/x')).toMatch(/^starts with \/_sys\//);
    expect(taskQueueProblem(' ')).toBe('is empty: name a task queue');
  });

  it('names the field and its path in the error', () => {
    expect(checkTaskQueue('warehouse', '--task-queue')).toBe('warehouse');
    let thrown: unknown;
    try {
      checkTaskQueue('__temporal_x', '--workflow-queue', 'workflow-queue');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(BackfillError);
    expect((thrown as BackfillError).toJSON()).toEqual({
      code: 'invalid_argument',
      message: "--workflow-queue '__temporal_x' starts with __temporal_, which Temporal reserves for its own task queues: choose a name without that prefix",
      path: 'workflow-queue',
    });
  });
});
