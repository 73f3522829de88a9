/** What a partition reads: every upstream partition it maps to, within the backfill's range or not. */
import { describe, expect, it } from 'vitest';
import { partitionInputs } from '../../core/inputs.ts';
import { expandPlan, planNode } from '../../core/plan.ts';
import { parseRange, resolveSpec } from '../../core/spec.ts';

const spec = resolveSpec({
  name: 'inputs',
  partitions: { grain: 'day', start: '2024-01-01', end: '2025-01-01' },
  nodes: [
    { id: 'daily', transform: 'noop' },
    { id: 'rolling', transform: 'noop', dependsOn: [{ node: 'daily', mapping: { lag: { from: -6, to: 0 } } }] },
    { id: 'weekly', transform: 'noop', partitions: { grain: 'week' }, dependsOn: ['daily'] },
    { id: 'monthly', transform: 'noop', partitions: { grain: 'month' }, dependsOn: ['daily'] },
    { id: 'regions', transform: 'noop', partitions: { keys: ['eu', 'us', 'apac'] } },
    { id: 'by_region', transform: 'noop', partitions: { keys: ['us', 'eu'] }, dependsOn: ['regions'] },
    { id: 'all_regions', transform: 'noop', dependsOn: [{ node: 'regions', mapping: 'all' }] },
  ],
});

const inputsOf = (range: ReturnType<typeof parseRange>, node: string, key: string) => {
  const plan = expandPlan(spec, range);
  const planned = planNode(plan, node);
  return partitionInputs(planned, planned.partitions.indexOf(key));
};

describe('partitionInputs', () => {
  it('names the upstream partitions a partition maps to', () => {
    expect(inputsOf({}, 'rolling', '2024-03-10')).toEqual([{ node: 'daily', from: '2024-03-04', to: '2024-03-10' }]);
    expect(inputsOf({}, 'weekly', '2024-W10')).toEqual([{ node: 'daily', from: '2024-03-04', to: '2024-03-10' }]);
    expect(inputsOf({}, 'monthly', '2024-02')).toEqual([{ node: 'daily', from: '2024-02-01', to: '2024-02-29' }]);
  });

  it('with --from/--to, still names upstream partitions outside the range: they are read, only not waited for', () => {
    const range = parseRange('2024-03-03', '2024-03-10');
    // The week of 26 Feb - 3 Mar overlaps the range: it is recomputed from all seven of its days.
    expect(inputsOf(range, 'weekly', '2024-W09')).toEqual([{ node: 'daily', from: '2024-02-26', to: '2024-03-03' }]);
    expect(inputsOf(range, 'rolling', '2024-03-03')).toEqual([{ node: 'daily', from: '2024-02-26', to: '2024-03-03' }]);
    expect(inputsOf(range, 'monthly', '2024-03')).toEqual([{ node: 'daily', from: '2024-03-01', to: '2024-03-31' }]);
    // What it waits for stays within the range.
    const plan = expandPlan(spec, range);
    const weekly = planNode(plan, 'weekly');
    const edge = weekly.upstream[0]!;
    const j = weekly.partitions.indexOf('2024-W09');
    expect(edge.source.keys(edge.lo[j], edge.hi[j])).toEqual(['2024-03-03']);
  });

  it('stops at the upstream node\'s own bounds', () => {
    expect(inputsOf({}, 'rolling', '2024-01-02')).toEqual([{ node: 'daily', from: '2024-01-01', to: '2024-01-02' }]);
  });

  it('names static keys, or all of them for mapping all', () => {
    expect(inputsOf({}, 'by_region', 'us')).toEqual([{ node: 'regions', from: 'us', to: 'us', keys: ['us'] }]);
    expect(inputsOf({}, 'all_regions', '2024-05-01')).toEqual([{ node: 'regions', from: 'eu', to: 'apac', all: true }]);
  });
});
