/** `plan --estimate`'s inputs: durations and rows from ledger rows, what it assumes without them, the calibration, the flags. */
import { describe, expect, it } from 'vitest';
import { stripVTControlCharacters } from 'node:util';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrate, estimateOptions, estimatePlan, estimateReport, nodeHistory, parseQueueCaps, sampleHistories, sampleHistory, type NodeHistory } from '../../client/estimate.ts';
import type { SampleRun } from '../../client/estimate-sample.ts';
import { renderEstimate } from '../../client/render-estimate.ts';
import type { LedgerRow } from '../../activities/warehouse/types.ts';
import { DEFAULT_OVERHEAD, STILL_MIN_MS, stillThreshold, stillTime } from '../../core/estimate.ts';
import { expandPlan, planNode } from '../../core/plan.ts';
import { parsePolicy } from '../../core/policy.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';

const INPUT: SpecInput = {
  name: 'history',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-21' },
  nodes: [
    { id: 'raw', transform: 'generate', concurrency: 2 },
    { id: 'clean', sql: 'SELECT * FROM raw', dependsOn: ['raw'] },
    { id: 'nap', transform: 'sleep', params: { ms: 25 }, dependsOn: ['clean'] },
  ],
};
const spec = resolveSpec(INPUT);
const plan = expandPlan(spec);
const T0 = Date.UTC(2026, 0, 1);

function row(node: string, day: number, durationMs: number, backfillId: string, extra: Partial<LedgerRow> = {}): LedgerRow {
  const startedAt = T0 + day * 1000;
  return {
    node,
    partition: `2024-01-${String(day).padStart(2, '0')}`,
    version: 1,
    status: 'published',
    backfillId,
    runKey: `run-${backfillId}`,
    workflowId: `backfill/${backfillId}/${node}`,
    rowCount: 10 * day,
    checksum: 'c',
    schemaHash: 's',
    transform: 'sql',
    params: {},
    codeVersion: 'backfill@test',
    inputs: [],
    attempt: 1,
    executions: 1,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(startedAt + durationMs).toISOString(),
    durationMs,
    previousVersion: null,
    error: null,
    warnings: [],
    specHash: 'h',
    cost: null,
    current: true,
    ...extra,
  };
}

describe('nodeHistory', () => {
  it("gives each partition its own duration and row count, and the others the node's mean", () => {
    const rows = [row('raw', 1, 100, 'b1'), row('raw', 2, 300, 'b1'), row('raw', 3, 200, 'b2'), { ...row('raw', 4, 9999, 'b2'), status: 'failed_check' as const }];
    const h = nodeHistory(planNode(plan, 'raw'), rows, null);
    expect(h.timing.meanMs).toBe(200);
    expect(Array.from(h.timing.byIndex!.slice(0, 4))).toEqual([100, 300, 200, Number.NaN]);
    expect(h.rowsPerPartition).toBe(20);
    expect(h.source).toMatchObject({ kind: 'history', ledgerRows: 3, ownDurations: 3, backfills: [{ backfillId: 'b1', rows: 2 }, { backfillId: 'b2', rows: 1 }] });
    expect(h.runs).toHaveLength(3);
  });

  it('counts rows of partitions outside the plan in the mean only', () => {
    const narrow = expandPlan(spec, { from: Date.UTC(2024, 0, 2), to: Date.UTC(2024, 0, 3) });
    const h = nodeHistory(planNode(narrow, 'raw'), [row('raw', 1, 100, 'b1'), row('raw', 2, 300, 'b1')], null);
    expect(h.timing.meanMs).toBe(200);
    expect(Array.from(h.timing.byIndex!)).toEqual([300]);
    expect(h.source).toMatchObject({ ledgerRows: 2, ownDurations: 1 });
  });

  it('without history: sleep takes its ms, noop nothing, others nothing or what --assume says, and says so', () => {
    expect(nodeHistory(planNode(plan, 'nap'), [], null)).toMatchObject({ timing: { meanMs: 25 }, rowsPerPartition: 0, source: { kind: 'assumed', why: expect.stringContaining('ms parameter (25ms)') } });
    expect(nodeHistory(planNode(plan, 'clean'), [], null)).toMatchObject({ timing: { meanMs: 0 }, rowsPerPartition: null, source: { why: expect.stringContaining('a lower bound') } });
    expect(nodeHistory(planNode(plan, 'clean'), [], 150)).toMatchObject({ timing: { meanMs: 150 }, source: { why: 'no history: --assume 150ms' } });
  });
});

/** Every partition of `raw` and `clean` ran in backfill b1, one a second; nap never ran. */
function histories(): Map<string, NodeHistory> {
  const out = new Map<string, NodeHistory>();
  for (const node of plan.nodes) {
    const rows = node.id === 'nap' ? [] : Array.from({ length: 20 }, (_, i) => row(node.id, i + 1, node.id === 'raw' ? 800 : 50, 'b1'));
    out.set(node.id, nodeHistory(node, rows, null));
  }
  return out;
}

describe('calibrate', () => {
  it("fits the costs to the largest earlier backfill's span", () => {
    const c = calibrate(plan, histories(), { limits: { rate: null, concurrency: null }, overhead: DEFAULT_OVERHEAD })!;
    expect(c).toMatchObject({ backfillId: 'b1', partitions: 40 });
    // The rows ran from T0 + 1 s to T0 + 20 s + 800 ms.
    expect(c.spanMs).toBe(19_800);
    expect(c.factor).toBeGreaterThan(1);
  });

  it('stillTime counts the stretches in which no interval ran, longer than the least, whatever their order or overlap', () => {
    expect(stillTime([], 5_000)).toBe(0);
    expect(stillTime([[0, 10]], 5_000)).toBe(0);
    expect(stillTime([[20_000, 21_000], [0, 1_000], [500, 9_000]], 5_000)).toBe(11_000);
    // Exactly the least is no stand-still; a long interval covers the gaps after shorter ones.
    expect(stillTime([[0, 1_000], [6_000, 7_000]], 5_000)).toBe(0);
    expect(stillTime([[0, 100_000], [10_000, 11_000], [50_000, 51_000]], 5_000)).toBe(0);
  });

  it('leaves out a stretch in which the run stood still (paused, then resumed): it calibrated 3× long on such a run', () => {
    const pause = 60_000;
    // b1 as above, but paused for a minute after its tenth second: every partition after it started a minute later.
    const paused = new Map(
      [...histories()].map(([id, h]) => [id, { ...h, runs: (h.runs ?? []).map((r) => (r.startMs >= T0 + 11_000 ? { ...r, startMs: r.startMs + pause, finishMs: r.finishMs + pause } : r)) }]),
    );
    const limits = { limits: { rate: null, concurrency: null }, overhead: DEFAULT_OVERHEAD };
    const before = calibrate(plan, histories(), limits)!;
    const c = calibrate(plan, paused, limits)!;
    // The whole stretch in which nothing ran: the pause and the 200 ms after the last partition before it.
    expect(c.stillMs).toBe(pause + 200);
    expect(c.spanMs).toBe(before.spanMs - 200);
    expect(c.factor).toBeGreaterThan(before.factor * 0.9);
    expect(c.factor).toBeLessThan(before.factor * 1.1);
    expect(before.stillMs).toBe(0);
    const options = { ...estimateOptions(spec, { estimate: true }), warehouse: '/w.db', warehouseFound: true };
    expect(stripVTControlCharacters(renderEstimate(estimateReport(plan, paused, options)))).toMatch(/from the first start to the last finish, less 1m 00s in which none ran \(paused, or waiting for a worker\)/);
  });

  it('keeps the gaps a slow rate leaves (the run was held, not standing still)', () => {
    expect(stillThreshold({ plan, limits: { rate: null, concurrency: null } })).toBe(STILL_MIN_MS);
    expect(stillThreshold({ plan, limits: { rate: 0.1, concurrency: null } })).toBe(30_000);
    expect(stillThreshold({ plan, limits: { rate: 5, concurrency: null }, overrides: { raw: { rate: 0.05 } } })).toBe(60_000);
  });

  it('does not calibrate on fewer than 10 partitions', () => {
    const few = new Map([...histories()].map(([id, h]) => [id, { ...h, runs: h.runs?.slice(0, 4) ?? [] }]));
    expect(calibrate(plan, few, { limits: { rate: null, concurrency: null }, overhead: DEFAULT_OVERHEAD })).toBeNull();
  });
});

describe('estimateReport', () => {
  const options = { ...estimateOptions(spec, { estimate: true }), warehouse: '/w.db', warehouseFound: true };

  it('predicts the wall time, each node and the rows, and names its inputs', () => {
    const report = estimateReport(plan, histories(), options);
    expect(report.runs).toBe(60);
    expect(report.assumed).toEqual(['nap']);
    expect(report.calibration).toMatchObject({ backfillId: 'b1' });
    expect(report.nodes.map((n) => n.rows)).toEqual([2100, 2100, 0]);
    expect(report.rows).toBe(4200);
    const [raw, clean, nap] = report.nodes;
    expect(raw!.finishMs!).toBeLessThan(clean!.finishMs!);
    expect(clean!.finishMs!).toBeLessThan(nap!.finishMs!);
    expect(nap!.finishMs!).toBeLessThan(report.wallMs);
    const text = renderEstimate(report);
    expect(text).toContain('20 ledger rows (20 of this plan\'s partitions) from b1 (20), finished 2026-01-01');
    expect(text).toContain('no history for nap');
    expect(text).toContain('calibrated on b1');
  });

  it('leaves out what --only-changed keeps, from the runs and the rows', () => {
    const skip = { raw: RangeSet.of([0, 20]).toJSON(), clean: RangeSet.of([0, 10]).toJSON() };
    const report = estimateReport(plan, histories(), { ...options, skip });
    expect(report.nodes.map((n) => n.runs)).toEqual([0, 10, 20]);
    expect(report.nodes[1]!.rows).toBe(10 * (11 + 20) * 5);
  });

  it("follows the spec's run windows from now, and says what it leaves out of a canary", () => {
    const windowed = { ...spec, windows: resolveSpec({ ...INPUT, windows: { allow: [{ days: ['sun'], from: '01:00', to: '02:00' }] } }).windows!, canary: resolveSpec({ ...INPUT, canary: { partitions: 2 } }).canary! };
    const monday = Date.UTC(2024, 0, 1);
    const report = estimateReport(plan, histories(), { ...estimateOptions(windowed, { estimate: true }), calibrate: false, now: monday, warehouse: '/w.db', warehouseFound: true });
    // Outside the window it pauses: nothing starts before Sunday 01:00 UTC, six days and an hour on.
    const opens = Date.UTC(2024, 0, 7, 1) - monday;
    expect(Math.min(...report.nodes.map((n) => n.firstStartMs!))).toBeGreaterThanOrEqual(opens);
    expect(report.wallMs).toBeGreaterThan(opens);
    expect(report.windows).toMatchObject({ schedules: 1, startsAt: '2024-01-01T00:00:00.000Z' });
    // Started inside the window, it runs as without one.
    const inside = estimateReport(plan, histories(), { ...estimateOptions(windowed, { estimate: true }), calibrate: false, now: Date.UTC(2024, 0, 7, 1), warehouse: '/w.db', warehouseFound: true });
    expect(inside.wallMs).toBe(estimateReport(plan, histories(), { ...options, calibrate: false }).wallMs);
    expect(report.canary).toBe(true);
    expect(report.warnings).toEqual([expect.stringMatching(/canary runs a slice first and waits for its approval/)]);
    const text = renderEstimate(report);
    expect(text).toContain('run windows, from a start now (2024-01-01 00:00 UTC)');
    expect(text).toContain('not in the estimate: the spec\'s canary');
    expect(estimateReport(plan, histories(), options)).toMatchObject({ windows: null, canary: false, warnings: [] });
  });

  it('changes the limits where one window hands over to another (22:00–22:01 at 0.1/s, then unlimited to 05:00), not at the merged close', () => {
    const windows = { allow: [{ from: '22:00', to: '22:01', rate: 0.1 }, { from: '22:01', to: '05:00' }] };
    const handover = { ...spec, windows: resolveSpec({ ...INPUT, windows }).windows! };
    const report = estimateReport(plan, histories(), { ...estimateOptions(handover, { estimate: true }), calibrate: false, now: Date.UTC(2024, 0, 1, 22), warehouse: '/w.db', warehouseFound: true });
    // A few partitions in the first minute at 0.1/s, the rest right after 22:01 (at 0.1/s all night: 600 s for the 60).
    expect(report.wallMs).toBeGreaterThan(60_000);
    expect(report.wallMs).toBeLessThan(120_000);
  });

  it("follows the policy's run windows with the spec's, starting only while both allow, and names whose they are", () => {
    // The spec allows Sunday 01:00-03:00 UTC, the policy Sunday 02:00-04:00 UTC: the backfill runs from 02:00 to 03:00.
    const windowed = { ...spec, windows: resolveSpec({ ...INPUT, windows: { allow: [{ days: ['sun'], from: '01:00', to: '03:00' }] } }).windows! };
    const policy = { path: '/etc/backfill.policy.yaml', rules: parsePolicy({ version: 1, windows: { allow: [{ days: ['sun'], from: '02:00', to: '04:00' }] } }) };
    const monday = Date.UTC(2024, 0, 1);
    const at = { calibrate: false, now: monday, warehouse: '/w.db', warehouseFound: true };
    const firstStart = (r: ReturnType<typeof estimateReport>) => monday + Math.min(...r.nodes.map((n) => n.firstStartMs!));
    const specOnly = estimateReport(plan, histories(), { ...estimateOptions(windowed, { estimate: true }), ...at });
    expect(firstStart(specOnly)).toBeGreaterThanOrEqual(Date.UTC(2024, 0, 7, 1));
    expect(firstStart(specOnly)).toBeLessThan(Date.UTC(2024, 0, 7, 2));
    expect(specOnly.policy).toBeNull();

    const both = estimateReport(plan, histories(), { ...estimateOptions(windowed, { estimate: true }, undefined, policy), ...at });
    expect(firstStart(both)).toBeGreaterThanOrEqual(Date.UTC(2024, 0, 7, 2));
    expect(firstStart(both)).toBeLessThan(Date.UTC(2024, 0, 7, 3));
    expect(both.windows).toMatchObject({ schedules: 2, from: ['spec', 'policy'] });
    expect(both.windows!.description).toEqual([expect.stringMatching(/^the spec's: outside the run windows \(paused\): next window opens Sun 01:00 UTC/), expect.stringMatching(/^the policy's: outside the run windows \(paused\): next window opens Sun 02:00 UTC/)]);
    expect(both.policy).toEqual({ path: policy.path, windows: true, caps: { rate: null, concurrency: null, nodeRates: {}, refused: [] } });
    expect(renderEstimate(both)).toContain(`policy ${policy.path}: its run windows are followed too`);

    // The policy's alone hold a spec without windows; a policy without windows changes nothing, and says so.
    const policyOnly = estimateReport(plan, histories(), { ...estimateOptions(spec, { estimate: true }, undefined, policy), ...at });
    expect(firstStart(policyOnly)).toBeGreaterThanOrEqual(Date.UTC(2024, 0, 7, 2));
    expect(policyOnly.windows).toMatchObject({ schedules: 1, from: ['policy'] });
    const none = estimateReport(plan, histories(), { ...estimateOptions(spec, { estimate: true }, undefined, { path: policy.path, rules: parsePolicy({ version: 1 }) }), ...at });
    expect(none.wallMs).toBe(estimateReport(plan, histories(), { ...estimateOptions(spec, { estimate: true }), ...at }).wallMs);
    expect(none).toMatchObject({ windows: null, policy: { path: policy.path, windows: false } });
    expect(renderEstimate(none)).toContain(`policy ${policy.path}: no run windows`);
  });

  it("runs with the limits the policy's caps set where the start sets none, and says what the policy would refuse", () => {
    const at = { calibrate: false, warehouse: '/w.db', warehouseFound: true };
    const rules = parsePolicy({ version: 1, caps: { backfill: { rate: 2, concurrency: 3 }, datasets: [{ match: 'cl*', rate: 1 }] } });
    const free = estimateReport(plan, histories(), { ...estimateOptions(spec, { estimate: true }), ...at });
    const capped = estimateReport(plan, histories(), { ...estimateOptions(spec, { estimate: true }, undefined, { path: '/p.yaml', rules }), ...at });
    expect(capped.limits).toEqual({ rate: 2, concurrency: 3 });
    expect(capped.policy).toEqual({ path: '/p.yaml', windows: false, caps: { rate: 2, concurrency: 3, nodeRates: { clean: 1 }, refused: [] } });
    // clean's 20 partitions at 1/s at most: about 20 s, where the free run takes far less.
    expect(capped.wallMs).toBeGreaterThan(18_000);
    expect(free.wallMs).toBeLessThan(capped.wallMs / 2);
    const text = stripVTControlCharacters(renderEstimate(capped));
    expect(text).toContain("limits: rate 2/s · concurrency 3");
    expect(text).toContain("policy /p.yaml: no run windows; its caps set the backfill's rate to 2/s, its concurrency to 3, clean's rate to 1/s, where the start sets none (as at the start)");
    // A rate given above the cap: the estimate runs with it, and says that a start with it is refused.
    const above = estimateReport(plan, histories(), { ...estimateOptions(spec, { estimate: true, rate: 5 }, undefined, { path: '/p.yaml', rules }), ...at });
    expect(above.limits).toEqual({ rate: 5, concurrency: 3 });
    expect(above.policy!.caps).toMatchObject({ rate: null, concurrency: 3, refused: [expect.stringMatching(/^the backfill's rate 5\/s is above the policy's cap of 2\/s: .+ \(caps\.backfill\.rate\)$/)] });
    expect(stripVTControlCharacters(renderEstimate(above))).toContain("the policy refuses a start with these limits: the backfill's rate 5/s is above the policy's cap of 2/s");
  });

  it('without calibration, uses the defaults as they are', () => {
    expect(estimateReport(plan, histories(), { ...options, calibrate: false })).toMatchObject({ calibration: null, overhead: DEFAULT_OVERHEAD });
  });
});

describe('the flags of plan --estimate', () => {
  it("take start's limits over the spec's, and the queue caps as the workers write them", () => {
    expect(estimateOptions(spec, { estimate: true, rate: 5, queueCap: ['warehouse=20'], workerSlots: 50, assume: 300 })).toMatchObject({
      limits: { rate: 5, concurrency: null },
      queueCaps: { warehouse: { ratePerSecond: 20, slots: 50 } },
      workerSlots: 50,
      assumeMs: 300,
    });
    expect(() => parseQueueCaps(['warehouse'], 200)).toThrow(/--queue-cap 'warehouse': write <task-queue>=<activities per second>/);
    expect(() => parseQueueCaps(['a=0'], 200)).toThrow(/--queue-cap 'a=0'/);
    expect(() => parseQueueCaps(['__temporal_a=5'], 200)).toThrow(/--queue-cap '__temporal_a' starts with __temporal_, which Temporal reserves/);
    // Not a cap: an infinite rate (or one too large for a number) would print ∞ and leave the simulation with NaN start times.
    for (const rate of ['Infinity', '1e400', '-Infinity', 'NaN', '', ' ']) {
      expect(() => parseQueueCaps([`a=${rate}`], 200)).toThrow(new RegExp(`--queue-cap 'a=${rate}': .*a finite number above 0`));
    }
    expect(parseQueueCaps(['a=0.5', 'b=1e6'], 200)).toEqual({ a: { ratePerSecond: 0.5, slots: 200 }, b: { ratePerSecond: 1e6, slots: 200 } });
  });

  it('are refused without --estimate, which they would mean nothing without', () => {
    expect(() => estimateOptions(spec, { rate: 5, assume: 100 })).toThrow(/--rate and --assume only matter with --estimate: add --estimate, or leave them out/);
    expect(() => estimateOptions(spec, { sample: '3' })).toThrow(/--sample only matters with --estimate/);
    expect(() => estimateOptions(spec, { policy: 'p.yaml' })).toThrow(/--policy only matters with --estimate/);
  });
});

describe('sampleHistory', () => {
  const sample: SampleRun = { backfillId: 's1', perNode: 2, partitions: { raw: ['2024-01-06', '2024-01-16'], clean: ['2024-01-06', '2024-01-16'], nap: ['2024-01-06', '2024-01-16'] }, wallMs: 3000, failed: 0, discarded: 4 };
  const discarded = (node: string, day: number, ms: number, backfillId = 's1') => row(node, day, ms, backfillId, { status: 'discarded', staged: true, current: false });

  it("takes the sample's durations, not the history's, and says which partitions it sampled", () => {
    const rows = [discarded('raw', 6, 40), { ...discarded('raw', 16, 60), status: 'failed_check' as const }, row('raw', 7, 5000, 'old'), discarded('raw', 8, 9000, 'other-sample')];
    const h = sampleHistory(planNode(plan, 'raw'), rows, sample, null);
    expect(h.timing.meanMs).toBe(50);
    expect(h.timing.byIndex![5]).toBe(40);
    expect(h.timing.byIndex![15]).toBe(60);
    expect(h.timing.byIndex![6]).toBeNaN();
    expect(h.source).toEqual({ kind: 'sample', backfillId: 's1', ledgerRows: 2, partitions: ['2024-01-06', '2024-01-16'] });
    expect(h.runs!.map((r) => r.backfillId)).toEqual(['s1', 's1']);
  });

  it('without a timed partition of a node (they failed), assumes as without history, and says why', () => {
    const h = sampleHistory(planNode(plan, 'clean'), [discarded('raw', 6, 40)], sample, 120);
    expect(h).toMatchObject({ timing: { meanMs: 120 }, source: { kind: 'assumed', why: 'the sample s1 timed none of its partitions (they failed or waited on one that did); --assume 120ms' } });
  });

  it('refuses a ledger without any of the sample\'s rows: the workers write another warehouse', async () => {
    await expect(sampleHistories(plan, { ledger: async () => [] }, sample, null)).rejects.toThrow(/has none of its rows: pass --warehouse/);
  });

  it('is reported as a sample that published nothing', async () => {
    const rows = ['raw', 'clean', 'nap'].flatMap((node) => [discarded(node, 6, 40), discarded(node, 16, 60)]);
    const history = await sampleHistories(plan, { ledger: async () => rows }, sample, null);
    const report = estimateReport(plan, history, { ...estimateOptions(spec, { estimate: true }), sample, warehouse: 'w.db', warehouseFound: true });
    expect(report.sample).toEqual({ backfillId: 's1', perNode: 2, partitions: sample.partitions, wallMs: 3000, failed: 0, discarded: 4, published: 0 });
    expect(report.assumed).toEqual([]);
    const text = renderEstimate(report);
    expect(text).toContain('a sample: 2 partitions per node run as staged backfill s1');
    expect(text).toContain('then discarded (4 staged versions dropped, nothing published)');
    expect(text).toContain('raw: sampled 2 partitions (2024-01-06, 2024-01-16)');
  });

  it('does not calibrate the orchestration costs on a sample, however many partitions it timed', async () => {
    const rows = ['raw', 'clean', 'nap'].flatMap((node) => [6, 7, 16, 17].map((day) => discarded(node, day, 40)));
    const history = await sampleHistories(plan, { ledger: async () => rows }, sample, null);
    const options = { ...estimateOptions(spec, { estimate: true }), warehouse: 'w.db', warehouseFound: true };
    expect(estimateReport(plan, history, options).calibration).toMatchObject({ backfillId: 's1', partitions: 12 });
    const sampled = estimateReport(plan, history, { ...options, sample });
    expect(sampled.calibration).toBeNull();
    expect(sampled.overhead).toEqual(DEFAULT_OVERHEAD);
    expect(renderEstimate(sampled)).toContain('not calibrated (a sample is too small to calibrate on)');
  });
});

describe('estimatePlan', () => {
  it('creates no warehouse where there is none: it estimates without history', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-estimate-'));
    try {
      const path = join(dir, 'warehouse.db');
      const report = await estimatePlan(plan, { ...estimateOptions(spec, { estimate: true }), warehouse: path });
      expect(report).toMatchObject({ warehouse: path, warehouseFound: false, calibration: null, assumed: ['raw', 'clean', 'nap'] });
      expect(existsSync(path)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
