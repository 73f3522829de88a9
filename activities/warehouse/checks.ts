/**
 * Checks on a new partition version, written once for both warehouses: a generator yields
 * each COUNT query it needs and the warehouse answers it (synchronously in SQLite, inside
 * a savepoint in PostgreSQL), so that the logic and the messages are the same on both.
 */
import type { Check } from '../../core/spec.ts';
import { quoteIdent } from './sql.ts';

/** A COUNT's result, or why its SQL failed. */
export type CountAnswer = number | { error: string };

/** The name `{{this}}` stands for in SQL checks: the new version's rows, as a common table expression. */
const THIS = '__this';

/**
 * Yields COUNT(*) queries over `staged` (a SELECT of the new version's rows, which
 * `{{this}}` stands for in SQL checks); returns the problems found, one message each.
 */
export function* evaluateChecks(checks: readonly Check[], rowCount: number, staged: string): Generator<string, string[], CountAnswer> {
  const problems: string[] = [];
  const over = (query: string) => `WITH ${THIS} AS (${staged}) ${query}`;
  for (const check of checks) {
    const label = check.name ?? check.type;
    const count = function* (sql: string): Generator<string, number | null, CountAnswer> {
      const answer = yield over(sql);
      if (typeof answer === 'number') return answer;
      problems.push(`${label}: the check's SQL failed: ${answer.error}`);
      return null;
    };
    switch (check.type) {
      case 'row_count':
        if (check.min !== undefined && rowCount < check.min) problems.push(`${label}: ${rowCount} rows, expected at least ${check.min}`);
        if (check.max !== undefined && rowCount > check.max) problems.push(`${label}: ${rowCount} rows, expected at most ${check.max}`);
        break;
      case 'not_null':
        for (const column of check.columns) {
          const n = yield* count(`SELECT COUNT(*) AS n FROM ${THIS} AS t WHERE ${quoteIdent(column)} IS NULL`);
          if (n === null) break;
          if (n > 0) problems.push(`${label}: ${n} rows have ${column} NULL`);
        }
        break;
      case 'unique': {
        const columns = check.columns.map(quoteIdent).join(', ');
        const n = yield* count(`SELECT COUNT(*) AS n FROM (SELECT ${columns} FROM ${THIS} AS t GROUP BY ${columns} HAVING COUNT(*) > 1) AS d`);
        if (n !== null && n > 0) problems.push(`${label}: ${n} duplicated values of (${check.columns.join(', ')})`);
        break;
      }
      case 'sql': {
        const sql = check.sql.replace(/\{\{\s*this\s*\}\}/g, THIS);
        const n = yield* count(`SELECT COUNT(*) AS n FROM (${sql}) AS v`);
        if (n !== null && n > 0) problems.push(`${label}: ${n} violating rows`);
        break;
      }
    }
  }
  return problems;
}

/** Drives `evaluateChecks` with a synchronous COUNT. */
export function checkSync(checks: readonly Check[], rowCount: number, staged: string, count: (sql: string) => CountAnswer): string[] {
  const run = evaluateChecks(checks, rowCount, staged);
  let step = run.next();
  while (!step.done) step = run.next(count(step.value));
  return step.value;
}

/** Drives `evaluateChecks` with an asynchronous COUNT. */
export async function checkAsync(checks: readonly Check[], rowCount: number, staged: string, count: (sql: string) => Promise<CountAnswer>): Promise<string[]> {
  const run = evaluateChecks(checks, rowCount, staged);
  let step = run.next();
  while (!step.done) step = run.next(await count(step.value));
  return step.value;
}
