/** A staged backfill's life after its partitions (core/staged.ts), and the coordinator's part in it. */
import { describe, expect, it } from 'vitest';
import { BackfillCoordinator, resumeCarry } from '../../core/coordinator.ts';
import { BackfillError } from '../../core/errors.ts';
import { addFailures } from '../../core/failures.ts';
import { expandPlan } from '../../core/plan.ts';
import type { BackfillCarry, NodeReport, NodeStats } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import type { ReadinessJSON } from '../../core/readiness.ts';
import { resolveSpec } from '../../core/spec.ts';
import { Governance } from '../../core/governance.ts';
import { parsePolicy } from '../../core/policy.ts';
import { StagedGate, resumedStaged, type StagedPhase } from '../../core/staged.ts';

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

  it("refuses a decision by 'policy' or 'canary.auto', which the audit trail shows as the backfill's own", () => {
    const gate = new StagedGate();
    gate.settle();
    for (const by of ['policy', ' POLICY', 'canary.auto']) {
      expect(codeOf(() => gate.begin('publish', { by }, 1)), by).toBe('invalid_argument');
      expect(codeOf(() => gate.parse('discard', { by }))).toBe('invalid_argument');
    }
    expect(gate.current).toBe('awaiting');
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

describe('resumedStaged: the gate a resumed run starts with', () => {
  const decision = { action: 'publish' as const, by: 'ana@host', reason: null, at: 1 };

  it('a run that ended before its decision computes again, then waits for one of its own', () => {
    for (const phase of ['computing', 'awaiting', 'publishing', 'discarding'] as const) {
      expect(resumedStaged({ phase, decision }, false)).toEqual({ phase: 'computing' });
      expect(resumedStaged({ phase, decision }, true)).toEqual({ phase: 'computing' });
    }
  });

  it('a published one computes again when partitions run again (they are staged and need a publish); else it stays published', () => {
    expect(resumedStaged({ phase: 'published', decision }, true)).toEqual({ phase: 'computing' });
    expect(resumedStaged({ phase: 'published', decision }, false)).toEqual({ phase: 'published', decision });
  });

  it('a discarded one stays discarded (the client refuses to resume it)', () => {
    const phase: StagedPhase = 'discarded';
    expect(resumedStaged({ phase, decision: { ...decision, action: 'discard' } }, true).phase).toBe('discarded');
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

  it('settled and waiting for its decision, it refuses a new spec and retry-failed (finishing), saying it waits for publish or discard and how to fix', () => {
    const c = new BackfillCoordinator(plan, limits, undefined, { stage: true });
    c.finishAll();
    c.staged!.settle();
    const next = structuredClone(spec);
    next.nodes[0]!.params = { fixed: true };
    for (const refused of [() => c.parseSpec(next, spec), () => c.parseRetry()]) {
      let error: unknown;
      try {
        refused();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(BackfillError);
      expect((error as BackfillError).code).toBe('finishing');
      expect((error as BackfillError).message).toMatch(/waits for publish or discard/);
      expect((error as BackfillError).message).not.toMatch(/is finishing/);
    }
    expect(() => c.parseSpec(next, spec)).toThrow(/--rerun/);
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

  describe('resumed after it ended (resume, retry-failed)', () => {
    const three = expandPlan(resolveSpec({ name: 's', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' }, nodes: [{ id: 'a', transform: 'noop' }] }));
    const stats: NodeStats = { running: 0, rate: null, concurrency: 4, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null };
    const report = (done: RangeSet, failed?: RangeSet): NodeReport => ({ node: 'a', done: done.toJSON(), failures: failed ? addFailures([], 'boom', 'Error', failed) : [], stats });
    /** What the ended run left (its result, or the carry query): through JSON, as the client reads it. */
    const ended = (c: BackfillCoordinator): BackfillCarry => JSON.parse(JSON.stringify({ ...c.toCarry(), runKey: 'r', childrenRunning: false, startedAt: 0, runs: 1 }));
    /** A first run: two days staged, the third failed, settled and waiting for its decision. */
    const settledWithAFailure = () => {
      const first = new BackfillCoordinator(three, limits, undefined, { stage: true });
      first.releaseInitial();
      first.onReport(report(RangeSet.of([0, 2]), RangeSet.of([2, 3])));
      first.finishAll();
      first.staged!.settle();
      return first;
    };

    it('published with a failure, then retried: the partition run again is staged, waited for and published, not left staged under a completed backfill', () => {
      const first = settledWithAFailure();
      first.beginStagedDecision('publish', ok, 1);
      first.staged!.end(true);
      expect(first.endState).toBe('completed_with_failures');
      for (const node of [undefined, 'a']) {
        const resumed = new BackfillCoordinator(three, limits, resumeCarry(ended(first), node), {});
        resumed.releaseInitial();
        expect(resumed.stagesWrites).toBe(true);
        expect(resumed.staged!.current).toBe('computing');
        expect(resumed.endState).toBe('staged');
        resumed.onReport(report(RangeSet.of([2, 3])));
        expect(resumed.settled).toBe(true);
        // The workflow then settles the gate and waits for a decision: the retried version is published by one.
        expect(resumed.staged!.decided).toBe(false);
        resumed.finishAll();
        resumed.staged!.settle();
        resumed.beginStagedDecision('publish', ok, 2);
        resumed.staged!.end(true);
        expect(resumed.endState).toBe('completed');
      }
    });

    it('published with nothing failed, then resumed: nothing runs again, so it stays published and ends as it did', () => {
      const first = new BackfillCoordinator(three, limits, undefined, { stage: true });
      first.releaseInitial();
      first.onReport(report(RangeSet.of([0, 3])));
      first.finishAll();
      first.staged!.settle();
      first.beginStagedDecision('publish', ok, 1);
      first.staged!.end(true);
      const carry = ended(first);
      const resumed = new BackfillCoordinator(three, limits, resumeCarry(carry), {});
      resumed.releaseInitial();
      expect(resumed.settled).toBe(true);
      expect(resumed.staged!.current).toBe('published');
      expect(resumed.endState).toBe('completed');
    });

    it('cancelled while awaiting its decision, then retried: it computes again, and no publish is taken while the retried partition is in hands', () => {
      const first = settledWithAFailure();
      expect(first.staged!.current).toBe('awaiting');
      const resumed = new BackfillCoordinator(three, limits, resumeCarry(ended(first)), {});
      resumed.releaseInitial();
      expect(resumed.hasInHands('a')).toBe(true);
      // status says running, not staged, and a publish would have left the retried version out of it for good.
      expect(resumed.staged!.current).toBe('computing');
      expect(codeOf(() => resumed.parseStagedDecision('publish', ok))).toBe('not_ready');
      expect(codeOf(() => resumed.beginStagedDecision('discard', ok, 2))).toBe('not_ready');
      resumed.onReport(report(RangeSet.of([2, 3])));
      resumed.finishAll();
      resumed.staged!.settle();
      resumed.beginStagedDecision('publish', ok, 3);
      resumed.staged!.end(true);
      expect(resumed.endState).toBe('completed');
    });

    // Before, it ran: the partitions were written as staged versions, the published gate let it end at once, completed, and nothing published them.
    it('a hand-made carry that says published while partitions are still to compute is refused, naming the node and the fix', () => {
      const first = settledWithAFailure();
      first.beginStagedDecision('publish', ok, 1);
      first.staged!.end(true);
      const carry = ended(first);
      const forgedReadiness: ReadinessJSON[] = [{}, { a: { done: carry.readiness.a!.done } }, { a: { done: RangeSet.of([0, 1]).toJSON(), failed: '', inHands: RangeSet.of([1, 3]).toJSON() } }];
      for (const readiness of forgedReadiness) {
        const forged = new BackfillCoordinator(three, limits, { ...carry, readiness }, {});
        expect(forged.carriedDecisionProblem).toMatch(/^the carry says the staged versions were published, but node 'a' has \d partitions? still to compute: .* would end completed with them left over/);
        let refused: unknown;
        try {
          forged.refuseCarriedDecision();
        } catch (error) {
          refused = error;
        }
        expect(refused).toBeInstanceOf(BackfillError);
        expect(refused).toMatchObject({ code: 'invalid_argument', path: 'carry', message: expect.stringMatching(/backfill resume or retry-failed, or compute it again with backfill start <spec> --id <id> --rerun/) });
      }
      expect(new BackfillCoordinator(three, limits, { ...carry, readiness: {} }, {}).carriedDecisionProblem).toMatch(/has 3 partitions still to compute/);
      // Discarded the same way: it would end discarded with versions no discard dropped.
      const discarded = { ...carry, staged: { phase: 'discarded' as const }, readiness: {} };
      expect(new BackfillCoordinator(three, limits, discarded, {}).carriedDecisionProblem).toMatch(/were discarded, but node 'a' has 3 partitions .* would end discarded/);
    });

    it('the carries a backfill makes itself are consistent: a decided one has nothing left to compute, one still deciding may', () => {
      const first = settledWithAFailure();
      expect(new BackfillCoordinator(three, limits, ended(first), {}).carriedDecisionProblem).toBeNull();
      first.beginStagedDecision('publish', ok, 1);
      first.staged!.end(true);
      // Published with its failure kept: the failed partition is no partition to compute.
      expect(new BackfillCoordinator(three, limits, ended(first), {}).carriedDecisionProblem).toBeNull();
      for (const node of [undefined, 'a']) expect(new BackfillCoordinator(three, limits, resumeCarry(ended(first), node), {}).carriedDecisionProblem).toBeNull();
      // A fresh start has no carry to doubt.
      expect(new BackfillCoordinator(three, limits, undefined, { stage: true }).carriedDecisionProblem).toBeNull();
    });

    it('a carry that says awaiting while partitions are in hands (a start made by hand) takes no decision until they settle', () => {
      const first = settledWithAFailure();
      const carry = ended(first);
      const resumed = new BackfillCoordinator(three, limits, { ...carry, readiness: { a: { done: carry.readiness.a!.done } } }, {});
      resumed.releaseInitial();
      expect(resumed.staged!.current).toBe('awaiting');
      expect(resumed.hasInHands('a')).toBe(true);
      const error = (() => {
        try {
          resumed.parseStagedDecision('publish', ok);
        } catch (e) {
          return e as BackfillError;
        }
        throw new Error('taken');
      })();
      expect(error.code).toBe('not_ready');
      expect(error.message).toMatch(/partitions of a are still being computed: wait until status says staged, then publish/);
    });
  });
});
