import { describe, expect, it } from 'vitest';
import { MAX_NODE_QUEUES_CHARS, nodeQueuesMemo, readNodeQueuesMemo } from '../../core/node-queues.ts';

describe('the nodeQueues memo', () => {
  it('keeps the distinct queues, sorted, and none past its bound', () => {
    expect(nodeQueuesMemo(['warehouse', 'gpu', 'warehouse', 'backfill'])).toEqual(['backfill', 'gpu', 'warehouse']);
    expect(nodeQueuesMemo(['q'.repeat(MAX_NODE_QUEUES_CHARS)])).toEqual(['q'.repeat(MAX_NODE_QUEUES_CHARS)]);
    expect(nodeQueuesMemo(['q'.repeat(MAX_NODE_QUEUES_CHARS), 'r'])).toBe('unlisted');
    // The same queue on many nodes counts once.
    expect(nodeQueuesMemo(Array.from({ length: 5000 }, () => 'warehouse'))).toEqual(['warehouse']);
  });

  it('reads what the workflow writes; anything else says nothing (the history tells)', () => {
    expect(readNodeQueuesMemo({ nodeQueues: ['gpu', 'warehouse'], governance: {} })).toEqual(['gpu', 'warehouse']);
    expect(readNodeQueuesMemo({ nodeQueues: [] })).toEqual([]);
    expect(readNodeQueuesMemo({ nodeQueues: 'unlisted' })).toBe('unlisted');
    for (const memo of [undefined, {}, { nodeQueues: null }, { nodeQueues: 'warehouse' }, { nodeQueues: ['warehouse', 7] }, { nodeQueues: { warehouse: true } }]) {
      expect(readNodeQueuesMemo(memo)).toBeNull();
    }
  });
});
