/**
 * Columns of a node's SQL that the engines name each their own way. A column a query computes
 * without an alias has no name of its own: SQLite names it by its text as written
 * (`count(*)`), PostgreSQL by the function it calls or `?column?` (`count`), DuckDB by a text
 * of its own. The dataset's columns would then depend on the warehouse it is written to, and a
 * check or a downstream node naming one would work on one engine only. `plan` and `start` say
 * so (a note, not a refusal: the SQL runs). A plain column (`a`, `t.a`, `(a)`), `*` and `t.*`
 * keep their names on every engine.
 *
 * Only the main query's select list names the dataset's columns: the first SELECT of a
 * compound, after any WITH clause. This reads the text's shape with the tokenizer of
 * sql-relations.ts and judges no validity.
 */
import type { ResolvedNode } from './spec.ts';
import { sqlItems, type SqlItem } from './sql-relations.ts';
import type { ReadProblem } from './sql-reads.ts';

/** A select-list entry without a name of its own: its position (from 1) and its text. */
export type UnnamedColumn = { position: number; text: string };

/** Words that end a select list at its level. */
const ENDS_SELECT_LIST = new Set(['from', 'where', 'group', 'having', 'window', 'qualify', 'order', 'limit', 'offset', 'fetch', 'union', 'intersect', 'except', 'into', 'for']);
/** Words that join an expression to what follows them, so the word after one is the expression's, not an alias. */
const JOINING_WORDS = new Set([
  'and', 'or', 'not', 'is', 'in', 'like', 'ilike', 'glob', 'regexp', 'match', 'between', 'similar', 'escape', 'when', 'then', 'else', 'case', 'over', 'collate', 'distinct', 'as',
]);
/** Words that end an expression and are never an alias without AS. */
const ENDING_WORDS = new Set([...JOINING_WORDS, 'end', 'null', 'true', 'false', 'unknown', 'isnull', 'notnull']);

type Word = Extract<SqlItem, { kind: 'word' }>;
const isWord = (item: SqlItem | undefined, word?: string): item is Word => item?.kind === 'word' && (word === undefined || item.lower === word);
const isPunct = (item: SqlItem | undefined, text: string): boolean => item?.kind === 'punct' && item.text === text;
const isName = (item: SqlItem | undefined): boolean => item?.kind === 'quoted' || (isWord(item) && !ENDING_WORDS.has(item.lower));

/** The items of the main query's select list, after SELECT and its ALL / DISTINCT [ON (...)]; undefined when it has none (VALUES, TABLE). */
function mainSelectList(items: readonly SqlItem[]): SqlItem[] | undefined {
  let start = -1;
  for (const [i, item] of items.entries()) {
    if (isWord(item, 'select')) {
      start = i + 1;
      break;
    }
    if (isWord(item, 'values') || isWord(item, 'table')) return undefined;
    // A parenthesised first arm: first in the text, or right after the WITH clause's last body.
    if (item.kind === 'group' && (i === 0 || items[i - 1]?.kind === 'group')) return mainSelectList(item.items);
  }
  if (start < 0) return undefined;
  if (isWord(items[start], 'all')) start++;
  else if (isWord(items[start], 'distinct')) {
    start++;
    if (isWord(items[start], 'on') && items[start + 1]?.kind === 'group') start += 2;
  }
  const end = items.findIndex((item, i) => i >= start && ((isWord(item) && ENDS_SELECT_LIST.has(item.lower)) || isPunct(item, ';')));
  return items.slice(start, end < 0 ? items.length : end);
}

/** Whether an entry is a plain column (`a`, `"a"`, `t.a`, `s.t.a`, `(a)`): every engine names it by the column. */
function plainColumn(entry: readonly SqlItem[]): boolean {
  if (entry.length === 1 && entry[0]!.kind === 'group') return plainColumn(entry[0]!.items);
  if (entry.length % 2 === 0) return false;
  return entry.every((item, i) => (i % 2 === 0 ? isName(item) : isPunct(item, '.')));
}

/** Whether an entry keeps a name on every engine: `*`, `t.*`, a plain column, or an alias (with AS or without). */
function named(entry: readonly SqlItem[]): boolean {
  // `*` and `t.*`, also with DuckDB's modifiers after them (`* EXCLUDE (a)`): the columns keep their names.
  const star = entry.findIndex((item) => isPunct(item, '*'));
  if (star === 0 || (star > 0 && isPunct(entry[star - 1], '.') && entry.slice(0, star - 1).every((item, i) => (i % 2 === 0 ? isName(item) : isPunct(item, '.'))))) {
    return star + 1 === entry.length || isWord(entry[star + 1]);
  }
  if (plainColumn(entry)) return true;
  if (entry.length < 2 || !isName(entry.at(-1))) return false;
  const before = entry.at(-2)!;
  // With AS, or after the end of an expression (not an operator, nor a word that joins it to what follows).
  if (before.kind === 'word') return before.lower === 'as' || !JOINING_WORDS.has(before.lower);
  return before.kind === 'group' || before.kind === 'literal' || before.kind === 'quoted';
}

/** Where an item starts in the text: a quoted name's or a string's token starts after its opening quote. */
const startOf = (item: SqlItem): number => (item.kind === 'quoted' || (item.kind === 'literal' && item.text !== undefined) ? item.at - 1 : item.at);

/** The main query's columns that have no name of their own, in order. */
export function unnamedColumns(sql: string): UnnamedColumn[] {
  const list = mainSelectList(sqlItems(sql));
  if (list === undefined) return [];
  const entries: SqlItem[][] = [[]];
  for (const item of list) {
    if (isPunct(item, ',')) entries.push([]);
    else entries.at(-1)!.push(item);
  }
  return entries.flatMap((entry, i) => {
    if (entry.length === 0 || named(entry)) return [];
    return [{ position: i + 1, text: sql.slice(startOf(entry[0]!), entry.at(-1)!.end).replace(/\s+/g, ' ') }];
  });
}

/** Notes for `plan` and `start`: each SQL node's columns that the warehouses would name apart. */
export function unnamedColumnNotes(nodes: readonly ResolvedNode[]): ReadProblem[] {
  return nodes.flatMap((node, i) => {
    if (node.transform !== 'sql' || node.sql === undefined) return [];
    const unnamed = unnamedColumns(node.sql);
    if (unnamed.length === 0) return [];
    const which = unnamed.map((c) => `${c.position} (${c.text})`).join(', ');
    const [first] = unnamed;
    return [
      {
        path: ['nodes', i, 'sql'],
        message:
          `${node.id}'s SQL leaves column${unnamed.length > 1 ? 's' : ''} ${which} without a name, and each warehouse names such a column its own way ` +
          `(SQLite by its text, PostgreSQL by its function or ?column?, DuckDB otherwise): the dataset's columns would depend on where it is written. ` +
          `Name ${unnamed.length > 1 ? 'each' : 'it'}: ${first!.text} AS <name>`,
      },
    ];
  });
}
