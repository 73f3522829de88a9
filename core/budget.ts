/**
 * Budget accounting of one backfill: the retry budget (failed partition attempts across the
 * backfill) and the cost budget (partition-seconds, rows written, or a cost the transform
 * reports per partition, such as bytes scanned). The workflow adds what each batch of results
 * cost and asks whether a cap is reached; it then pauses with the reason this class words.
 * `set-budget` raises (or lowers) a cap; what was spent stays, so nothing is recomputed.
 *
 * Pure and plain-JSON (toJSON/fromJSON), to cross continue-as-new.
 */
import type { Budgets, CostMetric } from './policy.ts';

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

/** What one finished partition cost, by the budget's metric. */
export type PartitionCost = { startedAt: number; finishedAt: number; rowCount: number; reported?: number };

export function costOf(metric: CostMetric, partition: PartitionCost): number {
  switch (metric) {
    case 'partitionSeconds':
      return Math.max(0, partition.finishedAt - partition.startedAt) / 1000;
    case 'rows':
      return partition.rowCount;
    case 'reported':
      return partition.reported ?? 0;
  }
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
