/** Fix and go on: which spec changes a backfill accepts, and which it refuses naming the difference. */
import { describe, expect, it } from 'vitest';
import { thrownBackfillError } from './backfill-error.ts';
import { changedNodes } from '../../core/spec-changes.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';

const base: SpecInput = {
  name: 'fix',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-10' },
  nodes: [
    { id: 'a', sql: 'SELECT 1 AS x' },
    { id: 'b', sql: 'SELECT x FROM a', dependsOn: ['a'], checks: [{ type: 'row_count', min: 1 }] },
  ],
};
const spec = (edit: (s: SpecInput) => void = () => undefined) => {
  const copy = structuredClone(base);
  edit(copy);
  return resolveSpec(copy);
};

describe('changedNodes', () => {
  it('lists nothing for the same spec', () => {
    expect(changedNodes(spec(), spec())).toEqual([]);
  });

  it('lists the nodes whose SQL, parameters, checks, transform or limits changed', () => {
    expect(changedNodes(spec(), spec((s) => void (s.nodes[0]!.sql = 'SELECT 2 AS x')))).toEqual(['a']);
    expect(changedNodes(spec(), spec((s) => void (s.nodes[1]!.params = { k: 1 })))).toEqual(['b']);
    expect(changedNodes(spec(), spec((s) => void (s.nodes[1]!.checks = [])))).toEqual(['b']);
    expect(changedNodes(spec(), spec((s) => void (s.nodes[0]!.concurrency = 9)))).toEqual(['a']);
    expect(changedNodes(spec(), spec((s) => void (s.defaults = { retry: { maxAttempts: 5 } })))).toEqual(['a', 'b']);
  });

  const refused: Array<[string, (s: SpecInput) => void, RegExp]> = [
    ['a node removed', (s) => void s.nodes.pop(), /has no node 'b'/],
    ['a node added', (s) => void s.nodes.push({ id: 'c', transform: 'noop' }), /adds node 'c'/],
    ['other partitions', (s) => void (s.partitions = { grain: 'day', start: '2024-01-01', end: '2024-01-11' }), /changes the partitions of 'a'/],
    ['another grain', (s) => void (s.nodes[1]!.partitions = { grain: 'week' }), /changes the partitions of 'b'/],
    ['another dependency', (s) => void (s.nodes[1]!.dependsOn = [{ node: 'a', mapping: { lag: { from: -1, to: 0 } } }]), /changes what 'b' depends on/],
  ];
  for (const [what, edit, message] of refused) {
    it(`refuses ${what}, naming the difference and the way out`, () => {
      const error = thrownBackfillError(() => changedNodes(spec(), spec(edit)));
      expect(error.message).toMatch(message);
      expect(error.message).toMatch(/start a new backfill/);
    });
  }
});
