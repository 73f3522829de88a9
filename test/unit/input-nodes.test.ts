/** Reading other backfills' inputs: a hand-made input (anyone who may start a workflow can give one) yields no nodes rather than a crash. */
import { describe, expect, it } from 'vitest';
import { inputNodes } from '../../client/input-nodes.ts';
import type { BackfillInput } from '../../core/protocol.ts';

describe('inputNodes', () => {
  it('takes the nodes of a spec, and nothing of an input that has none of the right shape', () => {
    const input = (value: unknown) => value as BackfillInput;
    expect(inputNodes(input({ spec: { nodes: [{ id: 'a', taskQueue: 'q', sql: 'x' }, { id: 'b', taskQueue: 'w' }] } }))).toEqual([
      { id: 'a', taskQueue: 'q', sql: 'x' },
      { id: 'b', taskQueue: 'w' },
    ]);
    for (const junk of [undefined, null, {}, { spec: null }, { spec: {} }, { spec: { nodes: 'a' } }, { spec: { nodes: [null, 5, { id: 1, taskQueue: 'q' }, { id: 'a' }] } }]) {
      expect(inputNodes(input(junk))).toEqual([]);
    }
  });
});
