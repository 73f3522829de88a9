/** What a partition reads: every upstream partition it maps to, within the backfill's range or not. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { partitionInputs } from '../../core/inputs.ts';
import { expandPlan, planNode } from '../../core/plan.ts';
import { parseRange, resolveSpec, type ResolvedSpec } from '../../core/spec.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { Row } from '../../activities/warehouse/types.ts';
import { write } from '../warehouse/suite.ts';

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

const inputsIn = (of: ResolvedSpec, node: string, key: string) => {
  const planned = planNode(expandPlan(of), node);
  return partitionInputs(planned, planned.partitions.indexOf(key));
};

/** Days 5 to 9 January; a week node running past them; a static node with a key its upstream lacks. */
const edges = resolveSpec({
  name: 'edges',
  partitions: { grain: 'day', start: '2024-01-05', end: '2024-01-10' },
  nodes: [
    { id: 'days', transform: 'noop' },
    { id: 'vs_yesterday', transform: 'noop', dependsOn: [{ node: 'days', mapping: { lag: { from: -1, to: -1 } } }] },
    { id: 'vs_tomorrow', transform: 'noop', dependsOn: [{ node: 'days', mapping: { lag: { from: 1, to: 1 } } }] },
    { id: 'weeks', transform: 'noop', partitions: { grain: 'week', end: '2024-01-29' }, dependsOn: ['days'] },
    { id: 'regions', transform: 'noop', partitions: { keys: ['eu'] } },
    { id: 'by_region', transform: 'noop', partitions: { keys: ['eu', 'us'] }, dependsOn: ['regions'] },
  ],
});

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

  it('reaches before and after the upstream node\'s own partitions: those are read as published, not waited for', () => {
    expect(inputsOf({}, 'rolling', '2024-01-02')).toEqual([{ node: 'daily', from: '2023-12-27', to: '2024-01-02' }]);
    // Week 1 of 2025 starts on 30 December 2024 and ends after the daily node.
    expect(inputsOf({}, 'weekly', '2025-W01')).toEqual([{ node: 'daily', from: '2024-12-30', to: '2025-01-05' }]);
    const rolling = planNode(expandPlan(spec), 'rolling');
    expect(rolling.upstream[0]!.lo[1]).toBe(0);
    expect(rolling.upstream[0]!.hi[1]).toBe(2);
  });

  it('names every upstream node: the periods its mapping names, the node\'s partitions or not, and no keys for a static key it lacks', () => {
    expect(inputsIn(edges, 'vs_yesterday', '2024-01-05')).toEqual([{ node: 'days', from: '2024-01-04', to: '2024-01-04' }]);
    expect(inputsIn(edges, 'vs_tomorrow', '2024-01-09')).toEqual([{ node: 'days', from: '2024-01-10', to: '2024-01-10' }]);
    expect(inputsIn(edges, 'weeks', '2024-W04')).toEqual([{ node: 'days', from: '2024-01-22', to: '2024-01-28' }]);
    expect(inputsIn(edges, 'by_region', 'us')).toEqual([{ node: 'regions', from: 'us', to: 'us', keys: [] }]);
  });

  it('names static keys, or all of them for mapping all', () => {
    expect(inputsOf({}, 'by_region', 'us')).toEqual([{ node: 'regions', from: 'us', to: 'us', keys: ['us'] }]);
    expect(inputsOf({}, 'all_regions', '2024-05-01')).toEqual([{ node: 'regions', from: 'eu', to: 'apac', all: true }]);
  });
});

/** What partition `key` of `node` reads with `sql` on a warehouse, pinned as the partition activity pins its inputs. */
describe('what a partition reads in the warehouse', () => {
  let dir: string;
  let wh: SqliteWarehouse;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-inputs-'));
    wh = new SqliteWarehouse(join(dir, 'w.db'));
  });
  afterEach(async () => {
    await wh.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const publish = async (node: string, keys: string[]) => {
    for (const key of keys) await wh.publish(write(node, key, { rows: [{ key }] }));
  };
  const reads = async (of: ResolvedSpec, node: string, key: string, sql: string): Promise<Row[]> => {
    const planned = planNode(expandPlan(of), node);
    return wh.query(sql, {}, await wh.pin(partitionInputs(planned, planned.partitions.indexOf(key))));
  };

  const regions = resolveSpec({
    name: 'regions',
    nodes: [
      { id: 'regions', transform: 'noop', partitions: { keys: ['eu'] } },
      { id: 'by_region', transform: 'noop', partitions: { keys: ['eu', 'us'] }, dependsOn: ['regions'] },
    ],
  });

  it('a partition whose mapping names no partition its upstream node has reads none of it, not the whole dataset', async () => {
    await publish('days', ['2024-01-05', '2024-01-06', '2024-01-07', '2024-01-08', '2024-01-09']);
    await publish('regions', ['eu', 'us']);
    const count = 'SELECT COUNT(*) AS n FROM days';
    // The first day's yesterday, the last day's tomorrow and a week past the days: none published.
    expect(await reads(edges, 'vs_yesterday', '2024-01-05', count)).toEqual([{ n: 0 }]);
    expect(await reads(edges, 'vs_yesterday', '2024-01-06', count)).toEqual([{ n: 1 }]);
    expect(await reads(edges, 'vs_tomorrow', '2024-01-09', count)).toEqual([{ n: 0 }]);
    expect(await reads(edges, 'weeks', '2024-W04', count)).toEqual([{ n: 0 }]);
    // regions 'us' was published by an earlier spec; this one's regions has no 'us'.
    expect(await reads(edges, 'by_region', 'us', 'SELECT key FROM regions')).toEqual([]);
  });

  it('a rolling window on the first day reads the days an earlier backfill published before the spec\'s start', async () => {
    const shop = resolveSpec({
      name: 'shop',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-02-01' },
      nodes: [
        { id: 'daily_revenue', transform: 'noop' },
        { id: 'revenue_7d', transform: 'noop', dependsOn: [{ node: 'daily_revenue', mapping: { lag: { from: -6, to: 0 } } }] },
      ],
    });
    // 2023-12-26 to 2023-12-31 were published by an earlier backfill; 2023-12-25 is outside the window.
    await publish('daily_revenue', ['2023-12-25', '2023-12-26', '2023-12-27', '2023-12-28', '2023-12-29', '2023-12-30', '2023-12-31', '2024-01-01']);
    expect(await reads(shop, 'revenue_7d', '2024-01-01', 'SELECT COUNT(*) AS days, MIN(key) AS first FROM daily_revenue')).toEqual([{ days: 7, first: '2023-12-26' }]);
    // It does not wait for them: only 2024-01-01 is in the plan.
    const edge = planNode(expandPlan(shop), 'revenue_7d').upstream[0]!;
    expect(edge.source.keys(edge.lo[0]!, edge.hi[0]!)).toEqual(['2024-01-01']);
  });

  it('a partition reads the published days around the spec its mapping names: yesterday before the first, a week past the days', async () => {
    await publish('days', ['2024-01-04', '2024-01-05', '2024-01-20', '2024-01-22']);
    expect(await reads(edges, 'vs_yesterday', '2024-01-05', 'SELECT key FROM days')).toEqual([{ key: '2024-01-04' }]);
    expect(await reads(edges, 'weeks', '2024-W04', 'SELECT key FROM days')).toEqual([{ key: '2024-01-22' }]);
  });

  it('a static identity on a node of one key reads that key, not every key an earlier spec published', async () => {
    await publish('regions', ['eu', 'us']);
    expect(partitionInputs(planNode(expandPlan(regions), 'by_region'), 0)).toEqual([{ node: 'regions', from: 'eu', to: 'eu', keys: ['eu'] }]);
    expect(await reads(regions, 'by_region', 'eu', 'SELECT key FROM regions ORDER BY key')).toEqual([{ key: 'eu' }]);
  });
});
