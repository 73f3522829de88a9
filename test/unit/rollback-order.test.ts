/** Which nodes a rollback walks, and in what order, over every run of a backfill id (core/rollback-order.ts). */
import { describe, expect, it } from 'vitest';
import { rollbackNodes, withLedger, type RunNode } from '../../core/rollback-order.ts';

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

describe('withLedger', () => {
  it('adds the nodes only the ledger names, ordered by its lineage, keeping the order and task queues the histories give', () => {
    // The histories (one run kept) name b then a; the ledger also has c (read b) and d (read c), from a run whose history is gone.
    const { order, taskQueues } = withLedger(['b', 'a'], { a: 'qa', b: 'qb' }, [
      { node: 'a', upstream: [] },
      { node: 'b', upstream: ['a'] },
      { node: 'c', upstream: ['b'] },
      { node: 'd', upstream: ['c'] },
    ]);
    expect(order).toEqual(['d', 'c', 'b', 'a']);
    // A node only the ledger knows has no queue of its own: its batches run on the rollback's.
    expect(taskQueues).toEqual({ a: 'qa', b: 'qb' });
  });

  it("with no history, orders the ledger's nodes downstream first; with neither, nothing", () => {
    expect(withLedger([], {}, [{ node: 'weekly', upstream: ['daily'] }, { node: 'daily', upstream: ['raw'] }, { node: 'raw', upstream: [] }]).order).toEqual(['weekly', 'daily', 'raw']);
    expect(withLedger([], {}, [])).toEqual({ order: [], taskQueues: {} });
  });

  it('a node the histories name that the ledger lacks (it published nothing) stays in its place', () => {
    expect(withLedger(['y', 'x', 'idle'], {}, [{ node: 'x', upstream: [] }, { node: 'y', upstream: ['x'] }]).order).toEqual(['y', 'x', 'idle']);
  });
});
