/**
 * `plan --estimate --sample N`: which partitions a sample times. N partitions of every node,
 * spread evenly over its partitions in the plan (the middle of each of N equal stretches), so
 * that the first and last days, a quiet weekend or a heavy month-end do not stand for the whole.
 * The sample runs as a staged backfill of the same plan in which every other partition counts as
 * done (the `skip` of `--only-changed`), so it writes nothing anyone reads, and is discarded.
 */
import { BackfillError } from './errors.ts';
import type { Plan } from './plan.ts';
import { RangeSet, type RangesJSON } from './ranges.ts';

/** `n` indices of `size` partitions, evenly spread and ascending: the middle of each of `n` equal stretches. */
export function spreadIndices(size: number, n: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(Math.floor(((k + 0.5) * size) / n));
  return out;
}

/** The largest sample a plan allows: its smallest node's partition count. */
export function maxSample(plan: Plan): number {
  return Math.min(...plan.nodes.map((n) => n.partitions.size));
}

/**
 * Parses `--sample`'s value as it arrives (a string from the command line, or a number from a
 * caller of the library) and checks it against the plan: a whole number above 0, and no more
 * than the partitions of any node.
 */
export function parseSample(value: unknown, plan: Plan): number {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) {
    throw new BackfillError('invalid_argument', `--sample must be a whole number of partitions per node above 0 (got '${String(value)}'): for example --sample 3`, 'sample');
  }
  const small = plan.nodes.filter((node) => node.partitions.size < n);
  if (small.length > 0) {
    const named = small
      .slice(0, 3)
      .map((node) => `${node.id} has ${node.partitions.size}`)
      .join(', ');
    throw new BackfillError(
      'invalid_argument',
      `--sample ${n} asks for more partitions per node than the plan has: ${named}${small.length > 3 ? ` (and ${small.length - 3} more)` : ''}; use --sample ${maxSample(plan)} or less, or a wider --from/--to`,
      'sample',
    );
  }
  return n;
}

export type SampleSelection = {
  perNode: number;
  /** The sampled partitions' keys by node, in the plan's order. */
  partitions: Record<string, string[]>;
  /** Every other partition by node, as the start's `skip`: counted as done, never run. */
  skip: Record<string, RangesJSON>;
};

/** The partitions a sample of `n` per node runs, and what the staged backfill skips. `n` must have passed `parseSample`. */
export function sampleSelection(plan: Plan, n: number): SampleSelection {
  const partitions: Record<string, string[]> = {};
  const skip: Record<string, RangesJSON> = {};
  for (const node of plan.nodes) {
    const picked = spreadIndices(node.partitions.size, n);
    partitions[node.id] = picked.map((i) => node.partitions.key(i));
    const rest = RangeSet.of([0, node.partitions.size]);
    for (const i of picked) rest.delete(i);
    skip[node.id] = rest.toJSON();
  }
  return { perNode: n, partitions, skip };
}
