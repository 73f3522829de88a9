import { describe, expect, it } from 'vitest';
import { MAX_NODE_QUEUES_CHARS, nodeQueuesMemo, readNodeQueuesMemo } from '../../core/node-queues.ts';

describe('the nodeQueues memo', () => {
  it('keeps the distinct queues, sorted, and none past its bound, with the run that wrote them', () => {
    expect(nodeQueuesMemo('r1', ['warehouse', 'gpu', 'warehouse', 'backfill'])).toEqual({ runId: 'r1', queues: ['backfill', 'gpu', 'warehouse'] });
    expect(nodeQueuesMemo('r1', ['q'.repeat(MAX_NODE_QUEUES_CHARS)]).queues).toEqual(['q'.repeat(MAX_NODE_QUEUES_CHARS)]);
    expect(nodeQueuesMemo('r1', ['q'.repeat(MAX_NODE_QUEUES_CHARS), 'r']).queues).toBe('unlisted');
    // The same queue on many nodes counts once.
    expect(nodeQueuesMemo('r1', Array.from({ length: 5000 }, () => 'warehouse')).queues).toEqual(['warehouse']);
  });

  it('reads what the run itself wrote; anything else says nothing (the history tells)', () => {
    expect(readNodeQueuesMemo({ nodeQueues: { runId: 'r1', queues: ['gpu', 'warehouse'] }, governance: {} }, 'r1')).toEqual(['gpu', 'warehouse']);
    expect(readNodeQueuesMemo({ nodeQueues: { runId: 'r1', queues: [] } }, 'r1')).toEqual([]);
    expect(readNodeQueuesMemo({ nodeQueues: { runId: 'r1', queues: 'unlisted' } }, 'r1')).toBe('unlisted');
    const untrusted = [
      undefined,
      {},
      { nodeQueues: null },
      { nodeQueues: ['warehouse'] },
      { nodeQueues: 'unlisted' },
      // Another run's (a start's caller's, or one a reset copied): no caller knows a run's id before it starts.
      { nodeQueues: { runId: 'r0', queues: ['warehouse'] } },
      { nodeQueues: { queues: ['warehouse'] } },
      { nodeQueues: { runId: 'r1', queues: ['warehouse', 7] } },
      { nodeQueues: { runId: 'r1', queues: 'warehouse' } },
    ];
    for (const memo of untrusted) expect(readNodeQueuesMemo(memo, 'r1'), JSON.stringify(memo)).toBeNull();
  });
});
