import { describe, it, expect } from 'vitest';
import { ancestorsOf, findCycle, topologicalOrder, type GraphNode } from '../../core/graph.ts';

const g = (edges: Record<string, string[]>): GraphNode[] => Object.entries(edges).map(([id, upstream]) => ({ id, upstream }));

/** A cycle [x0, x1, ..., x0] must be real: each node depends on the next one. */
function expectRealCycle(nodes: GraphNode[], cycle: string[] | undefined): void {
  expect(cycle).toBeDefined();
  const c = cycle!;
  expect(c.length).toBeGreaterThanOrEqual(2);
  expect(c[0]).toBe(c[c.length - 1]);
  expect(new Set(c.slice(0, -1)).size).toBe(c.length - 1); // no repeats inside
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (let i = 0; i + 1 < c.length; i++) expect(byId.get(c[i]!)!.upstream).toContain(c[i + 1]);
}

describe('findCycle', () => {
  it('is undefined for acyclic graphs', () => {
    expect(findCycle([])).toBeUndefined();
    expect(findCycle(g({ a: [] }))).toBeUndefined();
    expect(findCycle(g({ a: [], b: ['a'], c: ['a', 'b'], d: ['c', 'b'] }))).toBeUndefined();
    // A diamond is not a cycle.
    expect(findCycle(g({ top: [], left: ['top'], right: ['top'], bottom: ['left', 'right'] }))).toBeUndefined();
  });

  it('finds a cycle of three and returns it as a closed path', () => {
    const nodes = g({ a: ['b'], b: ['c'], c: ['a'] });
    const cycle = findCycle(nodes);
    expect(cycle).toEqual(['a', 'b', 'c', 'a']);
    expectRealCycle(nodes, cycle);
  });

  it('finds a self-dependency', () => {
    expect(findCycle(g({ a: [], b: ['b'] }))).toEqual(['b', 'b']);
  });

  it('finds a two-node cycle', () => {
    const nodes = g({ a: ['b'], b: ['a'] });
    expectRealCycle(nodes, findCycle(nodes));
  });

  it('returns only the cycle, not the path that led to it', () => {
    const nodes = g({ entry: ['x'], x: ['y'], y: ['z'], z: ['x'], other: [] });
    const cycle = findCycle(nodes);
    expectRealCycle(nodes, cycle);
    expect(cycle).not.toContain('entry');
    expect(new Set(cycle)).toEqual(new Set(['x', 'y', 'z']));
  });

  it('finds a cycle hidden behind acyclic parts', () => {
    const nodes = g({ a: [], b: ['a'], c: ['b', 'e'], d: ['c'], e: ['d'], f: ['a'] });
    const cycle = findCycle(nodes);
    expectRealCycle(nodes, cycle);
    expect(new Set(cycle)).toEqual(new Set(['c', 'd', 'e']));
  });

  it('ignores edges to unknown nodes', () => {
    expect(findCycle(g({ a: ['ghost'], b: ['a'] }))).toBeUndefined();
  });
});

describe('topologicalOrder', () => {
  it('places every node after its upstream nodes', () => {
    const nodes = g({ d: ['b', 'c'], c: ['a'], b: ['a'], a: [] });
    const order = topologicalOrder(nodes);
    expect(order).toEqual(['a', 'c', 'b', 'd']);
    for (const n of nodes) for (const u of n.upstream) expect(order.indexOf(u)).toBeLessThan(order.indexOf(n.id));
  });

  it('keeps input order among independent nodes', () => {
    expect(topologicalOrder(g({ z: [], y: [], x: [] }))).toEqual(['z', 'y', 'x']);
    expect(topologicalOrder(g({ b: ['a'], a: [], c: [] }))).toEqual(['a', 'b', 'c']);
    expect(topologicalOrder(g({ a: [], b: [], c: ['a'], d: [] }))).toEqual(['a', 'b', 'c', 'd']);
  });

  it('is the identity on an already ordered input', () => {
    const nodes = g({ a: [], b: ['a'], c: ['b'], d: ['a'], e: ['c', 'd'] });
    expect(topologicalOrder(nodes)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('ignores edges to unknown nodes', () => {
    expect(topologicalOrder(g({ b: ['ghost'], a: [] }))).toEqual(['b', 'a']);
  });

  it('throws on a cycle, naming the nodes left', () => {
    expect(() => topologicalOrder(g({ a: [], b: ['c'], c: ['b'] }))).toThrow(/cycle among b, c/);
    expect(() => topologicalOrder(g({ a: ['a'] }))).toThrow(/cycle/);
  });

  it('handles an empty graph and a long chain given backwards', () => {
    expect(topologicalOrder([])).toEqual([]);
    const chain: GraphNode[] = [];
    for (let i = 49; i >= 0; i--) chain.push({ id: `n${i}`, upstream: i === 0 ? [] : [`n${i - 1}`] });
    expect(topologicalOrder(chain)).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
  });
});

describe('ancestorsOf', () => {
  it('gives each node every node upstream of it, directly or through others, and none beside it', () => {
    const ancestors = ancestorsOf([
      { id: 'raw', upstream: [] },
      { id: 'clean', upstream: ['raw'] },
      { id: 'side', upstream: ['raw'] },
      { id: 'daily', upstream: ['clean', 'external'] },
      { id: 'weekly', upstream: ['daily', 'clean'] },
    ]);
    expect([...ancestors.get('raw')!]).toEqual([]);
    expect([...ancestors.get('weekly')!].sort()).toEqual(['clean', 'daily', 'external', 'raw']);
    // A branch beside it is not upstream.
    expect(ancestors.get('weekly')!.has('side')).toBe(false);
  });

  it('ends a cycle where it closes', () => {
    const ancestors = ancestorsOf([{ id: 'a', upstream: ['b'] }, { id: 'b', upstream: ['a'] }]);
    expect([...ancestors.get('a')!].sort()).toEqual(['a', 'b']);
  });
});
