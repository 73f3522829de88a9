import { describe, expect, it } from 'vitest';
import { BudgetLedger, costOf, noSpending, spend, type BudgetLedgerJSON } from '../../core/budget.ts';
import type { Budgets } from '../../core/policy.ts';
import type { PartitionResult } from '../../core/protocol.ts';

const budgets = (over: Partial<Budgets> = {}): Budgets => ({
  retries: { limit: 3, max: 10 },
  cost: { metric: 'partitionSeconds', unit: 'partition-seconds', limit: 10, max: null },
  ...over,
});

/** A finished partition as runPartitions returns it (its reported cost in `cost`). */
const partition = (seconds: number, rowCount = 0, cost?: number): PartitionResult => ({
  index: 0,
  key: '2024-01-01',
  version: 1,
  rowCount,
  checksum: 'c',
  startedAt: 1000,
  finishedAt: 1000 + seconds * 1000,
  ...(cost !== undefined ? { cost } : {}),
});

describe('costOf', () => {
  it('measures a partition by each metric', () => {
    expect(costOf('partitionSeconds', partition(2.5, 7))).toBe(2.5);
    expect(costOf('rows', partition(2.5, 7))).toBe(7);
    expect(costOf('reported', partition(2.5, 7, 1e9))).toBe(1e9);
    expect(costOf('reported', partition(2.5, 7))).toBe(0);
    // What a node adds up for its report: the cost each partition's result carries.
    expect(spend(noSpending(), [partition(1, 2, 5), partition(2, 3, 7.5), partition(1, 0)], 1)).toEqual({ failedAttempts: 1, partitionSeconds: 4, rows: 5, reported: 12.5 });
    // A clock that went backwards costs nothing rather than a refund.
    expect(costOf('partitionSeconds', { startedAt: 2000, finishedAt: 1000, rowCount: 0 })).toBe(0);
  });
});

describe('BudgetLedger', () => {
  it('counts failed attempts and says when the retry budget is spent, and by how much', () => {
    const ledger = BudgetLedger.start(budgets());
    ledger.addFailures(2);
    expect(ledger.status('retries')).toEqual({ budget: 'retries', limit: 3, used: 2, remaining: 1, reached: false, over: 0, unit: 'failed attempts' });
    expect(ledger.reached()).toEqual([]);
    expect(ledger.pauseReason()).toBeNull();
    ledger.addFailures(2);
    expect(ledger.status('retries')).toMatchObject({ used: 4, remaining: 0, reached: true, over: 1 });
    expect(ledger.pauseReason()).toBe('the retries budget is spent: 4 of 3 failed attempts, 1 over; raise it with backfill set-budget <id> --retries <more> to go on');
  });

  it('reaches a cap exactly at the limit', () => {
    const ledger = BudgetLedger.start(budgets());
    ledger.addFailures(3);
    expect(ledger.status('retries')).toMatchObject({ reached: true, over: 0 });
    expect(ledger.pauseReason()).toBe('the retries budget is spent: 3 of 3 failed attempts; raise it with backfill set-budget <id> --retries <more> to go on');
  });

  it('adds what each batch cost by the cost metric', () => {
    const ledger = BudgetLedger.start(budgets());
    ledger.addPartitions([partition(4), partition(5)]);
    expect(ledger.status('cost')).toMatchObject({ used: 9, remaining: 1, reached: false });
    ledger.addPartitions([partition(2.5)]);
    expect(ledger.status('cost')).toEqual({ budget: 'cost', limit: 10, used: 11.5, remaining: 0, reached: true, over: 1.5, unit: 'partition-seconds' });
    const rows = BudgetLedger.start(budgets({ cost: { metric: 'rows', unit: 'rows', limit: 100, max: null } }));
    rows.addPartitions([partition(1, 60), partition(1, 60)]);
    expect(rows.pauseReason()).toBe('the cost budget is spent: 120 of 100 rows, 20 over; raise it with backfill set-budget <id> --cost <more> to go on');
    const bytes = BudgetLedger.start(budgets({ cost: { metric: 'reported', unit: 'bytes scanned', limit: 1e9, max: null } }));
    bytes.addPartitions([partition(1, 0, 6e8), partition(1, 0, 6e8)]);
    expect(bytes.status('cost')).toMatchObject({ used: 1.2e9, reached: true, unit: 'bytes scanned' });
  });

  it('names every spent budget at once', () => {
    const ledger = BudgetLedger.start(budgets());
    ledger.addFailures(5);
    ledger.addPartitions([partition(20)]);
    expect(ledger.reached().map((s) => s.budget)).toEqual(['retries', 'cost']);
    expect(ledger.pauseReason()).toMatch(/^the retries budget is spent: .*; the cost budget is spent: 20 of 10 partition-seconds, 10 over/);
  });

  it('set-budget raises a cap and the backfill goes on with what it spent', () => {
    const ledger = BudgetLedger.start(budgets());
    ledger.addPartitions([partition(12)]);
    expect(ledger.reached()).toHaveLength(1);
    ledger.setLimit('cost', 20);
    expect(ledger.status('cost')).toMatchObject({ limit: 20, used: 12, remaining: 8, reached: false, over: 0 });
    expect(ledger.pauseReason()).toBeNull();
    // Lowering below what was spent stops it again.
    ledger.setLimit('cost', 5);
    expect(ledger.status('cost')).toMatchObject({ reached: true, over: 7 });
    ledger.addFailures(3);
    ledger.setLimit('retries', 4);
    expect(ledger.status('retries')).toMatchObject({ reached: false, remaining: 1 });
  });

  it('refuses caps that are not budgets', () => {
    const ledger = BudgetLedger.start(budgets());
    expect(() => ledger.setLimit('retries', 2.5)).toThrow(/whole number/);
    expect(() => ledger.setLimit('cost', 0)).toThrow(/above 0/);
    expect(() => ledger.setLimit('cost', Number.NaN)).toThrow(/above 0/);
    expect(() => ledger.setLimit('cost', Infinity)).toThrow(/above 0/);
    expect(() => ledger.addFailures(-1)).toThrow(/0 or more/);
    const none = BudgetLedger.start({ retries: null, cost: null });
    expect(() => none.setLimit('cost', 10)).toThrow(/no cost budget/);
  });

  it('without caps, counts and never stops', () => {
    const ledger = BudgetLedger.start({ retries: null, cost: null });
    ledger.addFailures(1000);
    ledger.addPartitions([partition(1e6)]);
    expect(ledger.status('retries')).toEqual({ budget: 'retries', limit: null, used: 1000, remaining: null, reached: false, over: 0, unit: 'failed attempts' });
    expect(ledger.status('cost')).toBeNull();
    expect(ledger.reached()).toEqual([]);
    // A retry budget may be set on a running backfill that had none.
    ledger.setLimit('retries', 500);
    expect(ledger.pauseReason()).toMatch(/1,000 of 500 failed attempts, 500 over/);
  });

  it('round-trips through JSON (continue-as-new) and the copy is independent', () => {
    const ledger = BudgetLedger.start(budgets());
    ledger.addFailures(2);
    ledger.addPartitions([partition(3)]);
    const json: BudgetLedgerJSON = JSON.parse(JSON.stringify(ledger.toJSON()));
    expect(json).toEqual({ retries: { limit: 3, used: 2 }, cost: { metric: 'partitionSeconds', unit: 'partition-seconds', limit: 10, used: 3 } });
    const again = BudgetLedger.fromJSON(json);
    expect(again.toJSON()).toEqual(ledger.toJSON());
    again.addFailures(1);
    expect(json.retries.used).toBe(2);
    expect(ledger.status('retries')!.used).toBe(2);
    expect(again.status('retries')!.used).toBe(3);
  });
});
