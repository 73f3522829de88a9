/** Which nodes a rollback walks, and in what order, over every run of a backfill id (core/rollback-order.ts). */
import { describe, expect, it } from 'vitest';
import { rollbackNodes, withUnlisted, type RunNode } from '../../core/rollback-order.ts';

const node = (id: string, upstream: string[] = [], taskQueue = 'q'): RunNode => ({ id, dependsOn: upstream.map((u) => ({ node: u })), taskQueue });

describe('rollbackNodes', () => {
  it('of one run: its nodes downstream first, as the spec lists the independent ones (reversed)', () => {
    expect(rollbackNodes([[node('src'), node('daily', ['src']), node('weekly', ['daily']), node('other')]]).order).toEqual(['other', 'weekly', 'daily', 'src']);
  });

  it('of runs of other nodes: every node of every run, downstream first across their edges', () => {
    // The first run wrote a and b (b from a); a --rerun wrote only a, then c from a.
    const { order, taskQueues } = rollbackNodes([
      [node('a', [], 'old'), node('b', ['a'], 'old')],
      [node('a', [], 'new'), node('c', ['a'], 'new')],
    ]);
    expect(order).toEqual(['b', 'c', 'a']);
    expect(taskQueues).toEqual({ a: 'new', b: 'old', c: 'new' });
  });

  it('an edge only an older run had still orders the nodes', () => {
    // The newest run has x and y independent; the older one had y from x.
    expect(rollbackNodes([[node('x'), node('y', ['x'])], [node('y'), node('x')]]).order).toEqual(['y', 'x']);
  });

  it('runs whose edges together make a cycle still give every node once', () => {
    const { order } = rollbackNodes([[node('p'), node('q', ['p'])], [node('q'), node('p', ['q']), node('r', ['p'])]]);
    expect([...order].sort()).toEqual(['p', 'q', 'r']);
    expect(order.indexOf('r')).toBeLessThan(order.indexOf('p'));
  });

  it('of no run: nothing', () => {
    expect(rollbackNodes([])).toEqual({ order: [], taskQueues: {} });
  });
});

describe('withUnlisted', () => {
  it('appends the nodes found elsewhere that the order lacks, sorted, once each', () => {
    expect(withUnlisted(['b', 'a'], ['z', 'a', 'c', 'z'])).toEqual(['b', 'a', 'c', 'z']);
  });
});
