/** A staged backfill's life after its partitions (core/staged.ts), and the coordinator's part in it. */
import { describe, expect, it } from 'vitest';
import { BackfillCoordinator } from '../../core/coordinator.ts';
import { BackfillError } from '../../core/errors.ts';
import { expandPlan } from '../../core/plan.ts';
import { resolveSpec } from '../../core/spec.ts';
import { Governance } from '../../core/governance.ts';
import { parsePolicy } from '../../core/policy.ts';
import { StagedGate } from '../../core/staged.ts';

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof BackfillError) return error.code;
    throw error;
  }
  throw new Error('did not throw');
}

const ok = { by: 'ana@host', reason: 'diff reviewed' };

describe('StagedGate', () => {
  it('computes, then waits, then publishes once', () => {
    const gate = new StagedGate();
    expect(gate.current).toBe('computing');
    expect(codeOf(() => gate.parse('publish', ok))).toBe('not_ready');
    gate.settle();
    expect(gate.current).toBe('awaiting');
    expect(gate.parse('publish', ok)).toEqual({ by: 'ana@host', reason: 'diff reviewed' });
    expect(gate.begin('publish', ok, 42)).toEqual({ action: 'publish', by: 'ana@host', reason: 'diff reviewed', at: 42 });
    expect(gate.current).toBe('publishing');
    expect(codeOf(() => gate.parse('discard', ok))).toBe('already_decided');
    expect(codeOf(() => gate.begin('publish', ok, 43))).toBe('already_decided');
    gate.end(true);
    expect(gate.current).toBe('published');
    expect(gate.decided).toBe(true);
    expect(codeOf(() => gate.parse('discard', ok))).toBe('already_decided');
    expect(gate.lastDecision).toMatchObject({ action: 'publish', by: 'ana@host' });
  });

  it('a refused publish (a dataset leased to another run) waits again; a discard then ends it discarded', () => {
    const gate = new StagedGate();
    gate.settle();
    gate.begin('publish', ok, 1);
    gate.end(false);
    expect(gate.current).toBe('awaiting');
    gate.begin('discard', { by: 'bo' }, 2);
    gate.end(true);
    expect(gate.current).toBe('discarded');
    expect(gate.lastDecision).toEqual({ action: 'discard', by: 'bo', reason: null, at: 2 });
  });

  it('parses what anyone may send: the identity is required, nothing else is taken', () => {
    const gate = new StagedGate();
    gate.settle();
    for (const bad of [undefined, null, 'publish', [ok], {}, { by: '' }, { by: '  ' }, { by: 7 }, { by: 'x', reason: 3 }, { by: 'x', reason: 'r'.repeat(501) }, { by: 'x', force: true }]) {
      expect(codeOf(() => gate.parse('publish', bad))).toBe('invalid_argument');
    }
    expect(gate.current).toBe('awaiting');
    expect(gate.parse('publish', { by: ' ana ', reason: null })).toEqual({ by: 'ana', reason: null });
  });

  it('round-trips its carry; a run that ended mid-decision waits again (publish and discard are idempotent)', () => {
    const gate = new StagedGate();
    gate.settle();
    gate.begin('publish', ok, 5);
    const carried = JSON.parse(JSON.stringify(gate.toCarry()));
    const next = new StagedGate(carried);
    expect(next.current).toBe('awaiting');
    expect(next.lastDecision).toEqual({ action: 'publish', by: 'ana@host', reason: 'diff reviewed', at: 5 });
    expect(new StagedGate({ phase: 'computing' }).current).toBe('computing');
    expect(new StagedGate({ phase: 'discarded' }).decided).toBe(true);
  });

  it('a carry with a phase it does not know (a hand-made start) starts from computing, without its decision', () => {
    const junk = new StagedGate({ phase: 'published!' as never, decision: { action: 'publish', by: 'mallory', reason: null, at: 1 } });
    expect(junk.current).toBe('computing');
    expect(junk.lastDecision).toBeUndefined();
    expect(junk.decided).toBe(false);
  });
});

describe('BackfillCoordinator: staged', () => {
  const spec = resolveSpec({ name: 's', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop' }] });
  const plan = expandPlan(spec);
  const limits = { rate: null, concurrency: null };

  it('a backfill not started with --stage refuses publish and discard, and ends completed', () => {
    const c = new BackfillCoordinator(plan, limits);
    expect(c.staged).toBeNull();
    expect(codeOf(() => c.parseStagedDecision('publish', ok))).toBe('not_staged');
    expect(codeOf(() => c.beginStagedDecision('discard', ok, 0))).toBe('not_staged');
    expect(c.endState).toBe('completed');
    expect(c.toCarry()).not.toHaveProperty('staged');
  });

  it('a staged one says staged until decided, then completed or discarded; its gate is carried', () => {
    const c = new BackfillCoordinator(plan, limits, undefined, { stage: true });
    expect(c.endState).toBe('staged');
    c.staged!.settle();
    c.parseStagedDecision('publish', ok);
    const carried = JSON.parse(JSON.stringify({ ...c.toCarry(), runKey: 'r', childrenRunning: true, startedAt: 0, runs: 1 }));
    const next = new BackfillCoordinator(plan, limits, carried);
    expect(next.staged?.current).toBe('awaiting');
    next.beginStagedDecision('discard', ok, 9);
    next.staged!.end(true);
    expect(next.endState).toBe('discarded');
    // The stage option counts only at the first start: a carry without a gate stays unstaged.
    const { staged: _gate, ...unstaged } = carried;
    expect(new BackfillCoordinator(plan, limits, unstaged, { stage: true }).staged).toBeNull();
  });

  it('under a policy, publish and discard meet its reasons rule and are kept in the audit trail with who and why', () => {
    const verdict = Governance.admit({
      backfillId: 's',
      policy: parsePolicy({ version: 1, reasons: { required: ['publish', 'discard'], minLength: 5 } }),
      policyHash: 'sha256:policy',
      policyPath: '/etc/backfill.policy.yaml',
      spec,
      partitions: plan.totalPartitions,
      limits,
      overrides: {},
      planHash: 'sha256:plan',
      request: { identity: 'ana@host' },
      startSignature: null,
      priority: { key: null, fairnessKey: null, fairnessWeight: null },
      now: 0,
    });
    if (!verdict.admitted) throw new Error(verdict.message);
    const c = new BackfillCoordinator(plan, limits, undefined, { stage: true, now: () => 7 });
    c.govern(verdict.governance, { limits: verdict.limits, nodeRates: verdict.nodeRates });
    c.staged!.settle();
    expect(codeOf(() => c.parseStagedDecision('publish', { by: 'ana@host' }))).toBe('policy_violation');
    expect(codeOf(() => c.beginStagedDecision('discard', { by: 'ana@host', reason: 'no' }, 7))).toBe('policy_violation');
    expect(c.staged!.current).toBe('awaiting');
    expect(c.takeAudit()).toEqual([]);
    c.beginStagedDecision('publish', ok, 7);
    expect(c.takeAudit()).toEqual([expect.objectContaining({ action: 'publish', identity: 'ana@host', reason: 'diff reviewed', outcome: 'applied', at: 7 })]);
  });
});

