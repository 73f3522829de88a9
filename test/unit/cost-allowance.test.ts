/**
 * Cost allowances (core/coordinator.ts, NodeSettings.allowance): under a capped cost budget
 * each node with work in hands may spend an equal share of what is left on top of the running
 * total it last reported, so that nodes stop by themselves at the cap instead of after the
 * parent's pause reaches them. Checked where they arrive, as every report and control is.
 */
import { describe, expect, it } from 'vitest';
import { noSpending, type Spending } from '../../core/budget.ts';
import { parseCanary } from '../../core/canary.ts';
import { BackfillCoordinator, resumeCarry } from '../../core/coordinator.ts';
import { Governance } from '../../core/governance.ts';
import { parseNodeControl } from '../../core/node-control.ts';
import { expandPlan } from '../../core/plan.ts';
import { parsePolicy } from '../../core/policy.ts';
import type { BackfillCarry, NodeReport, NodeStats } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec } from '../../core/spec.ts';
import { thrownBackfillError } from './backfill-error.ts';

const spec = resolveSpec({
  name: 'metered',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
  nodes: [
    { id: 'a', transform: 'sleep' },
    { id: 'b', transform: 'sleep' },
  ],
});
const plan = expandPlan(spec);
const stats: NodeStats = { running: 0, rate: null, concurrency: 4, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null };
const cost = (reported: number): Spending => ({ ...noSpending(), reported });

function governed(
  options: { allowances?: boolean; limit?: number; canary?: { countsAfresh: boolean } } = {},
  carry?: Omit<BackfillCarry, 'runKey' | 'childrenRunning' | 'startedAt' | 'runs'>,
  limits: { rate: number | null; concurrency: number | null } = { rate: null, concurrency: null },
): BackfillCoordinator {
  const coordinator = new BackfillCoordinator(plan, limits, carry, {
    now: () => 0,
    allowances: options.allowances ?? true,
    ...(options.canary ? { canary: parseCanary({ partitions: 1 }), canaryCountsAfresh: options.canary.countsAfresh } : {}),
  });
  const admission = Governance.admit({
    backfillId: 'metered',
    policy: parsePolicy({ version: 1, budgets: { cost: { metric: 'reported', unit: 'credits', limit: options.limit ?? 100, max: 1000 } } }),
    policyHash: null,
    policyPath: null,
    spec,
    partitions: plan.totalPartitions,
    limits,
    overrides: {},
    planHash: 'sha256:plan',
    request: {},
    startSignature: null,
    priority: { key: null, fairnessKey: null, fairnessWeight: null },
    now: 0,
  });
  if (!admission.admitted) throw new Error(admission.message);
  // A continue-as-new carries its governance; a start is judged.
  coordinator.govern(carry?.governance ? Governance.fromJSON(carry.governance) : admission.governance);
  if (!carry) coordinator.releaseInitial();
  return coordinator;
}

/** A node's report that partitions `from`..`to` (inclusive) are done. */
const report = (node: string, [from, to]: [number, number], spent: Spending, total: Spending): NodeReport => ({
  node,
  done: RangeSet.of([from, to + 1]).toJSON(),
  failures: [],
  stats,
  spent,
  total,
});

describe('cost allowances', () => {
  it('grant what is free of the budget to the nodes with work, never lowering a grant, and free what a node without work did not spend', () => {
    const c = governed();
    expect(c.settingsOf('a').allowance).toEqual({ metric: 'reported', until: 50 });
    expect(c.settingsOf('b').allowance).toEqual({ metric: 'reported', until: 50 });
    // a spent 30 of its 50: the rest stays granted to it (it may act on these settings for a while yet).
    c.onReport(report('a', [0, 2], cost(30), cost(30)));
    expect(c.settingsOf('a').allowance).toEqual({ metric: 'reported', until: 50 });
    expect(c.settingsOf('b').allowance).toEqual({ metric: 'reported', until: 50 });
    // a is done having spent 35: its other 15 go to b, the only node with work.
    c.onReport(report('a', [3, 9], cost(5), cost(35)));
    expect(c.settingsOf('a').allowance).toEqual({ metric: 'reported', until: 35 });
    expect(c.settingsOf('b').allowance).toEqual({ metric: 'reported', until: 65 });
    // A node that spent past its grant (the batches it had running) is granted nothing more.
    c.onReport(report('b', [0, 4], cost(70), cost(70)));
    expect(c.settingsOf('b')).toMatchObject({ paused: true });
  });

  it('go to the nodes that can run, by their concurrency: a node without a share of the concurrency is granted nothing (the model test finds the wait for ever this once caused)', () => {
    // One slot for the backfill: a runs, b waits with nothing granted.
    const c = governed({}, undefined, { rate: null, concurrency: 1 });
    const [runs, waits] = c.settingsOf('a').concurrency === 1 ? ['a', 'b'] : ['b', 'a'];
    expect(c.settingsOf(runs!)).toMatchObject({ concurrency: 1, allowance: { until: 100 } });
    expect(c.settingsOf(waits!)).toMatchObject({ concurrency: 0, allowance: { until: 0 } });
  });

  it('a restarted node workflow counts from 0 and keeps what its grant had left', () => {
    const c = governed();
    expect(c.settingsOf('a').allowance?.until).toBe(50);
    c.onReport(report('a', [0, 2], cost(30), cost(30)));
    const restarted = c.restartNode('a', 3)!;
    expect(restarted.settings.allowance).toEqual({ metric: 'reported', until: 20 });
  });

  it("after a canary's approval, the node workflows started again count from 0 and keep what their grants had left; runs from before kept the whole cap", () => {
    for (const countsAfresh of [true, false]) {
      const c = governed({ canary: { countsAfresh } });
      // The slice: one partition a node, 40 credits for a's, 10 for b's.
      const slice = (id: string) => [...c.takeInitial(id)][0]!;
      const [a, b] = [slice('a'), slice('b')];
      c.onReport(report('a', [a, a], cost(40), cost(40)));
      c.onReport(report('b', [b, b], cost(10), cost(10)));
      c.finishAll();
      c.settleCanary();
      c.beginCanaryDecision('approve', { by: 'ana@host', reason: 'diff reviewed' }, 1);
      c.canary!.end(true);
      c.liftCanary();
      const [again, againB] = [c.startAgain('a'), c.startAgain('b')];
      // 50 credits are left of 100; the new node workflows count from 0. Before, their grants
      // were in the old workflows' totals (40 + 25, 10 + 25): together the whole cap again.
      expect([again.settings.allowance?.until, againB.settings.allowance?.until]).toEqual(countsAfresh ? [25, 25] : [65, 35]);
    }
  });

  it('stay while the budget holds the backfill (a node may not have heard of the hold yet), and grow after set-budget', () => {
    const c = governed();
    expect(c.settingsOf('a').allowance?.until).toBe(50);
    c.onReport(report('a', [0, 4], cost(60), cost(60)));
    c.onReport(report('b', [0, 3], cost(45), cost(45)));
    expect(c.settingsOf('a')).toMatchObject({ paused: true, allowance: { until: 60 } });
    expect(c.settingsOf('b')).toMatchObject({ paused: true, allowance: { until: 50 } });
    c.setBudget({ budget: 'cost', limit: 125 });
    // 125 - 105 spent - 5 b may still spend = 15 free, 7.5 each.
    expect(c.settingsOf('a')).toMatchObject({ paused: false, allowance: { metric: 'reported', until: 67.5 } });
    expect(c.settingsOf('b')).toMatchObject({ paused: false, allowance: { metric: 'reported', until: 57.5 } });
  });

  it('are not given by a parent whose history is from before them (the patch), nor without a cost budget', () => {
    expect(governed({ allowances: false }).settingsOf('a').allowance).toBeUndefined();
    const ungoverned = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { now: () => 0, allowances: true });
    ungoverned.releaseInitial();
    expect(ungoverned.settingsOf('a').allowance).toBeUndefined();
  });

  it('cross continue-as-new with the totals the nodes reported; a resumed run counts afresh', () => {
    const c = governed();
    c.onReport(report('a', [0, 2], cost(30), cost(30)));
    const carry = c.toCarry();
    expect(carry.spentTotals).toEqual({ a: cost(30) });
    expect(governed({}, carry).settingsOf('a').allowance).toEqual(c.settingsOf('a').allowance);
    const resumed = resumeCarry({ ...carry, runKey: 'r', childrenRunning: true, startedAt: 0, runs: 1 });
    expect(resumed.spentTotals).toEqual({});
  });

  it('a report whose total is not four counts is refused, and changes nothing', () => {
    const c = governed();
    const before = c.settingsOf('a');
    for (const total of [{ ...noSpending(), reported: -1 }, { reported: 5 }, 'lots']) {
      const error = thrownBackfillError(() => c.onReport({ ...report('a', [0, 0], cost(1), cost(1)), total: total as Spending }));
      expect(error.message).toMatch(/not a node report of this backfill: spent is not four counts/);
    }
    expect(c.settingsOf('a')).toEqual(before);
  });

  it('a node control carrying a junk allowance is refused where it arrives', () => {
    const settings = { seq: 2, rate: null, burst: 1, concurrency: 2, paused: false };
    const a = spec.nodes.find((n) => n.id === 'a')!;
    expect(parseNodeControl({ settings: { ...settings, allowance: { metric: 'reported', until: 10 } } }, a, 10).settings?.allowance).toEqual({ metric: 'reported', until: 10 });
    for (const allowance of [{ metric: 'dollars', until: 10 }, { metric: 'reported', until: -1 }, { metric: 'reported' }, { metric: 'rows', until: 1, extra: true }]) {
      expect(() => parseNodeControl({ settings: { ...settings, allowance } }, a, 10)).toThrow(/not a control of node a: settings\.allowance/);
    }
  });
});
