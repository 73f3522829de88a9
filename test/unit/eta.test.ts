/** `status`'s ETA: the estimate's simulation from a running backfill's state, with live figures. */
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { LIVE_OVERHEAD, LiveEtas, NO_LIVE_ETA, anyMeasured, liveEta, liveTiming, liveWindows, upstreamBound, withLiveEta, withStall, withoutEtaWithoutWorker } from '../../client/eta.ts';
import { statusOf, type StatusReads } from '../../client/light-status.ts';
import { renderStatus } from '../../client/render.ts';
import { WORKFLOW_EXECUTION_STATUS_RUNNING } from '../../client/status-wire.ts';
import type { Waiting } from '../../client/waiting.ts';
import { expandPlan } from '../../core/plan.ts';
import { MIN_PACE_SPAN_MS } from '../../core/progress.ts';
import type { NodeProgress, NodeStats, Progress } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec, type ResolvedSpec } from '../../core/spec.ts';
import { WindowsSchema } from '../../core/windows.ts';

const stats = (s: Partial<NodeStats>): NodeStats => ({ running: 0, rate: null, concurrency: 4, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null, ...s });

describe('liveTiming', () => {
  it("is a slot's time per partition: concurrency × span / completed", () => {
    // 40 partitions in 10 s, 4 at a time: a partition took a slot 1 s.
    expect(liveTiming(stats({ completed: 40, firstStartedAt: 0, lastFinishedAt: 10_000 }), 1)).toBe(1000);
    // In batches of 5 as well: a slot runs its batch's partitions one after another.
    expect(liveTiming(stats({ completed: 40, firstStartedAt: 0, lastFinishedAt: 10_000 }), 5)).toBe(1000);
    expect(liveTiming(stats({ completed: 40, firstStartedAt: 0, lastFinishedAt: 10_000, batchSize: 5 }), 'auto')).toBe(1000);
  });

  it('counts only the slots that had a batch while the node ran fewer batches than it has slots', () => {
    // 10 partitions in 2 batches of 5, side by side: 5 partitions in a slot in 5 s.
    expect(liveTiming(stats({ completed: 10, firstStartedAt: 0, lastFinishedAt: 5000 }), 5)).toBe(1000);
  });

  it('counts no more slots than partitions completed, and nothing before the first', () => {
    expect(liveTiming(stats({ completed: 2, firstStartedAt: 0, lastFinishedAt: 1200 }), 1)).toBe(1200);
    expect(liveTiming(stats({ completed: 0 }), 1)).toBeNull();
    expect(liveTiming(undefined, 1)).toBeNull();
  });

  it('has no figure until the work spans a second (MIN_PACE_SPAN_MS), as the throughput: a first 10 ms partition tells no pace', () => {
    expect(liveTiming(stats({ completed: 1, firstStartedAt: 0, lastFinishedAt: 10 }), 1)).toBeNull();
    expect(liveTiming(stats({ completed: 8, firstStartedAt: 0, lastFinishedAt: MIN_PACE_SPAN_MS - 1 }), 1)).toBeNull();
    expect(liveTiming(stats({ completed: 8, firstStartedAt: 0, lastFinishedAt: MIN_PACE_SPAN_MS }), 1)).toBe(MIN_PACE_SPAN_MS / 2);
    expect(anyMeasured({ a: stats({ completed: 1, firstStartedAt: 0, lastFinishedAt: 10 }) })).toBe(false);
  });

  it('leaves out the time the node was paused', () => {
    // 10 partitions, one at a time, in 10 s of work and an hour's pause.
    expect(liveTiming(stats({ concurrency: 1, completed: 10, firstStartedAt: 0, lastFinishedAt: 3_610_000, pausedMs: 3_600_000 }), 1)).toBe(1000);
  });
});

describe('anyMeasured', () => {
  it('is true once a node has a live figure, whatever its batch size, and then only', () => {
    const measured = stats({ completed: 3, firstStartedAt: 0, lastFinishedAt: 1500 });
    expect(anyMeasured({ a: stats({}), b: measured })).toBe(true);
    expect(anyMeasured({})).toBe(false);
    expect(anyMeasured({ a: stats({ completed: 0, firstStartedAt: 0 }), b: stats({ completed: 2, firstStartedAt: 0, lastFinishedAt: null }) })).toBe(false);
    for (const batchSize of [1, 7, 'auto'] as const) {
      expect(liveTiming(measured, batchSize)).not.toBeNull();
      expect(liveTiming(stats({ completed: 0 }), batchSize)).toBeNull();
    }
  });
});

describe('liveEta', () => {
  const spec = resolveSpec({
    name: 'live',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-21' },
    nodes: [
      { id: 'a', transform: 'noop', concurrency: 2 },
      { id: 'b', transform: 'noop', concurrency: 2, dependsOn: ['a'] },
    ],
  });
  const plan = expandPlan(spec);
  const limits = { rate: null, concurrency: null };

  it('runs what is left at the pace each node achieved', () => {
    const carry = {
      limits,
      overrides: {},
      readiness: { a: { done: RangeSet.of([0, 20]).toJSON(), failed: '', inHands: '' }, b: { done: RangeSet.of([0, 10]).toJSON(), failed: '', inHands: RangeSet.of([10, 20]).toJSON() } },
      // b: 10 done in 5 s, 2 at a time: 1 s each; 10 left, 2 at a time: 5 s.
      reports: { a: stats({ concurrency: 2, completed: 20, firstStartedAt: 0, lastFinishedAt: 2000 }), b: stats({ concurrency: 2, completed: 10, firstStartedAt: 0, lastFinishedAt: 5000 }) },
    };
    const eta = liveEta(plan, carry);
    // a has nothing left to simulate: no figure of its own (the progress says whether it is done).
    expect(eta.nodes).toEqual({ a: null, b: 5 });
    // b, with nothing left to run, reports its last partitions at once (report-when-idle): the
    // parent hears of them one hop after 5,000 ms, and ends.
    expect(eta.etaSeconds).toBe(Math.round((5000 + LIVE_OVERHEAD.hopMs + LIVE_OVERHEAD.endMs) / 100) / 10);
  });

  it("gives a node not yet measured the figure of a node with the same transform, and none when nothing is measured", () => {
    const readiness = { a: { done: RangeSet.of([0, 10]).toJSON(), failed: '', inHands: RangeSet.of([10, 20]).toJSON() }, b: { done: '', failed: '', inHands: RangeSet.of([0, 10]).toJSON() } };
    const measured = liveEta(plan, { limits, overrides: {}, readiness, reports: { a: stats({ concurrency: 2, completed: 10, firstStartedAt: 0, lastFinishedAt: 1000 }) } });
    // Both at 200 ms a partition: b's 20 take at least 2 s.
    expect(measured.nodes.b).toBeGreaterThanOrEqual(2);
    expect(liveEta(plan, { limits, overrides: {}, readiness, reports: {} })).toEqual({ etaSeconds: null, nodes: { a: null, b: null } });
    // Skipping the plan when nothing is measured (NO_LIVE_ETA) changes nothing the progress shows.
    const progress = { etaSeconds: 12, nodes: [{ id: 'a', etaSeconds: 3 }] } as unknown as Progress;
    expect(withLiveEta(progress, NO_LIVE_ETA)).toEqual(withLiveEta(progress, liveEta(plan, { limits, overrides: {}, readiness, reports: {} })));
  });

  it('leaves a node it ran nothing for to the progress: done, or blocked behind failed partitions', () => {
    const readiness = { a: { done: RangeSet.of([0, 10]).toJSON(), failed: RangeSet.of([10, 20]).toJSON(), inHands: '' }, b: { done: RangeSet.of([0, 10]).toJSON(), failed: '', inHands: '' } };
    const reports = { a: stats({ concurrency: 2, completed: 10, firstStartedAt: 0, lastFinishedAt: 1000 }), b: stats({ concurrency: 2, completed: 10, firstStartedAt: 0, lastFinishedAt: 1000 }) };
    const eta = liveEta(plan, { limits, overrides: {}, readiness, reports });
    expect(eta.nodes.b).toBeNull();
    const progress = { etaSeconds: null, nodes: [{ id: 'a', etaSeconds: null }, { id: 'b', etaSeconds: null }] } as unknown as Progress;
    expect(withLiveEta(progress, eta).nodes.map((n) => n.etaSeconds)).toEqual([null, null]);
  });

  it('runs a node bound by its rate at that rate, automatic batches or not (the shop at --rate 40: 484 left at 39/s took ~15 s, not 7 min)', () => {
    const year = resolveSpec({ name: 'live', partitions: { grain: 'day', start: '2024-01-01', end: '2025-01-01' }, nodes: [{ id: 'a', transform: 'noop', concurrency: 8, rate: 40 }] });
    const days = expandPlan(year);
    // 300 of 366 done in 7.5 s at 40/s; the node's next automatic batch would be 32, which its rate never fills.
    const carry = {
      limits,
      overrides: {},
      readiness: { a: { done: RangeSet.of([0, 300]).toJSON(), failed: '', inHands: RangeSet.of([300, 366]).toJSON() } },
      reports: { a: stats({ rate: 40, concurrency: 8, completed: 300, firstStartedAt: 0, lastFinishedAt: 7500, batchSize: 32 }) },
    };
    // 66 left at 40/s: 1.65 s, and the last report's hop and the end.
    const eta = liveEta(days, carry).etaSeconds!;
    expect(eta).toBeGreaterThan(1.5);
    expect(eta).toBeLessThan(3);
    // A lower rate set since (set-rate --node) slows it down as much.
    const slower = liveEta(days, { ...carry, overrides: { a: { rate: 10 } } }).etaSeconds!;
    expect(slower).toBeGreaterThan(6);
    expect(slower).toBeLessThan(8);
  });

  // Before, 140 partitions of a node held at 0.3/s by throttles were given 81 s at its own rate.
  it('runs a throttled node at the pace it was slowed to, not its own rate', () => {
    const year = resolveSpec({ name: 'live', partitions: { grain: 'day', start: '2024-01-01', end: '2025-01-01' }, nodes: [{ id: 'a', transform: 'noop', concurrency: 8, rate: 40 }] });
    const days = expandPlan(year);
    const readiness = { a: { done: RangeSet.of([0, 300]).toJSON(), failed: '', inHands: RangeSet.of([300, 366]).toJSON() } };
    const throttled = stats({ rate: 2, throttles: 12, concurrency: 8, completed: 300, firstStartedAt: 0, lastFinishedAt: 7500 });
    // 66 left at 2/s: about 33 s.
    const eta = liveEta(days, { limits, overrides: {}, readiness, reports: { a: throttled } }).etaSeconds!;
    expect(eta).toBeGreaterThan(30);
    expect(eta).toBeLessThan(40);
    // An operator's lower rate still wins; a node never throttled keeps its own.
    expect(liveEta(days, { limits, overrides: { a: { rate: 1 } }, readiness, reports: { a: throttled } }).etaSeconds!).toBeGreaterThan(60);
    expect(liveEta(days, { limits, overrides: {}, readiness, reports: { a: { ...throttled, throttles: 0 } } }).etaSeconds!).toBeLessThan(5);
  });

  describe('after a pause', () => {
    const one = resolveSpec({ name: 'live', partitions: { grain: 'day', start: '2024-01-01', end: '2024-04-10' }, nodes: [{ id: 'a', transform: 'noop', concurrency: 1 }] });
    const hundred = expandPlan(one);
    // 10 partitions at 1 s each, one at a time, an hour's pause, resumed, 1 more in 1 s: 89 left.
    const ran = stats({ concurrency: 1, completed: 11, firstStartedAt: 0, lastFinishedAt: 3_611_000, pausedMs: 3_600_000 });
    const carry = { limits, overrides: {}, readiness: { a: { done: RangeSet.of([0, 11]).toJSON(), failed: '', inHands: '' } }, reports: { a: ran } };

    it('counts only the time worked: 89 partitions at 1 s each is about 90 s, not hours', () => {
      expect(liveEta(hundred, carry).etaSeconds).toBeGreaterThan(85);
      expect(liveEta(hundred, carry).etaSeconds).toBeLessThan(120);
    });

    it('shows no ETA while paused, and a node that is done stays done', () => {
      const progress = { paused: true, etaSeconds: 4, nodes: [{ id: 'a', etaSeconds: 4 }, { id: 'b', etaSeconds: 0 }] } as unknown as Progress;
      const shown = withLiveEta(progress, liveEta(hundred, carry));
      expect(shown.etaSeconds).toBeNull();
      expect(shown.nodes.map((n) => n.etaSeconds)).toEqual([null, 0]);
    });
  });

  it("waits for the run window to open again: at 04:50 in a 22:00-05:00 window with an hour's work left, about 18 h, not 1 h", async () => {
    const one = resolveSpec({ name: 'live', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-21' }, nodes: [{ id: 'a', transform: 'noop', concurrency: 1 }] });
    const twenty = expandPlan(one);
    // 10 done in an hour, one at a time: 6 min each; the 10 left take an hour.
    const carry = {
      limits,
      overrides: {},
      readiness: { a: { done: RangeSet.of([0, 10]).toJSON(), failed: '', inHands: '' } },
      reports: { a: stats({ concurrency: 1, completed: 10, firstStartedAt: 0, lastFinishedAt: 3_600_000 }) },
    };
    const night = WindowsSchema.parse({ allow: [{ from: '22:00', to: '05:00' }] });
    const now = Date.parse('2024-05-01T04:50:00Z');
    expect(liveEta(twenty, carry).etaSeconds).toBeCloseTo(3600, -1);
    expect(await liveWindows(undefined, now)).toBeUndefined();
    expect(await liveWindows({ windows: [] }, now)).toBeUndefined();
    const windowed = liveEta(twenty, carry, await liveWindows({ windows: [night] }, now));
    // Two partitions start before 05:00 (04:50, 04:56), the other 8 from 22:00: done at 22:48.
    expect(windowed.etaSeconds).toBeGreaterThan(17.9 * 3600);
    expect(windowed.etaSeconds).toBeLessThan(18.1 * 3600);
    expect(windowed.nodes.a).toBeGreaterThan(17.9 * 3600);
    // Early in the night the hour fits.
    expect(liveEta(twenty, carry, await liveWindows({ windows: [night] }, Date.parse('2024-05-01T01:00:00Z'))).etaSeconds).toBeCloseTo(3600, -1);
  });

  it('replaces the progress ETA only when it has one', () => {
    const progress = { etaSeconds: 4500, nodes: [{ id: 'a', etaSeconds: 4500 }] } as unknown as Progress;
    expect(withLiveEta(progress, { etaSeconds: 360, nodes: { a: 300 } })).toMatchObject({ etaSeconds: 360, nodes: [{ id: 'a', etaSeconds: 300 }] });
    expect(withLiveEta(progress, { etaSeconds: null, nodes: {} })).toBe(progress);
  });
});

describe('a node bound by its upstream (hour → hour(sql) → day → week rollups at 60/s)', () => {
  const rollups = expandPlan(
    resolveSpec({
      name: 'rollups',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-05-01' },
      nodes: [
        { id: 'hourly', transform: 'noop', concurrency: 8 },
        { id: 'hourly_sql', transform: 'noop', concurrency: 8, dependsOn: ['hourly'] },
        { id: 'daily', transform: 'noop', concurrency: 8, partitions: { grain: 'day' }, dependsOn: ['hourly_sql'] },
        { id: 'weekly', transform: 'noop', concurrency: 8, partitions: { grain: 'week' }, dependsOn: ['daily'] },
      ],
    }),
  );
  const size = (id: string) => rollups.nodes.find((n) => n.id === id)!.partitions.size;
  const HOURS = size('hourly');
  const WEEKS = size('weekly');
  const limits = { rate: 60, concurrency: null };
  const held = (done: number, total: number, inHands: number) => ({ done: RangeSet.of([0, done]).toJSON(), failed: '', inHands: done < total ? RangeSet.of([done, Math.min(total, done + inHands)]).toJSON() : '' });
  /** The run `t` seconds in: hourly and hourly_sql at 30/s each (their shares of 60/s), the rollups keeping up with them. */
  const at = (t: number) => {
    const hours = Math.min(HOURS, t * 30);
    const sql = Math.max(0, hours - 8);
    const days = Math.floor(sql / 24);
    const weeks = Math.min(WEEKS - 1, Math.floor(days / 7));
    return {
      limits,
      overrides: {},
      readiness: { hourly: held(hours, HOURS, HOURS), hourly_sql: held(sql, HOURS, hours - sql), daily: held(days, size('daily'), 0), weekly: held(weeks, WEEKS, 0) },
      reports: {
        hourly: stats({ rate: 30, concurrency: 8, completed: hours, firstStartedAt: 0, lastFinishedAt: t * 1000 }),
        hourly_sql: stats({ rate: 30, concurrency: 8, completed: sql, firstStartedAt: 300, lastFinishedAt: t * 1000 }),
        daily: stats({ rate: 20, concurrency: 8, completed: days, firstStartedAt: 1500, lastFinishedAt: t * 1000 }),
        weekly: stats({ rate: 20, concurrency: 8, completed: weeks, firstStartedAt: 9000, lastFinishedAt: t * 1000 }),
      },
    };
  };

  it("does not give the last week the pace of a weekly node that waited on its days (it said 44 s for a run that ended within 6)", () => {
    // Every hour and day done; 17 of 18 weeks done in 40 s, 8 at a time: 18.8 s a week in a slot, all of it waiting for days.
    const done = { hourly: held(HOURS, HOURS, 0), hourly_sql: held(HOURS, HOURS, 0), daily: held(size('daily'), size('daily'), 0), weekly: held(WEEKS - 1, WEEKS, 1) };
    const end = { ...at(97), readiness: done };
    end.reports.weekly = stats({ rate: 20, concurrency: 8, completed: WEEKS - 1, firstStartedAt: 9000, lastFinishedAt: 49_000 });
    expect(liveTiming(end.reports.weekly, 1)).toBeGreaterThan(18_000);
    const eta = liveEta(rollups, end);
    expect(eta.nodes.weekly).toBeLessThan(2);
    expect(eta.etaSeconds).toBeLessThan(2);
  });

  it('falls as the run goes on, to about what the hours left take at their rate', () => {
    const etas = [20, 40, 60, 80, 95].map((t) => liveEta(rollups, at(t)).etaSeconds!);
    for (let i = 1; i < etas.length; i++) expect(etas[i]).toBeLessThan(etas[i - 1]! - 10);
    // The hours end at 96.8 s (the simulation shares the 60/s with the rollups too, so it errs
    // a little long early on); the rollups follow them within seconds.
    [20, 40, 60, 80, 95].forEach((t, i) => {
      expect(etas[i]).toBeGreaterThan(96.8 - t - 1);
      expect(etas[i]).toBeLessThan((96.8 - t) * 1.2 + 5);
    });
  });

  it('takes a node as bound only while it has fewer partitions in hands than slots and an upstream node finished after its start', () => {
    const mid = at(40);
    const node = (id: string) => rollups.nodes.find((n) => n.id === id)!;
    expect(upstreamBound(node('weekly'), mid)).toBe(true);
    expect(upstreamBound(node('hourly'), mid)).toBe(false);
    // A backlog: its slots do not wait.
    expect(upstreamBound(node('daily'), { ...mid, readiness: { ...mid.readiness, daily: held(40, size('daily'), 81) } })).toBe(false);
    // Its upstream was done before it started (a resumed run): its pace is its own.
    expect(upstreamBound(node('weekly'), { ...mid, reports: { ...mid.reports, weekly: { ...mid.reports.weekly, firstStartedAt: 60_000 } } })).toBe(false);
  });

  it("gives a node not measured yet the bound nodes' figures as corrected, not as they waited", () => {
    const mid = at(40);
    const { weekly: _notYet, ...reports } = mid.reports;
    const eta = liveEta(rollups, { ...mid, reports }).etaSeconds!;
    expect(eta).toBeLessThan((96.8 - 40) * 1.2 + 5);
    expect(eta).toBeGreaterThan(96.8 - 40 - 1);
  });

  it('keeps a bound node at its own figure where the nodes that were not bound are slower', () => {
    const mid = at(40);
    // The hours' figure 20 times longer than the weekly's own: the weekly keeps its own.
    const slowHours = { ...mid, reports: { ...mid.reports, hourly: { ...mid.reports.hourly, completed: 60 } } };
    expect(liveEta(rollups, slowHours).etaSeconds).toBeGreaterThan(liveEta(rollups, mid).etaSeconds!);
  });
});

describe('withLiveEta', () => {
  it("never ends the backfill before one of its nodes: a node the simulation ran nothing for keeps the progress's later ETA", () => {
    const progress = { etaSeconds: 50, nodes: [{ id: 'a', etaSeconds: 40 }, { id: 'b', etaSeconds: 30 }] } as unknown as Progress;
    const shown = withLiveEta(progress, { etaSeconds: 12, nodes: { a: 12, b: null } });
    expect(shown.nodes.map((n) => n.etaSeconds)).toEqual([12, 30]);
    expect(shown.etaSeconds).toBe(30);
  });
});

/** A node's progress: half of its 10 partitions done, none running, at 2/s. */
const node = (id: string, etaSeconds: number | null, fields: Partial<NodeProgress> = {}): NodeProgress => ({
  id, total: 10, done: 5, running: 0, failed: 0, blocked: 0, pending: 5, rate: null, concurrency: 4, throttles: 0, throughput: 2, etaSeconds, failures: [], ...fields,
});

describe('withStall', () => {
  const progress: Progress = {
    backfillId: 'b1', name: 'b1', state: 'running', paused: false, rate: null, concurrency: null,
    total: 20, done: 15, running: 2, failed: 0, blocked: 0, pending: 3, throughput: 6.3, etaSeconds: 684, runs: 1,
    nodes: [node('a', 684, { running: 2, pending: 3 }), node('b', 0, { done: 10, pending: 0 })],
  };
  const now = Date.UTC(2026, 11, 7, 5, 35);

  it('shows no ETA and says for how long once nothing finished for a minute with work left (it showed 6.3/s and the same ETA for minutes)', () => {
    const shown = withStall(progress, { lastFinishedAt: now - 130_000 }, now);
    expect(shown.stalledSeconds).toBe(130);
    expect(shown.etaSeconds).toBeNull();
    expect(shown.nodes.map((n) => n.etaSeconds)).toEqual([null, 0]);
    const text = stripVTControlCharacters(renderStatus({ ...shown, waiting: [] }));
    expect(text).toContain('⚠ no partition has finished for 2m 10s, so no ETA');
    expect(text.split('\n')[0]).not.toContain('684');
  });

  it('waits longer for a slow pace (ten of its intervals), and never for a held, finished or unmeasured backfill', () => {
    expect(withStall(progress, { lastFinishedAt: now - 59_000 }, now)).toBe(progress);
    const slow = { ...progress, throughput: 0.01 };
    expect(withStall(slow, { lastFinishedAt: now - 900_000 }, now)).toBe(slow);
    expect(withStall(slow, { lastFinishedAt: now - 1_000_000 }, now).stalledSeconds).toBe(1000);
    const paused = { ...progress, paused: true };
    expect(withStall(paused, { lastFinishedAt: now - 600_000 }, now)).toBe(paused);
    const settled = { ...progress, running: 0, pending: 0 };
    expect(withStall(settled, { lastFinishedAt: now - 600_000 }, now)).toBe(settled);
    expect(withStall(progress, null, now)).toBe(progress);
    expect(withStall(progress, NO_LIVE_ETA, now)).toBe(progress);
  });

  it('keeps when the last partition finished across the cached countdown of the live ETA', async () => {
    const etas = new LiveEtas();
    await etas.get('b1', async () => ({ etaSeconds: 10, nodes: {}, lastFinishedAt: 123 }), 0);
    expect(await etas.get('b1', async () => NO_LIVE_ETA, 2000)).toMatchObject({ etaSeconds: 8, lastFinishedAt: 123 });
  });

  it('counts a short live ETA down for half of itself at most, then simulates again (it said <1s with 3.6 s of work left)', async () => {
    const etas = new LiveEtas();
    await etas.get('b1', async () => ({ etaSeconds: 4, nodes: {} }), 0);
    expect(await etas.get('b1', async () => ({ etaSeconds: 3.6, nodes: {} }), 1900)).toMatchObject({ etaSeconds: 2.1 });
    expect(await etas.get('b1', async () => ({ etaSeconds: 3.6, nodes: {} }), 2000)).toMatchObject({ etaSeconds: 3.6 });
  });
});

describe('withoutEtaWithoutWorker', () => {
  const progress: Progress = {
    backfillId: 'b1', name: 'b1', state: 'running', paused: false, rate: null, concurrency: null,
    total: 30, done: 20, running: 0, failed: 0, blocked: 0, pending: 10, throughput: 2, etaSeconds: 58.7, runs: 1,
    nodes: [node('a', 58.7), node('b', 12), node('c', 0, { done: 10, pending: 0 })],
  };
  const unpolled: Waiting = { node: 'a', taskQueue: 'warehouse', reason: 'no_worker', lastPollAt: null };

  it('shows no ETA for a node no worker can run, nor for the backfill that waits on it; the others keep theirs', () => {
    const shown = withoutEtaWithoutWorker(progress, [unpolled]);
    expect(shown.etaSeconds).toBeNull();
    expect(shown.nodes.map((n) => n.etaSeconds)).toEqual([null, 12, 0]);
    const text = renderStatus({ ...shown, waiting: [unpolled] });
    expect(text).not.toContain('58.7');
    expect(text.split('\n')[0]).toContain('ETA –');
    expect(text).toContain('no worker polls it');
  });

  it('shows none either for the nodes downstream of it that are not done, when the spec says which', () => {
    const spec = { nodes: [{ id: 'a', dependsOn: [] }, { id: 'b', dependsOn: [{ node: 'a' }] }, { id: 'c', dependsOn: [{ node: 'b' }] }] } as unknown as Pick<ResolvedSpec, 'nodes'>;
    const shown = withoutEtaWithoutWorker(progress, [unpolled], spec);
    // b waits on a; c, downstream of b, is done: its ETA says so still.
    expect(shown.nodes.map((n) => n.etaSeconds)).toEqual([null, null, 0]);
    expect(withoutEtaWithoutWorker(progress, [{ ...unpolled, node: 'b' }], spec).nodes.map((n) => n.etaSeconds)).toEqual([58.7, null, 0]);
  });

  it('keeps the ETAs when no node waits, or its workers only went silent (maybe every slot busy)', () => {
    expect(withoutEtaWithoutWorker(progress, [])).toBe(progress);
    expect(withoutEtaWithoutWorker(progress, [{ ...unpolled, reason: 'workers_silent', lastPollAt: '2024-01-01T00:00:00.000Z' }])).toBe(progress);
  });

  it('is what status of a running backfill shows (the light path) when no worker polls a node\'s queue', async () => {
    const rpc: StatusReads = {
      describe: async () => ({ runId: 'r1', type: 'backfillWorkflow', status: WORKFLOW_EXECUTION_STATUS_RUNNING, taskQueue: 'backfill' }),
      query: async (_workflowId: string, query: string) => {
        if (query === 'progress') return progress;
        throw new Error('no carry in this test');
      },
      firstInput: async () => ({ spec: { nodes: [{ id: 'a', taskQueue: 'warehouse' }, { id: 'b', taskQueue: 'busy' }] }, range: {} }),
      taskFailure: async () => undefined,
      pollers: async (queue: string) => (queue === 'warehouse' ? [] : [{ identity: 'w', lastAccessMs: Date.now() }]),
    };
    const status = await statusOf(rpc, 'b1');
    expect(status?.waiting).toEqual([unpolled]);
    expect(status?.etaSeconds).toBeNull();
    expect(status?.nodes.map((n) => n.etaSeconds)).toEqual([null, 12, 0]);
  });
});

describe('LiveEtas', () => {
  it('computes at most every few seconds and counts down in between', async () => {
    const etas = new LiveEtas();
    let computed = 0;
    const compute = async () => (computed++, { etaSeconds: 100, nodes: { a: 50 } });
    expect(await etas.get('x', compute, 0)).toEqual({ etaSeconds: 100, nodes: { a: 50 } });
    expect(await etas.get('x', compute, 3000)).toEqual({ etaSeconds: 97, nodes: { a: 47 } });
    expect(computed).toBe(1);
    await etas.get('x', compute, 6000);
    expect(computed).toBe(2);
  });
});
