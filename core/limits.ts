/**
 * Rates and concurrency: one zod schema for the limits an operator sets (in the spec, on the
 * command line and through the workflows' updates). How a backfill-wide limit is shared among
 * the nodes that have work is in shares.ts (without zod, so the command line's ETA loads none).
 */
import { z } from 'zod';
import { BackfillError } from './errors.ts';
import { valueText } from './value-text.ts';

/** Partitions started per second; null means unlimited. */
const RATE_MESSAGE = 'must be a number of partitions per second above 0';
const rate = z.number({ message: RATE_MESSAGE }).positive({ message: RATE_MESSAGE });
export const RateSchema = rate.nullable();

/**
 * The slowest rate a spec or an operator may set: one partition a day. A slower one is a pause by
 * another name, and its next token a timer of years (1e-9/s waits 31 years).
 */
export const MIN_RATE = 1 / 86_400;
const SLOWEST = `one partition a day (${MIN_RATE.toPrecision(3)}/s), the slowest a backfill takes`;

/** A rate a spec writes (a node's, the backfill's, a run window's): RateSchema's, no slower than MIN_RATE. */
export const SpecRateSchema = rate.min(MIN_RATE, { message: `is slower than ${SLOWEST}: raise it, or hold partitions back with a run window (windows:)` });
const wholeNumber = (max: number) => {
  const message = `must be a whole number from 1 to ${max}`;
  return z.number({ message }).int({ message }).min(1, { message }).max(max, { message });
};
/** Partitions of one node running at once. */
export const NodeConcurrencySchema = wholeNumber(1000);
/** Partitions of the whole backfill running at once; null means no backfill-wide cap. */
export const BackfillConcurrencySchema = wholeNumber(10_000).nullable();

export const LimitsSchema = z.strictObject({ rate: RateSchema, concurrency: BackfillConcurrencySchema });
export type Limits = z.infer<typeof LimitsSchema>;
export type NodeLimits = { rate: number | null; concurrency: number };

/** A value as the operator wrote it, for a message (`JSON.stringify` would show NaN as null). */
function shown(value: unknown): string {
  return valueText(value);
}

/** `value` parsed by `schema`; `given` is what the operator wrote, named in the error. */
function check<T>(schema: z.ZodType<T>, value: unknown, given: unknown, what: string, field: string, unlimited: boolean): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new BackfillError('invalid_argument', `${what} ${parsed.error.issues[0]!.message}${unlimited ? ", or 'unlimited'" : ''} (got ${shown(given)})`, field);
}

/** A rate as an operator writes it: 'unlimited' (or 'none') is null, a numeric string its number. */
function rateValue(value: unknown): unknown {
  return value === 'unlimited' || value === 'none' ? null : typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
}

/** A rate for the backfill or one node, as an operator gives it: a number, or null/'unlimited'. */
export function parseRate(value: unknown): number | null {
  return check(RateSchema, rateValue(value), value, 'rate', 'rate', true);
}

/** A rate an operator sets (set-rate, --rate): parseRate's, and no slower than MIN_RATE. */
export function parseOperatorRate(value: unknown): number | null {
  const rate = parseRate(value);
  if (rate !== null && rate < MIN_RATE) {
    throw new BackfillError('invalid_argument', `rate ${shown(value)} is slower than ${SLOWEST}: to stop starting partitions, pause it`, 'rate');
  }
  return rate;
}

/** The server counts a task queue's cap in activities started, not partitions: a batch of partitions is one activity. */
const QUEUE_RATE_MESSAGE = 'must be a number of activities per second above 0';
const QueueRateSchema = z.number({ message: QUEUE_RATE_MESSAGE }).positive({ message: QUEUE_RATE_MESSAGE }).nullable();

/** A task queue's server-side cap (set-queue-rate), as an operator gives it: a number, or null/'unlimited'. */
export function parseQueueRate(value: unknown): number | null {
  return check(QueueRateSchema, rateValue(value), value, 'the queue rate', 'rate', true);
}

/** A concurrency for the backfill (null: no cap) or one node (a whole number from 1 to 1000). */
export function parseConcurrency(value: unknown, node?: string | null): number | null {
  const n = value === 'unlimited' ? null : typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (node !== undefined && node !== null) {
    if (n === null) throw new BackfillError('invalid_argument', `a node needs a concurrency: a whole number from 1 to 1000 (got ${shown(value)})`, 'concurrency');
    return check(NodeConcurrencySchema, n, value, 'concurrency', 'concurrency', false);
  }
  return check(BackfillConcurrencySchema, n, value, 'concurrency', 'concurrency', true);
}

/**
 * The backfill-wide limits an operator gives on the command line (`--rate`, `--concurrency` of
 * start, resume and retry-failed), parsed: only those given, each a number or 'unlimited' (null).
 */
export function limitsAsked(flags: { rate?: string | undefined; concurrency?: string | undefined }): Partial<Limits> {
  return {
    ...(flags.rate !== undefined ? { rate: parseOperatorRate(flags.rate) } : {}),
    ...(flags.concurrency !== undefined ? { concurrency: parseConcurrency(flags.concurrency) } : {}),
  };
}

export { minRate, nodeShares, shareLimit, type Claim, type NodeShare } from './shares.ts';
