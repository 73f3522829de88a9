/**
 * The relations a spec SQL text reads: the targets of FROM and JOIN (also in subqueries, CTE
 * bodies and parenthesised joins), of PostgreSQL's `TABLE name` and of SQLite's `IN name`,
 * without the names its own WITH clauses define where they are in scope. What `resolveSpec`
 * needs to refuse a node whose SQL reads another node it does not depend on, before anything
 * runs.
 *
 * The same text may run on SQLite, PostgreSQL and DuckDB, whose parsers this pure module cannot
 * use (libpg-query is asynchronous WebAssembly and knows one dialect only), so it reads the text
 * with a small tokenizer of its own: string literals (also E'...' and $tag$...$tag$), quoted
 * identifiers ("...", `...`, [...]), comments (-- and /* *\/) and parentheses. Nothing inside a
 * literal or a comment can name a relation. It judges no validity: SQL the engines refuse may
 * give any answer here, and the engine's own error comes when it runs.
 *
 * Where the engines disagree it finds what any of them reads: PostgreSQL and DuckDB nest block
 * comments and SQLite does not (`/* raw/*.csv *\/ SELECT * FROM b` reads b on SQLite, and is an
 * unclosed comment on the others), so the text is read both ways and the reads of either count.
 */

/** A relation the SQL reads. */
export type SqlRelation = {
  /** As the engines look it up: an unquoted name in lower case, a quoted one as written. */
  name: string;
  /** `main` of `main.orders`, `db.schema` of `db.schema.orders`; null for a plain name. */
  qualifier: string | null;
  quoted: boolean;
  /** Offset of the name in the text. */
  at: number;
  /**
   * Read in the body of a CTE of the same name that is a compound SELECT (`... UNION ...`),
   * without RECURSIVE: PostgreSQL and DuckDB read the relation there, SQLite the CTE itself.
   */
  implicitRecursion: boolean;
  /**
   * Which reading of the block comments finds the read: `both`, or only one where they differ
   * (a comment holding `/*`): `nested` as PostgreSQL and DuckDB end comments, `flat` as SQLite does.
   */
  readBy: 'both' | Comments;
};

/** `end`: the offset just past the token (past a closing quote). */
type Token =
  | { kind: 'word'; lower: string; at: number; end: number }
  | { kind: 'quoted'; text: string; at: number; end: number }
  /** `text`: the value of a plain '...' string, which SQLite takes for a name where one is expected (`FROM 'orders'`). */
  | { kind: 'literal'; text?: string; at: number; end: number }
  | { kind: 'punct'; text: string; at: number; end: number };
/** `end`: just past its `)`, or past the text's last token when it is never closed. */
type Group = { kind: 'group'; items: Item[]; at: number; end: number };
/** A token, or a parenthesised run of them. */
export type SqlItem = Token | Group;
type Item = SqlItem;

const WORD_START = /[\p{L}_]/u;
const WORD_PART = /[\p{L}\p{N}_$]/u;
/** Prefixes of string literals: E'...' (backslash escapes), X'...', B'...', N'...'. */
const LITERAL_PREFIXES = new Set(['e', 'x', 'b', 'n']);
/** Words after which `[` opens a SQLite identifier rather than an array subscript or a list. */
const BEFORE_BRACKET_NAME = new Set(['from', 'join', 'table', 'lateral', 'only']);

/** The end of a quoted run that starts at `start` (on its opening quote) and closes with `close` (doubled inside). */
function quotedEnd(sql: string, start: number, close: string, backslash = false): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslash && c === '\\') i += 2;
    else if (c === close && sql[i + 1] === close) i += 2;
    else if (c === close) return i + 1;
    else i++;
  }
  return sql.length;
}

/** How block comments end: `nested` as PostgreSQL and DuckDB read them, `flat` (at the first `*\/`) as SQLite does. */
export type Comments = 'nested' | 'flat';

/** The end of a block comment starting at `start`. */
function blockCommentEnd(sql: string, start: number, comments: Comments): number {
  if (comments === 'flat') {
    const end = sql.indexOf('*/', start + 2);
    return end < 0 ? sql.length : end + 2;
  }
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return sql.length;
}

/**
 * The tokens of `sql`. `anyBracket`: every `[...]` run (see `bracketRunEnd`) is one quoted
 * token, wherever it is; otherwise only where a relation name may follow.
 */
function tokenize(sql: string, comments: Comments, anyBracket = false): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    const bracketEnd = c === '[' && (anyBracket || afterBracketName(tokens.at(-1))) ? bracketRunEnd(sql, i) : undefined;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      i = blockCommentEnd(sql, i, comments);
    } else if (c === "'") {
      const end = quotedEnd(sql, i, "'");
      tokens.push({ kind: 'literal', text: sql.slice(i + 1, end - 1).replaceAll("''", "'"), at: i + 1, end });
      i = end;
    } else if (c === '"' || c === '`') {
      const end = quotedEnd(sql, i, c);
      tokens.push({ kind: 'quoted', text: sql.slice(i + 1, end - 1).replaceAll(c + c, c), at: i + 1, end });
      i = end;
    } else if (bracketEnd !== undefined) {
      tokens.push({ kind: 'quoted', text: sql.slice(i + 1, bracketEnd - 1), at: i + 1, end: bracketEnd });
      i = bracketEnd;
    } else if (c === '$' && next !== undefined && /[A-Za-z_$]/.test(next)) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 66));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        const end = close < 0 ? n : close + tag[0].length;
        tokens.push({ kind: 'literal', at: i, end });
        i = end;
      } else {
        // SQLite's $name parameter.
        tokens.push({ kind: 'punct', text: '$', at: i, end: i + 1 });
        i++;
      }
    } else if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < n && WORD_PART.test(sql[j]!)) j++;
      const lower = sql.slice(i, j).toLowerCase();
      if (sql[j] === "'" && LITERAL_PREFIXES.has(lower)) {
        const end = quotedEnd(sql, j, "'", lower === 'e');
        tokens.push({ kind: 'literal', at: i, end });
        i = end;
      } else {
        tokens.push({ kind: 'word', lower, at: i, end: j });
        i = j;
      }
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(sql[j]!)) j++;
      tokens.push({ kind: 'literal', at: i, end: j });
      i = j;
    } else {
      tokens.push({ kind: 'punct', text: c, at: i, end: i + 1 });
      i++;
    }
  }
  return tokens;
}

/** Whether a `[` after this token may open a SQLite name in a relation's place (`FROM [orders]`, `, [orders]`, `main.[orders]`). */
function afterBracketName(previous: Token | undefined): boolean {
  return previous?.kind === 'word' ? BEFORE_BRACKET_NAME.has(previous.lower) : previous?.kind === 'punct' && (previous.text === ',' || previous.text === '.');
}

/**
 * The end (past the `]`) of the `[...]` run at `start` when it holds no quote, bracket or line
 * break, else undefined. Such a run is SQLite's quoted name, or PostgreSQL's subscript or
 * DuckDB's list, where a `;` is never valid; one with a quote or bracket inside is a subscript
 * or list, whose strings may hold any character, and is read token by token.
 */
export function bracketRunEnd(sql: string, start: number): number | undefined {
  const run = /^\[[^\]'"`[\n]*\]/.exec(sql.slice(start, start + 200));
  return run ? start + run[0].length : undefined;
}

/** Tokens nested by parentheses; an unmatched `)` is dropped, an unclosed `(` closes at the end. */
function nest(tokens: readonly Token[]): Item[] {
  const root: Item[] = [];
  const stack: Array<{ items: Item[]; group?: Group }> = [{ items: root }];
  const last = tokens.at(-1)?.end ?? 0;
  for (const token of tokens) {
    const top = stack[stack.length - 1]!;
    if (token.kind === 'punct' && token.text === '(') {
      const group: Group = { kind: 'group', items: [], at: token.at, end: last };
      top.items.push(group);
      stack.push({ items: group.items, group });
    } else if (token.kind === 'punct' && token.text === ')') {
      if (top.group) {
        top.group.end = token.end;
        stack.pop();
      }
    } else top.items.push(token);
  }
  return root;
}

/**
 * `sql`'s tokens nested by parentheses, by one reading of the comments; `[...]` runs are names
 * wherever they are (SQLite's `SELECT [a]`). What a reader of a query's shape walks.
 */
export function sqlItems(sql: string, comments: Comments = 'nested'): SqlItem[] {
  return nest(tokenize(sql, comments, true));
}

const isWord = (item: Item | undefined, ...words: string[]): boolean => item?.kind === 'word' && (words.length === 0 || words.includes(item.lower));
const isPunct = (item: Item | undefined, text: string): boolean => item?.kind === 'punct' && item.text === text;
const isName = (item: Item | undefined): item is Extract<Token, { kind: 'word' | 'quoted' }> => item?.kind === 'word' || item?.kind === 'quoted';
const nameOf = (token: Extract<Token, { kind: 'word' | 'quoted' }>): string => (token.kind === 'word' ? token.lower : token.text);

/** Words that end a FROM clause at its level: after them, a comma separates no relations. */
const ENDS_FROM = new Set([
  'where', 'group', 'having', 'window', 'qualify', 'order', 'limit', 'offset', 'fetch', 'union', 'intersect', 'except', 'for', 'select', 'returning', 'into',
]);
/** Words that open a query: a parenthesis starting with one holds a subquery, not a join. */
const STARTS_QUERY = new Set(['select', 'with', 'values', 'table', 'from']);
/** Functions whose parentheses hold a FROM or IN of their own: `extract(year FROM ts)`, `substring(s FROM 2)`, `trim(BOTH FROM s)`, `position('x' IN s)`. */
const KEYWORD_ARGUMENTS = new Set(['extract', 'substring', 'trim', 'overlay', 'position']);

/** CTE names in scope, innermost first; compared folded, as SQLite and DuckDB compare names. */
class Scope {
  private readonly names = new Set<string>();
  /** Compound CTEs without RECURSIVE whose body this is: see SqlRelation.implicitRecursion. */
  private readonly enclosing = new Set<string>();
  constructor(private readonly outer?: Scope) {}
  add(name: string): void {
    this.names.add(name.toLowerCase());
  }
  has(name: string): boolean {
    return this.names.has(name.toLowerCase()) || (this.outer?.has(name) ?? false);
  }
  addEnclosing(name: string): void {
    this.enclosing.add(name.toLowerCase());
  }
  inBodyOf(name: string): boolean {
    return this.enclosing.has(name.toLowerCase()) || (this.outer?.inBodyOf(name) ?? false);
  }
}

type Cte = { name: string; body: Group };

class Reader {
  readonly found: SqlRelation[] = [];

  /** A query, or any sequence that may start with WITH: its CTEs, then the rest. */
  sequence(items: readonly Item[], outer: Scope, options: { inArguments?: boolean } = {}): void {
    const scope = new Scope(outer);
    let start = 0;
    if (isWord(items[0], 'with')) start = this.ctes(items, scope);
    this.plain(items, start, scope, { inFrom: false, expect: false, inArguments: options.inArguments ?? false });
  }

  /**
   * `WITH [RECURSIVE] name [(columns)] AS [[NOT] MATERIALIZED] (body), ...`: scans each body
   * with the names in scope there and adds the names to `scope`; returns where the main query
   * starts. A body sees the CTEs before it; with RECURSIVE, all of them, its own name too.
   * Without RECURSIVE a CTE named like the relation it reads (`WITH orders AS (SELECT ... FROM
   * orders)`) reads that relation on PostgreSQL and DuckDB, a compound body too (`WITH daily AS
   * (SELECT ... UNION ALL SELECT ... FROM daily)`), which SQLite alone takes for recursion: that
   * read is found, marked implicitRecursion.
   */
  private ctes(items: readonly Item[], scope: Scope): number {
    let i = 1;
    const recursive = isWord(items[i], 'recursive');
    if (recursive) i++;
    const ctes: Cte[] = [];
    for (;;) {
      const name = items[i];
      if (!isName(name)) break;
      let j = i + 1;
      if (items[j]?.kind === 'group') j++;
      if (!isWord(items[j], 'as')) break;
      j++;
      while (isWord(items[j], 'not', 'materialized')) j++;
      const body = items[j];
      if (body?.kind !== 'group') break;
      ctes.push({ name: nameOf(name), body });
      i = j + 1;
      // PostgreSQL's SEARCH ... SET ... and CYCLE ... SET ... USING ... may follow a body.
      while (i < items.length && !isPunct(items[i], ',') && !startsMainQuery(items[i])) i++;
      if (!isPunct(items[i], ',')) break;
      i++;
    }
    if (recursive) for (const cte of ctes) scope.add(cte.name);
    for (const cte of ctes) {
      const own = new Scope(scope);
      if (!recursive && compound(cte.body.items)) own.addEnclosing(cte.name);
      this.sequence(cte.body.items, own);
      scope.add(cte.name);
    }
    return i;
  }

  /** Scans `items` from `start`, finding the relations that follow FROM, JOIN, a comma of a FROM list, TABLE and IN. */
  private plain(items: readonly Item[], start: number, scope: Scope, state: { inFrom: boolean; expect: boolean; inArguments: boolean }): void {
    let { inFrom, expect } = state;
    for (let k = start; k < items.length; k++) {
      const item = items[k]!;
      const previous = k > start ? items[k - 1] : undefined;
      if (item.kind === 'group') {
        if (expect) this.tableItem(item, scope);
        else this.sequence(item.items, scope, { inArguments: previous?.kind === 'word' && KEYWORD_ARGUMENTS.has(previous.lower) });
        expect = false;
        continue;
      }
      if (expect) {
        if (isWord(item, 'lateral', 'only')) continue;
        // PostgreSQL's ROWS FROM (f(), g()).
        if (isWord(item, 'rows') && isWord(items[k + 1], 'from')) continue;
        expect = false;
        if (isName(item)) {
          k = this.relation(items, k, scope);
          continue;
        }
        if (item.kind === 'literal' && item.text !== undefined && /^[\p{L}_][\p{L}\p{N}_$]*$/u.test(item.text)) {
          this.found.push({ name: item.text, qualifier: null, quoted: true, at: item.at, implicitRecursion: scope.inBodyOf(item.text), readBy: 'both' });
          continue;
        }
      }
      if (item.kind === 'word') {
        if (item.lower === 'from' && !state.inArguments && !isWord(previous, 'distinct')) {
          inFrom = true;
          expect = true;
        } else if (item.lower === 'join') {
          inFrom = true;
          expect = true;
        } else if (item.lower === 'table' && (previous === undefined || isWord(previous, 'union', 'intersect', 'except', 'all', 'distinct'))) {
          expect = true;
        } else if (item.lower === 'in' && !state.inArguments && isName(items[k + 1]) && !isWord(items[k - 2], 'for')) {
          // SQLite's `x IN orders`, a table's single column (PostgreSQL needs parentheses; DuckDB's `[x FOR x IN list]` is a list).
          expect = true;
        } else if (ENDS_FROM.has(item.lower)) {
          inFrom = false;
        }
      } else if (item.kind === 'punct' && item.text === ',' && inFrom) {
        expect = true;
      } else if (item.kind === 'punct' && item.text === ';') {
        inFrom = false;
      }
    }
  }

  /** A parenthesis where a relation goes: a subquery, or a parenthesised join `(a JOIN b ON ...)`. */
  private tableItem(group: Group, scope: Scope): void {
    const first = group.items[0];
    const join = first?.kind === 'group' || first?.kind === 'quoted' || (first?.kind === 'word' && !STARTS_QUERY.has(first.lower));
    if (join) this.plain(group.items, 0, scope, { inFrom: true, expect: true, inArguments: false });
    else this.sequence(group.items, scope);
  }

  /** The name at `k` (possibly qualified) in a relation's place; returns the index of its last part. */
  private relation(items: readonly Item[], k: number, scope: Scope): number {
    const parts: Array<Extract<Token, { kind: 'word' | 'quoted' }>> = [items[k] as Extract<Token, { kind: 'word' | 'quoted' }>];
    let last = k;
    while (isPunct(items[last + 1], '.') && isName(items[last + 2])) {
      parts.push(items[last + 2] as Extract<Token, { kind: 'word' | 'quoted' }>);
      last += 2;
    }
    // A table function (`generate_series(1, 3)`, `json_each(...)`): its arguments are scanned as the next item.
    if (items[last + 1]?.kind === 'group') return last;
    const token = parts[parts.length - 1]!;
    const qualifier = parts.length > 1 ? parts.slice(0, -1).map(nameOf).join('.') : null;
    const name = nameOf(token);
    if (qualifier !== null || !scope.has(name)) {
      this.found.push({ name, qualifier, quoted: token.kind === 'quoted', at: token.at, implicitRecursion: qualifier === null && scope.inBodyOf(name), readBy: 'both' });
    }
    return last;
  }
}

function startsMainQuery(item: Item | undefined): boolean {
  return item?.kind === 'group' || (item?.kind === 'word' && ['select', 'values', 'table', 'from'].includes(item.lower));
}

/** Whether a CTE body is a compound SELECT at its own level (`... UNION [ALL] ...`), the shape of a recursive CTE. */
function compound(items: readonly Item[]): boolean {
  return items.some((item) => isWord(item, 'union'));
}

function read(sql: string, comments: Comments): SqlRelation[] {
  const reader = new Reader();
  reader.sequence(nest(tokenize(sql, comments)), new Scope());
  return reader.found;
}

/** The relations `sql` reads, in the order they appear (a relation read twice is listed twice). */
export function readRelations(sql: string): SqlRelation[] {
  const nested = read(sql, 'nested');
  if (!sql.includes('/*')) return nested;
  const key = (r: SqlRelation): string => `${r.at} ${r.qualifier ?? ''} ${r.name}`;
  const flat = read(sql, 'flat');
  const inFlat = new Set(flat.map(key));
  const inNested = new Set(nested.map(key));
  const marked = nested.map((r): SqlRelation => (inFlat.has(key(r)) ? r : { ...r, readBy: 'nested' }));
  const onlyFlat = flat.filter((r) => !inNested.has(key(r))).map((r): SqlRelation => ({ ...r, readBy: 'flat' }));
  return [...marked, ...onlyFlat].sort((a, b) => a.at - b.at);
}

const isSemicolon = (token: Token): boolean => token.kind === 'punct' && token.text === ';';

/**
 * The tokens statements are made of, by one reading of the comments: `[...]` runs are names
 * wherever they are (`SELECT 1 AS [a;b]` is SQLite's name; elsewhere a `;` inside is invalid anyway).
 */
const statementTokens = (sql: string, comments: Comments): Token[] => tokenize(sql, comments, true);

/** The statements of a text by one reading of its comments: runs of tokens between semicolons. */
function statementsBy(sql: string, comments: Comments): number {
  let count = 0;
  let open = false;
  for (const token of statementTokens(sql, comments)) {
    if (isSemicolon(token)) open = false;
    else if (!open) {
      open = true;
      count++;
    }
  }
  return count;
}

/**
 * How many statements the text holds (semicolons outside literals, quoted names and comments
 * separate them; empty ones do not count), by one reading of block comments or, without one,
 * by the reading that finds fewer: a text is taken for several statements only when every
 * engine would read it so.
 */
export function statementCount(sql: string, comments?: Comments): number {
  if (comments !== undefined) return statementsBy(sql, comments);
  const nested = statementsBy(sql, 'nested');
  return sql.includes('/*') ? Math.min(nested, statementsBy(sql, 'flat')) : nested;
}

/** The refusal of spec SQL that holds more than one statement (`count` of them, where known): plan and the warehouses give this one. */
export function moreThanOneStatement(sql: string, count?: number): string {
  return (
    `spec SQL must be exactly one statement${count === undefined ? '' : `, and this is ${count}`}: keep the one SELECT that produces the partition ` +
    `(a semicolon outside a string or comment ends a statement): ${sql.trim().slice(0, 300)}`
  );
}

/**
 * Why spec SQL is refused for holding more than one statement (undefined when it holds one at
 * most), counted as `statementCount` counts: plan without an engine, a warehouse by its own
 * reading of comments.
 */
export function extraStatements(sql: string, comments?: Comments): string | undefined {
  const count = statementCount(sql, comments);
  return count <= 1 ? undefined : moreThanOneStatement(sql, count);
}

/**
 * The text of a statement as a warehouse runs it, wrapped in its own SELECT: from after any
 * leading empty statements (`; SELECT 1`) to the end of its last token, without the
 * semicolons, comments and whitespace after it, which would end the wrapper early
 * (`SELECT 1; -- note`). The text unchanged but trimmed when it holds no statement.
 */
export function statementText(sql: string, comments: Comments): string {
  const tokens = statementTokens(sql, comments);
  let start = 0;
  let first = 0;
  while (first < tokens.length && isSemicolon(tokens[first]!)) start = tokens[first++]!.end;
  let last = tokens.length - 1;
  while (last >= first && isSemicolon(tokens[last]!)) last--;
  return last < first ? sql.trim() : sql.slice(start, tokens[last]!.end).trim();
}

/**
 * The first empty quoted name (`""`, or SQLite's `` ` ` ``) in the text, by either reading of
 * block comments, and whether it follows AS (a selected expression's name); undefined without
 * one. SQLite takes it for a name of no characters, PostgreSQL and DuckDB refuse it as they
 * parse, each in its own words.
 */
export function emptyQuotedName(sql: string): { at: number; alias: boolean } | undefined {
  const readings: Comments[] = sql.includes('/*') ? ['nested', 'flat'] : ['nested'];
  for (const comments of readings) {
    const tokens = tokenize(sql, comments);
    const i = tokens.findIndex((t) => t.kind === 'quoted' && t.text === '' && (sql[t.at - 1] === '"' || sql[t.at - 1] === '`'));
    if (i < 0) continue;
    const previous = tokens[i - 1];
    return { at: tokens[i]!.at - 1, alias: previous?.kind === 'word' && previous.lower === 'as' };
  }
  return undefined;
}

/** The refusal of spec SQL with an empty quoted name (`emptyQuotedName`): plan and the warehouses give this one. */
export function emptyNameRefusal(sql: string, found: { alias: boolean }): string {
  const what = found.alias ? 'names a selected column "" (a name of no characters)' : 'holds an empty quoted name ("")';
  return (
    `spec SQL ${what}, which the warehouses do not read alike (SQLite takes it for a name, PostgreSQL and DuckDB refuse it): ` +
    `give every selected expression a name of its own (AS name): ${sql.trim().slice(0, 200)}`
  );
}
