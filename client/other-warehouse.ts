/**
 * A reader given another warehouse than the one the workers wrote to: the workflow says the
 * backfill published partitions, and the ledger there has no row of it. `report` and `rollback
 * --dry-run` refuse rather than answer "nothing" from the wrong place.
 */
import { BackfillError } from '../core/errors.ts';
import type { Plan } from '../core/plan.ts';
import type { BackfillInput } from '../core/protocol.ts';
import { RangeSet } from '../core/ranges.ts';

/** Partitions the run counts done that `--only-changed` kept as they were: they published nothing. */
export function keptPartitions(plan: Plan, skip: BackfillInput['skip']): number {
  return plan.nodes.reduce((sum, node) => sum + RangeSet.fromJSON(skip?.[node.id]).slice(0, node.partitions.size).size, 0);
}

/** `invalid_argument`: `published` partitions of the backfill, none of them in the ledger at `location`. */
export function otherWarehouse(backfillId: string, published: number, location: string): BackfillError {
  return new BackfillError(
    'invalid_argument',
    `backfill '${backfillId}' published ${published.toLocaleString('en-US')} partitions, but the ledger of ${location} has no row of it: this is not the warehouse its workers wrote to. ` +
      "Give --warehouse (or $BACKFILL_WAREHOUSE) the workers' warehouse; nothing was written",
    'warehouse',
  );
}
