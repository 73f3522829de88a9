/**
 * Checks on a new partition version, written once for both warehouses: a generator yields
 * each one-value query it needs (`SELECT ... AS n`) and the warehouse answers it
 * (synchronously in SQLite, inside a savepoint in PostgreSQL), so that the logic and the
 * messages are the same on both.
 */
import type { CheckInput, DriftMetric } from '../../core/spec.ts';
import { quoteIdent } from './sql.ts';

/** The value `n` of a check's query (null for a SUM over no values), or why its SQL failed. */
export type CheckAnswer = number | null | { error: string };

/** What a check looks at: the new version and the published version it would replace. */
export type CheckTarget = {
  rowCount: number;
  /** A SELECT of the new version's rows; `{{this}}` in SQL checks. */
  staged: string;
  /** A SELECT of the partition's published version's rows (`{{previous}}`), or null when it has none. */
  previous: string | null;
};

/** Failed checks by severity: errors block publishing, warnings are recorded with the published version. */
export type CheckOutcome = { errors: string[]; warnings: string[] };

/** The common table expressions `{{this}}` and `{{previous}}` stand for in checks' SQL. */
const THIS = '__this';
const PREVIOUS = '__previous';

function describeMetric(metric: DriftMetric): string {
  return metric === 'row_count' ? 'row_count' : `sum(${metric.sum})`;
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(12)));
}

/** The change from `before` to `after` in percent of `before` (infinite from zero to anything else). */
export function percentChange(before: number, after: number): number {
  if (before === after) return 0;
  if (before === 0) return after > 0 ? Infinity : -Infinity;
  return ((after - before) / Math.abs(before)) * 100;
}

function formatPercent(change: number): string {
  if (!Number.isFinite(change)) return 'a change from zero';
  const text = Math.abs(change).toFixed(1).replace(/\.0$/, '');
  return `${change >= 0 ? '+' : '-'}${text}%`;
}

/** Yields one-value queries over the new and the published version; returns the problems found, by severity. */
export function* evaluateChecks(checks: readonly CheckInput[], target: CheckTarget): Generator<string, CheckOutcome, CheckAnswer> {
  const outcome: CheckOutcome = { errors: [], warnings: [] };
  // Without a published version `{{previous}}` is empty, with the new version's columns.
  const previous = target.previous ?? `SELECT * FROM (${target.staged}) AS s WHERE 1 = 0`;
  const over = (query: string) => `WITH ${THIS} AS (${target.staged}), ${PREVIOUS} AS (${previous}) ${query}`;
  for (const check of checks) {
    const label = check.name ?? check.type;
    // Checks from workflows started before severities existed carry none: they block, as they did then.
    const problems = check.severity === 'warn' ? outcome.warnings : outcome.errors;
    const ask = function* (sql: string): Generator<string, number | null | undefined, CheckAnswer> {
      const answer = yield over(sql);
      if (answer === null || typeof answer === 'number') return answer;
      problems.push(`${label}: the check's SQL failed: ${answer.error}`);
      return undefined;
    };
    // A SUM over no values is NULL: zero, for comparisons and messages.
    const numberOf = function* (sql: string): Generator<string, number | undefined, CheckAnswer> {
      const n = yield* ask(sql);
      return n === null ? 0 : n;
    };
    switch (check.type) {
      case 'row_count':
        if (check.min !== undefined && target.rowCount < check.min) problems.push(`${label}: ${target.rowCount} rows, expected at least ${check.min}`);
        if (check.max !== undefined && target.rowCount > check.max) problems.push(`${label}: ${target.rowCount} rows, expected at most ${check.max}`);
        break;
      case 'not_null':
        for (const column of check.columns) {
          const n = yield* numberOf(`SELECT COUNT(*) AS n FROM ${THIS} AS t WHERE ${quoteIdent(column)} IS NULL`);
          if (n === undefined) break;
          if (n > 0) problems.push(`${label}: ${n} rows have ${column} NULL`);
        }
        break;
      case 'unique': {
        const columns = check.columns.map(quoteIdent).join(', ');
        const n = yield* numberOf(`SELECT COUNT(*) AS n FROM (SELECT ${columns} FROM ${THIS} AS t GROUP BY ${columns} HAVING COUNT(*) > 1) AS d`);
        if (n !== undefined && n > 0) problems.push(`${label}: ${n} duplicated values of (${check.columns.join(', ')})`);
        break;
      }
      case 'sql': {
        const sql = check.sql.replace(/\{\{\s*this\s*\}\}/g, THIS).replace(/\{\{\s*previous\s*\}\}/g, PREVIOUS);
        const n = yield* numberOf(`SELECT COUNT(*) AS n FROM (${sql}) AS v`);
        if (n !== undefined && n > 0) problems.push(`${label}: ${n} violating rows`);
        break;
      }
      case 'drift': {
        if (target.previous === null) break;
        const measure = (relation: string) =>
          check.metric === 'row_count'
            ? `SELECT COUNT(*) AS n FROM ${relation} AS t`
            : `SELECT SUM(${quoteIdent(check.metric.sum)}) AS n FROM ${relation} AS t`;
        const before = yield* numberOf(measure(PREVIOUS));
        if (before === undefined) break;
        const after = yield* numberOf(measure(THIS));
        if (after === undefined) break;
        const change = percentChange(before, after);
        if (Math.abs(change) > check.maxChangePercent) {
          problems.push(
            `${label}: ${describeMetric(check.metric)} went from ${formatNumber(before)} to ${formatNumber(after)} (${formatPercent(change)}), ` +
              `more than the ${check.maxChangePercent}% allowed`,
          );
        }
        break;
      }
    }
  }
  return outcome;
}

/** Drives `evaluateChecks` with a synchronous query. */
export function checkSync(checks: readonly CheckInput[], target: CheckTarget, answer: (sql: string) => CheckAnswer): CheckOutcome {
  const run = evaluateChecks(checks, target);
  let step = run.next();
  while (!step.done) step = run.next(answer(step.value));
  return step.value;
}

/** Drives `evaluateChecks` with an asynchronous query. */
export async function checkAsync(checks: readonly CheckInput[], target: CheckTarget, answer: (sql: string) => Promise<CheckAnswer>): Promise<CheckOutcome> {
  const run = evaluateChecks(checks, target);
  let step = run.next();
  while (!step.done) step = run.next(await answer(step.value));
  return step.value;
}
