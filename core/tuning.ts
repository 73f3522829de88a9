/**
 * A start's `tuning` (BackfillInput.tuning), checked where it arrives: the client sends it for
 * tests and benchmarks, but anyone who may start workflows can write it by hand, and the
 * workflows read it as timers, timeouts and history limits. A report interval that is no
 * duration failed every workflow task of the node workflows (the backfill never ended); a history
 * limit of 0 made every run continue as new at once, for ever. Bounds are wide: any value a test
 * or a benchmark has a use for passes.
 */
import { z } from 'zod';
import type { Tuning } from './protocol.ts';
import { shapeProblem } from './zod-errors.ts';

const HOUR_MS = 3_600_000;
const ms = (min: number, max: number) => z.number().int().min(min).max(max);

const TuningSchema = z.strictObject({
  reportIntervalMs: ms(10, HOUR_MS).optional(),
  /** Below a few dozen events a run cannot even start its node workflows before it hands over. */
  historyLimit: ms(20, 50_000).optional(),
  probeIntervalMs: ms(100, 24 * HOUR_MS).optional(),
  maxNodeRestarts: ms(0, 100).optional(),
  drainMs: ms(0, HOUR_MS).optional(),
  maxDeferrals: ms(1, 10_000).optional(),
  deferralBackoffMs: ms(0, HOUR_MS).optional(),
}) satisfies z.ZodType<Partial<Tuning>>;

/** What is wrong with a start's tuning (`tuning.historyLimit must be ...`), or null. */
export function tuningProblem(tuning: unknown): string | null {
  return tuning === undefined ? null : shapeProblem(TuningSchema, tuning, ['tuning']);
}

/**
 * A node workflow's tuning (NodeInput.tuning): what its backfill sends (the start's, over
 * DEFAULT_TUNING), so every field it reads without a default of its own is there. A node
 * workflow started by hand (Temporal's CLI) with tuning out of bounds failed every workflow task,
 * for ever, as the backfill's did.
 */
// Not strict: a backfill started before its tuning was checked (`tuning-checked`) sends its node workflows what it was
// given, keys of other releases included; the node reads only its own.
const NodeTuningSchema = z.object(TuningSchema.shape).required({ reportIntervalMs: true, historyLimit: true, probeIntervalMs: true });

/** What is wrong with a node workflow's tuning (`tuning.reportIntervalMs must be ...`), or null. */
export function nodeTuningProblem(tuning: unknown): string | null {
  return shapeProblem(NodeTuningSchema, tuning, ['tuning']);
}
