import { describe, expect, it } from 'vitest';
import { RetryBudgetGate, type RetryBudget } from '../../workers/retry-budget.ts';

/** A gate over a budget the test sets, on a clock it moves; counts the questions asked. */
function gate(budget: RetryBudget | null) {
  let now = 0;
  const state = { budget, asked: 0 };
  const g = new RetryBudgetGate(
    async () => {
      state.asked++;
      return state.budget;
    },
    { keepMs: 100, forgetMs: 1000, heldMs: 500, now: () => now },
  );
  return { g, state, at: (ms: number) => (now = ms) };
}

describe('RetryBudgetGate', () => {
  it('asks nothing and holds nothing on a first attempt while it knows nothing of the backfill', async () => {
    const { g, state } = gate({ used: 10, limit: 3 });
    expect(await g.holds('b', 'w/1', 1)).toBe(false);
    expect(state.asked).toBe(0);
  });

  it("holds a retry once the workflow's count and the failed attempts of the batches retrying here reach the budget", async () => {
    const { g, state, at } = gate({ used: 0, limit: 3 });
    expect(await g.holds('b', 'w/1', 2)).toBe(false); // 1 failed here
    expect(await g.holds('b', 'w/2', 2)).toBe(false); // 2
    at(200);
    expect(await g.holds('b', 'w/1', 3)).toBe(true); // 2 + 1 = 3: held
    expect(state.asked).toBe(2);
    // For a moment every batch of the backfill is held, a first attempt too, without asking.
    expect(await g.holds('b', 'w/2', 3)).toBe(true);
    expect(await g.holds('b', 'w/3', 1)).toBe(true);
    expect(state.asked).toBe(2);
    // Another backfill is not.
    expect(await g.holds('other', 'x/1', 2)).toBe(false);
  });

  it('goes by the workflow again after the moment: a raised budget lets retries run', async () => {
    const { g, state, at } = gate({ used: 2, limit: 3 });
    expect(await g.holds('b', 'w/1', 2)).toBe(true);
    state.budget = { used: 3, limit: 50 };
    at(600);
    expect(await g.holds('b', 'w/1', 2)).toBe(false);
    expect(await g.holds('b', 'w/2', 1)).toBe(false);
  });

  it('forgets the failed attempts of a batch that has not retried here for a while (it went on elsewhere)', async () => {
    const { g, at } = gate({ used: 0, limit: 5 });
    expect(await g.holds('b', 'w/1', 4)).toBe(false); // 3 here
    at(1500);
    expect(await g.holds('b', 'w/2', 2)).toBe(false); // 1: w/1's 3 forgotten
    at(1600);
    expect(await g.holds('b', 'w/2', 5)).toBe(false); // 4
    at(1700);
    expect(await g.holds('b', 'w/3', 2)).toBe(true); // 4 + 1 = 5
  });

  it('holds nothing without an answer (no retry budget, no workflow worker)', async () => {
    const { g } = gate(null);
    expect(await g.holds('b', 'w/1', 9)).toBe(false);
  });
});
