/**
 * Checks on a new partition version, written once for every warehouse: a generator yields
 * each one-value query it needs (an aggregate over a query of `{{this}}` and `{{previous}}`)
 * and the warehouse answers it through its door for spec SQL, read-only, so that the logic
 * and the messages are the same on every engine.
 */
import { fillPlaceholders } from '../../core/check-placeholders.ts';
import { closestNames } from '../../core/closest.ts';
import { columnMatches } from './column-match.ts';
import type { CheckInput, DriftMetric } from '../../core/spec.ts';
import { PARTITION_COLUMN, VERSION_COLUMN, quoteIdent } from './sql.ts';

/** The value of a check's aggregate (null for a SUM over no values), or why its SQL failed. */
export type CheckAnswer = number | null | { error: string };

/** One value a check needs: an aggregate (`COUNT(*)`, `SUM("col")`) over the rows of a query over `{{this}}` and `{{previous}}`. */
export type CheckQuery = { sql: string; aggregate: string };

/**
 * What a check looks at besides its queries: the new version's row count, whether a published
 * version exists, and the dataset's columns (absent: not known, and every column is asked for).
 */
export type CheckTarget = { rowCount: number; hasPrevious: boolean; columns?: readonly string[] };

/** Failed checks by severity: errors block publishing, warnings are recorded with the published version. */
export type CheckOutcome = { errors: string[]; warnings: string[] };

/**
 * The relations `{{this}}` (the new version) and `{{previous}}` (the published version it
 * replaces; empty, with the same columns, when there is none) stand for in checks' SQL.
 */
export const THIS = '__this';
export const PREVIOUS = '__previous';

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

/**
 * The dataset's columns a check names, as the dataset spells them, or why it cannot look at
 * them, without the SQL backfill would have run. A name matches its column in any case
 * (`columnMatches`): `Order_ID` looks at `order_id`. It is refused when it matches
 * none (naming a close one and the fix) or more than one (columns a PostgreSQL dataset got
 * before such twins were refused). Without the columns (`target.columns` absent), the names as
 * written.
 */
function checkColumns(label: string, named: readonly string[], target: CheckTarget): { columns: string[] } | { problem: string } {
  const { columns } = target;
  if (columns === undefined) return { columns: [...named] };
  const known = [...columns, PARTITION_COLUMN, VERSION_COLUMN];
  const resolved: string[] = [];
  const missing: string[] = [];
  for (const name of named) {
    const matches = columnMatches(name, known);
    if (matches.length > 1) {
      return { problem: `${label}: the check's column '${name}' matches the output's columns ${matches.map((c) => `'${c}'`).join(' and ')}, whose names differ only in case: name one of them in the check exactly as the output does` };
    }
    if (matches[0] === undefined) {
      if (!missing.includes(name)) missing.push(name);
    } else resolved.push(matches[0]);
  }
  if (missing.length === 0) return { columns: resolved };
  const one = missing.length === 1;
  const near = missing.flatMap((c) => closestNames(c, columns, 1).map((close) => (one ? `'${close}'` : `'${close}' for '${c}'`)));
  const has = columns.length > 0 ? `its columns: ${columns.join(', ')}` : 'it has no columns';
  return {
    problem:
      `${label}: the check's column${one ? '' : 's'} ${missing.map((c) => `'${c}'`).join(', ')} ${one ? 'is' : 'are'} not in the output (${has})` +
      `${near.length > 0 ? `; did you mean ${near.join(', ')}?` : ''}: name ${one ? 'a column' : 'columns'} of the output in the check, or add ${one ? 'it' : 'them'} to the transform's output`,
  };
}

/** Yields the one-value queries it needs over the new and the published version; returns the problems found, by severity. */
export function* evaluateChecks(checks: readonly CheckInput[], target: CheckTarget): Generator<CheckQuery, CheckOutcome, CheckAnswer> {
  const outcome: CheckOutcome = { errors: [], warnings: [] };
  for (const check of checks) {
    const label = check.name ?? check.type;
    // Checks from workflows started before severities existed carry none: they block, as they did then.
    const problems = check.severity === 'warn' ? outcome.warnings : outcome.errors;
    const ask = function* (sql: string, aggregate = 'COUNT(*)'): Generator<CheckQuery, number | null | undefined, CheckAnswer> {
      const answer = yield { sql, aggregate };
      if (answer === null || typeof answer === 'number') return answer;
      problems.push(`${label}: the check's SQL failed: ${answer.error}`);
      return undefined;
    };
    // A SUM over no values is NULL: zero, for comparisons and messages.
    const numberOf = function* (sql: string, aggregate?: string): Generator<CheckQuery, number | undefined, CheckAnswer> {
      const n = yield* ask(sql, aggregate);
      return n === null ? 0 : n;
    };
    switch (check.type) {
      case 'row_count':
        if (check.min !== undefined && target.rowCount < check.min) problems.push(`${label}: ${target.rowCount} rows, expected at least ${check.min}`);
        if (check.max !== undefined && target.rowCount > check.max) problems.push(`${label}: ${target.rowCount} rows, expected at most ${check.max}`);
        break;
      case 'not_null': {
        const named = checkColumns(label, check.columns, target);
        if ('problem' in named) {
          problems.push(named.problem);
          break;
        }
        for (const column of named.columns) {
          const n = yield* numberOf(`SELECT 1 FROM ${THIS} AS t WHERE ${quoteIdent(column)} IS NULL`);
          if (n === undefined) break;
          if (n > 0) problems.push(`${label}: ${n} rows have ${column} NULL`);
        }
        break;
      }
      case 'unique': {
        const named = checkColumns(label, check.columns, target);
        if ('problem' in named) {
          problems.push(named.problem);
          break;
        }
        const columns = named.columns.map(quoteIdent).join(', ');
        const n = yield* numberOf(`SELECT ${columns} FROM ${THIS} AS t GROUP BY ${columns} HAVING COUNT(*) > 1`);
        if (n !== undefined && n > 0) problems.push(`${label}: ${n} duplicated values of (${named.columns.join(', ')})`);
        break;
      }
      case 'sql': {
        const sql = fillPlaceholders(check.sql, { this: THIS, previous: PREVIOUS });
        const n = yield* numberOf(sql);
        if (n !== undefined && n > 0) problems.push(`${label}: ${n} violating row${n === 1 ? '' : 's'}`);
        break;
      }
      case 'drift': {
        const named = check.metric === 'row_count' ? null : checkColumns(label, [check.metric.sum], target);
        if (named !== null && 'problem' in named) {
          problems.push(named.problem);
          break;
        }
        if (!target.hasPrevious) break;
        const sum = named?.columns[0];
        const metric: DriftMetric = sum === undefined ? 'row_count' : { sum };
        const measure = (relation: string) =>
          sum === undefined ? numberOf(`SELECT 1 FROM ${relation} AS t`) : numberOf(`SELECT ${quoteIdent(sum)} FROM ${relation} AS t`, `SUM(${quoteIdent(sum)})`);
        const before = yield* measure(PREVIOUS);
        if (before === undefined) break;
        const after = yield* measure(THIS);
        if (after === undefined) break;
        const change = percentChange(before, after);
        if (Math.abs(change) > check.maxChangePercent) {
          problems.push(
            `${label}: ${describeMetric(metric)} went from ${formatNumber(before)} to ${formatNumber(after)} (${formatPercent(change)}), ` +
              `more than the ${check.maxChangePercent}% allowed`,
          );
        }
        break;
      }
    }
  }
  return outcome;
}

/**
 * Drives `evaluateChecks` with an asynchronous query. `together`: every query the checks will
 * ask (those they ask when every answer is a number) is asked at once, before any answer is in,
 * so that a connection that pipelines waits on the server once for all of them; an answer that
 * is an error can end a check early, and the queries it then does not ask go unread.
 */
export async function checkAsync(
  checks: readonly CheckInput[],
  target: CheckTarget,
  answer: (query: CheckQuery) => Promise<CheckAnswer>,
  options: { together?: boolean } = {},
): Promise<CheckOutcome> {
  const asked = new Map<string, Array<Promise<CheckAnswer>>>();
  const keyOf = (query: CheckQuery) => JSON.stringify([query.sql, query.aggregate]);
  if (options.together) {
    for (const query of plannedQueries(checks, target)) {
      const sent = answer(query);
      // Read below, or left unread when an error ends its check early.
      sent.catch(() => undefined);
      asked.set(keyOf(query), [...(asked.get(keyOf(query)) ?? []), sent]);
    }
  }
  try {
    const run = evaluateChecks(checks, target);
    let step = run.next();
    while (!step.done) step = run.next(await (asked.get(keyOf(step.value))?.shift() ?? answer(step.value)));
    return step.value;
  } finally {
    // Nothing asked is still on the wire when the caller goes on.
    for (const sent of [...asked.values()].flat()) await sent.catch(() => undefined);
  }
}

/** The queries the checks ask when every answer is a number (an answer's value never changes which queries follow). */
export function plannedQueries(checks: readonly CheckInput[], target: CheckTarget): CheckQuery[] {
  const queries: CheckQuery[] = [];
  const run = evaluateChecks(checks, target);
  let step = run.next();
  while (!step.done) {
    queries.push(step.value);
    step = run.next(0);
  }
  return queries;
}
