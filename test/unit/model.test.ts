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
 * CI runs BACKFILL_MODEL_RUNS (default 10,000) cases from a fixed seed (BACKFILL_MODEL_SEED); a
 * failure prints the seed, the path and the shrunk counterexample, which replays with
 * `fc.assert(..., { seed, path })`. Runs above 50,000 go in chunks of 50,000, each from the
 * next seed: `BACKFILL_MODEL_RUNS=1000000 npx vitest run test/unit/model.test.ts`.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { resolveSpec } from '../../core/spec.ts';
import { actionArbitrary, canaryArbitrary, governanceArbitrary, holds, specArbitrary } from './model-world.ts';

const RUNS = Number(process.env.BACKFILL_MODEL_RUNS ?? 10_000);
const SEED = Number(process.env.BACKFILL_MODEL_SEED ?? 20_240_301);

/** Large runs go in chunks of this many cases, each from the next seed, with a line of progress after each. */
const CHUNK = 50_000;

describe('model: the coordinator, the scheduler and readiness under any interleaving', () => {
  it(`${RUNS} random backfills (seed ${SEED}) keep every invariant and end once the faults stop`, () => {
    process.stdout.write(`model test: ${RUNS} runs, seed ${SEED}\n`);
    const started = Date.now();
    for (let done = 0, chunk = 0; done < RUNS; chunk++) {
      const runs = Math.min(CHUNK, RUNS - done);
      const seed = SEED + chunk;
      fc.assert(
        fc.property(specArbitrary, governanceArbitrary, fc.array(actionArbitrary, { maxLength: 120 }), fc.boolean(), canaryArbitrary, (spec, governance, actions, staged, canary) => {
          holds(spec, actions, governance, staged, canary);
        }),
        { numRuns: runs, seed },
      );
      done += runs;
      process.stdout.write(`model test: ${done} of ${RUNS} runs passed (last seed ${seed}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
  // About 20 ms a run on a quiet 2-core machine; a loaded one (CI with integration files beside it) has taken six times that.
  }, Math.max(1_500_000, RUNS * 150));

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
