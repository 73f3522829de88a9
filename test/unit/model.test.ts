/**
 * Model-based test of the coordinator, the scheduler and readiness (see model-world.ts): random
 * plans, with or without a policy (an approval, a retry budget, a run window), and random
 * interleavings of everything that can happen to a backfill, with invariants checked after every
 * step, then a fault-free drain that must end the backfill. Half the backfills are staged
 * (`start --stage`): readers see none of their versions until a publish commits, then all of
 * them; a decision is taken only while the backfill waits for one. A third have a canary: nothing
 * beyond its slice is released or written until its approval (a failure in it stops the backfill
 * with nothing further written), readers see none of it before, and `auto` goes on only within bounds.
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
import { holds } from './model-world.ts';

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
});
