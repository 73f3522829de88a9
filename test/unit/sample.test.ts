/** `plan --estimate --sample N`: which partitions a sample runs, what it skips, and the checks on N. */
import { describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { expandPlan } from '../../core/plan.ts';
import { RangeSet } from '../../core/ranges.ts';
import { maxSample, parseSample, sampleSelection, spreadIndices } from '../../core/sample.ts';
import { resolveSpec } from '../../core/spec.ts';

const spec = resolveSpec({
  name: 'sample',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-02-01' },
  nodes: [
    { id: 'raw', transform: 'sleep' },
    { id: 'daily', transform: 'sleep', dependsOn: ['raw'] },
    { id: 'weekly', transform: 'sleep', partitions: { grain: 'week' }, dependsOn: ['daily'] },
  ],
});
const plan = expandPlan(spec);

const refused = (value: unknown) => {
  try {
    parseSample(value, plan);
  } catch (error) {
    return error as BackfillError;
  }
  throw new Error(`--sample ${String(value)} was accepted`);
};

describe('spreadIndices', () => {
  it('takes the middle of each of n equal stretches, ascending and distinct', () => {
    expect(spreadIndices(10, 1)).toEqual([5]);
    expect(spreadIndices(10, 2)).toEqual([2, 7]);
    expect(spreadIndices(31, 3)).toEqual([5, 15, 25]);
    expect(spreadIndices(4, 4)).toEqual([0, 1, 2, 3]);
    for (const [size, n] of [[7, 7], [100, 9], [10_000, 37], [3, 2]] as const) {
      const picked = spreadIndices(size, n);
      expect(new Set(picked).size).toBe(n);
      expect(picked.every((i, k) => i >= 0 && i < size && (k === 0 || i > picked[k - 1]!))).toBe(true);
    }
  });
});

describe('parseSample', () => {
  it('takes a whole number above 0, as text or as a number, up to the smallest node', () => {
    expect(maxSample(plan)).toBe(5);
    expect(parseSample('3', plan)).toBe(3);
    expect(parseSample(5, plan)).toBe(5);
  });

  it('refuses anything else with invalid_argument naming --sample and the fix', () => {
    for (const bad of ['0', '-1', '1.5', 'abc', '', '3x', '1e2', 0, -2, 2.5, Number.NaN, Infinity, null, undefined, {}, '99999999999999999999']) {
      const error = refused(bad);
      expect(error).toBeInstanceOf(BackfillError);
      expect(error.code).toBe('invalid_argument');
      expect(error.path).toBe('sample');
      expect(error.message).toMatch(/--sample must be a whole number of partitions per node above 0/);
    }
  });

  it('refuses more than the partitions of a node, naming it and the largest sample allowed', () => {
    const error = refused('6');
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toMatch(/weekly has 5/);
    expect(error.message).toMatch(/--sample 5 or less/);
    expect(error.message).not.toMatch(/raw has/);
  });
});

describe('sampleSelection', () => {
  it('runs n spread partitions of every node and skips all the others', () => {
    const selection = sampleSelection(plan, 2);
    expect(selection.perNode).toBe(2);
    expect(selection.partitions).toEqual({ raw: ['2024-01-08', '2024-01-24'], daily: ['2024-01-08', '2024-01-24'], weekly: ['2024-W02', '2024-W04'] });
    for (const node of plan.nodes) {
      const skipped = RangeSet.fromJSON(selection.skip[node.id]);
      expect(skipped.size + 2, node.id).toBe(node.partitions.size);
      for (const key of selection.partitions[node.id]!) expect(skipped.has(node.partitions.indexOf(key)), `${node.id} ${key}`).toBe(false);
    }
  });

  it('with n equal to a node\'s partitions, skips none of it', () => {
    const selection = sampleSelection(plan, 5);
    expect(RangeSet.fromJSON(selection.skip.weekly).isEmpty).toBe(true);
    expect(selection.partitions.weekly).toHaveLength(5);
  });
});
