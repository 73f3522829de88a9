/**
 * The SQLite dialect: one file in WAL mode, so that several processes on one host can share
 * it. Writers take turns (`BEGIN IMMEDIATE`), and in one process the warehouse runs its
 * transactions one at a time: better-sqlite3 has one connection, and its own transaction
 * wrapper cannot span an `await`, so transactions and savepoints are explicit statements.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BackfillError } from '../../../core/errors.ts';
import { UNBOUND_PARAMETER_FIX } from '../../../core/sql-parameters.ts';
import { moreThanOneStatement } from '../../../core/sql-relations.ts';
import { schemaField, sqliteNamespace } from '../../../core/openlineage.ts';
import type { ValueKind } from '../checksum.ts';
import type { Dialect, Params, Session, SpecSql, SpecStatement, Wanted } from '../dialect.ts';
import type { Codec, ColumnType, InternalTable } from '../ledger.ts';
import { PARTITION_COLUMN, VERSION_COLUMN, namingSelect, notASelect, outsideScope, quoteIdent, quoteLiteral, scopedSelect, singleStatement, startsAsQuery, versionsTable } from '../sql.ts';
import { InvalidDatasetError, SqlError, SqlRefusedError, type Bindings, type DatasetFacts, type Row, type SqlValue } from '../types.ts';
import { SqlWarehouse } from '../warehouse.ts';
import { widerOn } from '../widen.ts';

const ROWS_PER_BATCH = 2000;

function wrapSqlError(error: unknown, sql: string): never {
  if (error instanceof RangeError && /named parameter/.test(error.message)) {
    throw new SqlError(`${error.message}: ${UNBOUND_PARAMETER_FIX}`);
  }
  if (error instanceof RangeError && /more than one statement/.test(error.message)) {
    throw new SqlRefusedError(moreThanOneStatement(sql));
  }
  if (error instanceof Database.SqliteError && ['SQLITE_ERROR', 'SQLITE_RANGE', 'SQLITE_MISMATCH'].includes(error.code)) {
    throw new SqlError(`${error.message} in SQL: ${sql.trim().slice(0, 300)}`);
  }
  throw error;
}

/**
 * better-sqlite3 binds every JavaScript number as a REAL; whole numbers go as BigInt so that
 * SQLite does integer arithmetic with them, as PostgreSQL does (`amount * :rate / 100`).
 */
function integers(bindings: Bindings): Bindings {
  const out: Bindings = {};
  for (const [name, value] of Object.entries(bindings)) out[name] = typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : value;
  return out;
}

function defined(params: Params): Params {
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
}

const CODEC: Codec = {
  json: (value) => JSON.stringify(value),
  fromJson: <T>(value: unknown) => JSON.parse(value as string) as T,
  bool: (value) => (value ? 1 : 0),
  fromBool: (value) => value === 1 || value === true,
  fromTime: (value) => String(value),
};

/** Types that hold every value of the types before them; anything else (BOOLEAN) widens to TEXT. */
const LADDER = ['INTEGER', 'REAL', 'TEXT'];

/** The narrower of two column types that holds the values of both (PostgreSQL's ladder, in SQLite's types). */
export function widerType(a: string, b: string): string {
  return widerOn(LADDER, a, b);
}

/**
 * The type a column declared `have` takes to hold values that need `wanted`. An untyped column
 * (spec SQL's, or one whose first values were all NULL) keeps each value as it comes, and an
 * INTEGER column holds booleans as 1 and 0, as every boolean column did before BOOLEAN was declared.
 */
function fitted(have: string, wanted: string): string {
  if (have === '' || (have === 'INTEGER' && wanted === 'BOOLEAN')) return have;
  return widerType(have, wanted);
}

/** How the checksum reads a column of this declared type (as PostgreSQL's `kindOf`): numbers, booleans, text. */
function kindOfDeclared(type: string | null): ValueKind {
  const t = (type ?? '').toUpperCase();
  if (t === 'BOOLEAN') return 'boolean';
  if (t === 'INTEGER' || t === 'REAL') return 'number';
  return t === 'TEXT' ? 'text' : 'unknown';
}

/**
 * A number as PostgreSQL's `float8out` writes a double precision as text: the shortest digits
 * that read back as the same number, in exponent form below 1e-4 and from 1e15 on.
 */
export function pgFloatText(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  if (Object.is(n, -0)) return '-0';
  const [mantissa, exponent] = n.toExponential().split('e') as [string, string];
  const e = Number(exponent);
  if (e < -4 || e >= 15) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  return String(n);
}

/**
 * A stored value as the text PostgreSQL makes of it when its column widens to text (`::text`):
 * a boolean (1 or 0 in a BOOLEAN column) as true or false, an integer as its digits, a double
 * as `float8out` writes it. Integers come as BigInt (the function reads them safely).
 */
function widenedText(value: unknown, wasBoolean: unknown): unknown {
  if (typeof value === 'bigint') return wasBoolean === 1n && (value === 0n || value === 1n) ? String(value === 1n) : value.toString();
  if (typeof value === 'number') return pgFloatText(value);
  return value;
}

/**
 * A column of spec SQL's result, as stored: a -0 becomes 0, as a REAL column stores it (and the
 * other engines do), where a column without a type would keep it.
 */
function withoutNegativeZero(column: string): string {
  return `CASE WHEN typeof(${column}) = 'real' AND ${column} = 0 THEN 0.0 ELSE ${column} END`;
}

const TYPES: Record<ColumnType, string> = { text: 'TEXT', key: 'TEXT', integer: 'INTEGER', bigint: 'INTEGER', number: 'REAL', boolean: 'INTEGER', json: 'TEXT', time: 'TEXT' };

/**
 * A file in WAL mode is read with its `-shm` file beside it: a read-only connection makes it
 * when it is missing (the main file stays as it is), which it cannot in a directory it may not
 * write in. Said at once, with the fix, rather than as SQLite's "attempt to write a readonly database".
 */
function assertReadable(db: Database.Database, location: string): void {
  try {
    db.pragma('schema_version', { simple: true });
  } catch (error) {
    db.close();
    // The file opened: what cannot be opened (or made) now is its -shm or -wal file (CANTOPEN where even root may not write there).
    if (error instanceof Database.SqliteError && ['SQLITE_READONLY_DIRECTORY', 'SQLITE_READONLY_CANTINIT', 'SQLITE_CANTOPEN'].includes(error.code)) {
      throw new BackfillError(
        'invalid_argument',
        `cannot read the SQLite warehouse ${location}: it is in WAL mode, and reading it needs its ${basename(location)}-shm file, which is not there and cannot be made in ${dirname(location)} (this user may not write there: ${error.message}). ` +
          'Read it as a user who may write in that directory (the file itself may stay read-only), or read a copy of it',
        'warehouse',
      );
    }
    throw error;
  }
}

export class SqliteDialect implements Dialect {
  readonly kind = 'sqlite' as const;
  readonly concurrent = false;
  readonly codec = CODEC;
  readonly scopeTable = 'temp.backfill_scope';
  readonly forShare = '';
  readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /** Spec SQL that passed the door, by what it was checked against (the schema's version included). */
  readonly passed = new Set<string>();

  /**
   * `readOnly`: the file is opened read-only, as it is (it must exist; it may be read-only or
   * another user's), and nothing in it is set up or changed.
   */
  constructor(
    readonly location: string,
    options: { readOnly?: boolean } = {},
  ) {
    if (options.readOnly) {
      this.db = new Database(location, { readonly: true, fileMustExist: true });
      assertReadable(this.db, location);
    } else {
      if (location !== ':memory:') mkdirSync(dirname(location), { recursive: true });
      this.db = new Database(location);
      this.db.pragma('journal_mode = WAL');
      // FULL: a publish that returned survives a power loss (NORMAL may lose the last ones in WAL mode).
      this.db.pragma('synchronous = FULL');
    }
    this.db.pragma('busy_timeout = 15000');
    this.db.function('backfill_widened_text', { deterministic: true, safeIntegers: true }, widenedText);
    this.db.exec(`CREATE TEMP TABLE IF NOT EXISTS backfill_scope (node TEXT NOT NULL, partition TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (node, partition))`);
  }

  table(name: InternalTable): string {
    return `main.backfill_${name}`;
  }

  indexDdl(name: string, table: InternalTable, columns: readonly string[]): string {
    return `CREATE INDEX IF NOT EXISTS main.backfill_${name} ON backfill_${table} (${columns.join(', ')})`;
  }

  versionsTable(node: string): string {
    return `main.${quoteIdent(versionsTable(node))}`;
  }

  jsonEach(param: string): string {
    return `json_each(${param})`;
  }

  columnType(type: ColumnType): string {
    return TYPES[type];
  }

  async tableColumns(session: Session, table: InternalTable): Promise<string[]> {
    return (await session.all<{ name: string }>(`SELECT name FROM pragma_table_info(:table, 'main')`, { table: `backfill_${table}` })).map((c) => c.name);
  }

  /**
   * The column type one value needs, as PostgreSQL's (`typeOfValue`): a whole number INTEGER, a
   * fraction REAL, a boolean BOOLEAN (stored as 1 or 0), anything else TEXT.
   */
  typeOf(value: unknown): string | null {
    if (value === null || value === undefined) return null;
    if (typeof value === 'number') return Number.isInteger(value) ? 'INTEGER' : 'REAL';
    if (typeof value === 'bigint') return 'INTEGER';
    return typeof value === 'boolean' ? 'BOOLEAN' : 'TEXT';
  }

  /** The narrowest type that holds the values of both, as PostgreSQL's `widerType`: INTEGER < REAL < TEXT, and a boolean with anything else TEXT. */
  widen(a: string, b: string): string {
    return widerType(a, b);
  }

  /** A boolean stays one here: `insertRows` stores it as its column's type has it (1 or 0, or 'true' or 'false' in a TEXT column). */
  value(value: unknown): SqlValue {
    if (value === undefined || value === null) return null;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return value;
    return value instanceof Date ? value.toISOString() : JSON.stringify(value);
  }

  statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  /**
   * SQLite may roll back the whole transaction itself (a full disk, an I/O error, ...): the
   * session then knows the error that ended it, and the transaction throws that error rather
   * than commit (nothing of it is kept) or report what failed after it.
   */
  async transaction<T>(work: (session: Session) => Promise<T>, options: { lock?: string; readOnly?: boolean } = {}): Promise<T> {
    // One writer at a time, across processes too: a writing transaction takes the write lock at once.
    this.db.exec(options.readOnly ? 'BEGIN' : 'BEGIN IMMEDIATE');
    const session = new SqliteSession(this);
    try {
      const result = await work(session);
      session.assertOpen();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // The error that got here says more than the rollback's.
        }
      }
      throw session.endedBy?.error ?? error;
    }
  }

  /** `sqlite://{host}{file}` and `main.{node}`: the file the connection has open (the location may be relative). */
  async lineageDataset(session: Session, node: string): Promise<DatasetFacts> {
    const [db] = await session.all<{ file: string }>("SELECT file FROM pragma_database_list WHERE name = 'main'");
    const file = db && db.file.length > 0 ? db.file : this.location;
    const columns = await session.all<{ name: string; type: string }>("SELECT name, type FROM pragma_table_info(:view, 'main') ORDER BY cid", { view: node });
    return { namespace: sqliteNamespace(hostname(), file), name: `main.${node}`, ...(columns.length > 0 ? { fields: columns.map((c) => schemaField(c.name, c.type)) } : {}) };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** A column of a versions table: its declared type (upper case, '' when it has none), and whether it is NOT NULL. */
type Declared = { name: string; type: string; required: number };
/** A column whose declared type changes. */
type Widening = { from: string; to: string };

/**
 * A value a transform returned (as `SqliteDialect.value` gives it), as its column stores it: in
 * a TEXT column a number or a boolean is the text PostgreSQL stores (`String(value)`, `true`),
 * a boolean elsewhere 1 or 0. (A number would otherwise be bound as a REAL, and text of 1 read `1.0`.)
 */
function stored(value: unknown, text: boolean): unknown {
  if (typeof value === 'boolean') return text ? String(value) : value ? 1 : 0;
  return text && typeof value === 'number' ? String(value) : value;
}

class SqliteSession implements Session {
  private savepoints = 0;
  private readonly db: Database.Database;
  /** The error with which SQLite ended the transaction itself (or a savepoint could not be rolled back). */
  endedBy: { error: unknown } | undefined;

  constructor(private readonly dialect: SqliteDialect) {
    this.db = dialect.db;
  }

  get ended(): boolean {
    return this.endedBy !== undefined;
  }

  /** Throws the error that ended the transaction, if it ended: a statement after it would run on its own, outside any transaction. */
  assertOpen(): void {
    if (!this.endedBy && !this.db.inTransaction) this.endedBy = { error: new Error('SQLite ended the transaction itself (it rolled it back): nothing of it was kept') };
    if (this.endedBy) throw this.endedBy.error;
  }

  /** Runs one statement of the transaction; one that ends it (SQLite rolled it all back) ends the session. */
  private guard<T>(work: () => T): T {
    this.assertOpen();
    try {
      return work();
    } catch (error) {
      if (!this.db.inTransaction) this.endedBy ??= { error };
      throw error;
    }
  }

  private exec(sql: string): void {
    this.guard(() => this.db.exec(sql));
  }

  async all<T = Row>(sql: string, params: Params = {}): Promise<T[]> {
    return this.guard(() => this.dialect.statement(sql).all(defined(params)) as T[]);
  }

  async run(sql: string, params: Params = {}): Promise<void> {
    this.guard(() => this.dialect.statement(sql).run(defined(params)));
  }

  /**
   * `undo`: roll back even when `work` returns (a check that only looks). When `work` throws,
   * its error is the savepoint's: rolled back if SQLite has not ended the transaction already,
   * and if the rollback fails too, the transaction is ended (it must not commit half a write).
   */
  async savepoint<T>(work: () => Promise<T>, undo = false): Promise<T> {
    const name = `backfill_${++this.savepoints}`;
    this.exec(`SAVEPOINT ${name}`);
    let result: T;
    try {
      result = await work();
    } catch (error) {
      if (!this.db.inTransaction) this.endedBy ??= { error };
      else if (!this.endedBy) {
        try {
          this.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
        } catch {
          this.endedBy = { error };
        }
      }
      throw error;
    }
    this.exec(undo ? `ROLLBACK TO ${name}; RELEASE ${name}` : `RELEASE ${name}`);
    return result;
  }

  async lock(): Promise<void> {
    // Writers take turns already: a writing transaction begins IMMEDIATE.
  }

  /**
   * Integers come back exact, as BigInt (safeIntegers): a number would round those above 2^53,
   * and the checksums hash them (`canonicalNumber` hashes a small one as it hashes a number).
   * Every consumer of `stream` takes a bigint (the checksum, the column tallies of a diff).
   * Each column's kind is that of its declared type: a version's checksum records it, so that a
   * restore reads the version's numbers as numbers after its column widened to TEXT.
   */
  async stream(sql: string, params: Params, each: (rows: readonly unknown[][], kinds: readonly ValueKind[]) => void): Promise<void> {
    this.guard(() => {
      const statement = this.db.prepare(sql);
      const kinds = statement.columns().map((c) => kindOfDeclared(c.type));
      let batch: unknown[][] = [];
      for (const row of statement.safeIntegers(true).raw().iterate(defined(params)) as IterableIterator<unknown[]>) {
        batch.push(row);
        if (batch.length === ROWS_PER_BATCH) (each(batch, kinds), (batch = []));
      }
      each(batch, kinds);
    });
  }

  async columns(node: string): Promise<string[] | null> {
    const all = await this.all<{ name: string }>(`SELECT name FROM pragma_table_info(:table, 'main')`, { table: versionsTable(node) });
    return all.length > 0 ? all.map((c) => c.name).filter((c) => !c.startsWith('__')) : null;
  }

  /** The versions table's columns, internal ones too, with their declared types; null when it has none. */
  private async declared(node: string): Promise<Declared[] | null> {
    const all = await this.all<Declared>(`SELECT name, upper(type) AS type, "notnull" AS required FROM pragma_table_info(:table, 'main') ORDER BY cid`, { table: versionsTable(node) });
    return all.length > 0 ? all : null;
  }

  async ensureDataset(node: string, wanted: readonly Wanted[], adopt: boolean): Promise<void> {
    const table = this.dialect.versionsTable(node);
    const existing = await this.declared(node);
    if (existing === null) {
      const [found] = await this.all<{ type: string }>(`SELECT type FROM main.sqlite_schema WHERE name = :node COLLATE NOCASE`, { node });
      if (found && !(found.type === 'view' && adopt)) {
        throw new InvalidDatasetError(
          found.type === 'view'
            ? `dataset '${node}': a view ${node} exists that backfill did not create: set adopt: true on the node to replace it with the dataset's view, or rename the node`
            : `dataset '${node}': a ${found.type} named ${node} exists, and backfill needs the name for the dataset's view: rename the node, or move the ${found.type} out of the way (adopt replaces views only)`,
        );
      }
      const defs = wanted.map((c) => `, ${quoteIdent(c.name)} ${c.type ?? ''}`).join('');
      this.exec(`CREATE TABLE ${table} (${PARTITION_COLUMN} TEXT NOT NULL, ${VERSION_COLUMN} INTEGER NOT NULL${defs})`);
      this.exec(`CREATE INDEX main.${quoteIdent(`${versionsTable(node)}_pk`)} ON ${quoteIdent(versionsTable(node))} (${PARTITION_COLUMN}, ${VERSION_COLUMN})`);
    } else {
      const added = wanted.filter((c) => !existing.some((e) => e.name === c.name));
      const widened = new Map<string, Widening>();
      for (const w of wanted) {
        const have = existing.find((e) => e.name === w.name);
        if (!have || w.type === null) continue;
        const type = fitted(have.type, w.type);
        if (type !== have.type) widened.set(w.name, { from: have.type, to: type });
      }
      for (const column of added) this.exec(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(column.name)} ${column.type ?? ''}`);
      if (widened.size > 0) await this.rebuild(node, widened);
      if (added.length === 0 && widened.size === 0) return;
    }
    const list = ((await this.columns(node)) ?? []).map((c) => `v.${quoteIdent(c)}`).join(', ') || 'NULL AS __empty';
    this.exec(`DROP VIEW IF EXISTS main.${quoteIdent(node)}`);
    this.exec(
      `CREATE VIEW main.${quoteIdent(node)} AS SELECT ${list} FROM ${table} v ` +
        `JOIN ${this.dialect.table('partitions')} p ON p.node = ${quoteLiteral(node)} AND p.partition = v.${PARTITION_COLUMN} AND p.version = v.${VERSION_COLUMN}`,
    );
  }

  /**
   * Widens columns of a dataset's versions table, as PostgreSQL's ALTER COLUMN ... TYPE does:
   * SQLite cannot change a column's type, so the table is made again (its documented way: a new
   * table, the rows copied over, the old one dropped, the new one renamed, its indexes made
   * again), in the publish's transaction. A value of a column widened to TEXT becomes the text
   * PostgreSQL's `::text` makes of it. The caller makes the dataset's view again.
   *
   * Each version's checksum recorded how it read each column (`version_kinds`): a restore reads
   * its numbers, now text, as numbers again. Versions published before SQLite recorded that
   * (their kinds `[]`) get the kind of each column widened now, the others read as before.
   */
  private async rebuild(node: string, widened: ReadonlyMap<string, Widening>): Promise<void> {
    const name = versionsTable(node);
    const fresh = `${name}__widened`;
    const columns = (await this.declared(node)) ?? [];
    const indexes = await this.all<{ sql: string }>(`SELECT sql FROM main.sqlite_schema WHERE type = 'index' AND tbl_name = :name AND sql IS NOT NULL`, { name });
    this.exec(`DROP VIEW IF EXISTS main.${quoteIdent(node)}`);
    const defs = columns.map((c) => `${quoteIdent(c.name)} ${widened.get(c.name)?.to ?? c.type}${c.required ? ' NOT NULL' : ''}`);
    this.exec(`CREATE TABLE main.${quoteIdent(fresh)} (${defs.join(', ')})`);
    const picked = columns.map((c) => {
      const w = widened.get(c.name);
      return w?.to === 'TEXT' ? `backfill_widened_text(${quoteIdent(c.name)}, ${w.from === 'BOOLEAN' ? 1 : 0})` : quoteIdent(c.name);
    });
    this.exec(`INSERT INTO main.${quoteIdent(fresh)} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) SELECT ${picked.join(', ')} FROM main.${quoteIdent(name)}`);
    this.exec(`DROP TABLE main.${quoteIdent(name)}`);
    // Views of the user's over the dataset's view (dropped above) must not stop the rename: it leaves them as they are.
    const legacy = this.db.pragma('legacy_alter_table', { simple: true }) as number;
    this.exec('PRAGMA legacy_alter_table = ON');
    try {
      this.exec(`ALTER TABLE main.${quoteIdent(fresh)} RENAME TO ${quoteIdent(name)}`);
    } finally {
      if (!legacy && this.db.inTransaction) this.db.exec('PRAGMA legacy_alter_table = OFF');
    }
    for (const { sql } of indexes) this.exec(sql);
    const kinds = [...widened].map(([column, w]) => `WHEN ${quoteLiteral(column)} THEN ${quoteLiteral(kindOfDeclared(w.from))}`).join(' ');
    await this.run(
      `UPDATE ${this.dialect.table('ledger')} SET version_kinds = (SELECT json_group_array(CASE j.value ${kinds} ELSE 'unknown' END) FROM (SELECT value FROM json_each(version_columns) ORDER BY key) j)
       WHERE node = :node AND version_kinds = '[]' AND json_array_length(version_columns) > 0`,
      { node },
    );
  }

  async insertRows(table: string, partition: string, version: number, columns: readonly string[], rows: readonly unknown[][]): Promise<void> {
    const insert = this.db.prepare(
      `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${columns.map((n) => `, ${quoteIdent(n)}`).join('')}) VALUES (?, ?${columns.map(() => ', ?').join('')})`,
    );
    const text = columns.length > 0 ? this.declaredText(table, columns) : [];
    this.guard(() => {
      for (const row of rows) insert.run(partition, version, ...row.map((value, i) => stored(value, text[i] === true)));
    });
  }

  /** Per column, whether the table declares it TEXT (prepared afresh: a prepared statement keeps the types it was prepared with). */
  private declaredText(table: string, columns: readonly string[]): boolean[] {
    const declared = this.guard(() => this.db.prepare(`SELECT ${columns.map(quoteIdent).join(', ')} FROM ${table} LIMIT 0`).columns());
    return declared.map((c) => (c.type ?? '').toUpperCase() === 'TEXT');
  }

  /** The one door for spec SQL: SQLite's own parser takes it alone as exactly one read-only query, in scope. */
  async spec(spec: SpecSql): Promise<SpecStatement> {
    const text = singleStatement(spec.sql, 'flat');
    if (!startsAsQuery(text)) throw new SqlRefusedError(notASelect(spec.sql));
    const bindings = integers(spec.bindings);
    await this.check(text, spec, bindings);
    const body = scopedSelect(text, spec.scope ?? [], spec.given ?? []);
    const run = <T>(work: () => T): Promise<T> => {
      try {
        return Promise.resolve(this.guard(work));
      } catch (error) {
        return wrapSqlError(error, spec.sql);
      }
    };
    return {
      rows: () => run(() => this.db.prepare(body).all(bindings) as Row[]),
      columns: () => run(() => this.ownColumns(namingSelect(text, spec.scope ?? [], spec.given ?? []), body).map((name) => ({ name, type: null }))),
      insertInto: (table, columns, partition, version) =>
        run(() => {
          const cols = columns.map((c) => `, ${quoteIdent(c)}`).join('');
          const picked = columns.map((c) => `, ${withoutNegativeZero(`q.${quoteIdent(c)}`)}`).join('');
          const insert = `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${cols}) SELECT :__partition, :__version${picked} FROM (\n${body}\n) AS q`;
          this.db.prepare(insert).run({ ...bindings, __partition: partition, __version: version });
        }),
      measure: (aggregate) =>
        run(() => {
          const { n } = this.db.prepare(`SELECT ${aggregate} AS n FROM (\n${body}\n) AS v`).get(bindings) as { n: number | bigint | null };
          return n === null ? null : Number(n);
        }),
    };
  }

  /** The names of `naming`'s columns (`namingSelect`), or where it does not prepare, of `body`'s. */
  private ownColumns(naming: string | undefined, body: string): string[] {
    if (naming !== undefined) {
      try {
        return this.db.prepare(naming).columns().map((c) => c.name);
      } catch {
        // Read from the statement as it runs.
      }
    }
    return this.db.prepare(body).columns().map((c) => c.name);
  }

  /**
   * Prepares the statement alone, with each name it may read shadowed by an empty view of the
   * same columns: one statement only (better-sqlite3 refuses more), one that only reads
   * (SQLite's verdict), and, inside a partition, one that opens none of backfill's tables (what
   * it opens is in its program, EXPLAIN): with every dataset's plain name shadowed, anything it
   * opens of backfill's it reached another way.
   */
  private async check(text: string, spec: SpecSql, bindings: Bindings): Promise<void> {
    const given = [...(spec.scope ?? []), ...(spec.given ?? [])].map((r) => [r.name, r.columns] as const);
    const key = JSON.stringify([this.db.pragma('main.schema_version', { simple: true }), given, spec.scope !== undefined, text]);
    if (this.dialect.passed.has(key)) return;
    const shadows = new Map<string, readonly string[]>(given);
    if (spec.scope) {
      // The other datasets, by their plain names, show their published partitions: shadowed too.
      const datasets = this.db
        .prepare(
          `SELECT substr(m.name, 1, length(m.name) - 10) AS node, c.name AS c FROM main.sqlite_schema m
           LEFT JOIN pragma_table_info(m.name) c ON substr(c.name, 1, 2) <> '__' WHERE m.type = 'table' AND substr(m.name, -10) = '__versions'`,
        )
        .all() as Array<{ node: string; c: string | null }>;
      for (const { node, c } of datasets) if (!given.some(([name]) => name === node)) shadows.set(node, [...(shadows.get(node) ?? []), ...(c === null ? [] : [c])]);
    }
    await this.savepoint(async () => {
      for (const [name, named] of shadows) {
        const columns = named.length > 0 ? named : ['__empty'];
        this.exec(`CREATE TEMP VIEW ${quoteIdent(name)} (${columns.map(quoteIdent).join(', ')}) AS SELECT ${columns.map(() => 'NULL').join(', ')} WHERE 0`);
      }
      let statement: Database.Statement;
      try {
        statement = this.db.prepare(text);
      } catch (error) {
        return wrapSqlError(error, spec.sql);
      }
      if (!statement.reader || !statement.readonly) throw new SqlRefusedError(notASelect(spec.sql));
      if (!spec.scope) return;
      let program: Array<{ opcode: string; p2: number; p3: number; p4: string | null }>;
      try {
        program = this.db.prepare(`EXPLAIN ${text}`).all(bindings) as typeof program;
      } catch (error) {
        return wrapSqlError(error, spec.sql);
      }
      const roots = this.db.prepare(`SELECT 0 AS db, rootpage, tbl_name FROM main.sqlite_schema UNION ALL SELECT 1, rootpage, tbl_name FROM temp.sqlite_schema`).all() as Array<{
        db: number;
        rootpage: number;
        tbl_name: string;
      }>;
      const own = (name: string, db: number) => (db === 0 ? name.startsWith('backfill_') || name.endsWith('__versions') : name === 'backfill_scope');
      const rowFunctions = program.some((op) => op.opcode === 'VOpen') ? this.rowFunctionTables() : new Set<string>();
      for (const op of program) {
        if (op.opcode === 'VOpen' && !rowFunctions.has(String(op.p4))) {
          throw outsideScope(`a virtual table other than json_each and json_tree (dbstat shows the pages of every partition and of the ledger)`, spec);
        }
        if (!/^(OpenRead|OpenWrite|ReopenIdx)$/.test(op.opcode)) continue;
        const table = roots.find((r) => r.db === op.p3 && r.rootpage === op.p2);
        if (table && op.p3 === 0 && table.tbl_name.startsWith('sqlite_stat')) {
          throw outsideScope(`${table.tbl_name}, whose statistics count the rows of every partition,`, spec);
        }
        if (table && own(table.tbl_name, op.p3)) {
          throw outsideScope(`backfill's table ${table.tbl_name} (a qualified name such as main.<upstream>, a versions table, a view over a dataset, or a dataset that is not an upstream)`, spec);
        }
      }
    }, true);
    if (this.dialect.passed.size >= 1000) this.dialect.passed.clear();
    this.dialect.passed.add(key);
  }

  /**
   * The virtual tables a partition's SQL may open: the row functions json_each and json_tree.
   * A program names the table it opens with VOpen only by its address (`vtab:<address>`), so
   * theirs are read from a program of this connection that opens them.
   */
  private rowFunctionTables(): Set<string> {
    const program = this.db.prepare(`EXPLAIN SELECT 1 FROM json_each('[]'), json_tree('[]')`).all() as Array<{ opcode: string; p4: string | null }>;
    return new Set(program.filter((op) => op.opcode === 'VOpen').map((op) => String(op.p4)));
  }
}

/** A warehouse in a SQLite file, on the calling thread. */
export class SqliteWarehouse extends SqlWarehouse {
  constructor(location: string, options: { readOnly?: boolean } = {}) {
    super(new SqliteDialect(location, options), options);
  }
}
