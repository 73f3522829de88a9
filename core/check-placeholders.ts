/**
 * The `{{this}}` and `{{previous}}` of a SQL check: what `plan` lets a check's SQL name in double
 * braces (core/sql-runs.ts), and what the warehouses put in their place (activities/warehouse/checks.ts).
 */

export const CHECK_PLACEHOLDERS = ['this', 'previous'] as const;
export type CheckPlaceholder = (typeof CHECK_PLACEHOLDERS)[number];

/** Every `{{ name }}` (jinja's, dbt's too), spaces inside the braces allowed. */
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** Every `{{ name }}` in `sql`, as written and its name. */
export function placeholders(sql: string): Array<{ text: string; name: string }> {
  return [...sql.matchAll(PLACEHOLDER)].map((m) => ({ text: m[0], name: m[1]! }));
}

/** `sql` with each check placeholder replaced by its relation's name; any other `{{...}}` stays as written. */
export function fillPlaceholders(sql: string, relations: Record<CheckPlaceholder, string>): string {
  return sql.replace(PLACEHOLDER, (text, name: string) => ((CHECK_PLACEHOLDERS as readonly string[]).includes(name) ? relations[name as CheckPlaceholder] : text));
}
