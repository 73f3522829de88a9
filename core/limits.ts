/**
 * Rates and concurrency: one zod schema for the limits an operator sets (in the spec, on the
 * command line and through the workflows' updates), and how a backfill-wide limit is shared
 * among the nodes that have work.
 */
import { z } from 'zod';
import { BackfillError } from './errors.ts';

/** Partitions started per second; null means unlimited. */
const RATE_MESSAGE = 'must be a number of partitions per second above 0';
export const RateSchema = z.number({ message: RATE_MESSAGE }).positive({ message: RATE_MESSAGE }).nullable();
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
  return typeof value === 'number' || value === undefined ? String(value) : (JSON.stringify(value) ?? String(value));
}

/** `value` parsed by `schema`; `given` is what the operator wrote, named in the error. */
function check<T>(schema: z.ZodType<T>, value: unknown, given: unknown, what: string, field: string, unlimited: boolean): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new BackfillError('invalid_argument', `${what} ${parsed.error.issues[0]!.message}${unlimited ? ", or 'unlimited'" : ''} (got ${shown(given)})`, field);
}

/** A rate for the backfill or one node, as an operator gives it: a number, or null/'unlimited'. */
export function parseRate(value: unknown): number | null {
  const rate = value === 'unlimited' || value === 'none' ? null : typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return check(RateSchema, rate, value, 'rate', 'rate', true);
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

export type Claim = { id: string; cap: number | null; active: boolean };

/**
 * Shares a backfill-wide limit among the active nodes, each capped by its own limit
 * (water-filling: a node that needs less than an equal share leaves the rest to others).
 * Inactive nodes are left out of the result. `total` null means no shared limit: each node
 * keeps its own cap. With `integral`, shares are whole numbers (for concurrency).
 */
export function shareLimit(total: number | null, claims: readonly Claim[], integral = false): Map<string, number | null> {
  const out = new Map<string, number | null>();
  const active = claims.filter((c) => c.active);
  if (total === null) {
    for (const c of active) out.set(c.id, c.cap);
    return out;
  }
  const byCap = [...active].sort((a, b) => (a.cap ?? Infinity) - (b.cap ?? Infinity));
  let remaining = total;
  byCap.forEach((claim, i) => {
    const fair = remaining / (byCap.length - i);
    const share = claim.cap === null ? fair : Math.min(claim.cap, fair);
    out.set(claim.id, share);
    remaining -= share;
  });
  if (!integral) return out;
  // Round down, then hand the leftover units out in claim order.
  let leftover = total;
  for (const c of active) {
    const share = Math.floor(out.get(c.id)!);
    out.set(c.id, share);
    leftover -= share;
  }
  for (const c of active) {
    if (leftover < 1) break;
    const share = out.get(c.id)!;
    if (c.cap === null || share < c.cap) {
      out.set(c.id, share + 1);
      leftover--;
    }
  }
  return out;
}

export function minRate(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

export type NodeShare = { rate: number | null; concurrency: number };

/**
 * Each node's share of the backfill-wide limits. Nodes with work in hands share them; an idle
 * node keeps its previous share (it gets a fresh one with its next ready partitions), or
 * starts with its own limits within the backfill's.
 */
export function nodeShares(
  limits: Limits,
  nodes: ReadonlyArray<{ id: string; own: NodeLimits; active: boolean; previous?: NodeShare }>,
): Map<string, NodeShare> {
  const rates = shareLimit(limits.rate, nodes.map((n) => ({ id: n.id, cap: n.own.rate, active: n.active })));
  const slots = shareLimit(limits.concurrency, nodes.map((n) => ({ id: n.id, cap: n.own.concurrency, active: n.active })), true);
  const out = new Map<string, NodeShare>();
  for (const node of nodes) {
    const rate = rates.has(node.id) ? rates.get(node.id)! : node.previous ? node.previous.rate : minRate(node.own.rate, limits.rate);
    const concurrency = slots.has(node.id)
      ? (slots.get(node.id) as number)
      : node.previous
        ? node.previous.concurrency
        : Math.min(node.own.concurrency, limits.concurrency ?? Infinity);
    out.set(node.id, { rate, concurrency });
  }
  return out;
}
