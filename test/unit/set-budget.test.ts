import { describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { applyBudgets, budgetsOutcome, type BudgetChange } from '../../client/commands/set-budget.ts';
import type { ControlState } from '../../core/coordinator.ts';

const RETRIES: BudgetChange = { budget: 'retries', limit: 500 };
const COST: BudgetChange = { budget: 'cost', limit: 2e12 };
const refuseCost = async (change: BudgetChange): Promise<string> => {
  if (change.budget === 'cost') throw new BackfillError('policy_violation', 'the policy has no budgets.cost: a cost budget cannot be set', 'budget');
  return `state after ${change.budget}`;
};

describe('set-budget --retries N --cost X (one update each)', () => {
  it('says which change already applied when the next is refused', async () => {
    const error = await applyBudgets([RETRIES, COST], refuseCost).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackfillError);
    expect(error).toMatchObject({ code: 'policy_violation', path: 'budget' });
    expect((error as Error).message).toBe('retries budget set to 500 (applied, and stays so); cost refused: the policy has no budgets.cost: a cost budget cannot be set');
  });

  it('passes a first refusal on as it is (nothing applied), and returns every reply', async () => {
    await expect(applyBudgets([COST, RETRIES], refuseCost)).rejects.toThrow(/^the policy has no budgets.cost/);
    await expect(applyBudgets([RETRIES], refuseCost)).resolves.toEqual(['state after retries']);
    await expect(applyBudgets([RETRIES, COST], async (c) => c.budget)).resolves.toEqual(['retries', 'cost']);
  });
});

describe('set-budget to the cap in force', () => {
  const state: ControlState = { paused: false, rate: null, concurrency: null, nodes: [], holds: [] };
  const alice = { since: Date.parse('2025-03-02T09:14:05Z'), by: 'alice (declared)', reason: 'finance approved' };
  const bob = { since: Date.parse('2025-03-02T10:00:00Z'), by: 'bob (declared)', reason: null };

  it('says the budget was already at that cap, since when, by whom and why, and --json says unchanged', () => {
    const outcome = budgetsOutcome('q1', [COST], [{ ...state, unchanged: alice }]);
    expect(outcome.text).toBe('q1: cost budget was already 2,000,000,000,000 (since 2025-03-02T09:14:05.000Z, by alice (declared): finance approved): nothing changed');
    expect(outcome.json).toMatchObject({ backfillId: 'q1', unchanged: alice, budgets: { cost: { limit: 2e12, unchanged: alice } } });
  });

  it('says a change is one, and --json has no unchanged', () => {
    const outcome = budgetsOutcome('q1', [RETRIES], [state]);
    expect(outcome.text).toBe('q1: retries budget is now 500');
    expect(outcome.json).toEqual({ backfillId: 'q1', ...state, budgets: { retries: { limit: 500 } } });
  });

  it('with both budgets, names the one that changed nothing; unchanged only when neither changed, as of the newer setting, by whom only when one control set both', () => {
    const mixed = budgetsOutcome('q1', [RETRIES, COST], [{ ...state, unchanged: alice }, state]);
    expect(mixed.text).toBe('q1: retries budget was already 500 (since 2025-03-02T09:14:05.000Z, by alice (declared): finance approved): nothing changed, cost budget is now 2,000,000,000,000');
    expect(mixed.json).not.toHaveProperty('unchanged');
    expect(mixed.json).toMatchObject({ budgets: { retries: { limit: 500, unchanged: alice }, cost: { limit: 2e12 } } });
    // Set by two people: since the newer, by no one in particular (each budget's own says who).
    expect(budgetsOutcome('q1', [RETRIES, COST], [{ ...state, unchanged: bob }, { ...state, unchanged: alice }]).json).toMatchObject({ unchanged: { since: bob.since, by: null, reason: null } });
    expect(budgetsOutcome('q1', [RETRIES, COST], [{ ...state, unchanged: bob }, { ...state, unchanged: bob }]).json).toMatchObject({ unchanged: bob });
    const untold = { since: null, by: null, reason: null };
    expect(budgetsOutcome('q1', [RETRIES, COST], [{ ...state, unchanged: untold }, { ...state, unchanged: alice }]).json).toMatchObject({ unchanged: untold });
  });
});
