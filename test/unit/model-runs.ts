/**
 * The model test's random runs (see model.test.ts): `runs` cases from `seed`, in chunks of
 * 50,000, each from the next seed, with a line of progress after each.
 */
import fc from 'fast-check';
import { it } from 'vitest';
import { actionArbitrary, canaryArbitrary, governanceArbitrary, holds, specArbitrary } from './model-world.ts';

/** Large runs go in chunks of this many cases, each from the next seed. */
const CHUNK = 50_000;

/** CI's cases, split between test files so that the two cores share them; BACKFILL_MODEL_RUNS and BACKFILL_MODEL_SEED choose others. */
export const MODEL_RUNS = Number(process.env.BACKFILL_MODEL_RUNS ?? 10_000);
export const MODEL_SEED = Number(process.env.BACKFILL_MODEL_SEED ?? 20_240_301);

/** A test of `runs` random backfills from `seed`: every invariant holds, and each ends once the faults stop. */
export function randomBackfills(runs: number, seed: number): void {
  it(`${runs} random backfills (seed ${seed}) keep every invariant and end once the faults stop`, () => {
    process.stdout.write(`model test: ${runs} runs, seed ${seed}\n`);
    const started = Date.now();
    for (let done = 0, chunk = 0; done < runs; chunk++) {
      const n = Math.min(CHUNK, runs - done);
      fc.assert(
        fc.property(specArbitrary, governanceArbitrary, fc.array(actionArbitrary, { maxLength: 120 }), fc.boolean(), canaryArbitrary, (spec, governance, actions, staged, canary) => {
          holds(spec, actions, governance, staged, canary);
        }),
        { numRuns: n, seed: seed + chunk },
      );
      done += n;
      process.stdout.write(`model test: ${done} of ${runs} runs passed (last seed ${seed + chunk}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
    // About 20 ms a run on a quiet 2-core machine; a loaded one (CI with integration files beside it) has taken six times that.
  }, Math.max(1_500_000, runs * 150));
}

/** The first file's share of `runs`; the second file runs the rest. */
export const firstHalf = (runs: number) => Math.ceil(runs / 2);

/** The second half's first seed: after every chunk of the first half's. */
export const secondHalfSeed = (runs: number, seed: number) => seed + Math.max(1, Math.ceil(firstHalf(runs) / CHUNK));
