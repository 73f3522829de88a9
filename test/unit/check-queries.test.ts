/** Checks asked together: every query goes out before any answer is in, and the outcome is the same as one at a time. */
import { describe, expect, it } from 'vitest';
import { checkAsync, plannedQueries, type CheckAnswer, type CheckQuery } from '../../activities/warehouse/checks.ts';
import type { CheckInput } from '../../core/spec.ts';

const CHECKS: CheckInput[] = [
  { type: 'row_count', min: 1, severity: 'error' },
  { type: 'not_null', columns: ['a', 'b'], severity: 'error' },
  { type: 'unique', columns: ['a'], severity: 'warn' },
  { type: 'drift', metric: { sum: 'a' }, maxChangePercent: 10, severity: 'error' },
];
const TARGET = { rowCount: 3, hasPrevious: true };

/** Answers by the query's text; `held` answers wait until `release`. */
function answers(values: (query: CheckQuery) => CheckAnswer) {
  const asked: CheckQuery[] = [];
  const waiting: Array<() => void> = [];
  let inFlight = 0;
  let mostInFlight = 0;
  const answer = (query: CheckQuery) => {
    asked.push(query);
    mostInFlight = Math.max(mostInFlight, ++inFlight);
    return new Promise<CheckAnswer>((resolve) =>
      waiting.push(() => {
        inFlight--;
        resolve(values(query));
      }),
    );
  };
  // Answers whatever is asked, until the checks are done.
  const pump = async (done: Promise<unknown>) => {
    let finished = false;
    void done.finally(() => (finished = true));
    while (!finished) {
      await new Promise((r) => setImmediate(r));
      for (const release of waiting.splice(0)) release();
    }
  };
  return { answer, asked, pump, mostInFlight: () => mostInFlight };
}

const byText = (query: CheckQuery): CheckAnswer => {
  if (query.sql.includes('"b" IS NULL')) return 2;
  if (query.sql.includes('__previous')) return 100;
  if (query.aggregate.startsWith('SUM')) return 150;
  return 0;
};

describe('checks asked together', () => {
  it('plans the queries the checks ask, without a drift query when there is no previous version', () => {
    expect(plannedQueries(CHECKS, TARGET)).toHaveLength(5);
    expect(plannedQueries(CHECKS, { ...TARGET, hasPrevious: false })).toHaveLength(3);
  });

  it('asks every query before any answer is in, and finds what checks one at a time find', async () => {
    const one = answers(byText);
    const alone = checkAsync(CHECKS, TARGET, one.answer);
    await one.pump(alone);
    const many = answers(byText);
    const together = checkAsync(CHECKS, TARGET, many.answer, { together: true });
    await many.pump(together);
    expect(await together).toEqual(await alone);
    expect((await together).errors).toEqual(['not_null: 2 rows have b NULL', 'drift: sum(a) went from 100 to 150 (+50%), more than the 10% allowed']);
    expect(one.mostInFlight()).toBe(1);
    expect(many.mostInFlight()).toBe(5);
    expect(many.asked).toHaveLength(5);
  });

  it("an answer that is an error ends its check early, as one at a time, and the queries it then skips are still waited for", async () => {
    const failing = (query: CheckQuery): CheckAnswer => (query.sql.includes('"a" IS NULL') ? { error: 'boom' } : byText(query));
    const one = answers(failing);
    const alone = checkAsync(CHECKS, TARGET, one.answer);
    await one.pump(alone);
    const many = answers(failing);
    const together = checkAsync(CHECKS, TARGET, many.answer, { together: true });
    await many.pump(together);
    expect(await together).toEqual(await alone);
    expect((await together).errors[0]).toBe("not_null: the check's SQL failed: boom");
    // Column b's query was asked together but its answer unread; every one was answered before the outcome.
    expect(many.asked).toHaveLength(5);
    expect(one.asked).toHaveLength(4);
  });
});

describe('a check naming a column that matches two of the dataset\'s in another case (a PostgreSQL dataset from before such twins were refused)', () => {
  it('fails the check naming both and the fix, and asks no query', async () => {
    const asked: CheckQuery[] = [];
    const outcome = await checkAsync([{ type: 'unique', columns: ['ORDER_ID'] }], { rowCount: 1, hasPrevious: false, columns: ['Order_ID', 'order_id'] }, async (query) => {
      asked.push(query);
      return 0;
    });
    expect(outcome.errors).toEqual([
      "unique: the check's column 'ORDER_ID' matches the output's columns 'Order_ID' and 'order_id', whose names differ only in case: name one of them in the check exactly as the output does",
    ]);
    expect(asked).toEqual([]);
    // Named exactly, it is that column.
    const exact = await checkAsync([{ type: 'unique', columns: ['order_id'] }], { rowCount: 1, hasPrevious: false, columns: ['Order_ID', 'order_id'] }, async (query) => (asked.push(query), 0));
    expect(exact.errors).toEqual([]);
    expect(asked.map((q) => q.sql)).toEqual(['SELECT "order_id" FROM __this AS t GROUP BY "order_id" HAVING COUNT(*) > 1']);
  });
});
