/** The second half of the model test's random runs (see model.test.ts), in a file of its own so that it runs beside the first. */
import { describe } from 'vitest';
import { MODEL_RUNS, MODEL_SEED, firstHalf, randomBackfills, secondHalfSeed } from './model-runs.ts';

describe('model: the coordinator, the scheduler and readiness under any interleaving (second half)', () => {
  if (MODEL_RUNS - firstHalf(MODEL_RUNS) > 0) randomBackfills(MODEL_RUNS - firstHalf(MODEL_RUNS), secondHalfSeed(MODEL_RUNS, MODEL_SEED));
});
