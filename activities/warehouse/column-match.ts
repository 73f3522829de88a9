/**
 * How a column a spec names (a check's, a node's key) finds the dataset's column: exactly, or
 * else in any case, as an unquoted name does on every engine. Backfill quotes the names it puts
 * into SQL, and PostgreSQL reads a quoted name in its own case only, so it matches here first.
 */
export function columnMatches(name: string, columns: readonly string[]): string[] {
  if (columns.includes(name)) return [name];
  const lower = name.toLowerCase();
  return columns.filter((c) => c.toLowerCase() === lower);
}
