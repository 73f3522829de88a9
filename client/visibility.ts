/** Literals of Temporal's visibility (list filter) queries. */

/**
 * A string literal of a visibility query: quoted, with its backslashes and quotes escaped (the
 * query parser reads `\` as an escape, so an unescaped one could end the literal early). Every
 * query that embeds a value goes through it.
 */
export function visibilityLiteral(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}
