import { stripVTControlCharacters } from 'node:util';
import { describe, it, expect } from 'vitest';
import { renderPlan } from '../../client/render.ts';
import { windowsText } from '../../core/windows-text.ts';
import { expandNode, upstreamPartitions, expandPlan, planNode, planStats, planSummary, rangeBeyondSpec, requirePartitionsInRange, upstreamOf, type Plan, type PlanEdge } from '../../core/plan.ts';
import { parseRange, resolveSpec, type Mapping, type PartitionRange, type ResolvedSpec } from '../../core/spec.ts';
import { upstreamRange, upstreamRanges } from '../../core/mapping.ts';
import { NodePartitions } from '../../core/partitions.ts';


/** Resolves a spec of the given nodes over day partitions [start, end) unless the nodes say otherwise. */
function spec(nodes: unknown[], partitions: unknown = { grain: 'day', start: '2024-01-01', end: '2024-01-11' }): ResolvedSpec {
  return resolveSpec({ name: 'test', partitions, nodes });
}

const n = (id: string, extra: Record<string, unknown> = {}) => ({ id, transform: 'noop', ...extra });

/** The [lo, hi) range of every downstream partition on one edge. */
const edgeRanges = (edge: PlanEdge): Array<[number, number]> => Array.from(edge.lo, (lo, j) => [lo, edge.hi[j]!]);

function edge(plan: Plan, down: string, up: string): PlanEdge {
  const e = planNode(plan, down).upstream.find((x) => x.node === up);
  if (!e) throw new Error(`no edge ${up} -> ${down}`);
  return e;
}

/** The upstream keys partition `key` of `down` waits for, by upstream node. */
function upstreamKeys(plan: Plan, down: string, key: string): Record<string, string[]> {
  const node = planNode(plan, down);
  const index = node.partitions.indexOf(key);
  if (index < 0) throw new Error(`no partition ${key} in ${down}`);
  const out: Record<string, string[]> = {};
  for (const r of upstreamOf(plan, down, index)) {
    const up = planNode(plan, r.node).partitions;
    out[r.node] = Array.from({ length: r.end - r.start }, (_, i) => up.key(r.start + i));
  }
  return out;
}

/** Depth of every partition computed the slow, obvious way, for checking planStats. */
function naiveStats(plan: Plan): { critical: number; width: number } {
  const depth = new Map<string, number[]>();
  const histogram = new Map<number, number>();
  for (const node of plan.nodes) {
    const d: number[] = [];
    for (let j = 0; j < node.partitions.size; j++) {
      let max = 0;
      for (const e of node.upstream) {
        const upDepth = depth.get(e.node)!;
        for (let i = e.lo[j]!; i < e.hi[j]!; i++) max = Math.max(max, upDepth[i]!);
      }
      d.push(max + 1);
      histogram.set(max + 1, (histogram.get(max + 1) ?? 0) + 1);
    }
    depth.set(node.id, d);
  }
  return { critical: Math.max(0, ...histogram.keys()), width: Math.max(0, ...histogram.values()) };
}

describe('partition counts per grain', () => {
  const plan = expandPlan(
    spec(
      [
        n('hours', { partitions: { grain: 'hour' } }),
        n('days'),
        n('weeks', { partitions: { grain: 'week' } }),
        n('months', { partitions: { grain: 'month' } }),
        n('regions', { partitions: { keys: ['eu', 'us', 'apac'] } }),
      ],
      { grain: 'day', start: '2024-01-01', end: '2024-04-01' },
    ),
  );

  it('counts every period of the range', () => {
    expect(planNode(plan, 'hours').partitions.size).toBe(91 * 24);
    expect(planNode(plan, 'days').partitions.size).toBe(91);
    expect(planNode(plan, 'weeks').partitions.size).toBe(13);
    expect(planNode(plan, 'months').partitions.size).toBe(3);
    expect(planNode(plan, 'regions').partitions.size).toBe(3);
    expect(plan.totalPartitions).toBe(91 * 24 + 91 + 13 + 3 + 3);
  });

  it('lists keys in order', () => {
    expect(planNode(plan, 'months').partitions.keys()).toEqual(['2024-01', '2024-02', '2024-03']);
    expect(planNode(plan, 'weeks').partitions.key(0)).toBe('2024-W01');
    expect(planNode(plan, 'weeks').partitions.key(12)).toBe('2024-W13');
    expect(planNode(plan, 'days').partitions.key(59)).toBe('2024-02-29');
    expect(planNode(plan, 'hours').partitions.key(24 * 31 - 1)).toBe('2024-01-31T23');
    expect(planNode(plan, 'regions').partitions.keys()).toEqual(['eu', 'us', 'apac']);
  });

  it('includes weeks that overlap the range only partly', () => {
    const p = expandPlan(spec([n('weeks', { partitions: { grain: 'week' } })], { grain: 'day', start: '2024-01-03', end: '2024-02-10' }));
    expect(planNode(p, 'weeks').partitions.keys()).toEqual(['2024-W01', '2024-W02', '2024-W03', '2024-W04', '2024-W05', '2024-W06']);
  });

  it('names the plan after the spec', () => {
    expect(plan.name).toBe('test');
  });
});

describe('identity', () => {
  const plan = expandPlan(spec([n('a'), n('b', { dependsOn: ['a'] }), n('c', { dependsOn: ['b'] })]));

  it('maps each partition to the same key upstream', () => {
    expect(edgeRanges(edge(plan, 'b', 'a'))).toEqual(Array.from({ length: 10 }, (_, j) => [j, j + 1]));
    expect(upstreamKeys(plan, 'c', '2024-01-05')).toEqual({ b: ['2024-01-05'] });
    expect(upstreamOf(plan, 'b', 0)).toEqual([{ node: 'a', start: 0, end: 1 }]);
    expect(upstreamOf(plan, 'a', 0)).toEqual([]);
  });

  it('records downstream nodes and dependency order', () => {
    expect(plan.nodes.map((x) => x.id)).toEqual(['a', 'b', 'c']);
    expect(planNode(plan, 'a').downstream).toEqual(['b']);
    expect(planNode(plan, 'b').downstream).toEqual(['c']);
    expect(planNode(plan, 'c').downstream).toEqual([]);
  });

  it('a chain of three over 10 days has critical path 3 and width 10', () => {
    expect(planStats(plan)).toEqual({ totalPartitions: 30, criticalPathLength: 3, maxWidth: 10 });
  });

  it('clamps to the upstream range when the downstream node covers more', () => {
    const p = expandPlan(
      spec([n('a', { partitions: { start: '2024-01-03', end: '2024-01-06' } }), n('b', { dependsOn: ['a'] })]),
    );
    const e = edge(p, 'b', 'a');
    // b's days 01-01, 01-02 and 01-06.. are outside a: treated as present, so no dependency.
    expect(edgeRanges(e)).toEqual([
      [0, 0],
      [0, 0],
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 3],
      [3, 3],
      [3, 3],
      [3, 3],
      [3, 3],
    ]);
    expect(e.monotone).toBe(true);
    expect(upstreamOf(p, 'b', 0)).toEqual([]);
    expect(upstreamOf(p, 'b', 3)).toEqual([{ node: 'a', start: 1, end: 2 }]);
  });
});

describe('window', () => {
  it('day to week: a week waits for its 7 days', () => {
    const plan = expandPlan(
      spec([n('days'), n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] })], { grain: 'day', start: '2024-01-01', end: '2024-01-29' }),
    );
    expect(edgeRanges(edge(plan, 'weeks', 'days'))).toEqual([
      [0, 7],
      [7, 14],
      [14, 21],
      [21, 28],
    ]);
    expect(upstreamKeys(plan, 'weeks', '2024-W02').days).toEqual([
      '2024-01-08',
      '2024-01-09',
      '2024-01-10',
      '2024-01-11',
      '2024-01-12',
      '2024-01-13',
      '2024-01-14',
    ]);
    expect(planStats(plan)).toEqual({ totalPartitions: 32, criticalPathLength: 2, maxWidth: 28 });
  });

  it('day to week with a range that does not align: partial weeks wait for the days in range', () => {
    const plan = expandPlan(
      spec([n('days'), n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] })], { grain: 'day', start: '2024-01-03', end: '2024-02-10' }),
    );
    expect(planNode(plan, 'days').partitions.size).toBe(38);
    const ranges = edgeRanges(edge(plan, 'weeks', 'days'));
    expect(ranges).toEqual([
      [0, 5], // W01: 01-03..01-07 (01-01, 01-02 are outside the range)
      [5, 12],
      [12, 19],
      [19, 26],
      [26, 33],
      [33, 38], // W06: 02-05..02-09
    ]);
    expect(upstreamKeys(plan, 'weeks', '2024-W01').days![0]).toBe('2024-01-03');
    expect(upstreamKeys(plan, 'weeks', '2024-W06').days!.at(-1)).toBe('2024-02-09');
  });

  it('day to month: each month waits for its days, leap day included', () => {
    const plan = expandPlan(
      spec([n('days'), n('months', { partitions: { grain: 'month' }, dependsOn: ['days'] })], { grain: 'day', start: '2024-01-01', end: '2024-04-01' }),
    );
    expect(edgeRanges(edge(plan, 'months', 'days'))).toEqual([
      [0, 31],
      [31, 60],
      [60, 91],
    ]);
    expect(upstreamKeys(plan, 'months', '2024-02').days!.at(-1)).toBe('2024-02-29');
  });

  it('hour to day: a day waits for its 24 hours', () => {
    const plan = expandPlan(
      spec([n('hours', { partitions: { grain: 'hour' } }), n('days', { dependsOn: ['hours'] })], { grain: 'day', start: '2024-02-28', end: '2024-03-02' }),
    );
    expect(edgeRanges(edge(plan, 'days', 'hours'))).toEqual([
      [0, 24],
      [24, 48],
      [48, 72],
    ]);
    expect(upstreamKeys(plan, 'days', '2024-02-29').hours).toEqual(Array.from({ length: 24 }, (_, h) => `2024-02-29T${String(h).padStart(2, '0')}`));
    expect(planStats(plan)).toEqual({ totalPartitions: 75, criticalPathLength: 2, maxWidth: 72 });
  });

  it('hour to month', () => {
    const plan = expandPlan(
      spec([n('hours', { partitions: { grain: 'hour' } }), n('months', { partitions: { grain: 'month' }, dependsOn: ['hours'] })], {
        grain: 'day',
        start: '2023-02-01',
        end: '2023-04-01',
      }),
    );
    expect(edgeRanges(edge(plan, 'months', 'hours'))).toEqual([
      [0, 28 * 24],
      [28 * 24, 59 * 24],
    ]);
  });

  it('downstream finer than upstream: each hour waits for the day holding it', () => {
    const plan = expandPlan(
      spec([n('days'), n('hours', { partitions: { grain: 'hour' }, dependsOn: ['days'] })], { grain: 'day', start: '2024-01-01', end: '2024-01-04' }),
    );
    const e = edge(plan, 'hours', 'days');
    expect(e.mapping).toBe('window');
    expect(edgeRanges(e)).toEqual(Array.from({ length: 72 }, (_, j) => [Math.floor(j / 24), Math.floor(j / 24) + 1]));
    expect(upstreamKeys(plan, 'hours', '2024-01-02T23')).toEqual({ days: ['2024-01-02'] });
    expect(e.monotone).toBe(true);
    expect(planStats(plan)).toEqual({ totalPartitions: 75, criticalPathLength: 2, maxWidth: 72 });
  });

  it('downstream finer: days wait for their week, month for its month', () => {
    const plan = expandPlan(
      spec(
        [n('weeks', { partitions: { grain: 'week' } }), n('days', { dependsOn: [{ node: 'weeks', mapping: 'window' }] })],
        { grain: 'day', start: '2024-01-01', end: '2024-01-15' },
      ),
    );
    expect(edgeRanges(edge(plan, 'days', 'weeks'))).toEqual(Array.from({ length: 14 }, (_, j) => [j < 7 ? 0 : 1, j < 7 ? 1 : 2]));
  });
});

describe('lag', () => {
  const plan = expandPlan(spec([n('a'), n('rolling', { dependsOn: [{ node: 'a', mapping: { lag: { from: -6, to: 0 } } }] })]));

  it('a rolling window of 7 days, cut at the start of the range', () => {
    expect(edgeRanges(edge(plan, 'rolling', 'a'))).toEqual([
      [0, 1],
      [0, 2],
      [0, 3],
      [0, 4],
      [0, 5],
      [0, 6],
      [0, 7],
      [1, 8],
      [2, 9],
      [3, 10],
    ]);
    expect(upstreamKeys(plan, 'rolling', '2024-01-10').a).toEqual([
      '2024-01-04',
      '2024-01-05',
      '2024-01-06',
      '2024-01-07',
      '2024-01-08',
      '2024-01-09',
      '2024-01-10',
    ]);
    // The first day's six earlier days are before the range: treated as present, so dropped.
    expect(upstreamKeys(plan, 'rolling', '2024-01-01').a).toEqual(['2024-01-01']);
    expect(edge(plan, 'rolling', 'a').monotone).toBe(true);
  });

  it('a lag entirely before the range leaves the first partitions with no dependency', () => {
    const p = expandPlan(spec([n('a'), n('b', { dependsOn: [{ node: 'a', mapping: { lag: { from: -2, to: -1 } } }] })]));
    const ranges = edgeRanges(edge(p, 'b', 'a'));
    expect(ranges.slice(0, 4)).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 3],
    ]);
    expect(upstreamOf(p, 'b', 0)).toEqual([]);
    expect(upstreamKeys(p, 'b', '2024-01-02')).toEqual({ a: ['2024-01-01'] });
  });

  it('a forward lag is cut at the end of the range', () => {
    const p = expandPlan(spec([n('a'), n('b', { dependsOn: [{ node: 'a', mapping: { lag: { from: 0, to: 2 } } }] })]));
    const ranges = edgeRanges(edge(p, 'b', 'a'));
    expect(ranges[0]).toEqual([0, 3]);
    expect(ranges.slice(7)).toEqual([
      [7, 10],
      [8, 10],
      [9, 10],
    ]);
  });

  it('a lag across grains counts upstream periods: a month and the month before, in days', () => {
    const p = expandPlan(
      spec(
        [n('days'), n('months', { partitions: { grain: 'month' }, dependsOn: [{ node: 'days', mapping: { lag: { from: -1, to: 0 } } }] })],
        { grain: 'day', start: '2024-01-01', end: '2024-03-01' },
      ),
    );
    // January: its 31 days and the day before (outside the range, dropped); February: Jan 31 .. Feb 29.
    expect(edgeRanges(edge(p, 'months', 'days'))).toEqual([
      [0, 31],
      [30, 60],
    ]);
  });

  it('is cut at --from: days before it are treated as present', () => {
    const full = spec([n('a'), n('rolling', { dependsOn: [{ node: 'a', mapping: { lag: { from: -6, to: 0 } } }] })], {
      grain: 'day',
      start: '2024-01-01',
      end: '2024-02-01',
    });
    const p = expandPlan(full, parseRange('2024-01-10', '2024-01-20'));
    expect(planNode(p, 'a').partitions.key(0)).toBe('2024-01-10');
    expect(upstreamKeys(p, 'rolling', '2024-01-10')).toEqual({ a: ['2024-01-10'] });
    expect(upstreamKeys(p, 'rolling', '2024-01-12').a).toEqual(['2024-01-10', '2024-01-11', '2024-01-12']);
    expect(upstreamKeys(p, 'rolling', '2024-01-19').a).toHaveLength(7);
  });

  it('critical path through a chain of lags', () => {
    // a: depth 1; b[j] waits on a[j-2..j]: depth 2; c[j] waits on b[j-1] only: depth 3, except c[0] whose b[-1] is
    // outside the range, so c[0] has depth 1.
    const p = expandPlan(
      spec([
        n('a'),
        n('b', { dependsOn: [{ node: 'a', mapping: { lag: { from: -2, to: 0 } } }] }),
        n('c', { dependsOn: [{ node: 'b', mapping: { lag: { from: -1, to: -1 } } }] }),
      ]),
    );
    expect(planStats(p)).toEqual({ totalPartitions: 30, criticalPathLength: 3, maxWidth: 11 });
    expect(naiveStats(p)).toEqual({ critical: 3, width: 11 });
  });

  it('depth grows by one per node along a chain of lags', () => {
    const nodes: unknown[] = [n('n0')];
    for (let k = 1; k < 6; k++) nodes.push(n(`n${k}`, { dependsOn: [{ node: `n${k - 1}`, mapping: { lag: { from: -3, to: 0 } } }] }));
    const p = expandPlan(spec(nodes));
    expect(planStats(p)).toEqual({ totalPartitions: 60, criticalPathLength: 6, maxWidth: 10 });
  });
});

describe('all', () => {
  it('every partition waits for every upstream partition', () => {
    const plan = expandPlan(
      spec([
        n('a'),
        n('summary', { partitions: { keys: ['total'] }, dependsOn: ['a'] }),
        n('b', { dependsOn: [{ node: 'summary', mapping: 'all' }] }),
      ]),
    );
    expect(edge(plan, 'summary', 'a').mapping).toBe('all');
    expect(edgeRanges(edge(plan, 'summary', 'a'))).toEqual([[0, 10]]);
    expect(edgeRanges(edge(plan, 'b', 'summary'))).toEqual(Array.from({ length: 10 }, () => [0, 1]));
    expect(planStats(plan)).toEqual({ totalPartitions: 21, criticalPathLength: 3, maxWidth: 10 });
  });

  it('a month node with mapping all and a day node on the same upstream', () => {
    const plan = expandPlan(
      spec([
        n('a'),
        n('month', { partitions: { grain: 'month' }, dependsOn: [{ node: 'a', mapping: 'all' }] }),
        n('c', { dependsOn: ['a'] }),
      ]),
    );
    expect(edgeRanges(edge(plan, 'month', 'a'))).toEqual([[0, 10]]);
    // Depth 1: the 10 days of a; depth 2: the month and the 10 days of c.
    expect(planStats(plan)).toEqual({ totalPartitions: 21, criticalPathLength: 2, maxWidth: 11 });
  });

  it('all between time nodes of grains that do not nest (week and month)', () => {
    const plan = expandPlan(
      spec([n('weeks', { partitions: { grain: 'week' } }), n('months', { partitions: { grain: 'month' }, dependsOn: [{ node: 'weeks', mapping: 'all' }] })], {
        grain: 'day',
        start: '2024-01-01',
        end: '2024-03-01',
      }),
    );
    const weeks = planNode(plan, 'weeks').partitions.size;
    expect(edgeRanges(edge(plan, 'months', 'weeks'))).toEqual([
      [0, weeks],
      [0, weeks],
    ]);
  });
});

describe('static keys', () => {
  it('identity matches keys by name, whatever their order', () => {
    const plan = expandPlan(
      spec([
        n('regions', { partitions: { keys: ['eu', 'us', 'apac'] } }),
        n('totals', { partitions: { keys: ['us', 'eu', 'latam'] }, dependsOn: ['regions'] }),
      ]),
    );
    const e = edge(plan, 'totals', 'regions');
    expect(e.mapping).toBe('identity');
    expect(edgeRanges(e)).toEqual([
      [1, 2],
      [0, 1],
      [0, 0], // latam has no upstream key
    ]);
    expect(e.monotone).toBe(false);
    expect(upstreamKeys(plan, 'totals', 'us')).toEqual({ regions: ['us'] });
    expect(upstreamKeys(plan, 'totals', 'latam')).toEqual({});
    expect(planStats(plan)).toEqual({ totalPartitions: 6, criticalPathLength: 2, maxWidth: 4 });
  });

  it('all from static keys to days', () => {
    const plan = expandPlan(spec([n('dims', { partitions: { keys: ['a', 'b'] } }), n('facts', { dependsOn: ['dims'] })]));
    expect(edge(plan, 'facts', 'dims').mapping).toBe('all');
    expect(edgeRanges(edge(plan, 'facts', 'dims'))).toEqual(Array.from({ length: 10 }, () => [0, 2]));
  });

  it('static keys ignore the range', () => {
    const plan = expandPlan(
      spec([n('dims', { partitions: { keys: ['a', 'b'] } }), n('facts', { dependsOn: ['dims'] })]),
      parseRange('2024-01-05', '2024-01-07'),
    );
    expect(planNode(plan, 'dims').partitions.keys()).toEqual(['a', 'b']);
    expect(planNode(plan, 'facts').partitions.keys()).toEqual(['2024-01-05', '2024-01-06']);
  });
});

describe('range narrowing (--from / --to)', () => {
  const full = spec(
    [
      n('days'),
      n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] }),
      n('months', { partitions: { grain: 'month' }, dependsOn: ['days'] }),
      n('hours', { partitions: { grain: 'hour' } }),
    ],
    { grain: 'day', start: '2024-01-01', end: '2024-03-01' },
  );

  it('keeps the partitions that overlap the range: a month is in when the range starts mid-month', () => {
    const plan = expandPlan(full, parseRange('2024-01-15', '2024-02-10'));
    expect(planNode(plan, 'days').partitions.size).toBe(26);
    expect(planNode(plan, 'days').partitions.key(0)).toBe('2024-01-15');
    expect(planNode(plan, 'days').partitions.keys().at(-1)).toBe('2024-02-09');
    expect(planNode(plan, 'months').partitions.keys()).toEqual(['2024-01', '2024-02']);
    expect(planNode(plan, 'weeks').partitions.keys()).toEqual(['2024-W03', '2024-W04', '2024-W05', '2024-W06']);
    expect(planNode(plan, 'hours').partitions.size).toBe(26 * 24);
    expect(plan.totalPartitions).toBe(26 + 2 + 4 + 26 * 24);
  });

  it('a month partly in range waits only for the days in range', () => {
    const plan = expandPlan(full, parseRange('2024-01-15', '2024-02-10'));
    expect(edgeRanges(edge(plan, 'months', 'days'))).toEqual([
      [0, 17], // 01-15 .. 01-31
      [17, 26], // 02-01 .. 02-09
    ]);
  });

  it('an hour inside a month is enough to include the month', () => {
    const plan = expandPlan(full, parseRange('2024-02-29T23', undefined));
    expect(planNode(plan, 'months').partitions.keys()).toEqual(['2024-02']);
    expect(planNode(plan, 'days').partitions.keys()).toEqual(['2024-02-29']);
    expect(planNode(plan, 'hours').partitions.keys()).toEqual(['2024-02-29T23']);
  });

  it('an open end keeps the spec bound, and the range never widens the spec', () => {
    const fromOnly = expandPlan(full, parseRange('2024-02-20', undefined));
    expect(planNode(fromOnly, 'days').partitions.keys().at(-1)).toBe('2024-02-29');
    expect(planNode(fromOnly, 'days').partitions.size).toBe(10);
    const toOnly = expandPlan(full, parseRange(undefined, '2024-01-03'));
    expect(planNode(toOnly, 'days').partitions.keys()).toEqual(['2024-01-01', '2024-01-02']);
    const wider = expandPlan(full, parseRange('2023-01-01', '2025-01-01'));
    expect(wider.totalPartitions).toBe(expandPlan(full).totalPartitions);
  });

  it('a range outside the spec leaves the time nodes empty', () => {
    const plan = expandPlan(full, parseRange('2025-01-01', '2025-02-01'));
    for (const node of plan.nodes) expect(node.partitions.size).toBe(0);
    expect(plan.totalPartitions).toBe(0);
    expect(planStats(plan)).toEqual({ totalPartitions: 0, criticalPathLength: 0, maxWidth: 0 });
    expect(() => requirePartitionsInRange(full, parseRange('2025-01-01', '2025-02-01'))).toThrow(/holds no partition of any node: the spec's partitions run from 2024-01-01T00:00:00Z to /);
    // No range: whatever the spec holds is the backfill; a range that overlaps is fine.
    expect(() => requirePartitionsInRange(full, {})).not.toThrow();
    expect(() => requirePartitionsInRange(full, parseRange('2024-01-05', '2025-02-01'))).not.toThrow();
  });

  it('a range outside the spec is refused beside nodes of static keys, which take any range (a mistyped year rewrote them all)', () => {
    const mixed = resolveSpec({
      name: 'mixed',
      nodes: [
        { id: 'regions', transform: 'noop', partitions: { keys: ['eu', 'us'] } },
        { id: 'days', transform: 'noop', partitions: { grain: 'day', start: '2024-03-01', end: '2024-04-01' }, dependsOn: ['regions'] },
      ],
    });
    expect(() => requirePartitionsInRange(mixed, parseRange('2030-01-01', '2030-02-01'))).toThrow(/holds no partition of any node: .* \(its nodes of static keys take any range: only they would have run\)$/);
    expect(() => requirePartitionsInRange(mixed, parseRange('2024-03-10', '2030-02-01'))).not.toThrow();
    // A spec of static keys alone takes any range, as before.
    const keys = resolveSpec({ name: 'keys', nodes: [{ id: 'regions', transform: 'noop', partitions: { keys: ['eu'] } }] });
    expect(() => requirePartitionsInRange(keys, parseRange('2030-01-01', '2030-02-01'))).not.toThrow();
  });
});

describe('planStats', () => {
  it('a single node: critical path 1, width its size', () => {
    expect(planStats(expandPlan(spec([n('a')])))).toEqual({ totalPartitions: 10, criticalPathLength: 1, maxWidth: 10 });
  });

  it('a diamond takes the longest way', () => {
    const plan = expandPlan(
      spec([
        n('a'),
        n('b', { dependsOn: ['a'] }),
        n('c', { dependsOn: ['b'] }),
        n('d', { dependsOn: ['a', 'c'] }),
        n('solo'),
      ]),
    );
    // depth 1: a, solo (20); 2: b; 3: c; 4: d.
    expect(planStats(plan)).toEqual({ totalPartitions: 50, criticalPathLength: 4, maxWidth: 20 });
  });

  it('hour -> day -> week -> month chains', () => {
    const plan = expandPlan(
      spec(
        [
          n('hours', { partitions: { grain: 'hour' } }),
          n('days', { dependsOn: ['hours'] }),
          n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] }),
          n('months', { partitions: { grain: 'month' }, dependsOn: ['days'] }),
          n('report', { partitions: { keys: ['final'] }, dependsOn: ['weeks', 'months'] }),
        ],
        { grain: 'day', start: '2024-01-01', end: '2024-02-05' },
      ),
    );
    const stats = planStats(plan);
    expect(stats.criticalPathLength).toBe(4);
    expect(stats.maxWidth).toBe(35 * 24);
    expect(naiveStats(plan)).toEqual({ critical: stats.criticalPathLength, width: stats.maxWidth });
  });

  it('agrees with a naive computation on many shapes', () => {
    const mappings = ['window', 'all', { lag: { from: -3, to: 0 } }, { lag: { from: -1, to: 2 } }, { lag: { from: -5, to: -2 } }];
    const grains = ['hour', 'day', 'week', 'month'];
    let shapes = 0;
    for (let seed = 0; seed < 40; seed++) {
      const nodes: Array<Record<string, unknown>> = [];
      for (let k = 0; k < 5; k++) {
        const grain = grains[(seed * 7 + k * 3) % grains.length]!;
        const deps: unknown[] = [];
        for (let u = 0; u < k; u++) {
          if ((seed + u * 5 + k) % 3 !== 0) continue;
          const upGrain = nodes[u]!.partitions as { grain: string };
          const fits = !((grain === 'week' && upGrain.grain === 'month') || (grain === 'month' && upGrain.grain === 'week'));
          const mapping = fits ? mappings[(seed + u + k) % mappings.length] : 'all';
          deps.push({ node: `n${u}`, mapping: grain === upGrain.grain && mapping === 'window' ? 'identity' : mapping });
        }
        nodes.push(n(`n${k}`, { partitions: { grain }, dependsOn: deps }));
      }
      const s = spec(nodes, { grain: 'day', start: '2024-01-20', end: '2024-03-10' });
      const plan = expandPlan(s);
      const stats = planStats(plan);
      expect(naiveStats(plan), `seed ${seed}`).toEqual({ critical: stats.criticalPathLength, width: stats.maxWidth });
      shapes++;
    }
    expect(shapes).toBe(40);
  });

  it('handles 100,000 hourly partitions in a chain', () => {
    const plan = expandPlan(
      spec([n('a', { partitions: { grain: 'hour' } }), n('b', { partitions: { grain: 'hour' }, dependsOn: [{ node: 'a', mapping: { lag: { from: -23, to: 0 } } }] }), n('c', { dependsOn: ['b'] })], {
        grain: 'day',
        start: '2015-01-01',
        end: '2026-06-01',
      }),
    );
    const hours = planNode(plan, 'a').partitions.size;
    expect(hours).toBeGreaterThan(100_000);
    expect(planStats(plan)).toEqual({ totalPartitions: 2 * hours + hours / 24, criticalPathLength: 3, maxWidth: hours });
  });
});

describe('edge.monotone', () => {
  it('is true for every time mapping', () => {
    const plan = expandPlan(
      spec(
        [
          n('hours', { partitions: { grain: 'hour' } }),
          n('days', { dependsOn: ['hours'] }),
          n('same', { dependsOn: ['days'] }),
          n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] }),
          n('months', { partitions: { grain: 'month' }, dependsOn: ['days'] }),
          n('rolling', { dependsOn: [{ node: 'days', mapping: { lag: { from: -6, to: 0 } } }] }),
          n('back', { partitions: { grain: 'hour' }, dependsOn: ['days'] }),
          n('everything', { dependsOn: [{ node: 'weeks', mapping: 'all' }] }),
        ],
        { grain: 'day', start: '2024-01-17', end: '2024-03-09' },
      ),
    );
    for (const node of plan.nodes) {
      for (const e of node.upstream) {
        expect(e.monotone, `${e.node} -> ${node.id}`).toBe(true);
        for (let j = 1; j < e.lo.length; j++) {
          expect(e.lo[j]!).toBeGreaterThanOrEqual(e.lo[j - 1]!);
          expect(e.hi[j]!).toBeGreaterThanOrEqual(e.hi[j - 1]!);
        }
      }
    }
  });
});

describe('expandNode', () => {
  it('gives the same partitions and edges as the full plan', () => {
    const s = spec(
      [
        n('days'),
        n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] }),
        n('rolling', { dependsOn: [{ node: 'days', mapping: { lag: { from: -6, to: 0 } } }, 'weeks'] }),
      ],
      { grain: 'day', start: '2024-01-03', end: '2024-02-20' },
    );
    const range = parseRange('2024-01-10', '2024-02-01');
    const plan = expandPlan(s, range);
    for (const id of ['days', 'weeks', 'rolling']) {
      const alone = expandNode(s.nodes.find((node) => node.id === id)!, upstreamPartitions(s, id), range);
      const full = planNode(plan, id);
      expect(alone.partitions.keys()).toEqual(full.partitions.keys());
      expect(alone.upstream.map((e) => [e.node, e.mapping, edgeRanges(e), e.monotone])).toEqual(
        full.upstream.map((e) => [e.node, e.mapping, edgeRanges(e), e.monotone]),
      );
    }
    expect(() => upstreamPartitions(s, 'ghost')).toThrow(/unknown node 'ghost'/);
    expect(() => expandNode(s.nodes.find((node) => node.id === 'rolling')!, {}, range)).toThrow(/depends on 'days', whose partitions were not given/);
  });
});

describe('planNode, upstreamOf and planSummary', () => {
  const plan = expandPlan(
    spec([
      n('a'),
      n('b'),
      n('c', { dependsOn: ['a', { node: 'b', mapping: { lag: { from: -1, to: 0 } } }] }),
      n('m', { partitions: { grain: 'month' }, dependsOn: ['c'] }),
    ]),
  );

  it('planNode throws on an unknown node, naming the known ones', () => {
    expect(() => planNode(plan, 'zzz')).toThrow(/unknown node 'zzz' \(nodes: a, b, c, m\)/);
  });

  it('upstreamOf lists each upstream node with a non-empty range, in dependsOn order', () => {
    expect(upstreamOf(plan, 'c', 0)).toEqual([
      { node: 'a', start: 0, end: 1 },
      { node: 'b', start: 0, end: 1 },
    ]);
    expect(upstreamOf(plan, 'c', 5)).toEqual([
      { node: 'a', start: 5, end: 6 },
      { node: 'b', start: 4, end: 6 },
    ]);
    expect(upstreamOf(plan, 'm', 0)).toEqual([{ node: 'c', start: 0, end: 10 }]);
    expect(() => upstreamOf(plan, 'nope', 0)).toThrow(RangeError);
  });

  it('planSummary is the plan --json contract', () => {
    const summary = planSummary(plan);
    expect(summary).toMatchObject({ name: 'test', totalPartitions: 31, criticalPathLength: 3, maxWidth: 20 });
    expect(summary.nodes).toEqual([
      { id: 'a', grain: 'day', partitions: 10, first: '2024-01-01', last: '2024-01-10', transform: 'noop', dependsOn: [] },
      { id: 'b', grain: 'day', partitions: 10, first: '2024-01-01', last: '2024-01-10', transform: 'noop', dependsOn: [] },
      {
        id: 'c',
        grain: 'day',
        partitions: 10,
        first: '2024-01-01',
        last: '2024-01-10',
        transform: 'noop',
        dependsOn: [
          { node: 'a', mapping: 'identity' },
          { node: 'b', mapping: { lag: { from: -1, to: 0 } } },
        ],
      },
      { id: 'm', grain: 'month', partitions: 1, first: '2024-01', last: '2024-01', transform: 'noop', dependsOn: [{ node: 'c', mapping: 'window' }] },
    ]);
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
  });

  it("planSummary carries the spec's run windows, which plan shows in a line (it did not mention them)", () => {
    const input = { name: 'w', partitions: { grain: 'day' as const, start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop' }] };
    const windowed = resolveSpec({
      ...input,
      windows: { timeZone: 'Europe/Berlin', allow: [{ days: 'weekdays', from: '22:00', to: '06:00' }, { days: ['sat', 'sun'], from: '00:00', to: '24:00', rate: 5, concurrency: 2 }], outside: { rate: 0.5 } },
    });
    const summary = planSummary(expandPlan(windowed), windowed.windows);
    expect(summary.windows).toEqual(windowed.windows);
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
    expect(stripVTControlCharacters(renderPlan(summary))).toContain(
      '\nrun windows: weekdays 22:00–06:00, sat sun 00:00–24:00 at most 5/s, 2 at once (Europe/Berlin); outside them at most 0.5/s (plan --estimate follows them)',
    );
    const plain = planSummary(plan);
    expect('windows' in plain).toBe(false);
    expect(renderPlan(plain)).not.toContain('run windows');
    const paused = resolveSpec({ ...input, windows: { allow: [{ from: '01:00', to: '05:00' }] } });
    expect(windowsText(paused.windows!)).toBe('daily 01:00–05:00 (UTC); outside them paused');
  });

  it('planSummary notes a table read whose name is a node\'s with a typo, which plan shows (it ran, and failed in every partition)', () => {
    const typo = resolveSpec({
      name: 't',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' },
      nodes: [{ id: 'orders_raw', transform: 'noop' }, { id: 'orders_clean', dependsOn: ['orders_raw'], sql: 'SELECT * FROM orders_rwa' }],
    });
    const summary = planSummary(expandPlan(typo));
    expect(summary.notes).toEqual([expect.stringMatching(/^orders_clean's SQL reads orders_rwa, which is no node of this spec: if you meant orders_raw, correct the name/)]);
    expect(stripVTControlCharacters(renderPlan(summary))).toContain("\nnote: orders_clean's SQL reads orders_rwa");
    expect('notes' in planSummary(expandPlan(spec([n('a'), n('b', { dependsOn: ['a'] })])))).toBe(false);
    // This describe's plan has a month over ten days: its partial period is noted (partial-periods.test.ts).
    expect(planSummary(plan).notes).toEqual([expect.stringMatching(/^m's last partition 2024-01 ends 21 days after c's last partition/)]);
  });

  it('rangeBeyondSpec says what --from and --to asked beyond the spec, which the range is cut to (it was cut without a word)', () => {
    const days = resolveSpec({ name: 'r', partitions: { grain: 'day', start: '2024-03-01', end: '2024-04-01' }, nodes: [{ id: 'a', transform: 'noop' }] });
    expect(rangeBeyondSpec(days, parseRange('2024-03-02', '2024-03-05'))).toBeNull();
    expect(rangeBeyondSpec(days, {})).toBeNull();
    expect(rangeBeyondSpec(days, parseRange('2024-02-01', undefined))).toBe(
      "--from 2024-02-01T00:00:00Z is before the spec's first partition, 2024-03-01T00:00:00Z: the backfill covers only the spec's partitions in the range (widen the spec's partitions to go beyond them)",
    );
    expect(rangeBeyondSpec(days, parseRange(undefined, '2024-05-01'))).toMatch(/^--to 2024-05-01T00:00:00Z is after the spec's end, 2024-04-01T00:00:00Z \(exclusive\): /);
    expect(rangeBeyondSpec(days, parseRange('2024-01-01', '2024-05-01'))).toMatch(/^--from .*, and --to /);
  });

  it('planSummary of an empty node has null first and last', () => {
    const empty = expandPlan(spec([n('a')]), parseRange('2030-01-01', undefined));
    expect(planSummary(empty).nodes[0]).toMatchObject({ partitions: 0, first: null, last: null });
  });

  it('nodes are in dependency order even when the spec lists them otherwise', () => {
    const p = expandPlan(spec([n('c', { dependsOn: ['b'] }), n('b', { dependsOn: ['a'] }), n('a'), n('z')]));
    expect(p.nodes.map((x) => x.id)).toEqual(['a', 'b', 'c', 'z']);
    expect(planStats(p).criticalPathLength).toBe(3);
  });
});

describe('upstreamRanges', () => {
  it("gives each partition the range upstreamRange gives it alone (one scratch range serves them all), for every pair of grains, mapping and narrowed range", () => {
    const grains = ['hour', 'day', 'week', 'month'] as const;
    const mappings: Mapping[] = ['identity', 'window', 'all', { lag: { from: -3, to: 0 } }, { lag: { from: -30, to: 2 } }, { lag: { from: 1, to: 5 } }];
    const start = Date.UTC(2023, 11, 28, 5);
    const end = Date.UTC(2024, 2, 3, 17);
    const ranges: PartitionRange[] = [{}, { from: Date.UTC(2024, 0, 15), to: Date.UTC(2024, 1, 2, 7) }, { from: Date.UTC(2024, 1, 29) }];
    let compared = 0;
    for (const downGrain of grains) {
      for (const upGrain of grains) {
        for (const range of ranges) {
          const down = NodePartitions.of({ kind: 'time', grain: downGrain, start, end }, range);
          const ups = [NodePartitions.of({ kind: 'time', grain: upGrain, start, end }, range), NodePartitions.of({ kind: 'time', grain: upGrain, start, end })];
          for (const up of ups) {
            for (const mapping of mappings) {
              const { lo, hi } = upstreamRanges(down, up, mapping);
              expect(lo.length).toBe(down.size);
              for (let j = 0; j < down.size; j++) {
                const one = upstreamRange(down, j, up, mapping);
                expect([lo[j], hi[j]], `${downGrain} <- ${upGrain} ${JSON.stringify(mapping)} #${j}`).toEqual([one.lo, one.hi]);
                compared++;
              }
            }
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(10_000);
  });

  it('maps static keys by key, and a time node to them not at all', () => {
    const keys = NodePartitions.of({ kind: 'static', keys: ['a', 'b', 'c'] });
    const some = NodePartitions.of({ kind: 'static', keys: ['c', 'a'] });
    expect([...upstreamRanges(some, keys, 'identity').lo]).toEqual([2, 0]);
    expect([...upstreamRanges(some, keys, 'identity').hi]).toEqual([3, 1]);
    expect([...upstreamRanges(keys, some, 'identity').hi].map((h, i) => h - upstreamRanges(keys, some, 'identity').lo[i]!)).toEqual([1, 0, 1]);
    expect([...upstreamRanges(keys, some, 'all').hi]).toEqual([2, 2, 2]);
  });
});
