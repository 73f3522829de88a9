import { describe, it, expect } from 'vitest';
import { stripVTControlCharacters } from 'node:util';
import { barPayload, renderStatus } from '../../client/render.ts';
import { carryShapeProblem, uncheckedCarryFields } from '../../core/carry-shape.ts';
import { BackfillCoordinator, resumeCarry } from '../../core/coordinator.ts';
import { backfillCurrentDetails } from '../../core/details.ts';
import { expandPlan, type Plan } from '../../core/plan.ts';
import { MIN_PACE_SPAN_MS, paceSoFar, progressOf, type ProgressInputs } from '../../core/progress.ts';
import type { BackfillCarry, FailureGroup, NodeStats, NodeSettings, Progress } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { Readiness } from '../../core/readiness.ts';
import { resolveSpec } from '../../core/spec.ts';
import { RunWindows, WindowsSchema, finishThroughWindows } from '../../core/windows.ts';

const n = (id: string, extra: Record<string, unknown> = {}) => ({ id, transform: 'noop', ...extra });

/** a -> b -> c over five days, and an unrelated z (concurrency 7, rate 2). */
function chainPlan(): Plan {
  return expandPlan(
    resolveSpec({
      name: 'progress-test',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-06' },
      defaults: { concurrency: 3 },
      nodes: [n('a'), n('b', { dependsOn: ['a'] }), n('c', { dependsOn: ['b'] }), n('z', { concurrency: 7, rate: 2 })],
    }),
  );
}

const set = (...values: number[]) => {
  const s = new RangeSet();
  for (const v of values) s.add(v);
  return s;
};

function report(fields: Partial<NodeStats> = {}): NodeStats {
  return { running: 0, rate: null, concurrency: 3, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null, ...fields };
}

function settings(fields: Partial<NodeSettings> = {}): NodeSettings {
  return { seq: 1, rate: null, burst: 1, concurrency: 3, paused: false, ...fields };
}

function inputs(plan: Plan, readiness: Readiness, extra: Partial<ProgressInputs> = {}): ProgressInputs {
  return {
    backfillId: 'bf-1',
    name: plan.name,
    state: 'running',
    paused: false,
    limits: { rate: null, concurrency: null },
    plan,
    readiness,
    reports: {},
    failures: {},
    lastSettings: new Map(),
    runs: 1,
    ...extra,
  };
}

const H = 3_600_000;
const node = (progress: Progress, id: string) => {
  const found = progress.nodes.find((x) => x.id === id);
  if (!found) throw new Error(`no node ${id} in progress`);
  return found;
};

function expectCountsAddUp(progress: Progress): void {
  for (const x of progress.nodes) {
    expect(x.done + x.running + x.failed + x.blocked + x.pending, x.id).toBe(x.total);
    for (const v of [x.done, x.running, x.failed, x.blocked, x.pending]) expect(v, x.id).toBeGreaterThanOrEqual(0);
  }
  const sum = (pick: (x: Progress['nodes'][number]) => number) => progress.nodes.reduce((acc, x) => acc + pick(x), 0);
  expect(progress.total).toBe(sum((x) => x.total));
  expect(progress.done).toBe(sum((x) => x.done));
  expect(progress.running).toBe(sum((x) => x.running));
  expect(progress.failed).toBe(sum((x) => x.failed));
  expect(progress.blocked).toBe(sum((x) => x.blocked));
  expect(progress.pending).toBe(sum((x) => x.pending));
  expect(progress.done + progress.running + progress.failed + progress.blocked + progress.pending).toBe(progress.total);
}

/**
 * a: 0,1 done, 2 failed, 3,4 in hands; b: 0,1 in hands, 2 blocked, 3,4 waiting;
 * c: 2 blocked (through b), the rest waiting; z: all in hands.
 */
function mixedReadiness(plan: Plan): Readiness {
  const r = new Readiness(plan);
  r.releaseAll();
  r.markDone('a', set(0, 1));
  r.markFailed('a', set(2));
  return r;
}

describe('progressOf counts', () => {
  it('a fresh plan: every partition pending, nothing running without reports', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    const p = progressOf(inputs(plan, r));
    expect(p.total).toBe(20);
    expect(p.pending).toBe(20);
    expect(p.running).toBe(0);
    expect(p.nodes.map((x) => x.id)).toEqual(['a', 'b', 'c', 'z']);
    expectCountsAddUp(p);
  });

  it('done, failed, in hands with running reports, blocked and waiting partitions', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    const p = progressOf(
      inputs(plan, r, {
        reports: { a: report({ running: 2 }), b: report({ running: 1 }), z: report({ running: 4 }) },
      }),
    );
    expect(node(p, 'a')).toMatchObject({ total: 5, done: 2, failed: 1, running: 2, blocked: 0, pending: 0 });
    expect(node(p, 'b')).toMatchObject({ total: 5, done: 0, failed: 0, running: 1, blocked: 1, pending: 3 });
    expect(node(p, 'c')).toMatchObject({ total: 5, done: 0, failed: 0, running: 0, blocked: 1, pending: 4 });
    expect(node(p, 'z')).toMatchObject({ total: 5, done: 0, failed: 0, running: 4, blocked: 0, pending: 1 });
    expect(p).toMatchObject({ total: 20, done: 2, failed: 1, running: 7, blocked: 2, pending: 8 });
    expectCountsAddUp(p);
  });

  it('running never exceeds the partitions in hands, whatever a stale report says', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    // b has 2 partitions in hands; c has none.
    const p = progressOf(inputs(plan, r, { reports: { b: report({ running: 9 }), c: report({ running: 3 }) } }));
    expect(node(p, 'b').running).toBe(2);
    expect(node(p, 'c').running).toBe(0);
    expectCountsAddUp(p);
  });

  it('a finished backfill: everything done, nothing pending', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    for (const id of ['a', 'b', 'c', 'z']) r.markDone(id, RangeSet.of([0, 5]));
    const p = progressOf(inputs(plan, r, { state: 'completed' }));
    expect(p).toMatchObject({ state: 'completed', total: 20, done: 20, running: 0, failed: 0, blocked: 0, pending: 0 });
    expectCountsAddUp(p);
  });

  it('passes identity fields through', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    const p = progressOf(inputs(plan, r, { backfillId: 'x-1', state: 'cancelled', paused: true, runs: 4, limits: { rate: 2.5, concurrency: 9 } }));
    expect(p).toMatchObject({ backfillId: 'x-1', name: 'progress-test', state: 'cancelled', paused: true, runs: 4, rate: 2.5, concurrency: 9 });
  });
});

describe('progressOf failures', () => {
  it('lists each failure group with its partition count and at most 3 example keys, in order', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    const groups: FailureGroup[] = [
      { message: 'boom', type: 'Error', ranges: RangeSet.of([0, 2], [3, 5]).toJSON() },
      { message: 'bad sql', type: 'SqlError', ranges: RangeSet.of([2, 3]).toJSON() },
    ];
    const p = progressOf(inputs(plan, r, { failures: { a: groups } }));
    expect(node(p, 'a').failures).toEqual([
      { message: 'boom', type: 'Error', partitions: 4, examples: ['2024-01-01', '2024-01-02', '2024-01-04'] },
      { message: 'bad sql', type: 'SqlError', partitions: 1, examples: ['2024-01-03'] },
    ]);
    expect(node(p, 'b').failures).toEqual([]);
  });
});

describe('progressOf throughput and ETA', () => {
  it('throughput is completed partitions over the span from first start to last finish', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    const p = progressOf(
      inputs(plan, r, {
        reports: {
          a: report({ completed: 4, firstStartedAt: 10_000, lastFinishedAt: 12_000 }),
          z: report({ completed: 6, firstStartedAt: 11_000, lastFinishedAt: 14_000 }),
        },
      }),
    );
    expect(node(p, 'a').throughput).toBeCloseTo(2); // 4 in 2 s
    expect(node(p, 'z').throughput).toBeCloseTo(2); // 6 in 3 s
    expect(node(p, 'b').throughput).toBeNull();
    expect(p.throughput).toBeCloseTo(10 / 4); // 10 in [10 s, 14 s]
  });

  it('throughput leaves out the time paused: what every node was paused for, overall', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    const p = progressOf(
      inputs(plan, r, {
        reports: {
          a: report({ completed: 4, firstStartedAt: 0, lastFinishedAt: 62_000, pausedMs: 60_000 }),
          z: report({ completed: 6, firstStartedAt: 0, lastFinishedAt: 63_000, pausedMs: 61_000 }),
        },
      }),
    );
    expect(node(p, 'a').throughput).toBeCloseTo(2); // 4 in 2 s of work
    expect(node(p, 'z').throughput).toBeCloseTo(3); // 6 in 2 s of work
    expect(p.throughput).toBeCloseTo(10 / 3); // 10 in 63 s less the 60 s both were paused
  });

  it("throughput leaves out the backfill's own held spans within its work span, though a node that had finished counts no pause", () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    const H = 3_600_000;
    // a finished at 5 s, before the hour's pause at 6 s; b went on after it.
    const reports = {
      a: report({ completed: 5, firstStartedAt: 0, lastFinishedAt: 5000, pausedMs: 0 }),
      b: report({ completed: 5, firstStartedAt: 1000, lastFinishedAt: 11_000 + H, pausedMs: H }),
    };
    // Held before the start too (an approval), and once more after the last finish: neither counts.
    const held: Array<[number, number | null]> = [[-60_000, 0], [6000, 6000 + H], [12_000 + H, null]];
    const p = progressOf(inputs(plan, r, { reports, held }));
    expect(p.throughput).toBeCloseTo(10 / 11); // 10 in 11 s of work
    // Without the spans (a run from before they were kept) only what every node was paused for counts: none.
    expect(progressOf(inputs(plan, r, { reports })).throughput).toBeCloseTo(10 / (11 + 3600));
  });

  it("counts the hours the run windows are closed: at 04:50 with an hour's work left in a 22:00-05:00 window, the ETA is 18 h, not 1 h", () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    r.markDone('z', RangeSet.of([0, 4]));
    // z: 4 done in 4 h of work: its last one takes an hour.
    const reports = { z: report({ completed: 4, firstStartedAt: 0, lastFinishedAt: 4 * H }) };
    const night = new RunWindows(WindowsSchema.parse({ allow: [{ from: '22:00', to: '05:00' }] }));
    const now = Date.parse('2024-05-01T04:50:00Z');
    const through = (at: number) => (workMs: number) => {
      const finish = finishThroughWindows([night], at, workMs);
      return finish === null ? null : finish - at;
    };
    const p = progressOf(inputs(plan, r, { reports, throughWindows: through(now) }));
    expect(node(p, 'z').etaSeconds).toBe(18 * 3600);
    expect(progressOf(inputs(plan, r, { reports })).nodes.find((x) => x.id === 'z')!.etaSeconds).toBe(3600);
    // Early in the night the hour fits.
    expect(node(progressOf(inputs(plan, r, { reports, throughWindows: through(Date.parse('2024-05-01T01:00:00Z')) })), 'z').etaSeconds).toBe(3600);
  });

  it('a paused backfill has no ETA (a node that is done stays done), and status shows –', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    r.markDone('a', RangeSet.of([0, 5]));
    r.markDone('z', set(0));
    const reports = { a: report({ completed: 5, firstStartedAt: 0, lastFinishedAt: 1000 }), z: report({ completed: 1, firstStartedAt: 0, lastFinishedAt: 1000 }) };
    const p = progressOf(inputs(plan, r, { paused: true, reports }));
    expect(p.etaSeconds).toBeNull();
    expect(node(p, 'a').etaSeconds).toBe(0);
    expect(node(p, 'z').etaSeconds).toBeNull();
    const headline = renderStatus(p).split('\n')[0]!;
    expect(headline).toContain('running (paused)');
    expect(headline).toContain('ETA –');
    expect(progressOf(inputs(plan, r, { state: 'waiting_for_window', reports })).etaSeconds).toBeNull();
    expect(progressOf(inputs(plan, r, { reports })).etaSeconds).not.toBeNull();
  });

  it('throughput and ETA are null before there is data', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    const p = progressOf(
      inputs(plan, r, {
        reports: {
          a: report({ completed: 0, firstStartedAt: 10_000, lastFinishedAt: null }),
          // one partition finished at the instant it started: no span yet
          z: report({ completed: 1, firstStartedAt: 10_000, lastFinishedAt: 10_000 }),
        },
      }),
    );
    expect(node(p, 'a').throughput).toBeNull();
    expect(node(p, 'a').etaSeconds).toBeNull();
    expect(node(p, 'z').throughput).toBeNull();
    expect(node(p, 'z').etaSeconds).toBeNull();
    expect(p.throughput).toBeNull();
    expect(p.etaSeconds).toBeNull();
  });

  it('throughput and ETA wait until the work spans a second: a first partition of 10 ms is not 100/s', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    const first = progressOf(inputs(plan, r, { reports: { a: report({ completed: 1, firstStartedAt: 10_000, lastFinishedAt: 10_010 }) } }));
    expect(node(first, 'a').throughput).toBeNull();
    expect(node(first, 'a').etaSeconds).toBeNull();
    expect(first.throughput).toBeNull();
    expect(first.etaSeconds).toBeNull();
    expect(renderStatus(first).split('\n')[0]).not.toContain('100.0/s');
    // Two nodes of 10 ms each, half a second apart: still under a second in all.
    const both = { a: report({ completed: 1, firstStartedAt: 10_000, lastFinishedAt: 10_010 }), z: report({ completed: 1, firstStartedAt: 10_500, lastFinishedAt: 10_510 }) };
    expect(progressOf(inputs(plan, r, { reports: both })).throughput).toBeNull();
    const later = progressOf(inputs(plan, r, { reports: { a: report({ completed: 4, firstStartedAt: 10_000, lastFinishedAt: 10_000 + MIN_PACE_SPAN_MS }) } }));
    expect(node(later, 'a').throughput).toBeCloseTo(4);
    expect(later.throughput).toBeCloseTo(4);
    expect(node(later, 'a').etaSeconds).not.toBeNull();
  });

  it("a running node's first moments: a burst of partitions finishing within a short span claims no pace, the node's or the backfill's", () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    // Eight partitions of a node paced at 20/s, started at once from its bucket and done 400 ms later: not 20/s, nor 40/s.
    const burst = { a: report({ running: 4, rate: 20, completed: 8, firstStartedAt: 10_000, lastFinishedAt: 10_400 }) };
    const p = progressOf(inputs(plan, r, { reports: burst }));
    expect(p.state).toBe('running');
    expect(node(p, 'a').throughput).toBeNull();
    expect(p.throughput).toBeNull();
    expect(renderStatus(p)).not.toMatch(/\d\.\d\/s ·|20\.0\/s|40\.0\/s/);
    // Nor beside another node's work of under a second either, started later: 0.9 s in all.
    const both = { ...burst, z: report({ running: 2, completed: 3, firstStartedAt: 10_500, lastFinishedAt: 10_900 }) };
    const q = progressOf(inputs(plan, r, { reports: both }));
    expect(q.nodes.map((x) => x.throughput)).toEqual(q.nodes.map(() => null));
    expect(q.throughput).toBeNull();
    // A pause within the span does not count as work: 1.4 s from first start to last finish, 0.5 s of it paused.
    const paused = { a: report({ running: 4, rate: 20, completed: 8, firstStartedAt: 10_000, lastFinishedAt: 11_400, pausedMs: 500 }) };
    expect(node(progressOf(inputs(plan, r, { reports: paused })), 'a').throughput).toBeNull();
  });

  it('a node, or a backfill, with nothing left shows no throughput either until its work spans a second, and its ETA says done', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    for (const id of ['a', 'b', 'c', 'z']) r.markDone(id, RangeSet.of([0, 5]));
    // One partition of 10 ms is no pace of 100/s, nor one of 19 ms one of 52.6/s (above a rate of 20/s).
    const short = { a: report({ completed: 1, firstStartedAt: 10_000, lastFinishedAt: 10_010 }), z: report({ completed: 1, firstStartedAt: 10_000, lastFinishedAt: 10_019 }) };
    const p = progressOf(inputs(plan, r, { state: 'completed', reports: short }));
    expect(node(p, 'a').throughput).toBeNull();
    expect(node(p, 'z').throughput).toBeNull();
    expect(p.throughput).toBeNull();
    for (const x of p.nodes) expect(x.etaSeconds, x.id).toBe(0);
    expect(renderStatus(p)).not.toMatch(/100\.0\/s|52\.6\/s/);
    // Over a second of work, a settled node shows the pace it had.
    const long = { a: report({ completed: 5, firstStartedAt: 10_000, lastFinishedAt: 12_500 }), z: report({ completed: 5, firstStartedAt: 10_000, lastFinishedAt: 10_000 + MIN_PACE_SPAN_MS }) };
    const q = progressOf(inputs(plan, r, { state: 'completed', reports: long }));
    expect(node(q, 'a').throughput).toBeCloseTo(2); // 5 in 2.5 s
    expect(node(q, 'z').throughput).toBeCloseTo(5);
    expect(q.throughput).toBeCloseTo(4); // 10 in 2.5 s
  });

  it('ETA is the remaining (not failed, not blocked) partitions over the throughput', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    // a: 2 remaining (3, 4) at 2/s -> 1 s
    const p = progressOf(inputs(plan, r, { reports: { a: report({ completed: 4, firstStartedAt: 0, lastFinishedAt: 2000 }) } }));
    expect(node(p, 'a').etaSeconds).toBeCloseTo(1);
  });

  it('ETA is 0 when nothing remains, even without any throughput', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    for (const id of ['a', 'b', 'c', 'z']) r.markDone(id, RangeSet.of([0, 5]));
    const p = progressOf(inputs(plan, r, { state: 'completed' }));
    for (const x of p.nodes) expect(x.etaSeconds, x.id).toBe(0);
    expect(p.etaSeconds).toBe(0);
  });

  it('ETA is null, not 0 ("done"), when all that is left is failed or blocked', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    r.markDone('a', RangeSet.of([0, 4]));
    r.markFailed('a', set(4));
    r.markDone('b', RangeSet.of([0, 4]));
    r.markDone('c', RangeSet.of([0, 4]));
    r.markDone('z', RangeSet.of([0, 5]));
    const p = progressOf(inputs(plan, r, { state: 'completed_with_failures' }));
    expect(p).toMatchObject({ failed: 1, blocked: 2, pending: 0, running: 0 });
    expect(p.etaSeconds).toBeNull();
    expect(node(p, 'a').etaSeconds).toBeNull();
    expect(node(p, 'b').etaSeconds).toBeNull();
    expect(node(p, 'z').etaSeconds).toBe(0);
    expectCountsAddUp(p);
    // status prints it "–", not "done".
    const row = renderStatus(p).split('\n').find((l) => l.includes(' b '))!;
    expect(row, row).not.toMatch(/\bdone\b/);
    expect(barPayload(node(p, 'b'), p).details).not.toMatch(/\bdone\b/);
  });

  it('the slowest node bounds the whole backfill', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    r.markDone('a', RangeSet.of([0, 5]));
    r.markDone('b', RangeSet.of([0, 5]));
    r.markDone('c', RangeSet.of([0, 4])); // c: 1 left
    r.markDone('z', set(0)); // z: 4 left
    const p = progressOf(
      inputs(plan, r, {
        reports: {
          a: report({ completed: 5, firstStartedAt: 0, lastFinishedAt: 1000 }),
          b: report({ completed: 5, firstStartedAt: 0, lastFinishedAt: 1000 }),
          c: report({ completed: 4, firstStartedAt: 0, lastFinishedAt: 1000 }), // 4/s, 1 left: 0.25 s
          z: report({ completed: 1, firstStartedAt: 0, lastFinishedAt: 2000 }), // 0.5/s, 4 left: 8 s
        },
      }),
    );
    expect(node(p, 'a').etaSeconds).toBe(0);
    expect(node(p, 'c').etaSeconds).toBeCloseTo(0.25);
    expect(node(p, 'z').etaSeconds).toBeCloseTo(8);
    expect(p.etaSeconds).toBeCloseTo(8);
  });

  it('falls back to the overall throughput when a node with work left has no ETA yet', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    r.markDone('a', RangeSet.of([0, 5])); // b: 5 in hands, no report yet; c and z: 5 each left
    const p = progressOf(inputs(plan, r, { reports: { a: report({ completed: 5, firstStartedAt: 0, lastFinishedAt: 5000 }) } }));
    expect(node(p, 'a').etaSeconds).toBe(0);
    expect(node(p, 'b').etaSeconds).toBeNull();
    expect(p.throughput).toBeCloseTo(1);
    expect(p.etaSeconds).toBeCloseTo(15); // 15 left at 1/s
  });

  it("never ends the backfill before a node that has an ETA while another has none (the Web UI said ETA 3m over a daily node's 7m)", () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll();
    r.markDone('a', RangeSet.of([0, 5])); // b: 5 in hands, no report yet
    r.markDone('z', set(0)); // z: 4 left at 0.01/s: 400 s
    const reports = { a: report({ completed: 5, firstStartedAt: 0, lastFinishedAt: 1000 }), z: report({ completed: 1, firstStartedAt: 0, lastFinishedAt: 100_000 }) };
    const p = progressOf(inputs(plan, r, { reports }));
    expect(node(p, 'b').etaSeconds).toBeNull();
    expect(node(p, 'z').etaSeconds).toBeCloseTo(400);
    // 14 left at 6 over 100 s is 233 s over the whole backfill: z's 400 s bound it.
    expect(p.etaSeconds).toBeCloseTo(400);
    expect(backfillCurrentDetails(p)).toMatch(/ETA 7m[^]*\| z \|.*\| 7m \|/);
  });
});

describe("the nodes' rates under a backfill's rate", () => {
  it('shows a rate only for a node with partitions in hands, so the shown rates stay within the backfill rate it shares (20 + 30 + 20 + 30 read 100/s under 60/s)', () => {
    const plan = chainPlan();
    const r = new Readiness(plan);
    r.releaseAll(); // a and z have partitions in hands; b and c wait on a
    const lastSettings = new Map([
      ['a', settings({ rate: 20 })],
      ['b', settings({ rate: 30 })],
      ['c', settings({ rate: 20 })],
      ['z', settings({ rate: 30 })],
    ]);
    const p = progressOf(inputs(plan, r, { limits: { rate: 60, concurrency: null }, lastSettings }));
    expect(p.nodes.map((x) => [x.id, x.inHands])).toEqual([['a', 5], ['b', 0], ['c', 0], ['z', 5]]);
    // --json keeps each node's rate as it was, and adds inHands.
    expect(p.nodes.map((x) => x.rate)).toEqual([20, 30, 20, 30]);
    const lines = stripVTControlCharacters(renderStatus(p)).split('\n');
    expect(lines[0]).toContain('rate 60/s shared');
    const rateOf = (id: string) => lines.find((l) => l.includes(`│ ${id} `))!.split('│')[7]!.trim();
    expect(['a', 'b', 'c', 'z'].map(rateOf)).toEqual(['20/s', '–', '–', '30/s']);
    // The Web UI's table as well.
    const details = backfillCurrentDetails(p);
    expect(details).toContain('backfill rate 60/s, shared');
    expect(details).toMatch(/\| b \| 0 of 5 \| 0 \| 0 \| 0 \| — \|/);
    expect(details).toMatch(/\| a \| 0 of 5 \| 0 \| 0 \| 0 \| 20\/s \|/);
  });
});

describe('the headline throughput across runs (resume, retry-failed)', () => {
  // A first run: a, b and c's 15 partitions in 5 s (3/s); z's failed. Then a retry-failed, 1 s later: z's 5 in 0.1 s.
  const plan = chainPlan();
  const firstRun = {
    a: report({ completed: 5, firstStartedAt: 0, lastFinishedAt: 2000 }),
    b: report({ completed: 5, firstStartedAt: 500, lastFinishedAt: 4000 }),
    c: report({ completed: 5, firstStartedAt: 1000, lastFinishedAt: 5000 }),
  };
  const retry = { ...firstRun, z: report({ completed: 5, firstStartedAt: 6000, lastFinishedAt: 6100 }) };
  const r = new Readiness(plan);
  r.releaseAll();
  for (const id of ['a', 'b', 'c', 'z']) r.markDone(id, RangeSet.of([0, 5]));

  it("counts the runs before this one with the same partitions as 'done' (a retry of 165 partitions in 1.8 s read 90.6/s under a rate of 60/s)", () => {
    const before = paceSoFar(firstRun, undefined);
    expect(before).toEqual({ completed: 15, workMs: 5000, lastFinishedAt: 5000 });
    const p = progressOf(inputs(plan, r, { reports: retry, before: before! }));
    // 20 done over 5.1 s of work: 3.9/s, not the retry's 50/s, nor 20 over the 6.1 s with the time between the runs.
    expect(p.done).toBe(20);
    expect(p.throughput).toBeCloseTo(20 / 5.1);
    // A first run's throughput is as before.
    expect(progressOf(inputs(plan, r, { reports: firstRun })).throughput).toBeCloseTo(3);
    // Without what the runs before did (a run from before it was kept), the reports alone.
    expect(progressOf(inputs(plan, r, { reports: retry })).throughput).toBeCloseTo(20 / 6.1);
  });

  it('adds up run after run, and a run that finished nothing yet keeps the runs before', () => {
    const before = paceSoFar(retry, undefined, { completed: 15, workMs: 5000, lastFinishedAt: 5000 });
    expect(before).toEqual({ completed: 20, workMs: 5100, lastFinishedAt: 6100 });
    expect(paceSoFar({ ...retry, z: report({ running: 2, firstStartedAt: 9000 }) }, undefined, before!)).toEqual(before);
  });

  it('is what a resumed carry hands on (resumeCarry), and the coordinator keeps it through continue-as-new', () => {
    const ended: BackfillCarry = { ...new BackfillCoordinator(plan, { rate: null, concurrency: null }).toCarry(), reports: firstRun, runKey: 'run-1', childrenRunning: false, startedAt: 0, runs: 1 };
    const carry = resumeCarry(ended);
    expect(carry.before).toEqual({ completed: 15, workMs: 5000, lastFinishedAt: 5000 });
    expect(carryShapeProblem(carry)).toBeNull();
    expect(uncheckedCarryFields(carry)).toEqual([]);
    const next = new BackfillCoordinator(plan, { rate: null, concurrency: null }, carry);
    expect(next.toCarry().before).toEqual(carry.before);
    next.onReport({ node: 'z', done: RangeSet.of([0, 5]).toJSON(), failures: [], stats: retry.z });
    expect(next.progress('bf-1', 'running', 2).throughput).toBeCloseTo(20 / 5.1);
  });
});

describe('progressOf rate and concurrency', () => {
  it('rate comes from the node report, then the last settings, else the spec; concurrency from settings, else the spec', () => {
    const plan = chainPlan();
    const r = mixedReadiness(plan);
    const p = progressOf(
      inputs(plan, r, {
        reports: { a: report({ rate: 1.5, throttles: 3 }), b: report({ rate: null }) },
        lastSettings: new Map([
          ['a', settings({ rate: 4, concurrency: 5 })],
          ['b', settings({ rate: 4, concurrency: 6 })],
          ['c', settings({ rate: 8, concurrency: 2 })],
        ]),
      }),
    );
    // a: the report's rate (lowered after throttles) wins over the settings
    expect(node(p, 'a')).toMatchObject({ rate: 1.5, concurrency: 5, throttles: 3 });
    // b: a report saying unlimited (null) is still the report's word
    expect(node(p, 'b')).toMatchObject({ rate: null, concurrency: 6, throttles: 0 });
    // c: no report, so the settings
    expect(node(p, 'c')).toMatchObject({ rate: 8, concurrency: 2 });
    // z: neither (its node has not heard from the parent yet): the spec's own rate and concurrency
    expect(node(p, 'z')).toMatchObject({ rate: 2, concurrency: 7, throttles: 0 });
    // and a node whose spec sets no rate is unlimited
    expect(node(progressOf(inputs(plan, r)), 'a')).toMatchObject({ rate: null, concurrency: 3 });
  });
});
