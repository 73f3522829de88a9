/**
 * Budget accounting of one backfill: the retry budget (failed partition attempts across the
 * backfill) and the cost budget (partition-seconds, rows written, or a cost the transform
 * reports per partition, such as bytes scanned). The workflow adds what each batch of results
 * cost and asks whether a cap is reached; it then pauses with the reason this class words.
 * `set-budget` raises (or lowers) a cap; what was spent stays, so nothing is recomputed.
 *
 * Pure and plain-JSON (toJSON/fromJSON), to cross continue-as-new.
 */
import { z } from 'zod';
import { BackfillError } from './errors.ts';
import type { Budgets, CostMetric } from './policy.ts';
import type { PartitionResult } from './protocol.ts';

export type BudgetKind = 'retries' | 'cost';

export type BudgetLedgerJSON = {
  retries: { limit: number | null; used: number };
  cost: { metric: CostMetric; unit: string; limit: number | null; used: number } | null;
};

export type BudgetStatus = {
  budget: BudgetKind;
  limit: number | null;
  used: number;
  /** What is left before the cap (0 once reached); null without a cap. */
  remaining: number | null;
  reached: boolean;
  /** How far past the cap the spending went (a batch in flight lands after the cap). */
  over: number;
  unit: string;
};

/**
 * What one finished partition cost, by the budget's metric: the fields of the activity's
 * result that measure it (`cost` is what the transform reported through ctx.reportCost).
 */
export type PartitionCost = Pick<PartitionResult, 'startedAt' | 'finishedAt' | 'rowCount' | 'cost'>;

export function costOf(metric: CostMetric, partition: PartitionCost): number {
  switch (metric) {
    case 'partitionSeconds':
      return Math.max(0, partition.finishedAt - partition.startedAt) / 1000;
    case 'rows':
      return partition.rowCount;
    case 'reported':
      return partition.cost ?? 0;
  }
}

/**
 * What partitions cost since a node's last report, in every metric a cost budget may use, and
 * the partition attempts that failed (each attempt Temporal retried counts). Node reports carry
 * it to the parent, which adds it to its `BudgetLedger`.
 */
export const SpendingSchema = z.object({
  failedAttempts: z.number().min(0),
  partitionSeconds: z.number().min(0),
  rows: z.number().min(0),
  reported: z.number().min(0),
});
export type Spending = z.infer<typeof SpendingSchema>;

export function noSpending(): Spending {
  return { failedAttempts: 0, partitionSeconds: 0, rows: 0, reported: 0 };
}

export function isNoSpending(s: Spending): boolean {
  return s.failedAttempts === 0 && s.partitionSeconds === 0 && s.rows === 0 && s.reported === 0;
}

/** `into` plus what `partitions` cost and `failedAttempts` more failed attempts (in place; returns it). */
export function spend(into: Spending, partitions: readonly PartitionCost[], failedAttempts = 0): Spending {
  into.failedAttempts += failedAttempts;
  for (const p of partitions) {
    into.partitionSeconds += costOf('partitionSeconds', p);
    into.rows += costOf('rows', p);
    into.reported += costOf('reported', p);
  }
  return into;
}

/** A report's spending as it arrives (anyone may send a report with Temporal's CLI): four counts of 0 or more. */
export function parseSpending(value: unknown): Spending {
  const parsed = SpendingSchema.safeParse(value);
  if (!parsed.success) {
    throw new BackfillError('invalid_argument', 'not a node report of this backfill: spent is not four counts (failedAttempts, partitionSeconds, rows, reported)', 'report');
  }
  return parsed.data;
}

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });

export class BudgetLedger {
  private constructor(private readonly state: BudgetLedgerJSON) {}

  /** A new ledger with the budgets a start was given (checkStart's `budgets`). */
  static start(budgets: Budgets): BudgetLedger {
    return new BudgetLedger({
      retries: { limit: budgets.retries?.limit ?? null, used: 0 },
      cost: budgets.cost ? { metric: budgets.cost.metric, unit: budgets.cost.unit, limit: budgets.cost.limit, used: 0 } : null,
    });
  }

  static fromJSON(json: BudgetLedgerJSON): BudgetLedger {
    return new BudgetLedger({ retries: { ...json.retries }, cost: json.cost ? { ...json.cost } : null });
  }

  toJSON(): BudgetLedgerJSON {
    return { retries: { ...this.state.retries }, cost: this.state.cost ? { ...this.state.cost } : null };
  }

  /** Failed partition attempts (each retry that failed counts once). */
  addFailures(attempts: number): void {
    if (!(attempts >= 0)) throw new RangeError(`failed attempts must be 0 or more (got ${attempts})`);
    this.state.retries.used += attempts;
  }

  /** What a node report says was spent: its failed attempts and its partitions' cost by the cost budget's metric. */
  addSpending(spent: Spending): void {
    this.state.retries.used += spent.failedAttempts;
    if (this.state.cost) this.state.cost.used += spent[this.state.cost.metric];
  }

  /** What finished partitions cost, by the cost budget's metric (nothing without a cost budget). */
  addPartitions(partitions: readonly PartitionCost[]): void {
    const cost = this.state.cost;
    if (!cost) return;
    for (const p of partitions) cost.used += costOf(cost.metric, p);
  }

  /**
   * Sets a cap (`set-budget`): higher lets a paused backfill go on from where it is, lower
   * may stop it at once. A cost cap needs a cost budget (the policy's metric).
   */
  setLimit(budget: BudgetKind, limit: number): void {
    if (!(limit > 0) || !Number.isFinite(limit)) throw new RangeError(`a ${budget} budget must be a number above 0 (got ${limit})`);
    if (budget === 'retries') {
      if (!Number.isInteger(limit)) throw new RangeError(`a retries budget counts failed attempts: a whole number (got ${limit})`);
      this.state.retries.limit = limit;
      return;
    }
    if (!this.state.cost) throw new RangeError('this backfill has no cost budget (the policy defines no budgets.cost)');
    this.state.cost.limit = limit;
  }

  status(budget: BudgetKind): BudgetStatus | null {
    const entry = budget === 'retries' ? this.state.retries : this.state.cost;
    if (!entry) return null;
    const { limit, used } = entry;
    const unit = budget === 'retries' ? 'failed attempts' : (entry as NonNullable<BudgetLedgerJSON['cost']>).unit;
    return {
      budget,
      limit,
      used,
      remaining: limit === null ? null : Math.max(0, limit - used),
      reached: limit !== null && used >= limit,
      over: limit === null ? 0 : Math.max(0, used - limit),
      unit,
    };
  }

  /** The budgets whose cap is reached: the backfill pauses while any is. */
  reached(): BudgetStatus[] {
    return (['retries', 'cost'] as const).map((b) => this.status(b)).filter((s): s is BudgetStatus => s !== null && s.reached);
  }

  /** Why the backfill pauses, for status and the audit trail; null while no cap is reached. */
  pauseReason(): string | null {
    const reached = this.reached();
    if (reached.length === 0) return null;
    return reached
      .map((s) => {
        const over = s.over > 0 ? `, ${fmt(s.over)} over` : '';
        const command = `backfill set-budget <id> --${s.budget} <more>`;
        return `the ${s.budget} budget is spent: ${fmt(s.used)} of ${fmt(s.limit!)} ${s.unit}${over}; raise it with ${command} to go on`;
      })
      .join('; ');
  }
}
