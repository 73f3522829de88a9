/**
 * The `:name` parameters of spec SQL, as the warehouses bind them: the partition's own values
 * and the node's scalar params. `plan` checks a node's SQL against the same names the
 * partitions will bind, so that a missing one fails before anything runs.
 */
import { bracketRunEnd } from './sql-relations.ts';

/** What every partition binds, beside the node's params (the partition's key and window; NULL for a static key's). */
export const PARTITION_PARAMETERS = ['partition', 'start', 'end', 'start_date', 'end_date'] as const;

/** How to give a parameter that is not bound: part of every message about one. */
export const UNBOUND_PARAMETER_FIX = `define it in the node's params, or use ${PARTITION_PARAMETERS.map((p) => `:${p}`).join(', ')}`;

/** Whether a value of the node's params is bound as a SQL parameter: strings, numbers, booleans and null are; lists and objects are not. */
export function boundParam(value: unknown): boolean {
  return value === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof value);
}

/**
 * The first `:name` of `sql` that a partition of a node with these params would not bind
 * (undefined when all are), and why, with the fix: for a name the params lack, the run time's
 * missing-parameter fix; for one they hold as a list or an object, how to make it bound.
 */
export function unboundParameter(sql: string, params: Readonly<Record<string, unknown>>): { name: string; message: string } | undefined {
  const bound = new Set<string>(PARTITION_PARAMETERS);
  for (const [name, value] of Object.entries(params)) if (boundParam(value)) bound.add(name);
  const name = positionalParameters(sql).names.find((n) => !bound.has(n));
  if (name === undefined) return undefined;
  const unbound = `uses the parameter ':${name}', which no partition binds`;
  if (!Object.prototype.hasOwnProperty.call(params, name)) return { name, message: `${unbound}: ${UNBOUND_PARAMETER_FIX}` };
  const kind = Array.isArray(params[name]) ? 'list' : 'object';
  return {
    name,
    message:
      `${unbound} (params.${name} is ${kind === 'list' ? 'a list' : 'an object'}, which is not bound): ` +
      `make params.${name} a string, number, boolean or null, or write the ${kind}'s values into the SQL`,
  };
}

/**
 * Rewrites `:name` parameters as PostgreSQL's `$1, $2, ...` (one number per distinct name),
 * skipping string literals (E'...' with backslash escapes too), quoted identifiers ("...",
 * `...`), comments, dollar-quoted bodies and `::` casts. In a `[...]` run (`bracketRunEnd`) a
 * `:` right after a name, number or `)` is no parameter: it is part of SQLite's name `[a:b]`,
 * or PostgreSQL's and DuckDB's slice `arr[lo:hi]`; one after `[`, a space or an operator is
 * (`arr[:i]`, `[:a, :b]`). `cast(name)` may add a type to a placeholder (`$1::bigint`) so
 * that a number bound into a SELECT list keeps its type, as it does in SQLite.
 */
export function positionalParameters(sql: string, cast: (name: string) => string = () => ''): { text: string; names: string[] } {
  const names: string[] = [];
  let out = '';
  let i = 0;
  const n = sql.length;
  /** The end of the `[...]` run `i` is in, where one is. */
  let bracketEnd = -1;
  const copyUntil = (end: number) => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    const inBrackets = i < bracketEnd;
    if (inBrackets && c !== ':') {
      copyUntil(i + 1);
    } else if (c === "'" || c === '"' || c === '`') {
      const backslash = c === "'" && /[eE]/.test(sql[i - 1] ?? '') && !/[A-Za-z0-9_$]/.test(sql[i - 2] ?? '');
      let j = i + 1;
      for (;;) {
        if (j >= n) break;
        if (backslash && sql[j] === '\\') j += 2;
        else if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2;
          else break;
        } else j++;
      }
      copyUntil(Math.min(n, j + 1));
    } else if (c === '[') {
      bracketEnd = bracketRunEnd(sql, i) ?? -1;
      copyUntil(i + 1);
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      copyUntil(end < 0 ? n : end);
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      copyUntil(end < 0 ? n : end + 2);
    } else if (c === '$' && /[A-Za-z_$]/.test(next ?? '')) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        copyUntil(end < 0 ? n : end + tag[0].length);
      } else copyUntil(i + 1);
    } else if (c === ':' && next === ':') {
      copyUntil(i + 2);
    } else if (c === ':' && /[A-Za-z_]/.test(next ?? '') && !(inBrackets && /[\p{L}\p{N}_$)]/u.test(sql[i - 1]!))) {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1))![0];
      let index = names.indexOf(name);
      if (index < 0) index = names.push(name) - 1;
      out += `$${index + 1}${cast(name)}`;
      i += 1 + name.length;
    } else {
      copyUntil(i + 1);
    }
  }
  return { text: out, names };
}
