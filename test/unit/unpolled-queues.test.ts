import { describe, expect, it } from 'vitest';
import { unpolledQueueNotes } from '../../client/worker-hint.ts';

const spec = {
  nodes: [
    { id: 'orders_raw', taskQueue: 'backfill' },
    { id: 'orders_clean', taskQueue: 'heavy-sql' },
    { id: 'daily', taskQueue: 'haevy-sql' },
    { id: 'weekly', taskQueue: 'haevy-sql' },
    { id: 'export', taskQueue: 'exports' },
  ],
};

describe('unpolledQueueNotes: what start notes of queues no worker polls', () => {
  it('says nothing when every queue is polled', () => {
    expect(unpolledQueueNotes(spec, [], 'backfill worker')).toEqual([]);
  });

  it('names the waiting nodes, the polled queue a name is near, and the worker to start', () => {
    const notes = unpolledQueueNotes(spec, ['haevy-sql', 'exports'], "backfill worker --task-queue backfill heavy-sql haevy-sql exports");
    expect(notes).toEqual([
      "no worker polls task queue haevy-sql, so nodes daily, weekly wait until one does (a typo of heavy-sql, which a worker polls? then cancel the backfill and correct the spec's taskQueue): start one with 'backfill worker --task-queue backfill heavy-sql haevy-sql exports'",
      "no worker polls task queue exports, so node export waits until one does: start one with 'backfill worker --task-queue backfill heavy-sql haevy-sql exports'",
    ]);
  });

  it('does not take another unpolled queue for the one meant', () => {
    const [note] = unpolledQueueNotes(spec, ['haevy-sql', 'heavy-sql'], 'backfill worker');
    expect(note).not.toMatch(/a typo of/);
  });
});
