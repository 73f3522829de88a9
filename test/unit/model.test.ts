/**
 * Model-based test of the coordinator, the scheduler and readiness (see model-world.ts): random
 * plans, with or without a policy (an approval, a retry budget, a run window), and random
 * interleavings of everything that can happen to a backfill, with invariants checked after every
 * step, then a fault-free drain that must end the backfill. Half the backfills are staged
 * (`start --stage`): readers see none of their versions until a publish commits, then all of
 * them; a decision is taken only while the backfill waits for one. A third have a canary: nothing
 * beyond its slice is released or written until its approval (a failure in it stops the backfill
 * with nothing further written), readers see none of it before, and `auto` goes on only within bounds.
 * Bursts of control signals the backfill must refuse (model-signals.ts: malformed payloads,
 * reserved identities, what the policy refuses) come between the other steps: none changes the
 * backfill, each is counted across continue-as-new and resumes, their audit entries follow the
 * schedule of core/refused-signals.ts, the trail keeps its bounds and drops them before operators'
 * entries, and a valid control after them applies. Among them, approvals whose signature check
 * (made up) refuses them: a copy of one refused for good is refused again with its code and not
 * checked again in the run (core/refused-approvals.ts), one that time may lift is, and a new run
 * (continued as new, resumed) checks each again.
 *
 * CI runs BACKFILL_MODEL_RUNS (default 10,000) cases from a fixed seed (BACKFILL_MODEL_SEED): the
 * first half here, the second (from the seed after the last chunk's) in model-second-half.test.ts,
 * so that the two cores share them. A failure prints the seed, the path and the shrunk
 * counterexample, which replays with `fc.assert(..., { seed, path })`. Runs above 50,000 go in
 * chunks of 50,000, each from the next seed:
 * `BACKFILL_MODEL_RUNS=1000000 npx vitest run test/unit/model.test.ts test/unit/model-second-half.test.ts`.
 */
import { describe, it } from 'vitest';
import { resolveSpec } from '../../core/spec.ts';
import { MODEL_RUNS, MODEL_SEED, firstHalf, randomBackfills } from './model-runs.ts';
import { holds, type Action } from './model-world.ts';

/** A staged plan of two days: the first run stages one, fails the other, settles and waits for its decision. */
const twoDays = resolveSpec({ name: 'model', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'n0', transform: 'noop', concurrency: 2, batchSize: 1 }] });
const oneRound = (outcome: 'complete' | 'fail'): Action[] => [
  { kind: 'nodeStep', node: 0 },
  { kind: 'activity', pick: 0, outcome },
  { kind: 'report', node: 0 },
  { kind: 'deliverReport', pick: 0, duplicate: false },
  { kind: 'parent' },
  { kind: 'deliverControl', pick: 0 },
];
const stagedWithAFailure: Action[] = [
  ...oneRound('fail'),
  ...oneRound('complete'),
  { kind: 'parent' },
  { kind: 'deliverControl', pick: 0 },
  { kind: 'nodeStep', node: 0 },
  { kind: 'parent' },
  { kind: 'parent' },
];

describe('model: the coordinator, the scheduler and readiness under any interleaving', () => {
  randomBackfills(firstHalf(MODEL_RUNS), MODEL_SEED);

  // Cases the model found, kept as they were shrunk.
  it('a partition published by a node workflow lost before its report, then cancel and resume: the resumed run looks before running it again', () => {
    const spec = resolveSpec({ name: 'model', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' }, nodes: [{ id: 'n0', transform: 'noop', concurrency: 1 }] });
    holds(spec, [
      { kind: 'nodeStep', node: 0 },
      { kind: 'activity', pick: 0, outcome: 'complete' },
      { kind: 'terminate', node: 0 },
      { kind: 'cancel', publishRunning: false },
      { kind: 'resume', node: null },
    ]);
  });

  it("a control with the longest reason, a refused signal, the same again: the refused signal's entry, the newest, does not push an operator's out of the trail", () => {
    const fourHours = resolveSpec({ name: 'model', partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-01T04' }, nodes: [{ id: 'n0', transform: 'noop', concurrency: 1, batchSize: 1 }] });
    const governance = { approval: false, retries: null, window: false, cost: null, rules: false };
    holds(fourHours, [{ kind: 'refusedSignals', seed: 43_865_499, count: 1, valid: 0 }, { kind: 'refusedSignals', seed: 548_274_819, count: 1, valid: 0 }], governance);
  });

  // Signalled approvals whose checks refuse them (model-signals.ts): from seed 6, three a burst, each refused for good.
  const approvals = (seed: number, count = 3): Action => ({ kind: 'refusedSignals', seed, count, valid: null });
  const awaitsApproval = { approval: true, retries: null, window: false, cost: null, rules: false };
  const oneDay = resolveSpec({ name: 'model', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' }, nodes: [{ id: 'n0', transform: 'noop' }] });

  it('approvals refused for good, sent again: not checked again in the run; checked again once it continued as new, and once resumed', () => {
    holds(oneDay, [approvals(6), approvals(6), { kind: 'parentContinueAsNew' }, approvals(6), approvals(6), { kind: 'cancel', publishRunning: false }, { kind: 'resume', node: null }, approvals(6)], awaitsApproval);
  });

  it('a run remembers the newest refused approvals only: a copy of one pushed out by later ones is checked again', () => {
    // A burst from a seed a multiple of 50 sends fresh approvals: ten of them refuse more than a run remembers. The first burst again is checked again; the last, not.
    const fresh = Array.from({ length: 10 }, (_, i) => approvals(50 * i, 48));
    holds(oneDay, [...fresh, approvals(0, 48), approvals(450, 48)], awaitsApproval);
  });

  // Cases a review found (read-a), kept in the same form.
  it('a staged backfill published with a failure, then resumed: the partition run again is staged and published by a decision of its own, not left staged', () => {
    holds(twoDays, [...stagedWithAFailure, { kind: 'decide', action: 'publish', junk: false }, { kind: 'decisionLands', ok: true }, { kind: 'parent' }, { kind: 'resume', node: null }], null, true);
  });

  it('a staged backfill cancelled while awaiting its decision, then resumed: no publish is taken while the retried partition is in hands', () => {
    holds(twoDays, [...stagedWithAFailure, { kind: 'cancel', publishRunning: false }, { kind: 'resume', node: null }, { kind: 'decide', action: 'publish', junk: false }, { kind: 'decisionLands', ok: true }], null, true);
  });
});
