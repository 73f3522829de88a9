import { expect } from 'vitest';
import { BackfillError } from '../../core/errors.ts';

/** The BackfillError `run` throws (fails the test when it returns or throws something else). */
export function thrownBackfillError(run: () => unknown): BackfillError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(BackfillError);
    return error as BackfillError;
  }
  throw new Error('expected a BackfillError');
}
