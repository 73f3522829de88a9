/** `plan --explain`: why each node and partition is in a backfill, checked by hand on the example and against brute force on random graphs. */
import { beforeAll, describe, expect, it } from 'vitest';
import { grainsFit } from '../../core/calendar.ts';
import { explainPlan, type Explanation } from '../../core/explain.ts';
import { partitionInputs } from '../../core/inputs.ts';
import { upstreamRange } from '../../core/mapping.ts';
import { decideRecompute } from '../../core/only-changed.ts';
import { NodePartitions } from '../../core/partitions.ts';
import { expandPlan, planNode, type Plan } from '../../core/plan.ts';
import { seededRandom } from '../../core/random.ts';
import { RangeSet } from '../../core/ranges.ts';
import { parseRange, resolveSpec, type ResolvedSpec } from '../../core/spec.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import { renderExplain } from '../../client/render-explain.ts';

const EXAMPLE = new URL('../../examples/shop/backfill.yaml', import.meta.url).pathname;
const DAY = 86_400_000;

let shop: ResolvedSpec;
beforeAll(async () => {
  shop = (await loadSpecFile(EXAMPLE)).spec;
});

const byId = (e: Explanation, id: string) => e.nodes.find((n) => n.id === id)!;

describe('upstreamRange', () => {
  const days = NodePartitions.of({ kind: 'time', grain: 'day', start: Date.UTC(2024, 0, 1), end: Date.UTC(2024, 0, 11) });
  const weeks = NodePartitions.of({ kind: 'time', grain: 'week', start: Date.UTC(2024, 0, 1), end: Date.UTC(2024, 0, 29) });

  it('names what a lag reaches back past the first partition', () => {
    expect(upstreamRange(days, 2, days, { lag: { from: -6, to: 0 } })).toEqual({ lo: 0, hi: 3, namedLo: -4, namedHi: 3, missing: 0 });
    expect(upstreamRange(days, 9, days, { lag: { from: -1, to: 2 } })).toEqual({ lo: 8, hi: 10, namedLo: 8, namedHi: 12, missing: 0 });
    // Entirely before: nothing to wait for, all of it named before the first.
    expect(upstreamRange(days, 0, days, { lag: { from: -3, to: -1 } })).toEqual({ lo: 0, hi: 0, namedLo: -3, namedHi: 0, missing: 0 });
  });

  it('names the days of a week the daily node does not have', () => {
    // Week 2 (Jan 8–14) needs days 7..13, of which days 10..13 (Jan 11–14) are past the daily node's end.
    expect(upstreamRange(weeks, 1, days, 'window')).toEqual({ lo: 7, hi: 10, namedLo: 7, namedHi: 14, missing: 0 });
    expect(upstreamRange(weeks, 3, days, 'window')).toEqual({ lo: 10, hi: 10, namedLo: 21, namedHi: 28, missing: 0 });
  });

  it('names a static key the upstream node lacks, and never clamps mapping all', () => {
    const mine = NodePartitions.of({ kind: 'static', keys: ['a', 'b', 'c'] });
    const theirs = NodePartitions.of({ kind: 'static', keys: ['b', 'a'] });
    expect(upstreamRange(mine, 0, theirs, 'identity')).toEqual({ lo: 1, hi: 2, namedLo: 1, namedHi: 2, missing: 0 });
    expect(upstreamRange(mine, 2, theirs, 'identity')).toEqual({ lo: 0, hi: 0, namedLo: 0, namedHi: 0, missing: 1 });
    expect(upstreamRange(mine, 2, days, 'all')).toEqual({ lo: 0, hi: 10, namedLo: 0, namedHi: 10, missing: 0 });
  });
});

describe('explainPlan on the example', () => {
  it('says the whole range: every node in it, nothing widened, nothing read outside', () => {
    const e = explainPlan(expandPlan(shop));
    expect(e.totalPartitions).toBe(1528);
    expect(e.totalToRun).toBe(1528);
    for (const node of e.nodes) {
      expect(node.why).toBe('range');
      expect(node.widened).toEqual({ partitions: 0, beforeMs: 0, afterMs: 0 });
      for (const edge of node.upstream) expect(edge.readsOutside.partitions).toBe(0);
    }
    // The rolling window reaches 6 days before the first: 2023-12-26 … 2023-12-31 do not exist.
    expect(byId(e, 'revenue_7d').upstream[0]).toMatchObject({ node: 'daily_revenue', mapping: 'lag(-6..0)', waiting: 366, missing: 6 });
    expect(byId(e, 'orders_raw').downstream).toEqual(['orders_clean']);
  });

  it('explains a narrow range: widened coarse nodes, what they read outside it', () => {
    const range = parseRange('2024-01-03', '2024-01-10');
    const e = explainPlan(expandPlan(shop, range), range);
    expect(e.range).toEqual({ from: Date.UTC(2024, 0, 3), to: Date.UTC(2024, 0, 10) });
    expect(byId(e, 'orders_raw')).toMatchObject({ partitions: 7, first: '2024-01-03', last: '2024-01-09', widened: { partitions: 0 } });
    // Weeks 1 (Jan 1–7) and 2 (Jan 8–14): 2 days before the range, 4 after.
    expect(byId(e, 'weekly_revenue').widened).toEqual({ partitions: 2, beforeMs: 2 * DAY, afterMs: 5 * DAY });
    expect(byId(e, 'weekly_revenue').upstream[0]).toMatchObject({
      waiting: 2,
      waitsFor: { partitions: 7, runs: ['2024-01-03 … 2024-01-09'], moreRuns: 0 },
      readsOutside: { partitions: 7, runs: ['2024-01-01 … 2024-01-02', '2024-01-10 … 2024-01-14'], moreRuns: 0 },
      missing: 0,
    });
    expect(byId(e, 'monthly_active_customers').widened).toEqual({ partitions: 1, beforeMs: 2 * DAY, afterMs: 22 * DAY });
    expect(byId(e, 'monthly_active_customers').upstream[0]!.readsOutside.partitions).toBe(24);
    const lag = byId(e, 'revenue_7d').upstream[0]!;
    expect(lag.readsOutside).toEqual({ partitions: 2, runs: ['2024-01-01 … 2024-01-02'], moreRuns: 0 });
    expect(lag.missing).toBe(4);
    expect(e.totalPartitions).toBe(31);
  });

  it('counts each partition the mapping names that the upstream node does not have once, however many partitions name it', () => {
    const plan = expandPlan(
      resolveSpec({
        name: 'missing',
        nodes: [
          { id: 'days', transform: 'noop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' } },
          { id: 'lagged', transform: 'noop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' }, dependsOn: [{ node: 'days', mapping: { lag: { from: -10, to: -8 } } }] },
          { id: 'weeks', transform: 'noop', partitions: { grain: 'week', start: '2024-01-01', end: '2024-02-05' }, dependsOn: ['days'] },
          { id: 'regions', transform: 'noop', partitions: { keys: ['eu'] } },
          { id: 'by_region', transform: 'noop', partitions: { keys: ['eu', 'us', 'apac'] }, dependsOn: ['regions'] },
        ],
      }),
    );
    const e = explainPlan(plan);
    // 1 to 8 January name 22 December to 31 December: 10 days, not the 3 one partition names.
    expect(byId(e, 'lagged').upstream[0]!.missing).toBe(10);
    // W02 names 11 to 14 January, W03 to W05 three whole weeks: 4 + 21 days.
    expect(byId(e, 'weeks').upstream[0]!.missing).toBe(25);
    expect(byId(e, 'by_region').upstream[0]!.missing).toBe(2);
    // Days outside the daily node are read as published; keys it lacks are not read.
    const text = renderExplain(e);
    expect(text).toContain("the mapping names 10 partitions outside days (before its start or after its end): reads them as published, never computes them");
    expect(text).toContain('the mapping names 2 keys regions does not have: reads none of them');
  });

  it('says static nodes take every key, and nodes out of the range run nothing', () => {
    const spec = resolveSpec({
      name: 'mixed',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
      nodes: [
        { id: 'regions', transform: 'noop', partitions: { keys: ['eu', 'us'] } },
        { id: 'early', transform: 'noop', partitions: { start: '2024-01-01', end: '2024-01-03' } },
        { id: 'daily', transform: 'noop', dependsOn: ['regions'] },
      ],
    });
    const range = parseRange('2024-01-05', undefined);
    const e = explainPlan(expandPlan(spec, range), range);
    expect(byId(e, 'regions')).toMatchObject({ why: 'static', partitions: 2 });
    expect(byId(e, 'early')).toMatchObject({ why: 'outside', partitions: 0, first: null });
    expect(byId(e, 'daily').upstream[0]).toMatchObject({ mapping: 'all', waiting: 6, waitsFor: { partitions: 2, runs: ['eu … us'] }, readsOutside: { partitions: 0 } });
  });

  it('with --only-changed: what runs, why, and which upstream node sends the rest', () => {
    const range = parseRange('2024-01-01', '2024-02-01');
    const plan = expandPlan(shop, range);
    const raw = planNode(plan, 'orders_raw');
    const decisions = decideRecompute(plan, new Map([['orders_raw', { spec: RangeSet.of([raw.partitions.indexOf('2024-01-10'), raw.partitions.indexOf('2024-01-10') + 1]) }]]));
    const e = explainPlan(plan, range, decisions);
    expect(byId(e, 'orders_raw').changed).toMatchObject({ run: 1, keep: 30, reasons: { spec: 1, upstream: 0 }, becauseOf: [] });
    // Jan 10 to Jan 16 read Jan 10 through the 7-day window.
    expect(byId(e, 'revenue_7d').changed).toMatchObject({ run: 7, reasons: { upstream: 7 }, becauseOf: [{ node: 'daily_revenue', partitions: 7 }] });
    expect(e.totalToRun).toBe([...decisions.values()].reduce((sum, d) => sum + d.run.size, 0));
    expect(e.totalToRun).toBe(1 + 1 + 1 + 7 + 1 + 1);
  });
});

/** A random spec of time nodes of mixed grains and mappings (as in only-changed.test.ts). */
function randomSpec(seed: number): ResolvedSpec {
  const random = seededRandom(seed);
  const grains = ['hour', 'day', 'week', 'month'] as const;
  const nodes: Array<Record<string, unknown>> = [];
  const count = 2 + Math.floor(random() * 4);
  for (let i = 0; i < count; i++) {
    const grain = grains[Math.floor(random() * 2) + (i === 0 ? 0 : Math.floor(random() * 3))]!;
    const dependsOn: Array<Record<string, unknown>> = [];
    for (let u = 0; u < i; u++) {
      if (random() < 0.5) continue;
      const upGrain = (nodes[u]!.partitions as { grain: string }).grain;
      const nest = grainsFit(grain, upGrain as (typeof grains)[number]);
      const mapping = upGrain === grain ? (random() < 0.5 ? 'identity' : { lag: { from: -Math.floor(random() * 5), to: Math.floor(random() * 2) } }) : nest && random() < 0.8 ? 'window' : 'all';
      dependsOn.push({ node: `n${u}`, mapping });
    }
    nodes.push({ id: `n${i}`, transform: 'noop', partitions: { grain }, dependsOn });
  }
  return resolveSpec({ name: `random-${seed}`, partitions: { start: '2024-01-01', end: '2024-03-01' }, nodes });
}

/** The keys partition j's inputs name of the upstream node's partitions, outside the plan's, the obvious way. */
function bruteOutside(plan: Plan, down: string, up: string): Set<string> {
  const node = planNode(plan, down);
  const inRange = new Set(planNode(plan, up).partitions.keys());
  const full = node.upstream.find((e) => e.node === up)!.full.keys();
  const out = new Set<string>();
  for (let j = 0; j < node.partitions.size; j++) {
    for (const input of partitionInputs(node, j)) {
      if (input.node !== up) continue;
      // Time keys of one grain sort in time order.
      for (const key of full) if (key >= input.from && key <= input.to && !inRange.has(key)) out.add(key);
    }
  }
  return out;
}

describe('explainPlan agrees with brute force on random graphs and ranges', () => {
  for (let seed = 1; seed <= 25; seed++) {
    it(`seed ${seed}`, () => {
      const spec = randomSpec(seed);
      const random = seededRandom(seed * 7919);
      const from = Date.UTC(2024, 0, 1 + Math.floor(random() * 30), Math.floor(random() * 24));
      const range = { from, to: from + (1 + Math.floor(random() * 20)) * DAY };
      const plan = expandPlan(spec, range);
      const e = explainPlan(plan, range);
      expect(e.totalPartitions).toBe(plan.nodes.reduce((sum, n) => sum + n.partitions.size, 0));
      for (const node of plan.nodes) {
        const x = byId(e, node.id);
        for (const edge of node.upstream) {
          const ex = x.upstream.find((u) => u.node === edge.node)!;
          const waits = new Set<number>();
          let waiting = 0;
          for (let j = 0; j < node.partitions.size; j++) {
            if (edge.hi[j]! > edge.lo[j]!) waiting++;
            for (let i = edge.lo[j]!; i < edge.hi[j]!; i++) waits.add(i);
          }
          expect(ex.waiting).toBe(waiting);
          expect(ex.waitsFor.partitions).toBe(waits.size);
          expect(ex.readsOutside.partitions).toBe(bruteOutside(plan, node.id, edge.node).size);
        }
        // A partition sticks out of the range exactly when its window is not inside it.
        let sticking = 0;
        for (let j = 0; j < node.partitions.size; j++) {
          const w = node.partitions.window(j)!;
          if (w.start < range.from || w.end > range.to) sticking++;
        }
        expect(x.widened.partitions).toBe(sticking);
      }
    });
  }
});
