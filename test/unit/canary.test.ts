/** A canary backfill (core/canary.ts): its slice, its gate, the coordinator's part in it, and the model's kept cases. */
import { describe, expect, it } from 'vitest';
import { CANARY_AUTO_IDENTITY } from '../../core/audit.ts';
import { CanaryGate, canaryScope, outsideBounds, parseCanary, startCanary, type CanaryDiff } from '../../core/canary.ts';
import { BackfillCoordinator } from '../../core/coordinator.ts';
import { addFailures } from '../../core/failures.ts';
import { Governance } from '../../core/governance.ts';
import { parsePolicy } from '../../core/policy.ts';
import { expandPlan } from '../../core/plan.ts';
import type { NodeReport, NodeStats } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';
import { thrownBackfillError } from './backfill-error.ts';
import { World } from './model-world.ts';
import { backfillCurrentDetails, canaryDetails } from '../../core/details.ts';
import { renderCanary } from '../../client/render.ts';
import { printable } from '../../client/printable.ts';

const days = { grain: 'day' as const, start: '2024-01-01', end: '2024-01-11' };
const spec = (nodes: SpecInput['nodes'], extra: Partial<SpecInput> = {}) => resolveSpec({ name: 'c', partitions: days, defaults: { concurrency: 4 }, nodes, ...extra });
const chain = spec([
  { id: 'raw', transform: 'noop' },
  { id: 'daily', transform: 'noop', dependsOn: [{ node: 'raw', mapping: { lag: { from: -2, to: 0 } } }] },
  { id: 'total', transform: 'noop', dependsOn: [{ node: 'daily', mapping: 'identity' }] },
]);
const plan = expandPlan(chain);
const indices = (set: RangeSet | undefined) => [...(set ?? new RangeSet())];

const stats: NodeStats = { running: 0, rate: null, concurrency: 4, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null };
const report = (node: string, done: RangeSet, failed?: RangeSet): NodeReport => ({ node, done: done.toJSON(), failures: failed ? addFailures([], 'check positive failed', 'CheckFailed', failed) : [], stats });
const ok = { by: 'ana@host', reason: 'diff reviewed' };
const counts = { partitions: 2, rowsBefore: 100, rowsAfter: 100, added: 0, removed: 0, changed: 0 };
const diffOf = (node: string, moved: number, rowsBefore = 100): CanaryDiff => {
  const c = { ...counts, rowsBefore, changed: moved };
  return { ...c, nodes: [{ node, ...c }] };
};

describe('canary: the slice', () => {
  it('picks N per node (newest, oldest, spread), then everything they need upstream', () => {
    const newest = canaryScope(plan, parseCanary({ partitions: 2 }));
    expect(indices(newest.get('total'))).toEqual([8, 9]);
    expect(indices(newest.get('daily'))).toEqual([8, 9]);
    // daily's lag -2..0 of 8 and 9: raw 6..9.
    expect(indices(newest.get('raw'))).toEqual([6, 7, 8, 9]);
    const oldest = canaryScope(plan, parseCanary({ partitions: 1, pick: 'oldest' }));
    expect(indices(oldest.get('raw'))).toEqual([0]);
    const spread = canaryScope(plan, parseCanary({ partitions: 3, pick: 'spread' }));
    expect(indices(spread.get('total'))).toEqual([0, 5, 9]);
    expect(indices(canaryScope(plan, parseCanary({ partitions: 1, pick: 'spread' })).get('total'))).toEqual([4]);
  });

  it('a node with fewer partitions than N runs them all; --only-changed keeps what it skips out of the pick', () => {
    expect(indices(canaryScope(plan, parseCanary({ partitions: 50 })).get('total'))).toHaveLength(10);
    const skip = { total: RangeSet.of([8, 10]).toJSON(), daily: RangeSet.of([8, 10]).toJSON(), raw: RangeSet.of([8, 10]).toJSON() };
    expect(indices(canaryScope(plan, parseCanary({ partitions: 2 }), skip).get('total'))).toEqual([6, 7]);
  });

  it('the settings are parsed where they arrive, naming the field and the fix', () => {
    for (const [bad, field] of [
      [{ partitions: 0 }, 'canary.partitions'],
      [{ partitions: 1.5 }, 'canary.partitions'],
      [{ partitions: '3' }, 'canary.partitions'],
      [{ partitions: 5000 }, 'canary.partitions'],
      [{ partitions: 2, pick: 'random' }, 'canary.pick'],
      [{ partitions: 2, auto: { maxRowChange: 5 } }, 'canary.auto.maxRowChange'],
      [{ partitions: 2, auto: { maxRowChange: 'five%' } }, 'canary.auto.maxRowChange'],
      [{ partitions: 2, auto: {} }, 'canary.auto.maxRowChange'],
      [{ partitions: 2, extra: true }, 'canary'],
      [null, 'canary'],
    ] as const) {
      const error = thrownBackfillError(() => parseCanary(bad));
      expect(error.code).toBe('invalid_spec');
      expect(error.path).toBe(field);
    }
    expect(parseCanary({ partitions: 2, auto: { maxRowChange: '2.5%' } })).toEqual({ partitions: 2, pick: 'newest', auto: { maxRowChange: '2.5%' } });
    // In a spec too.
    expect(thrownBackfillError(() => spec([{ id: 'a', transform: 'noop' }], { canary: { partitions: -1 } as never })).path).toBe('canary.partitions');
    expect(spec([{ id: 'a', transform: 'noop' }], { canary: { partitions: 2, pick: 'spread' } }).canary).toEqual({ partitions: 2, pick: 'spread' });
  });

  it("a start's --canary n goes over the spec's pick; with --stage any canary is refused", () => {
    const picked = spec([{ id: 'a', transform: 'noop' }], { canary: { partitions: 2, pick: 'spread' } });
    expect(startCanary(picked, 5, false)).toEqual({ partitions: 5, pick: 'spread' });
    expect(startCanary(picked, undefined, false)).toBeUndefined();
    expect(startCanary(chain, undefined, true)).toBeUndefined();
    for (const [given, partitions] of [[chain, 3], [picked, undefined]] as const) {
      const error = thrownBackfillError(() => startCanary(given, partitions, true));
      expect(error).toMatchObject({ code: 'invalid_argument', path: 'canary' });
      expect(error.message).toMatch(/^--stage and a canary do not go together/);
    }
    expect(thrownBackfillError(() => startCanary(chain, 0, false)).path).toBe('canary.partitions');
  });

  it('auto bounds: every dataset within maxRowChange, and a dataset new to the warehouse is never within', () => {
    expect(outsideBounds(diffOf('a', 5), '5%')).toBeNull();
    expect(outsideBounds(diffOf('a', 6), '5%')).toMatch(/a changes 6% of its rows, above canary.auto.maxRowChange 5%/);
    expect(outsideBounds(diffOf('a', 3, 0), '50%')).toMatch(/all new/);
    expect(outsideBounds(diffOf('a', 0, 0), '0%')).toBeNull();
  });
});

describe('canary: the gate', () => {
  const gate = () => new CanaryGate({ config: parseCanary({ partitions: 1 }), scope: new Map([['a', RangeSet.of([0, 1])]]) }, expandPlan(spec([{ id: 'a', transform: 'noop' }])));

  it('runs, waits, approves once; a refused publish waits again', () => {
    const g = gate();
    expect(thrownBackfillError(() => g.parse('approve', ok)).code).toBe('not_ready');
    g.settle(null);
    expect(g.current).toBe('awaiting');
    expect(g.waiting).toBe(true);
    g.begin('approve', ok, 1);
    expect(thrownBackfillError(() => g.parse('discard', ok)).code).toBe('already_decided');
    g.end(false);
    expect(g.current).toBe('awaiting');
    g.begin('approve', ok, 2);
    g.end(true);
    expect(g.current).toBe('approved');
    expect(g.limiting).toBe(false);
    expect(thrownBackfillError(() => g.parse('approve', ok)).code).toBe('already_decided');
  });

  it('a failure stops it: nothing can approve it', () => {
    const g = gate();
    g.settle('1 partition of the canary failed');
    expect(g.current).toBe('failed');
    expect(g.decided).toBe(true);
    expect(thrownBackfillError(() => g.parse('approve', ok)).message).toMatch(/the canary failed \(1 partition/);
  });

  it('parses what anyone may send: an approval needs who and why; nothing else is taken', () => {
    const g = gate();
    g.settle(null);
    for (const bad of [undefined, null, 'approve', [ok], {}, { by: 'x' }, { by: '', reason: 'r' }, { by: 7, reason: 'r' }, { by: 'x', reason: 3 }, { by: 'x', reason: 'r'.repeat(501) }, { ...ok, force: true }]) {
      expect(thrownBackfillError(() => g.parse('approve', bad)).code).toBe('invalid_argument');
    }
    expect(g.parse('discard', { by: 'bo' })).toEqual({ by: 'bo', reason: null });
    expect(g.current).toBe('awaiting');
  });

  it("no sender decides as the policy or as canary.auto: only the backfill's own auto decision is canary.auto", () => {
    const g = gate();
    g.settle(null);
    for (const by of ['policy', ' Policy ', 'canary.auto', 'CANARY.AUTO']) {
      expect(thrownBackfillError(() => g.parse('approve', { by, reason: 'forged' })).message, by).toMatch(/^by '.+' is reserved/);
      expect(thrownBackfillError(() => g.begin('discard', { by }, 1)).code, by).toBe('invalid_argument');
    }
    expect(g.current).toBe('awaiting');
    expect(g.begin('approve', { by: CANARY_AUTO_IDENTITY, reason: 'within bounds' }, 1, true)).toMatchObject({ by: CANARY_AUTO_IDENTITY, auto: true });
  });

  it('auto goes on only within its bounds, and says why not', () => {
    const g = new CanaryGate({ config: parseCanary({ partitions: 1, auto: { maxRowChange: '5%' } }), scope: new Map() }, expandPlan(spec([{ id: 'a', transform: 'noop' }])));
    g.settle(null);
    expect(g.noteDiff(diffOf('a', 9))).toBe(false);
    expect(g.view().note).toMatch(/canary.auto did not go on: a changes 9%/);
    expect(g.noteDiff(diffOf('a', 4))).toBe(true);
  });

  it('a carry from a run that ended while deciding waits again; one that failed runs its slice again; junk phases start over', () => {
    const p = expandPlan(spec([{ id: 'a', transform: 'noop' }]));
    const config = parseCanary({ partitions: 1 });
    expect(new CanaryGate({ carry: { phase: 'approving', config, scope: { a: '0' } } }, p).current).toBe('awaiting');
    expect(new CanaryGate({ carry: { phase: 'failed', config, scope: { a: '0' }, note: 'x' } }, p).view()).toMatchObject({ phase: 'running', note: null });
    expect(new CanaryGate({ carry: { phase: 'nonsense' as never, config, scope: { a: 'junk' } } }, p).current).toBe('running');
  });
});

describe('canary: the coordinator', () => {
  const start = (options: { governance?: boolean } = {}) => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { canary: parseCanary({ partitions: 1 }) });
    if (options.governance) {
      const policy = parsePolicy({ version: 1, reasons: { required: ['publish', 'discard'], minLength: 5 } });
      const admission = Governance.admit({
        backfillId: 'c', policy, policyHash: 'sha256:p', policyPath: 'p.yaml', spec: chain, partitions: plan.totalPartitions, limits: c.controlState(), overrides: {},
        planHash: 'sha256:plan', request: { identity: 'starter' }, startSignature: null, priority: { key: null, fairnessKey: null, fairnessWeight: null }, now: 0,
      });
      if (!admission.admitted) throw new Error(admission.message);
      c.govern(admission.governance);
    }
    c.releaseInitial();
    return c;
  };
  /** Runs everything released until the slice settles (done, or `fail` of raw failing). */
  const runSlice = (c: BackfillCoordinator, fail?: RangeSet) => {
    for (let round = 0; round < 5; round++) {
      for (const node of plan.nodes) {
        const ready = c.readiness.inHands(node.id);
        if (ready.isEmpty) continue;
        const failed = node.id === 'raw' && fail ? ready.minus(ready.minus(fail)) : new RangeSet();
        c.onReport(report(node.id, ready.minus(failed), failed.isEmpty ? undefined : failed));
      }
    }
    expect(c.settled).toBe(true);
    c.finishAll();
    c.settleCanary();
  };

  it('releases only the slice, stages it, waits, and after the approval releases the rest', () => {
    const c = start();
    expect(c.stagesWrites).toBe(true);
    expect(indices(c.takeInitial('raw'))).toEqual([7, 8, 9]);
    runSlice(c);
    expect(c.canary!.current).toBe('awaiting');
    expect(c.progress('c', 'running', 1).state).toBe('awaiting_canary');
    expect(c.progress('c', 'running', 1).canary).toMatchObject({ phase: 'awaiting', perNode: 1, partitions: 5 });
    for (const node of plan.nodes) expect(c.readiness.done(node.id).size).toBe(node.id === 'raw' ? 3 : 1);
    expect(thrownBackfillError(() => c.parseStagedDecision('publish', ok)).message).toMatch(/canary backfill: backfill approve/);
    c.beginCanaryDecision('approve', ok, 5);
    c.canary!.end(true);
    expect(c.canaryToLift).toBe(true);
    c.liftCanary();
    expect(c.canaryToLift).toBe(false);
    expect(c.stagesWrites).toBe(false);
    expect(c.isClosing).toBe(false);
    expect(indices(c.startAgain('raw').ready)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(indices(c.startAgain('daily').ready)).toEqual([]);
    expect(c.hasOutgoing('raw')).toBe(false);
    c.onReport(report('raw', RangeSet.of([0, 7])));
    expect(indices(c.readiness.inHands('daily'))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(c.endState).toBe('completed');
  });

  it('a failure in the slice stops the backfill: nothing beyond the slice was released, and it ends canary_failed', () => {
    const c = start();
    runSlice(c, RangeSet.of([8, 9]));
    expect(c.canary!.current).toBe('failed');
    expect(c.endState).toBe('canary_failed');
    expect(c.progress('c', 'canary_failed', 1).canary!.note).toMatch(/1 partition of the canary failed \(first: raw: check positive failed\); nothing beyond/);
    for (const node of plan.nodes) {
      const touched = c.readiness.done(node.id).clone().addAll(c.readiness.failed(node.id)).addAll(c.readiness.inHands(node.id));
      expect(touched.minus(c.canary!.scope.get(node.id)!).isEmpty).toBe(true);
    }
    expect(thrownBackfillError(() => c.parseCanaryDecision('approve', ok)).code).toBe('already_decided');
  });

  it("counts only the slice's partitions that run: not the upstream ones --only-changed keeps; what it releases and runs is the same", () => {
    // Only total changed: raw and daily keep every partition, yet the slice needs their 8, 9 and raw 6 … 9.
    const skip = { raw: RangeSet.of([0, 10]).toJSON(), daily: RangeSet.of([0, 10]).toJSON() };
    const canary = parseCanary({ partitions: 2 });
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { canary, skip });
    c.releaseInitial(skip);
    expect(Object.fromEntries([...c.canary!.scope].map(([id, set]) => [id, indices(set)]))).toEqual({ raw: [6, 7, 8, 9], daily: [8, 9], total: [8, 9] });
    expect(indices(c.readiness.inHands('total'))).toEqual([8, 9]);
    expect(indices(c.readiness.inHands('raw'))).toEqual([]);
    expect(c.progress('c', 'running', 1).canary).toMatchObject({ phase: 'running', perNode: 2, partitions: 2 });
    expect(thrownBackfillError(() => c.parseCanaryDecision('approve', ok)).message).toMatch(/still running its 2 partitions/);
    // Across continue-as-new (and into a resumed run, which has no skip of its own).
    const carried = JSON.parse(JSON.stringify({ ...c.toCarry(), runKey: 'r', childrenRunning: true, startedAt: 0, runs: 1 }));
    expect(new BackfillCoordinator(plan, { rate: null, concurrency: null }, carried).progress('c', 'running', 1).canary!.partitions).toBe(2);
    // A carry from before (no kept), or one whose kept is not a range set, counts the whole slice as before.
    const { kept, ...before } = carried.canary;
    expect(kept).toEqual({ raw: RangeSet.of([6, 10]).toJSON(), daily: RangeSet.of([8, 10]).toJSON() });
    expect(new BackfillCoordinator(plan, { rate: null, concurrency: null }, { ...carried, canary: before }).progress('c', 'running', 1).canary!.partitions).toBe(8);
    expect(new BackfillCoordinator(plan, { rate: null, concurrency: null }, { ...carried, canary: { ...before, kept: { raw: 7, daily: 'junk' } } }).canary!.partitions).toBe(8);
    // Without a skip nothing is kept: the whole slice runs, and the carry says nothing more.
    const plain = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { canary });
    expect(plain.canary!.partitions).toBe(8);
    expect(plain.toCarry().canary).not.toHaveProperty('kept');
  });

  it('carries the slice and its phase across continue-as-new', () => {
    const c = start();
    const carried = JSON.parse(JSON.stringify({ ...c.toCarry(), runKey: 'r', childrenRunning: true, startedAt: 0, runs: 1 }));
    const next = new BackfillCoordinator(plan, { rate: null, concurrency: null }, carried);
    expect(next.canary!.current).toBe('running');
    next.onReport(report('raw', RangeSet.of([0, 10])));
    // Only the slice of daily is released, whatever raw reports.
    expect(indices(next.readiness.inHands('daily'))).toEqual([9]);
  });

  it('a carry that says awaiting while partitions of the slice are in hands (a start made by hand) takes no decision until they settle', () => {
    const c = start();
    const carry = JSON.parse(JSON.stringify({ ...c.toCarry(), runKey: 'r', childrenRunning: false, startedAt: 0, runs: 1 }));
    const next = new BackfillCoordinator(plan, { rate: null, concurrency: null }, { ...carry, canary: { ...carry.canary, phase: 'awaiting' } });
    expect(next.canary!.current).toBe('awaiting');
    expect(next.settled).toBe(false);
    // An approval would publish what is staged so far; the rest of the slice, staged later, never would be.
    expect(thrownBackfillError(() => next.parseCanaryDecision('approve', ok)).code).toBe('not_ready');
    expect(thrownBackfillError(() => next.beginCanaryDecision('discard', ok, 1)).message).toMatch(/still being computed: wait until status says awaiting_canary, then discard/);
    expect(next.canary!.current).toBe('awaiting');
  });

  it("a hand-made carry that says the canary was discarded while its slice is still to compute is refused; the rest beyond the slice is not the slice's", () => {
    const c = start();
    runSlice(c);
    c.beginCanaryDecision('discard', { by: 'bo' }, 1);
    c.canary!.end(true);
    const carry = JSON.parse(JSON.stringify({ ...c.toCarry(), runKey: 'r', childrenRunning: false, startedAt: 0, runs: 1 }));
    // As the discard left it: the slice settled, the rest never released.
    expect(new BackfillCoordinator(plan, { rate: null, concurrency: null }, carry).carriedDecisionProblem).toBeNull();
    const forged = new BackfillCoordinator(plan, { rate: null, concurrency: null }, { ...carry, readiness: {} });
    expect(forged.carriedDecisionProblem).toMatch(/^the carry says the canary was discarded, but node '\w+' has \d+ partitions? still to compute: .* would end discarded with them left over/);
    expect(thrownBackfillError(() => forged.refuseCarriedDecision()).code).toBe('invalid_argument');
  });

  it('discard ends it discarded; a backfill without a canary refuses an unsigned approval', () => {
    const c = start();
    runSlice(c);
    c.beginCanaryDecision('discard', { by: 'bo' }, 1);
    c.canary!.end(true);
    expect(c.endState).toBe('discarded');
    const plain = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    expect(thrownBackfillError(() => plain.parseCanaryDecision('approve', ok)).code).toBe('not_canary');
  });

  it('under a policy the approval is judged as a publish (its required reason) and audited apart from policy approvals', () => {
    const c = start({ governance: true });
    runSlice(c);
    c.takeAudit();
    expect(thrownBackfillError(() => c.parseCanaryDecision('discard', { by: 'bo' })).code).toBe('policy_violation');
    c.beginCanaryDecision('approve', ok, 9);
    const [entry] = c.takeAudit();
    expect(entry).toMatchObject({ action: 'publish', identity: 'ana@host', reason: 'diff reviewed', details: { canary: true, auto: false } });
    // The policy's own approval is another gate: this backfill never waited for one.
    expect(c.isAwaitingApproval).toBe(false);
  });
});

describe('canary: what status and the Web UI show', () => {
  it('says it waits, what to do, and the diff per dataset; nothing without a canary', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { canary: parseCanary({ partitions: 1, auto: { maxRowChange: '5%' } }) });
    c.releaseInitial();
    for (const node of plan.nodes) c.onReport(report(node.id, c.readiness.inHands(node.id)));
    for (const node of plan.nodes) c.onReport(report(node.id, c.readiness.inHands(node.id)));
    for (const node of plan.nodes) c.onReport(report(node.id, c.readiness.inHands(node.id)));
    c.finishAll();
    c.settleCanary();
    c.noteCanaryDiff(diffOf('daily', 12));
    const progress = c.progress('shop-1', 'running', 1);
    const details = backfillCurrentDetails(progress);
    expect(details).toMatch(/^\*\*awaiting_canary\*\*/);
    expect(details).toMatch(/\*\*Canary\*\*: the canary waits: 5 partitions \(1 per dataset, newest, and what they need upstream\) staged; backfill approve shop-1 --reason \.\.\. goes on, backfill discard shop-1 drops it · auto within 5%/);
    expect(details).toMatch(/canary.auto did not go on: daily changes 12% of its rows/);
    expect(details).toMatch(/\| daily \| 2 \| 100 \| 100 \| 0 \| 0 \| 12 \| 12% \|/);
    const text = renderCanary(printable(progress)).join('\n');
    expect(text).toMatch(/canary: waits\. 5 partitions .* Approve with 'backfill approve shop-1 --reason "\.\.\."'/);
    expect(text).toMatch(/daily .* 12%/);
    expect(canaryDetails(undefined, 'x')).toEqual([]);
    expect(renderCanary(printable({ ...progress, canary: undefined }))).toEqual([]);
  });
});

describe('canary: kept model cases', () => {
  it('a check fails in the slice: the backfill ends canary_failed having written nothing beyond it', () => {
    const s = resolveSpec({ name: 'model', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' }, nodes: [{ id: 'n0', transform: 'noop' }, { id: 'n1', transform: 'noop', dependsOn: ['n0'] }] });
    const world = new World(s, null, false, { partitions: 1, pick: 'newest' });
    world.apply({ kind: 'nodeStep', node: 0 });
    world.apply({ kind: 'activity', pick: 0, outcome: 'fail' });
    world.check();
    expect(world.drain().state).toBe('canary_failed');
  });

  it('auto within bounds goes on by itself and completes', () => {
    const s = resolveSpec({ name: 'model', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-06' }, nodes: [{ id: 'n0', transform: 'noop' }] });
    // One published version: 1 of 100 rows changed in the model's diff.
    const world = new World(s, null, false, { partitions: 1, pick: 'oldest', auto: { maxRowChange: '5%' } });
    expect(world.drain().state).toBe('completed');
  });
});
