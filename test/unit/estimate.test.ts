/** The simulation behind `plan --estimate` and `status`'s ETA: each rule the workflows follow, with figures worked out by hand. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_OVERHEAD, MAX_OVERHEAD_FACTOR, fitOverhead, scaleOverhead, simulate, spanOf, type NodeTiming, type OverheadModel, type SimulationInput } from '../../core/estimate.ts';
import { expandPlan } from '../../core/plan.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';
import { RunWindows, WindowsSchema, windowedLimits } from '../../core/windows.ts';

/** No orchestration cost at all: what is left is the rules. */
const FREE: OverheadModel = { startMs: 0, activityMs: 0, hopMs: 0, reportIntervalMs: 0, activityCostMs: 0, partitionCostMs: 0, endMs: 0 };

function spec(nodes: SpecInput['nodes'], extra: Partial<SpecInput> = {}, days = 10) {
  return resolveSpec({ name: 'estimate', partitions: { grain: 'day', start: '2024-01-01', end: `2024-01-${String(1 + days).padStart(2, '0')}` }, ...extra, nodes });
}

function run(nodes: SpecInput['nodes'], options: Partial<Omit<SimulationInput, 'plan' | 'timings'>> & { ms?: Record<string, number | NodeTiming>; extra?: Partial<SpecInput>; days?: number } = {}) {
  const resolved = spec(nodes, options.extra, options.days);
  const plan = expandPlan(resolved);
  const timings = new Map(Object.entries(options.ms ?? {}).map(([id, t]) => [id, typeof t === 'number' ? { meanMs: t } : t]));
  return simulate({ plan, limits: { rate: resolved.rate, concurrency: resolved.concurrency }, timings, overhead: FREE, ...options });
}

/** One partition per activity unless a test says otherwise: the rules below are about other things than batching. */
const node = (id: string, extra: Record<string, unknown> = {}) => ({ id, transform: 'noop', batchSize: 1, ...extra });

describe('one node', () => {
  it('runs in waves of its concurrency', () => {
    const forecast = run([node('a', { concurrency: 3 })], { ms: { a: 100 } });
    // 10 partitions, 3 at a time: 4 waves.
    expect(forecast.wallMs).toBe(400);
    expect(forecast.nodes[0]).toMatchObject({ id: 'a', partitions: 10, runs: 10, activities: 10, firstStartMs: 0, finishMs: 400 });
  });

  it('runs batches of batchSize partitions in one activity, one after another', () => {
    const forecast = run([node('a', { concurrency: 1, batchSize: 3 })], { ms: { a: 10 } });
    // 3 + 3 + 3 + 1 partitions.
    expect(forecast.activities).toBe(4);
    expect(forecast.wallMs).toBe(100);
  });

  it('with batchSize auto, runs the first partition alone, then as many as fit in the batch target', () => {
    // 30 partitions of 100 ms, one activity at a time: one measures the node, then batches of 20 (2 s).
    const forecast = run([node('a', { concurrency: 1, batchSize: 'auto' })], { ms: { a: 100 }, days: 30 });
    expect(forecast.nodes[0]!.activities).toBe(1 + 2);
    expect(forecast.wallMs).toBe(30 * 100);
    // A shorter target makes smaller batches; slow partitions (a quarter of the target or more) run alone.
    expect(run([node('a', { concurrency: 1, batchSize: 'auto', batchTarget: '500ms' })], { ms: { a: 100 }, days: 30 }).nodes[0]!.activities).toBe(1 + Math.ceil(29 / 5));
    expect(run([node('a', { concurrency: 1, batchSize: 'auto' })], { ms: { a: 500 }, days: 30 }).nodes[0]!.activities).toBe(30);

    // With more slots, the others wait for the first (100 ms), then go in even shares of what
    // waits (29 on 3 slots: 10, 7, 4, then smaller as the queue shrinks): the slots stay busy to the end.
    const wide = run([node('a', { concurrency: 3, batchSize: 'auto' })], { ms: { a: 100 }, days: 30 });
    expect(wide.wallMs).toBe(100 + 1000);
    expect(wide.nodes[0]!.activities).toBeLessThan(15);
    // Slow ones: the others start once the first has run for a quarter of the target.
    const slow = run([node('a', { concurrency: 3, batchSize: 'auto' })], { ms: { a: 1000 }, days: 3 });
    expect(slow.wallMs).toBe(1500);
  });

  it('takes each partition\'s own duration where it is known, the mean elsewhere', () => {
    const byIndex = new Float64Array(10).fill(Number.NaN);
    byIndex[9] = 1000;
    const forecast = run([node('a', { concurrency: 10 })], { ms: { a: { meanMs: 10, byIndex } } });
    expect(forecast.wallMs).toBe(1000);
    expect(run([node('a', { concurrency: 10 })], { ms: { a: 10 } }).wallMs).toBe(10);
  });

  it('paces starts with its token bucket, refilled on pacing ticks', () => {
    // Rate 2/s, burst 2: two at once, then a tick every 500 ms (half the bucket) with one token each.
    const forecast = run([node('a', { concurrency: 100, rate: 2 })], { ms: { a: 0 } });
    expect(forecast.wallMs).toBe(4000);
    // A burst of 6: six at once, then a tick every 1.5 s (half the bucket: 3 tokens).
    expect(run([node('a', { concurrency: 100, rate: 2, burst: 6 })], { ms: { a: 0 } }).wallMs).toBe(3000);
  });

  it('pays the per-activity overhead in every activity, and the start and end once', () => {
    const overhead = { ...FREE, startMs: 1000, activityMs: 50, endMs: 200 };
    const forecast = run([node('a', { concurrency: 5 })], { ms: { a: 100 }, overhead });
    // Two waves of 150 ms after the start, then the end.
    expect(forecast.nodes[0]!.firstStartMs).toBe(1000);
    expect(forecast.nodes[0]!.finishMs).toBe(1300);
    expect(forecast.wallMs).toBe(1500);
  });

  it('queues starts behind the orchestration work of each activity and partition', () => {
    const perActivity = run([node('a', { concurrency: 10 })], { ms: { a: 0 }, overhead: { ...FREE, activityCostMs: 10 } });
    // Ten starts 10 ms apart.
    expect(perActivity.wallMs).toBe(90);
    const batched = run([node('a', { concurrency: 10, batchSize: 5 })], { ms: { a: 0 }, overhead: { ...FREE, activityCostMs: 10, partitionCostMs: 2 } });
    // Two activities of five partitions: the second starts after 10 + 5 × 2 ms.
    expect(batched.activities).toBe(2);
    expect(batched.wallMs).toBe(20);
  });
});

describe('readiness', () => {
  it('releases a downstream partition after its upstream partition is reported and delivered', () => {
    const overhead = { ...FREE, hopMs: 10 };
    const forecast = run([node('a'), node('b', { dependsOn: ['a'] })], { ms: { a: 100, b: 50 }, overhead, days: 1 });
    // a done at 100, its report reaches the parent at 110, b has it at 120 and is done at 170, reported at 180.
    expect(forecast.nodes[1]).toMatchObject({ firstStartMs: 120, finishMs: 170 });
    expect(forecast.wallMs).toBe(180);
  });

  it("sends a node's reports at most once per report interval, news of partitions starting included, and its last results at once", () => {
    const overhead = { ...FREE, hopMs: 10, reportIntervalMs: 1000 };
    const forecast = run([node('a', { concurrency: 1 }), node('b', { dependsOn: ['a'] })], { ms: { a: 100, b: 0 }, overhead, days: 20 });
    // a's report that its first day runs leaves at 0 (the parent has it at 10); its days are done
    // every 100 ms, and the next report may leave only at 1010: b has the first ten at 1030.
    expect(forecast.nodes[1]).toMatchObject({ firstStartMs: 1030 });
    // a's last day is done at 2000 and a has nothing left to run: it reports at once rather than
    // at 2020 (report-when-idle), and b has the last ten at 2020, done with them at once; b,
    // idle too, reports them at once (its parent has them at 2030).
    expect(forecast.nodes[1]).toMatchObject({ finishMs: 2020 });
    expect(forecast.wallMs).toBe(2030);
  });

  it('waits for every upstream partition a mapping names', () => {
    const forecast = run(
      [node('day', { concurrency: 1 }), node('week', { partitions: { grain: 'week', start: '2024-01-01', end: '2024-01-15' }, dependsOn: ['day'] })],
      { ms: { day: 10, week: 5 }, days: 14 },
    );
    // Week 2 needs days 8..14: it starts when the 14th day is done.
    expect(forecast.nodes[1]).toMatchObject({ runs: 2, firstStartMs: 70, finishMs: 145 });
  });

  it('runs nothing of what --only-changed keeps, and releases what waits only on it', () => {
    const skip = { a: RangeSet.of([0, 10]).toJSON(), b: RangeSet.of([0, 5]).toJSON() };
    const forecast = run([node('a'), node('b', { dependsOn: ['a'] })], { ms: { a: 100, b: 10 }, skip });
    expect(forecast.nodes.map((n) => n.runs)).toEqual([0, 5]);
    expect(forecast.nodes[1]!.firstStartMs).toBe(0);
    expect(forecast.wallMs).toBe(20);
  });

  it('a fresh backfill with nothing to run still starts and ends', () => {
    const skip = { a: RangeSet.of([0, 10]).toJSON() };
    expect(run([node('a')], { ms: { a: 100 }, skip, overhead: { ...FREE, startMs: 700, endMs: 300 } }).wallMs).toBe(1000);
  });
});

describe('shared limits and task queues', () => {
  it("shares the backfill's concurrency among the nodes with work", () => {
    const nodes = [node('a', { concurrency: 4 }), node('b', { concurrency: 4 })];
    expect(run(nodes, { ms: { a: 100, b: 100 }, days: 4 }).wallMs).toBe(100);
    // Two slots each: two waves.
    expect(run(nodes, { ms: { a: 100, b: 100 }, days: 4, limits: { rate: null, concurrency: 4 } }).wallMs).toBe(200);
  });

  it('gives a node the whole share once the other has no more work', () => {
    const nodes = [node('a', { concurrency: 4 }), node('b', { concurrency: 4 })];
    const forecast = run(nodes, { ms: { a: 10, b: 100 }, days: 8, limits: { rate: null, concurrency: 4 } });
    // a (2 slots, 8 × 10 ms) is done at 40; b then gets a's 2 slots too: pairs finish at 100, 140, 200 and 240.
    expect(forecast.nodes[0]!.finishMs).toBe(40);
    expect(forecast.nodes[1]!.finishMs).toBe(240);
  });

  it("caps a task queue's activities by its workers' slots", () => {
    const nodes = [node('a', { concurrency: 10 }), node('b', { concurrency: 10 })];
    const forecast = run(nodes, { ms: { a: 100, b: 100 }, days: 4, queues: { backfill: { ratePerSecond: null, slots: 4 } } });
    // 8 partitions through 4 slots.
    expect(forecast.wallMs).toBe(200);
  });

  it("paces a task queue's starts at the server's rate cap", () => {
    const forecast = run([node('a', { concurrency: 100 })], { ms: { a: 0 }, days: 20, queues: { backfill: { ratePerSecond: 10, slots: null } } });
    // A burst of 10, then one every 100 ms.
    expect(forecast.wallMs).toBe(1000);
    // Another queue is not capped.
    const other = run([node('a', { concurrency: 100, taskQueue: 'other' })], { ms: { a: 0 }, days: 20, queues: { backfill: { ratePerSecond: 10, slots: null } } });
    expect(other.wallMs).toBe(0);
    // An infinite cap caps nothing (its start times were NaN, and the simulation never ended).
    const infinite = run([node('a', { concurrency: 100 })], { ms: { a: 0 }, days: 20, queues: { backfill: { ratePerSecond: Infinity, slots: null } } });
    expect(infinite.wallMs).toBe(0);
  });
});

describe('a backfill under way (status)', () => {
  it('runs only what is not done, from now, without the start', () => {
    const plan = expandPlan(spec([node('a', { concurrency: 2 })]));
    const from = { a: { done: RangeSet.of([0, 6]).toJSON(), failed: '', inHands: RangeSet.of([6, 10]).toJSON() } };
    const forecast = simulate({ plan, limits: { rate: null, concurrency: null }, timings: new Map([['a', { meanMs: 100 }]]), overhead: { ...FREE, startMs: 5000 }, from });
    expect(forecast.runs).toBe(4);
    expect(forecast.wallMs).toBe(200);
  });

  it('leaves out what waits on a failed partition', () => {
    const plan = expandPlan(spec([node('a'), node('b', { dependsOn: ['a'] })]));
    const from = { a: { done: RangeSet.of([0, 9]).toJSON(), failed: RangeSet.of([9, 10]).toJSON(), inHands: '' }, b: { done: '', failed: '', inHands: '' } };
    const forecast = simulate({ plan, limits: { rate: null, concurrency: null }, timings: new Map([['b', { meanMs: 10 }]]), overhead: FREE, from });
    expect(forecast.nodes.map((n) => n.runs)).toEqual([0, 9]);
  });
});

describe('run windows', () => {
  type Limits = { rate: number | null; concurrency: number | null };
  /** Windows as effectiveLimits says them: `spans` of [from, to, limits] (ms from the start at 1e9), closed (`outside`) elsewhere. */
  const windows = (spans: Array<[number, number, Limits?]>, outside: 'pause' | Limits = 'pause'): SimulationInput['windows'] => ({
    startAt: 1e9,
    limitsAt: (at) => {
      const t = at - 1e9;
      const inside = spans.find(([from, to]) => from <= t && t < to);
      const changes = spans.flatMap(([from, to]) => [from, to]).filter((c) => c > t);
      const nextChangeAt = changes.length > 0 ? 1e9 + Math.min(...changes) : null;
      if (inside) return { rate: inside[2]?.rate ?? null, concurrency: inside[2]?.concurrency ?? null, paused: false, open: true, nextChangeAt };
      return outside === 'pause' ? { rate: null, concurrency: null, paused: true, open: false, nextChangeAt } : { ...outside, paused: false, open: false, nextChangeAt };
    },
  });
  const a = [node('a', { concurrency: 3 })];

  it('starts nothing until a window opens', () => {
    // 10 partitions of 100 ms, 3 at a time, once the window opens at 10 s.
    const forecast = run(a, { ms: { a: 100 }, windows: windows([[10_000, 1e12]]) });
    expect(forecast.nodes[0]!.firstStartMs).toBe(10_000);
    expect(forecast.wallMs).toBe(10_000 + 400);
  });

  it('starts nothing once it closes (running partitions finish), until the next opens', () => {
    // Open for 250 ms: three waves start (0, 100, 200); the tenth partition waits for the next window, at 60 s.
    const forecast = run(a, { ms: { a: 100 }, windows: windows([[0, 250], [60_000, 70_000]]) });
    expect(forecast.runs).toBe(10);
    expect(forecast.wallMs).toBe(60_000 + 100);
  });

  it('runs at the lower limits inside a window, or at the outside rate instead of pausing', () => {
    expect(run(a, { ms: { a: 100 }, windows: windows([[0, 1e12, { rate: null, concurrency: 1 }]]) }).wallMs).toBe(1000);
    // Outside at 2 a second (a burst of 2), until the window opens at 2 s: then 3 at a time.
    const outside = run(a, { ms: { a: 100 }, windows: windows([[2000, 1e12]], { rate: 2, concurrency: null }) });
    expect(outside.nodes[0]!.firstStartMs).toBe(0);
    expect(outside.runs).toBe(10);
    expect(outside.wallMs).toBeLessThan(2000 + 400);
    expect(outside.wallMs).toBeGreaterThan(2000);
  });

  it('ends when no window opens again, with what could not run unrun', () => {
    const forecast = run(a, { ms: { a: 100 }, windows: windows([[0, 150]]) });
    expect(forecast.runs).toBe(6);
  });

  it('follows a handover between touching windows with other limits (the limits change there, not at the merged close)', () => {
    // 22:00–22:01 at 1/s, then 22:01–05:00 at 100/s: one window to the timer of old, at 1/s all night.
    const schedule = new RunWindows(WindowsSchema.parse({ allow: [{ from: '22:00', to: '22:01', rate: 1 }, { from: '22:01', to: '05:00', rate: 100 }] }));
    const resolved = resolveSpec({ name: 'night', partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-09' }, nodes: [node('a', { concurrency: 50 })] });
    const plan = expandPlan(resolved);
    expect(plan.totalPartitions).toBe(192);
    const startAt = Date.UTC(2024, 4, 1, 22);
    const forecast = simulate({ plan, limits: { rate: null, concurrency: null }, timings: new Map([['a', { meanMs: 10 }]]), overhead: FREE, windows: { startAt, limitsAt: windowedLimits([schedule]) } });
    expect(forecast.runs).toBe(192);
    // About 60 in the first minute at 1/s, the other ~130 in under 2 s at 100/s (not 192 s at 1/s).
    expect(forecast.wallMs).toBeGreaterThan(59_000);
    expect(forecast.wallMs).toBeLessThan(65_000);
  });

  it('without windows, or with windows always open, is the same estimate', () => {
    const nodes = [node('a', { concurrency: 3, rate: 5 }), node('b', { dependsOn: ['a'], batchSize: 2 })];
    expect(run(nodes, { ms: { a: 37, b: 11 }, overhead: DEFAULT_OVERHEAD, windows: windows([[0, 1e15]]) })).toEqual(run(nodes, { ms: { a: 37, b: 11 }, overhead: DEFAULT_OVERHEAD }));
  });
});

describe('the simulation', () => {
  it('is deterministic', () => {
    const nodes = [node('a', { concurrency: 3, rate: 5 }), node('b', { dependsOn: [{ node: 'a', mapping: { lag: { from: -2, to: 0 } } }], batchSize: 2 }), node('c', { dependsOn: ['a', 'b'] })];
    const options = { ms: { a: 37, b: 11, c: 3 }, overhead: DEFAULT_OVERHEAD, days: 30, limits: { rate: 20, concurrency: 6 } };
    expect(run(nodes, options)).toEqual(run(nodes, options));
  });

  it('runs every partition of a plan of 10,000', () => {
    const resolved = resolveSpec({
      name: 'big',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-05-15' },
      nodes: [node('a', { concurrency: 20 }), node('b', { dependsOn: ['a'], batchSize: 10 }), node('c', { partitions: { grain: 'day' }, dependsOn: ['b'] })],
    });
    const plan = expandPlan(resolved);
    const forecast = simulate({ plan, limits: { rate: null, concurrency: null }, timings: new Map([['a', { meanMs: 20 }]]) });
    expect(forecast.runs).toBe(plan.totalPartitions);
    expect(plan.totalPartitions).toBeGreaterThan(6000);
    expect(forecast.nodes[2]!.finishMs).toBeLessThan(forecast.wallMs);
  });

  it('at a very low rate, sleeps from one token to the next instead of ticking through the minutes between', () => {
    // The pacing timer is at its longest (1 min) below 1/120 a second: a token every 20 min comes on the 20th tick, as ticking finds it.
    expect(run([node('a', { rate: 1 / 1200 })], { days: 5 }).wallMs).toBe(4 * 1_200_000);
    // One token every 1e12 ms is a tick every minute for 31 years: each comes at the first tick after it, and the simulation ends at once.
    // A spec refuses such a rate, but a signal sent by hand with Temporal's CLI may set one, and status' ETA simulates what runs.
    const crawling = (resolved: ReturnType<typeof spec>) => ({ ...resolved, nodes: resolved.nodes.map((n) => ({ ...n, rate: 1e-9 })) });
    const started = Date.now();
    const slow = simulate({ plan: expandPlan(crawling(spec([node('a')]))), limits: { rate: null, concurrency: null }, timings: new Map(), overhead: FREE });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(slow.wallMs).toBe(9 * Math.ceil(1e12 / 60_000) * 60_000);
    // A backfill-wide rate as low, shared among nodes, and a queue's many partitions (744 hours at 1e-9 a second, as status' ETA asks every 5 s).
    const resolved = resolveSpec({ name: 'slow', partitions: { grain: 'hour', start: '2024-01-01', end: '2024-02-01' }, nodes: [node('a'), node('b', { dependsOn: ['a'] })] });
    const plan = expandPlan(resolved);
    const wide = simulate({ plan, limits: { rate: 1e-9, concurrency: resolved.concurrency }, timings: new Map([['a', { meanMs: 1000 }]]), overhead: FREE });
    expect(wide.runs).toBe(2 * 744);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('calibrating the orchestration costs on an earlier run', () => {
  const plan = expandPlan(spec([node('a', { concurrency: 2 }), node('b', { dependsOn: ['a'] })], {}, 20));
  const timings = new Map([['a', { meanMs: 100 }], ['b', { meanMs: 10 }]]);
  const base = { plan, limits: { rate: null, concurrency: null }, timings, overhead: DEFAULT_OVERHEAD };

  it('scales every cost but the report interval, which is a setting', () => {
    expect(scaleOverhead(DEFAULT_OVERHEAD, 2)).toEqual({
      ...Object.fromEntries(Object.entries(DEFAULT_OVERHEAD).map(([k, v]) => [k, v * 2])),
      reportIntervalMs: DEFAULT_OVERHEAD.reportIntervalMs,
    });
  });

  it('finds the factor under which the simulation takes as long as the run did', () => {
    const doubled = spanOf(simulate({ ...base, overhead: scaleOverhead(DEFAULT_OVERHEAD, 2) }))!;
    const fit = fitOverhead(base, doubled, 12)!;
    expect(fit.clamped).toBe(false);
    expect(fit.factor).toBeGreaterThan(1.9);
    expect(fit.factor).toBeLessThan(2.1);
    expect(Math.abs(fit.fittedSpanMs - doubled)).toBeLessThanOrEqual(doubled * 0.01);
    expect(fit.modelSpanMs).toBe(spanOf(simulate(base)));
  });

  it('stops at ×16 either way, and says so', () => {
    expect(fitOverhead(base, 10_000_000)).toMatchObject({ factor: MAX_OVERHEAD_FACTOR, clamped: true });
    expect(fitOverhead(base, 1)).toMatchObject({ factor: 1 / MAX_OVERHEAD_FACTOR, clamped: true });
  });

  it('has nothing to fit when nothing ran', () => {
    const skip = { a: RangeSet.of([0, 20]).toJSON(), b: RangeSet.of([0, 20]).toJSON() };
    expect(fitOverhead({ ...base, skip }, 1000)).toBeNull();
    expect(spanOf(simulate({ ...base, skip }))).toBeNull();
  });
});
