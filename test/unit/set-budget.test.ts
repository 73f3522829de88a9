import { describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { applyBudgets, type BudgetChange } from '../../client/commands/set-budget.ts';

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

  it('passes a first refusal on as it is (nothing applied), and returns the last reply', async () => {
    await expect(applyBudgets([COST, RETRIES], refuseCost)).rejects.toThrow(/^the policy has no budgets.cost/);
    await expect(applyBudgets([RETRIES], refuseCost)).resolves.toBe('state after retries');
  });
});
