/**
 * The lake dialect: a directory of Parquet files, written and read with DuckDB, that any
 * Parquet reader can read without backfill (see `layout.ts`). Every version of a partition is
 * a Parquet file of its own, immutable once written; the ledger, the published pointers, the
 * rollback audit, the leases and each dataset's view live in a DuckDB catalogue inside the
 * directory (`_backfill/catalog.duckdb`), which one process at a time holds (`catalogue.ts`).
 *
 * A publish stages the new version's rows in a temporary table, checks them there, and at
 * commit writes them to the version's file (durably, under its final name) before the
 * catalogue's transaction commits: a version in the ledger always has its file. Every new
 * version is written so, rows or not, over any file a holder that died before its commit left
 * under that version's number (which the ledger never got, so it is given again). The published
 * files in the dataset's directory follow the pointers right after the commit, still under the
 * lock; a holder that dies in between leaves the moves recorded in the catalogue, and the next
 * holder finishes them before anything else, as the holder itself does at its next write, or
 * when it lets go of the catalogue, when a move failed (a warning says so).
 */
import { chmodSync, existsSync, mkdirSync, rmSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DuckDBConnection, DuckDBInstance, type DuckDBAppender, type DuckDBValue } from '@duckdb/node-api';
import {
  AfterCommitError,
  InvalidDatasetError,
  PARTITION_COLUMN,
  PublishApartError,
  SqlError,
  SqlRefusedError,
  SqlWarehouse,
  VERSION_COLUMN,
  bindPositional,
  deadlineError,
  namingSelect,
  notASelect,
  outsideScope,
  positionalParameters,
  publishedOf,
  quoteIdent,
  quoteLiteral,
  scopedSelect,
  singleStatement,
  timeLeft,
  versionsTable,
  type Codec,
  type ColumnType,
  type DatasetFacts,
  type Dialect,
  type InternalTable,
  type Params,
  type PartitionInput,
  type PinnedInput,
  type PublishRequest,
  type PublishStart,
  type Row,
  type Session,
  type SpecSql,
  type SpecStatement,
  type ValueKind,
  type Wanted,
} from '../../../warehouse.ts';
import { CATALOG, CatalogueHold, type HoldOptions } from './catalogue.ts';
import { LakeLayout, fileKey, foldedKey, mirror, settleAll, sweepIncoming, sweepTemporary, windowsDevice } from './layout.ts';
import { PreparedStatements } from './statements.ts';
import { ACTS_OUTSIDE, ROW_FUNCTIONS, fileShaped, macrosThatRead, parseQuery, shown, type ParsedQuery } from './spec-sql.ts';
import { castFor, jsValue, keptAsText, kindOf, rawValue, storedColumn, toStored, typeName, typeOfValue, widerType } from './values.ts';

const CODEC: Codec = {
  json: (value) => JSON.stringify(value),
  fromJson: <T>(value: unknown) => JSON.parse(value as string) as T,
  bool: (value) => value,
  fromBool: (value) => value === true,
  fromTime: (value) => String(value),
};

/**
 * A column of spec SQL's result, as staged: NaN (which DuckDB's floating types hold) becomes
 * NULL, as SQLite stores it and as a transform's NaN is stored, and -0 becomes 0, which a
 * Parquet file keeps only where no 0 shares its column's dictionary, so that the same SQL gives
 * the same rows and checksums on every engine, and the file holds the rows that were checked.
 * The cast is the one the INSERT would make.
 */
function withoutNaN(column: string, type: string | undefined): string {
  if (type !== 'DOUBLE' && type !== 'FLOAT') return column;
  const value = `CAST(${column} AS ${type})`;
  return `CASE WHEN ${value} = 0 THEN 0::${type} ELSE NULLIF(${value}, 'NaN'::${type}) END`;
}

// Times are ISO 8601 text, as the protocol writes them: they sort in time order and read back unchanged.
const TYPES: Record<ColumnType, string> = { text: 'VARCHAR', key: 'VARCHAR', integer: 'INTEGER', bigint: 'BIGINT', number: 'DOUBLE', boolean: 'BOOLEAN', json: 'VARCHAR', time: 'VARCHAR' };

/** DuckDB's errors that the same SQL will hit again. */
const SQL_ERRORS = /^(Parser|Binder|Catalog|Conversion|Invalid Input|Out of Range|Not implemented|Invalid type|Constraint|Permission) Error/;

function wrapSqlError(error: unknown, sql: string): never {
  if (error instanceof Error && SQL_ERRORS.test(error.message)) {
    const message = error.message.split('\n')[0]!;
    if (/^Permission Error/.test(message)) throw new SqlRefusedError(`${message}: spec SQL reads only the lake's datasets, by name: ${shown(sql)}`);
    throw new SqlError(`${message} in SQL: ${shown(sql)}`);
  }
  throw error;
}

/** A dataset's columns and their types, as the catalogue keeps them (type VARCHAR for a column that only held NULLs). */
type Column = { name: string; type: string };

/** The catalogue's own tables besides the protocol's: the datasets' columns and views, and pointer moves not yet mirrored in files. */
const OWN_TABLES = [
  `CREATE TABLE IF NOT EXISTS ${CATALOG}.backfill.datasets (node VARCHAR NOT NULL PRIMARY KEY, columns VARCHAR NOT NULL, view VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS ${CATALOG}.backfill.mirror (node VARCHAR NOT NULL, partition VARCHAR NOT NULL, PRIMARY KEY (node, partition))`,
];

/** Each dataset's partitions by the name their files have on a case-insensitive file system (`foldedKey`): one partition per name. */
const PARTITION_NAMES = `${CATALOG}.backfill.partition_names`;

const ROWS_PER_INSERT = 500;
/** Records of pointer moves inserted by one statement, at most. */
const MIRROR_RECORDS_PER_INSERT = 200;
/** Records of mirrored pointer moves kept before a write transaction forgets them. */
const MIRRORED_KEPT = 200;

export type LakeOptions = HoldOptions & {
  /** For reading only: the catalogue is attached read-only, nothing in the lake is created or moved, and writes are refused. */
  readOnly?: boolean;
  /** Where what went wrong without failing a call is told (a file move after a commit; default `console.warn`). */
  warn?: (message: string) => void;
};

/** Whether `value` goes into a column of `type` as it is, through the appender. */
function appendable(value: unknown, type: string): boolean {
  if (value === null || value === undefined) return true;
  switch (type) {
    case 'VARCHAR':
      return typeof value === 'string';
    case 'BIGINT':
      return (typeof value === 'number' && Number.isSafeInteger(value)) || (typeof value === 'bigint' && BigInt.asIntN(64, value) === value);
    case 'HUGEINT':
      return (typeof value === 'number' && Number.isSafeInteger(value)) || (typeof value === 'bigint' && BigInt.asIntN(128, value) === value);
    case 'DOUBLE':
      return typeof value === 'number';
    case 'BOOLEAN':
      return typeof value === 'boolean';
    default:
      return false;
  }
}

function append(appender: DuckDBAppender, value: unknown, type: string): void {
  if (value === null || value === undefined) appender.appendNull();
  else if (type === 'VARCHAR') appender.appendVarchar(value as string);
  else if (type === 'BIGINT') appender.appendBigInt(BigInt(value as number | bigint));
  else if (type === 'HUGEINT') appender.appendHugeInt(BigInt(value as number | bigint));
  else if (type === 'DOUBLE') appender.appendDouble(value as number);
  else appender.appendBoolean(value as boolean);
}

/** (node, partition) pairs as a VALUES list of `:name` parameters (DuckDB's json_each costs more). */
function pairs(list: ReadonlyArray<readonly [string, string]>): { values: string; params: Params } {
  const params: Params = {};
  const values = list.map(([node, partition], i) => ((params[`n${i}`] = node), (params[`p${i}`] = partition), `(:n${i}, :p${i})`)).join(', ');
  return { values, params };
}

/** (node, partition) pairs as a VALUES list of (node, folded key, partition). */
function names(list: ReadonlyArray<readonly [string, string]>): { values: string; params: Params } {
  const params: Params = {};
  const values = list.map(([node, partition], i) => ((params[`n${i}`] = node), (params[`f${i}`] = foldedKey(partition)), (params[`p${i}`] = partition), `(:n${i}, :f${i}, :p${i})`)).join(', ');
  return { values, params };
}

/** Runs every step in turn, whatever one throws, then throws the first error. */
async function allSteps(steps: ReadonlyArray<() => unknown>): Promise<void> {
  let first: { error: unknown } | undefined;
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      first ??= { error };
    }
  }
  if (first) throw first.error;
}

export class LakeDialect implements Dialect {
  readonly kind = 'lake' as const;
  readonly concurrent = false;
  // A transaction's commit (and the catalogue's sync) is most of a small publish's cost: those waiting commit together.
  readonly groupsPublishes = true;
  readonly codec = CODEC;
  readonly scopeTable = 'temp.main.backfill_scope';
  readonly forShare = '';
  readonly location: string;
  readonly layout: LakeLayout;
  readonly hold: CatalogueHold;
  private opened: Promise<{ instance: DuckDBInstance; connection: DuckDBConnection; statements: PreparedStatements }> | undefined;
  /** Pointer moves mirrored in files, whose records the next write transaction (or the release) clears. */
  mirrored: Array<[node: string, partition: string]> = [];
  /**
   * The pointer moves recorded in the catalogue's mirror table (`node\0partition`), mirrored
   * or not: while this process holds the catalogue nobody else changes the table, so it knows
   * them (read at attach, changed by its commits), and a move recorded already needs no statement.
   */
  readonly recorded = new Set<string>();
  /** Own statements with their `:name` parameters numbered, once per text. */
  readonly numbered = new Map<string, { text: string; names: string[] }>();
  /**
   * While this process holds the catalogue (no one else changes it): the datasets' columns as
   * committed, and the datasets whose view reads their published files already. Forgotten at
   * each attach.
   */
  datasets: Map<string, Column[]> | undefined;
  readonly filesViews = new Set<string>();
  /** Work after a commit failed (a file move): the next write transaction finishes it first (`recover`). */
  private unfinished = false;
  /** Whether this process has removed what killed writers left in the lake (at its first hold). */
  private swept = false;
  /** The partitions recorded under a dataset's folded keys (`node\0folded`), as read or committed while held. */
  readonly partitionNames = new Map<string, string>();
  private readonly readOnly: boolean;
  private readonly warn: (message: string) => void;
  /** A reader's: where it copies the catalogue while another process holds it (outside the lake). */
  private readonly snapshots: string | undefined;

  constructor(root: string, options: LakeOptions = {}) {
    this.location = resolve(root);
    this.layout = new LakeLayout(this.location);
    this.readOnly = options.readOnly === true;
    this.warn = options.warn ?? ((message) => console.warn(message));
    this.snapshots = this.readOnly ? join(tmpdir(), `backfill-lake-reader-${process.pid}-${randomBytes(4).toString('hex')}`) : undefined;
    // A reader leaves what a holder that died did not finish to the next writer: it moves no file.
    this.hold = new CatalogueHold(
      () => this.connection(),
      this.layout,
      async () => (this.readOnly ? this.forget() : this.recover()),
      async () => {
        await this.finishUnfinished();
        await this.clearMirrored();
      },
      { ...options, snapshots: this.snapshots },
    );
  }

  /** The statements kept prepared on the process's connection. */
  async statements(): Promise<PreparedStatements> {
    await this.connection();
    return (await this.opened!).statements;
  }

  /** The process's DuckDB: in memory, with the catalogue attached while held, kept inside the lake. */
  async connection(): Promise<DuckDBConnection> {
    this.opened ??= (async () => {
      if (!this.readOnly) {
        mkdirSync(this.layout.catalogDir, { recursive: true });
        sweepTemporary(this.layout, hostname(), Date.now());
      }
      const instance = await DuckDBInstance.create(':memory:');
      const connection = await instance.connect();
      const root = `${this.location}/`;
      for (const statement of [
        `SET allowed_directories = [${[root, ...(this.snapshots ? [`${this.snapshots}/`] : [])].map(quoteLiteral).join(', ')}]`,
        // A reader spills nothing to disk: it creates no directory in the lake.
        `SET temp_directory = ${quoteLiteral(this.readOnly ? '' : this.layout.temporary(hostname(), process.pid))}`,
        'SET enable_external_access = false',
        'SET autoinstall_known_extensions = false',
        'SET autoload_known_extensions = false',
        'SET allow_community_extensions = false',
        // Division of whole numbers is whole, as in SQLite and PostgreSQL.
        'SET integer_division = true',
        'SET lock_configuration = true',
        `CREATE TEMP TABLE backfill_scope (node VARCHAR NOT NULL, partition VARCHAR NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (node, partition))`,
      ]) {
        await connection.run(statement);
      }
      return { instance, connection, statements: new PreparedStatements(connection) };
    })();
    this.opened.catch(() => (this.opened = undefined));
    return (await this.opened).connection;
  }

  table(name: InternalTable): string {
    return `${CATALOG}.backfill.${name}`;
  }

  indexDdl(name: string, table: InternalTable, columns: readonly string[]): string {
    return `CREATE INDEX IF NOT EXISTS ${name} ON ${this.table(table)} (${columns.join(', ')})`;
  }

  /** The temporary table that holds the versions a transaction stages, before they become files. */
  versionsTable(node: string): string {
    return `temp.main.${quoteIdent(versionsTable(node))}`;
  }

  jsonEach(param: string): string {
    return `json_each(${param})`;
  }

  columnType(type: ColumnType): string {
    return TYPES[type];
  }

  async tableColumns(session: Session, table: InternalTable): Promise<string[]> {
    const rows = await session.all<{ name: string }>(
      `SELECT column_name AS name FROM duckdb_columns() WHERE database_name = '${CATALOG}' AND schema_name = 'backfill' AND table_name = :table`,
      { table },
    );
    return rows.map((r) => r.name);
  }

  async prepare(session: Session): Promise<void> {
    await session.run(`CREATE SCHEMA IF NOT EXISTS ${CATALOG}.backfill`);
    for (const ddl of OWN_TABLES) await session.run(ddl);
    const tables = async (name: string) =>
      Number((await session.all<{ n: number }>(`SELECT COUNT(*) AS n FROM duckdb_tables() WHERE database_name = '${CATALOG}' AND schema_name = 'backfill' AND table_name = :name`, { name }))[0]!.n);
    if ((await tables('partition_names')) > 0) return;
    await session.run(`CREATE TABLE ${PARTITION_NAMES} (node VARCHAR NOT NULL, folded VARCHAR NOT NULL, partition VARCHAR NOT NULL, PRIMARY KEY (node, folded))`);
    if ((await tables('ledger')) === 0) return;
    // A lake from before the names were recorded: its partitions, the first of two that differ only in case kept (it may go on).
    const known = await session.all<{ node: string; partition: string }>(`SELECT DISTINCT node, partition FROM ${this.table('ledger')} ORDER BY node, partition`);
    for (let start = 0; start < known.length; start += MIRROR_RECORDS_PER_INSERT) {
      const { values, params } = names(known.slice(start, start + MIRROR_RECORDS_PER_INSERT).map((r): [string, string] => [r.node, r.partition]));
      await session.run(`INSERT INTO ${PARTITION_NAMES} (node, folded, partition) VALUES ${values} ON CONFLICT DO NOTHING`, params);
    }
  }

  typeOf = typeOfValue;
  widen = widerType;
  value = toStored;

  async transaction<T>(work: (session: Session) => Promise<T>, options: { lock?: string; readOnly?: boolean } = {}): Promise<T> {
    const c = await this.connection();
    await this.hold.acquire();
    this.hold.busy = true;
    const session = new LakeSession(this, c, await this.statements(), options.readOnly === true);
    try {
      // What an earlier commit left undone (a file move that failed) is finished first, as by a new holder.
      if (this.unfinished && !session.readOnly) await this.recover();
      await c.run('BEGIN TRANSACTION');
      let result: T;
      try {
        if (!session.readOnly) session.cleared = await this.clearMirrored(session);
        result = await work(session);
        await session.beforeCommit();
        await c.run('COMMIT');
      } catch (error) {
        await c.run('ROLLBACK').catch(() => undefined);
        // The records this transaction would have cleared are still there, their moves still mirrored.
        this.mirrored.push(...session.cleared);
        session.discardFiles();
        throw error;
      }
      try {
        await session.afterCommit();
      } catch (error) {
        this.unfinished = true;
        throw new AfterCommitError(error instanceof Error ? error : new Error(String(error)));
      }
      return result;
    } finally {
      await session.dropStaging();
      this.hold.busy = false;
      await this.hold.done().catch(() => undefined);
    }
  }

  /**
   * Forgets the records of pointer moves already mirrored in files, in one statement: inside a
   * write transaction once enough have gathered (until then a record costs only a look at the
   * file's link on the next attach), and all of them, in a transaction of their own, before the
   * catalogue is let go.
   */
  private async clearMirrored(session?: LakeSession): Promise<Array<[string, string]>> {
    if (this.mirrored.length === 0 || (session && this.mirrored.length < MIRRORED_KEPT)) return [];
    const done = this.mirrored;
    this.mirrored = [];
    const { values, params } = pairs(done);
    const sql = `DELETE FROM ${CATALOG}.backfill.mirror m WHERE EXISTS (SELECT 1 FROM (VALUES ${values}) v(node, partition) WHERE m.node = v.node AND m.partition = v.partition)`;
    // In a write transaction: the records go when it commits (and `recorded` with them, then).
    if (session) {
      await session.run(sql, params);
      return done;
    }
    const c = await this.connection();
    await c.run('BEGIN TRANSACTION');
    try {
      await new LakeSession(this, c, await this.statements(), false).run(sql, params);
      await c.run('COMMIT');
    } catch (error) {
      await c.run('ROLLBACK').catch(() => undefined);
      this.mirrored.push(...done);
      throw error;
    }
    for (const [node, partition] of done) this.recorded.delete(`${node}\0${partition}`);
    return done;
  }

  /** Before letting go of the catalogue: the moves a commit left undone are tried once more, so that the files follow without another write. */
  private async finishUnfinished(): Promise<void> {
    if (!this.unfinished || this.readOnly) return;
    try {
      await this.recover();
    } catch (error) {
      this.warn(`${this.location}: ${error instanceof Error ? error.message : String(error)} (the next process or write that takes the lake tries again)`);
    }
  }

  /** What to do about a recorded pointer move that fails, by its error's code. */
  private moveAdvice(error: unknown, node: string, partition: string, version: number | null): string {
    const code = error instanceof Error && 'code' in error ? error.code : undefined;
    if (code === 'ENAMETOOLONG') {
      return `the partition's key makes a file name longer than this file system holds (the lake refuses such keys for new partitions; this one was recorded before): move the lake to a file system that holds longer names`;
    }
    if (code === 'ENOENT' && version !== null) {
      const file = this.layout.version(node, partition, Number(version));
      if (!existsSync(file)) return `the file of its published version ${version}, ${file}, is missing: put it back (from a copy of the lake)`;
      return `make the directory ${this.layout.dataset(node)} exist and writable`;
    }
    return 'make that path free and its directory writable';
  }

  /** On taking the catalogue (a reader too): what this process knew of it may have changed while others held it. */
  private forget(): void {
    this.datasets = undefined;
    this.filesViews.clear();
    this.partitionNames.clear();
  }

  /**
   * On taking the catalogue: finishes the pointer moves a holder that died did not mirror in
   * files, and makes the views again when this process sees the lake at another path. The
   * process's first hold also removes the files that writers killed mid-write left (once: it
   * lists every dataset's versions).
   */
  private async recover(): Promise<void> {
    if (!this.swept) {
      this.swept = true;
      sweepIncoming(this.layout, Date.now());
    }
    this.forget();
    this.mirrored = [];
    this.recorded.clear();
    const c = await this.connection();
    const s = new LakeSession(this, c, await this.statements(), false);
    const [exists] = await s.all<{ n: number }>(`SELECT COUNT(*) AS n FROM duckdb_tables() WHERE database_name = '${CATALOG}' AND schema_name = 'backfill' AND table_name = 'mirror'`);
    if (!exists || Number(exists.n) === 0) return;
    const pending = await s.all<{ node: string; partition: string; version: number | null }>(
      `SELECT m.node, m.partition, p.version FROM ${CATALOG}.backfill.mirror m LEFT JOIN ${this.table('partitions')} p ON p.node = m.node AND p.partition = m.partition`,
    );
    for (const { node, partition, version } of pending) {
      try {
        mirror(this.layout, node, partition, version === null ? null : this.layout.version(node, partition, Number(version)));
      } catch (error) {
        throw new Error(
          `the lake could not put the published file of ${node} ${partition} in place at ${this.layout.published(node, partition)}, a move its catalogue recorded at a commit ` +
            `(${error instanceof Error ? error.message : String(error)}): nothing more is written to the lake until it can (a rollback neither); ${this.moveAdvice(error, node, partition, version)}`,
          { cause: error },
        );
      }
    }
    const [root] = await s.all<{ value: string }>(`SELECT value FROM ${this.table('meta')} WHERE key = 'lake_root'`);
    // A lake first seen here, or at another path: every view is made again with this process's paths.
    const moved = root === undefined || root.value !== this.location;
    const nodes = moved ? (await s.all<{ node: string }>(`SELECT node FROM ${CATALOG}.backfill.datasets`)).map((r) => r.node) : [...new Set(pending.map((p) => p.node))];
    await s.refreshViews(nodes, moved);
    // What the table holds is what this process now knows to be recorded, every move mirrored.
    for (const p of pending) this.recorded.add(`${p.node}\0${p.partition}`);
    this.mirrored = pending.map((p): [string, string] => [p.node, p.partition]);
    if (root?.value !== this.location) {
      await s.run(`INSERT INTO ${this.table('meta')} (key, value) VALUES ('lake_root', :root) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, { root: this.location });
    }
    this.unfinished = false;
  }

  /**
   * A dataset is its directory of published files: OpenLineage's local file system names it
   * `file` and its path. Its columns are those the catalogue keeps, read by the lake itself
   * (spec SQL may not read the catalogue).
   */
  async lineageDataset(session: Session, node: string): Promise<DatasetFacts> {
    const [row] = await session.all<{ columns: string }>(`SELECT columns FROM ${CATALOG}.backfill.datasets WHERE node = :node`, { node });
    const columns = row ? (JSON.parse(row.columns) as Column[]) : undefined;
    return { namespace: 'file', name: this.layout.dataset(node), ...(columns ? { fields: columns.map((c) => ({ name: c.name, type: c.type })) } : {}) };
  }

  /** Lets go of the catalogue and closes DuckDB; each step runs even if one before it failed, and the first failure is thrown. */
  async close(): Promise<void> {
    const opened = this.opened;
    if (!opened) return;
    let handles: Awaited<typeof opened> | undefined;
    await allSteps([
      () => this.hold.close(),
      async () => {
        // Only now: letting go of the catalogue uses the connection.
        this.opened = undefined;
        handles = await opened;
        handles.statements.clear();
      },
      () => handles?.connection.closeSync(),
      () => handles?.instance.closeSync(),
      () => (this.readOnly ? undefined : rmSync(this.layout.temporary(hostname(), process.pid), { recursive: true, force: true })),
    ]);
  }
}

type Staged = { node: string; partition: string; version: number; columns: Set<string> };

const DEVICES = 'CON, PRN, AUX, NUL, COM0 to COM9, LPT0 to LPT9, in any case, with or without an extension';

/**
 * Before a dataset's new partition: a key whose files' name Windows keeps for a device is
 * refused (one recorded already goes on: its files exist).
 */
function assertNoDevice(node: string, partition: string): void {
  const name = fileKey(partition);
  if (windowsDevice(name) === undefined) return;
  throw new InvalidDatasetError(
    `dataset '${node}': partition key '${partition}' would name its files ${name}.parquet and _versions/${name}, and Windows keeps that name for a device (${DEVICES}): ` +
      `the lake could not be copied to or read on Windows. Give the partition another key (with a prefix or a suffix, such as '${partition}_1')`,
  );
}

/** The longest file name the file systems a lake lives on hold (ext4, XFS, APFS: 255 bytes). */
const MAX_FILE_NAME_BYTES = 255;
const PUBLISHED_SUFFIX = '.parquet';

/**
 * Before a dataset's new partition: its key, as the lake names its files (`fileKey`: characters
 * other than letters, digits, -, = and a _ not leading percent-encoded), must fit in a file name; the file
 * system would otherwise refuse the name at the commit, with an error that says nothing of the key.
 */
function assertNameFits(node: string, partition: string): void {
  const bytes = Buffer.byteLength(`${fileKey(partition)}${PUBLISHED_SUFFIX}`);
  if (bytes <= MAX_FILE_NAME_BYTES) return;
  throw new InvalidDatasetError(
    `dataset '${node}': partition key '${partition}' would name its file with ${bytes} bytes (${fileKey(partition).slice(0, 40)}…${PUBLISHED_SUFFIX}), and file systems hold names of at most ${MAX_FILE_NAME_BYTES} bytes: ` +
      `the lake names a partition's files after its key, each character other than an ASCII letter, a digit, -, = and _ (but a leading _) percent-encoded (3 bytes a byte: é takes 6). ` +
      `Give the partition a shorter key (at most ${MAX_FILE_NAME_BYTES - PUBLISHED_SUFFIX.length} bytes once encoded)`,
  );
}

class LakeSession implements Session {
  /** Versions staged in this transaction, by `node/partition/version`. */
  private staged = new Map<string, Staged>();
  /** Datasets whose columns this transaction changes: their new columns. */
  private pending = new Map<string, Column[]>();
  /** Staging tables made in this transaction, by table name: their node, and their columns' types as made and altered. */
  private stagingTables = new Map<string, { node: string; columns: Map<string, string> }>();
  /** Pointer moves, by `node\0partition`. */
  private moves = new Map<string, { node: string; partition: string; version: number | null }>();
  /** Files written for this transaction's versions, removed if it does not commit. */
  private written: string[] = [];
  /** Files of versions this transaction drops (discarded staged versions), removed once it commits. */
  private dropped: string[] = [];
  /** Records of mirrored moves this transaction clears. */
  cleared: Array<[string, string]> = [];
  /** The recorded partition of a folded key (null: none), as this transaction's `startPublish` read it. */
  private owners = new Map<string, string | null>();
  /** Partitions new to their datasets in this transaction, by `node\0folded key`, recorded at its commit. */
  private named = new Map<string, { node: string; partition: string }>();
  /** Partitions whose staged versions this transaction drops, by `node\0partition`: their names go at its commit if no version is left. */
  private emptied = new Map<string, { node: string; partition: string }>();
  /** Names this transaction's commit releases, by `node\0folded key`. */
  private released: Array<{ key: string; node: string; partition: string }> = [];
  /** A statement interrupted at its deadline aborts DuckDB's transaction: nothing more runs in it. */
  private interrupted = false;
  /** Whether a statement that failed while it ran aborted DuckDB's transaction: nothing more runs in it either. */
  private aborted = false;

  constructor(
    private readonly dialect: LakeDialect,
    private readonly c: DuckDBConnection,
    private readonly prepared: PreparedStatements,
    readonly readOnly: boolean,
  ) {}

  private statement(sql: string, params: Params): { text: string; values: DuckDBValue[] } {
    let numbered = this.dialect.numbered.get(sql);
    if (!numbered) this.dialect.numbered.set(sql, (numbered = positionalParameters(sql)));
    return { text: numbered.text, values: numbered.names.map((n) => (params[n] ?? null) as DuckDBValue) };
  }

  async all<T = Row>(sql: string, params: Params = {}): Promise<T[]> {
    const { text, values } = this.statement(sql, params);
    // A materialized result, read at once: half the cost of a result reader in DuckDB's client.
    const result = await this.prepared.run(text, values);
    const names = result.columnNames();
    return (await result.getRows()).map((row) => Object.fromEntries(row.map((v, i) => [names[i]!, jsValue(v)]))) as T[];
  }

  async run(sql: string, params: Params = {}): Promise<void> {
    const { text, values } = this.statement(sql, params);
    await this.prepared.run(text, values);
  }

  get ended(): boolean {
    return this.interrupted || this.aborted;
  }

  /**
   * After a statement failed: whether DuckDB aborted the transaction with it (it does at any
   * error raised while a statement runs, a cast of a row that fails, a missing file; not at one
   * found before it runs, a misspelt name). Its statements' undoing would then fail in turn, as
   * would the commit, and hide the error that caused it.
   */
  private async abortedAt(): Promise<boolean> {
    if (this.interrupted || this.aborted) return true;
    try {
      await this.c.run('SELECT 1');
    } catch {
      this.aborted = true;
    }
    return this.aborted;
  }

  /** DuckDB has no savepoints: what the work staged and the column changes it made are undone by hand. */
  async savepoint<T>(work: () => Promise<T>): Promise<T> {
    const staged = new Set(this.staged.keys());
    const pending = new Map(this.pending);
    const named = new Map(this.named);
    const tables = new Map([...this.stagingTables].map(([table, { columns }]) => [table, new Map(columns)]));
    try {
      return await work();
    } catch (error) {
      if (await this.abortedAt()) throw error;
      this.named = named;
      for (const [key, version] of this.staged) {
        if (staged.has(key)) continue;
        await this.c.run(`DELETE FROM ${this.dialect.versionsTable(version.node)} WHERE ${PARTITION_COLUMN} = ${quoteLiteral(version.partition)} AND ${VERSION_COLUMN} = ${version.version}`);
        this.staged.delete(key);
      }
      await this.restoreStaging(tables);
      this.pending = pending;
      throw error;
    }
  }

  /**
   * Puts the staging tables back as they were before a failed write (`before`: their columns'
   * types then), its rows gone: a column it added or widened would otherwise be written so into
   * the files of the versions staged before it, which the dataset's columns do not say.
   */
  private async restoreStaging(before: ReadonlyMap<string, ReadonlyMap<string, string>>): Promise<void> {
    for (const [table, staging] of [...this.stagingTables]) {
      const was = before.get(table);
      if (!was) {
        await this.c.run(`DROP TABLE IF EXISTS ${table}`);
        this.stagingTables.delete(table);
        continue;
      }
      for (const [column, type] of staging.columns) {
        const old = was.get(column);
        if (old === undefined) await this.c.run(`ALTER TABLE ${table} DROP COLUMN ${quoteIdent(column)}`);
        // TRY_CAST: DuckDB converts the rows this transaction deleted too (the failed write's), which
        // may not convert; the rows left were of the old type, and convert back as they were.
        else if (old !== type) await this.c.run(`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(column)} TYPE ${old} USING TRY_CAST(${quoteIdent(column)} AS ${old})`);
      }
      staging.columns = new Map(was);
    }
  }

  async lock(): Promise<void> {
    // The whole catalogue is held by this process: writers take turns already.
  }

  async stream(sql: string, params: Params, each: (rows: readonly unknown[][], kinds: readonly ValueKind[]) => void): Promise<void> {
    const { text, values } = this.statement(sql, params);
    const result = await this.prepared.stream(text, values);
    const kinds = result.columnTypes().map(kindOf);
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      each(chunk.getRows().map((row) => row.map(rawValue)), kinds);
    }
  }

  private async known(): Promise<Map<string, Column[]>> {
    if (!this.dialect.datasets) {
      const rows = await this.all<{ node: string; columns: string }>(`SELECT node, columns FROM ${CATALOG}.backfill.datasets`);
      this.dialect.datasets = new Map(rows.map((r) => [r.node, JSON.parse(r.columns) as Column[]]));
    }
    return this.dialect.datasets;
  }

  /** A dataset's columns, with this transaction's changes; null when it has none yet. */
  private async datasetColumns(node: string): Promise<Column[] | null> {
    return this.pending.get(node) ?? (await this.known()).get(node) ?? null;
  }

  async columns(node: string): Promise<string[] | null> {
    return (await this.datasetColumns(node))?.map((c) => c.name) ?? null;
  }

  async ensureDataset(node: string, wanted: readonly Wanted[], adopt: boolean): Promise<void> {
    const existing = await this.datasetColumns(node);
    if (existing === null) {
      // A dataset's name is its directory's (a new one only: one that has versions already keeps them).
      if (windowsDevice(node) !== undefined) {
        throw new InvalidDatasetError(
          `dataset '${node}' would name the lake's directory ${node}, and Windows keeps that name for a device (${DEVICES}): ` +
            'the lake could not be copied to or read on Windows; rename the node',
        );
      }
      await this.assertNameFree(node, adopt);
    }
    const columns = [...(existing ?? [])];
    for (const w of wanted) {
      const have = columns.findIndex((c) => c.name === w.name);
      if (have < 0) columns.push({ name: w.name, type: w.type ?? 'VARCHAR' });
      else if (w.type !== null) columns[have] = { name: w.name, type: widerType(columns[have]!.type, w.type) };
    }
    if (existing === null || JSON.stringify(columns) !== JSON.stringify(existing)) this.pending.set(node, columns);
    const table = this.dialect.versionsTable(node);
    const staging = this.stagingTables.get(table);
    if (!staging) {
      const defs = columns.map((c) => `, ${quoteIdent(c.name)} ${c.type}`).join('');
      // OR REPLACE: a table an earlier transaction failed to drop goes.
      await this.c.run(`CREATE OR REPLACE TEMP TABLE ${quoteIdent(versionsTable(node))} (${PARTITION_COLUMN} VARCHAR NOT NULL, ${VERSION_COLUMN} INTEGER NOT NULL${defs})`);
      this.stagingTables.set(table, { node, columns: new Map(columns.map((c) => [c.name, c.type])) });
      return;
    }
    // The table is this transaction's: its columns are those it was made and altered with (no catalogue lookup).
    const retyped = columns.filter((c) => (staging.columns.get(c.name) ?? c.type) !== c.type);
    // A type change converts the rows of every version in the table, and may not convert them
    // exactly (a BIGINT above 2^53 into a DOUBLE): those versions are committed as they are first.
    if (retyped.length > 0 && [...this.staged.values()].some((v) => v.node === node)) {
      throw new PublishApartError(`${node}: the write changes the type of ${retyped.map((c) => c.name).join(', ')}, which versions staged before it in the transaction hold`);
    }
    for (const column of columns) {
      const found = staging.columns.get(column.name);
      if (found === undefined) await this.c.run(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(column.name)} ${column.type}`);
      else if (found !== column.type) await this.c.run(`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(column.name)} TYPE ${column.type}`);
      staging.columns.set(column.name, column.type);
    }
  }

  /** Before a dataset's first version: its view's name must be free in the catalogue, or a view the node adopts. */
  private async assertNameFree(node: string, adopt: boolean): Promise<void> {
    const [found] = await this.all<{ kind: string }>(
      `SELECT 'view' AS kind FROM duckdb_views() WHERE database_name = '${CATALOG}' AND schema_name = 'main' AND lower(view_name) = lower(:node)
       UNION ALL SELECT 'table' FROM duckdb_tables() WHERE database_name = '${CATALOG}' AND schema_name = 'main' AND lower(table_name) = lower(:node)`,
      { node },
    );
    if (!found || (found.kind === 'view' && adopt)) return;
    throw new InvalidDatasetError(
      found.kind === 'view'
        ? `dataset '${node}': a view ${node} exists in the lake's catalogue that backfill did not create: set adopt: true on the node to replace it with the dataset's view, or rename the node`
        : `dataset '${node}': a table named ${node} exists in the lake's catalogue, and backfill needs the name for the dataset's view: rename the node, or move the table out of the way (adopt replaces views only)`,
    );
  }

  private stage(table: string, partition: string, version: number, columns: readonly string[]): void {
    const node = this.stagingTables.get(table)?.node;
    if (node === undefined) throw new Error(`the lake stages versions in tables it made in this transaction, and ${table} is not one`);
    const key = `${node}/${partition}/${version}`;
    const staged = this.staged.get(key) ?? { node, partition, version, columns: new Set<string>() };
    for (const c of columns) staged.columns.add(c);
    this.staged.set(key, staged);
  }

  async insertRows(table: string, partition: string, version: number, columns: readonly string[], rows: readonly unknown[][]): Promise<void> {
    this.stage(table, partition, version, columns);
    if (await this.appendRows(table, partition, version, columns, rows)) return;
    const head = `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${columns.map((c) => `, ${quoteIdent(c)}`).join('')}) VALUES `;
    const perRow = columns.length + 2;
    for (let start = 0; start < rows.length; start += ROWS_PER_INSERT) {
      const values: DuckDBValue[] = [];
      const tuples = rows.slice(start, start + ROWS_PER_INSERT).map((row, r) => {
        values.push(partition, version, ...(row as DuckDBValue[]));
        return `(${Array.from({ length: perRow }, (_, i) => `$${r * perRow + i + 1}`).join(', ')})`;
      });
      await this.prepared.run(head + tuples.join(', '), values);
    }
  }

  /**
   * Appends the rows through DuckDB's appender, a fraction of an INSERT's cost for a few hundred
   * rows, when every value is already of its column's type (so nothing is cast differently from
   * an INSERT); false, having appended nothing, when one is not.
   */
  private async appendRows(table: string, partition: string, version: number, columns: readonly string[], rows: readonly unknown[][]): Promise<boolean> {
    const node = this.stagingTables.get(table)?.node;
    const dataset = node === undefined ? null : await this.datasetColumns(node);
    if (node === undefined || dataset === null || rows.length === 0) return false;
    // The staging table's columns are the dataset's, in its order (made so, and widened with it).
    const at = dataset.map((c) => columns.indexOf(c.name));
    if (columns.some((c) => !dataset.some((d) => d.name === c))) return false;
    const fits = rows.every((row) => dataset.every((c, i) => at[i]! < 0 || appendable(row[at[i]!], c.type)));
    if (!fits) return false;
    const appender = await this.c.createAppender(versionsTable(node), 'main', 'temp');
    try {
      if (appender.columnCount !== dataset.length + 2) return false;
      for (const row of rows) {
        appender.appendVarchar(partition);
        appender.appendInteger(version);
        dataset.forEach((c, i) => append(appender, at[i]! < 0 ? null : row[at[i]!], c.type));
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
    return true;
  }

  /**
   * The relation of a dataset's columns with no rows, typed (`stored`: as the files hold them):
   * the left side of reads that may find no file, or files without some columns.
   */
  private async typedEmpty(node: string, internal: boolean, stored = false): Promise<string> {
    const columns = (await this.datasetColumns(node)) ?? [];
    const list = [
      ...(internal ? [`CAST(NULL AS VARCHAR) AS ${PARTITION_COLUMN}`, `CAST(NULL AS INTEGER) AS ${VERSION_COLUMN}`] : []),
      ...columns.map((c) => `CAST(NULL AS ${stored && keptAsText(c.type) ? 'VARCHAR' : c.type}) AS ${quoteIdent(c.name)}`),
    ];
    return `SELECT ${list.length > 0 ? list.join(', ') : 'NULL AS __empty'} WHERE false`;
  }

  /**
   * The rows of version files (`source`, a `read_parquet`), with every column of the dataset and
   * its internal columns, each of the dataset's type: a column the files keep as text goes back
   * to its type (a file written before they did holds its times in UTC, and reads so).
   */
  private async fromFiles(node: string, source: string): Promise<string> {
    const union = `${await this.typedEmpty(node, true, true)} UNION ALL BY NAME SELECT * FROM ${source}`;
    const restored = ((await this.datasetColumns(node)) ?? []).filter((c) => keptAsText(c.type)).map((c) => `CAST(${quoteIdent(c.name)} AS ${c.type}) AS ${quoteIdent(c.name)}`);
    return restored.length === 0 ? union : `SELECT * REPLACE (${restored.join(', ')}) FROM (${union})`;
  }

  /**
   * The newest version of the partition that holds this one's name, when another does (one a
   * rollback removed, whose name this one may take): this one's versions are numbered past it,
   * so that on a case-insensitive file system none of its files is one of that partition's.
   */
  async versionFloor(node: string, partition: string): Promise<number> {
    const [row] = await this.all<{ v: number }>(
      `SELECT COALESCE(MAX(version), 0) AS v FROM ${this.dialect.table('ledger')} WHERE node = :node
         AND partition = (SELECT partition FROM ${PARTITION_NAMES} WHERE node = :node AND folded = :folded AND partition <> :partition)`,
      { node, partition, folded: foldedKey(partition) },
    );
    return Number(row?.v ?? 0);
  }

  /** A new version is staged from the start, so that its file is written at commit even when no rows come. */
  async newVersion(node: string, partition: string, version: number): Promise<void> {
    await this.claimName(node, partition, version);
    this.stage(this.dialect.versionsTable(node), partition, version, []);
  }

  /**
   * Before a partition's new version: no other partition of the dataset may differ from it only
   * in case (`US`, `us`), whose files would be its files on a case-insensitive file system.
   * Checked by the names recorded, so that it does not depend on the file system the lake is on.
   */
  private async claimName(node: string, partition: string, version: number): Promise<void> {
    const key = `${node}\0${foldedKey(partition)}`;
    let owner = this.named.get(key)?.partition ?? this.dialect.partitionNames.get(key);
    // Read by this publish's start already (not by a staged write's), or read now.
    if (owner === undefined && this.owners.has(key)) owner = this.owners.get(key) ?? undefined;
    else if (owner === undefined) {
      const [row] = await this.all<{ partition: string }>(`SELECT partition FROM ${PARTITION_NAMES} WHERE node = :node AND folded = :folded`, { node, folded: foldedKey(partition) });
      owner = row?.partition;
      if (owner !== undefined) this.dialect.partitionNames.set(key, owner);
    }
    if (owner === undefined) {
      assertNoDevice(node, partition);
      assertNameFits(node, partition);
      this.named.set(key, { node, partition });
      return;
    }
    if (owner === partition) return;
    const [found] = await this.all<{ published: number; staged: number; latest: number }>(
      `SELECT (SELECT COUNT(*) FROM ${this.dialect.table('partitions')} WHERE node = :node AND partition = :owner) AS published,
         (SELECT COUNT(*) FROM ${this.dialect.table('ledger')} WHERE node = :node AND partition = :owner AND status = 'staged') AS staged,
         (SELECT COALESCE(MAX(version), 0) FROM ${this.dialect.table('ledger')} WHERE node = :node AND partition = :owner) AS latest`,
      { node, owner },
    );
    const published = Number(found?.published ?? 0) > 0;
    // Removed by a rollback (not published, nothing staged): the name is free. Its version files
    // stay for the ledger's history, and this partition's versions are numbered past them.
    if (!published && Number(found?.staged ?? 0) === 0 && version > Number(found?.latest ?? 0)) {
      assertNoDevice(node, partition);
      assertNameFits(node, partition);
      this.named.set(key, { node, partition });
      return;
    }
    // Not published, so not in the dataset's view: the error says where it is.
    const hidden = !published ? ', which is not published now (a version of it is staged) but whose version files the lake keeps' : '';
    throw new InvalidDatasetError(
      `dataset '${node}': partition '${partition}' differs only in case from its partition '${owner}'${hidden}, and a lake names a partition's files after its key: ` +
        'on a case-insensitive file system (macOS, Windows) both would be the same files, and one would overwrite the other. Give the partitions keys that differ in more than case',
    );
  }

  /**
   * Before a partition is published again (a restore, a staged version promoted): it still holds
   * its name. One that a rollback removed may have lost it to a partition differing only in case,
   * published since: both published, their files would be one on a case-insensitive file system.
   */
  private async assertNameHeld(node: string, partition: string): Promise<void> {
    const key = `${node}\0${foldedKey(partition)}`;
    let owner = this.named.get(key)?.partition ?? this.dialect.partitionNames.get(key);
    if (owner === undefined) {
      const [row] = await this.all<{ partition: string }>(`SELECT partition FROM ${PARTITION_NAMES} WHERE node = :node AND folded = :folded`, { node, folded: foldedKey(partition) });
      owner = row?.partition;
      if (owner !== undefined) this.dialect.partitionNames.set(key, owner);
    }
    if (owner === undefined || owner === partition) return;
    throw new InvalidDatasetError(
      `dataset '${node}': partition '${partition}' cannot be published again: after a rollback removed it, partition '${owner}', which differs from it only in case, took its name, ` +
        'and a lake names a partition\'s files after its key (on a case-insensitive file system, macOS\' or Windows\', both would be the same files). ' +
        `Its versions stay in the ledger; to publish '${partition}' again, roll back the backfill that published '${owner}' first`,
    );
  }

  async versionRows(node: string, partition: string, version: number): Promise<string> {
    if (this.staged.has(`${node}/${partition}/${version}`)) {
      return `(SELECT * FROM ${this.dialect.versionsTable(node)} WHERE ${PARTITION_COLUMN} = ${quoteLiteral(partition)} AND ${VERSION_COLUMN} = ${version})`;
    }
    const file = this.dialect.layout.version(node, partition, version);
    if (!existsSync(file)) throw new Error(`version ${version} of ${node} ${partition}: its file ${file} is missing from the lake`);
    return `(${await this.fromFiles(node, `read_parquet(${quoteLiteral(file)})`)})`;
  }

  /**
   * A version this transaction wrote (an upstream partition published earlier in the same batch)
   * has no file until the commit: its rows are read from the staging table, the others' from their files.
   */
  async pinnedRows(node: string, versions: ReadonlyArray<readonly [string, number]>, columns: readonly string[]): Promise<string> {
    const list = columns.length > 0 ? columns.map(quoteIdent).join(', ') : 'NULL AS __empty';
    if (versions.length === 0) return `SELECT ${list} FROM (${await this.typedEmpty(node, false)})`;
    const staged = versions.filter(([partition, version]) => this.staged.has(`${node}/${partition}/${version}`));
    const stored = versions.filter(([partition, version]) => !this.staged.has(`${node}/${partition}/${version}`));
    const files = stored.map(([partition, version]) => quoteLiteral(this.dialect.layout.version(node, partition, version)));
    const fromFiles = files.length === 0 ? undefined : await this.fromFiles(node, `read_parquet([${files.join(', ')}], union_by_name = true, hive_partitioning = false)`);
    const fromStaging =
      staged.length === 0
        ? undefined
        : `SELECT * FROM ${this.dialect.versionsTable(node)} WHERE (${PARTITION_COLUMN}, ${VERSION_COLUMN}) IN (${staged.map(([partition, version]) => `(${quoteLiteral(partition)}, ${version})`).join(', ')})`;
    const source = [fromFiles, fromStaging].filter((s): s is string => s !== undefined).join(' UNION ALL BY NAME ');
    return `SELECT ${list} FROM (${source})`;
  }

  /**
   * The start of a publish in one statement instead of four (its lease, this run's version, the
   * newest and the published version), then the inputs' published versions, as the protocol's own
   * would read them: a statement costs DuckDB milliseconds, and the lake's publishes take turns.
   */
  async startPublish(request: PublishRequest): Promise<PublishStart> {
    const { node, partition, runKey } = request;
    const [row] = await this.all<Row>(
      `SELECT le.backfill_id AS lease_backfill, le.run_key AS lease_run,
         (SELECT COALESCE(MAX(version), 0) FROM ${this.dialect.table('ledger')} WHERE node = :node AND partition = :partition) AS latest,
         (SELECT version FROM ${this.dialect.table('partitions')} WHERE node = :node AND partition = :partition) AS current,
         (SELECT partition FROM ${PARTITION_NAMES} WHERE node = :node AND folded = :folded) AS name_owner,
         (SELECT COALESCE(MAX(version), 0) FROM ${this.dialect.table('ledger')} WHERE node = :node
           AND partition = (SELECT partition FROM ${PARTITION_NAMES} WHERE node = :node AND folded = :folded AND partition <> :partition)) AS name_latest,
         a.version, a.previous_version, a.row_count, a.checksum, a.schema_hash, a.warnings, a.status
       FROM (SELECT 1 AS one) o
       LEFT JOIN ${this.dialect.table('leases')} le ON le.node = :node
       LEFT JOIN (SELECT version, previous_version, row_count, checksum, schema_hash, warnings, status FROM ${this.dialect.table('ledger')}
         WHERE node = :node AND partition = :partition AND run_key = :run_key AND status IN ('published', 'staged') ORDER BY version DESC LIMIT 1) a ON true`,
      { node, partition, run_key: runKey, folded: foldedKey(partition) },
    );
    this.owners.set(`${node}\0${foldedKey(partition)}`, row!.name_owner === null ? null : String(row!.name_owner));
    const lease = row!.lease_run === null ? null : { backfillId: String(row!.lease_backfill), runKey: String(row!.lease_run) };
    const skipped = { latest: 0, current: null, pinned: [] };
    if (lease && lease.runKey !== runKey) return { lease, already: null, ...skipped };
    if (row!.version !== null) return { lease, already: publishedOf(this.dialect.codec, row!), ...skipped };
    const pinned = request.pinned ? [...request.pinned] : await this.pin(request.inputs);
    const latest = Math.max(Number(row!.latest), Number(row!.name_latest));
    return { lease, already: null, latest, current: row!.current === null ? null : Number(row!.current), pinned };
  }

  /** The published version of every upstream partition `inputs` cover (as `Warehouse.pin` without a run key). */
  private async pin(inputs: readonly PartitionInput[]): Promise<PinnedInput[]> {
    const pinned: PinnedInput[] = [];
    for (const input of inputs) {
      const params: Params = { node: input.node };
      let where = '';
      if (input.all) {
        // Every partition of the upstream.
      } else if (input.keys) {
        input.keys.forEach((key, i) => (params[`k${i}`] = key));
        where = input.keys.length === 0 ? ' AND false' : ` AND partition IN (${input.keys.map((_, i) => `:k${i}`).join(', ')})`;
      } else {
        Object.assign(params, { from: input.from, to: input.to });
        where = ' AND partition BETWEEN :from AND :to';
      }
      const rows = await this.all<{ partition: string; version: number }>(`SELECT partition, version FROM ${this.dialect.table('partitions')} WHERE node = :node${where}`, params);
      pinned.push({ ...input, versions: rows.map((r) => [r.partition, Number(r.version)]) });
    }
    return pinned;
  }

  async dropVersions(node: string, versions: ReadonlyArray<readonly [string, number]>): Promise<void> {
    for (const [partition, version] of versions) {
      this.dropped.push(this.dialect.layout.version(node, partition, version));
      this.emptied.set(`${node}\0${partition}`, { node, partition });
    }
  }

  async pointed(node: string, partition: string, version: number | null): Promise<void> {
    if (version !== null) await this.assertNameHeld(node, partition);
    this.moves.set(`${node}\0${partition}`, { node, partition, version });
  }

  /** Writes each staged version to its file, and records the dataset changes and pointer moves, in the transaction that commits them. */
  async beforeCommit(): Promise<void> {
    const { layout } = this.dialect;
    const files: Array<{ written: string; target: string; directory: string }> = [];
    for (const version of this.staged.values()) {
      const target = layout.version(version.node, version.partition, version.version);
      const incoming = layout.scratch(version.node);
      this.written.push(incoming, target);
      const table = this.dialect.versionsTable(version.node);
      const types = this.stagingTables.get(table)?.columns;
      const columns = [...version.columns].map((c) => `, ${storedColumn(quoteIdent(c), types?.get(c))}`).join('');
      try {
        await this.c.run(
          `COPY (SELECT ${PARTITION_COLUMN}, ${VERSION_COLUMN}${columns} FROM ${table} ` +
            `WHERE ${PARTITION_COLUMN} = ${quoteLiteral(version.partition)} AND ${VERSION_COLUMN} = ${version.version}) TO ${quoteLiteral(incoming)} (FORMAT parquet, COMPRESSION zstd)`,
        );
      } catch (error) {
        if (error instanceof Error && /^Conversion Error: .* to DECIMAL\(38,0\)/.test(error.message)) {
          throw new SqlError(
            `${version.node} ${version.partition}: a whole number has more than the 38 digits a lake's Parquet files hold exactly (${error.message.split('\n')[0]}): ` +
              'give it as a double or as text (CAST(... AS DOUBLE) or AS VARCHAR in SQL; a number or a string in a transform\'s rows)',
          );
        }
        throw error;
      }
      chmodSync(incoming, 0o444);
      files.push({ written: incoming, target, directory: layout.versions(version.node, version.partition) });
    }
    await settleAll(files);
    for (const [node, columns] of this.pending) {
      await this.run(`INSERT INTO ${CATALOG}.backfill.datasets (node, columns) VALUES (:node, :columns) ON CONFLICT (node) DO UPDATE SET columns = excluded.columns`, {
        node,
        columns: JSON.stringify(columns),
      });
    }
    // A move recorded already needs no statement, and one that is not needs no test (not ON
    // CONFLICT, which costs DuckDB several times more); this transaction's clearing counts.
    const cleared = new Set(this.cleared.map(([node, partition]) => `${node}\0${partition}`));
    const records = [...this.moves].filter(([key]) => cleared.has(key) || !this.dialect.recorded.has(key)).map(([, move]): [string, string] => [move.node, move.partition]);
    const claimed = [...this.named.values()].map(({ node, partition }): [string, string] => [node, partition]);
    for (let start = 0; start < claimed.length; start += MIRROR_RECORDS_PER_INSERT) {
      const { values, params } = names(claimed.slice(start, start + MIRROR_RECORDS_PER_INSERT));
      // A name taken from a partition a rollback removed changes hands.
      await this.run(`INSERT INTO ${PARTITION_NAMES} (node, folded, partition) VALUES ${values} ON CONFLICT (node, folded) DO UPDATE SET partition = excluded.partition`, params);
    }
    await this.releaseNames();
    // One statement for the transaction's moves, however many partitions it publishes.
    for (let start = 0; start < records.length; start += MIRROR_RECORDS_PER_INSERT) {
      const { values, params } = pairs(records.slice(start, start + MIRROR_RECORDS_PER_INSERT));
      await this.run(`INSERT INTO ${CATALOG}.backfill.mirror (node, partition) VALUES ${values}`, params);
    }
  }

  /**
   * Releases the names of the partitions whose dropped versions were their last: no published
   * pointer, and no published or staged version in the ledger. Those are the versions with a file
   * (one that failed its checks has none, a discarded one's goes at this commit); a version
   * published once keeps its file and its name even after a rollback removed the partition, for
   * the ledger's history reads it (another partition whose key differs only in case may take the
   * name then, numbering its versions past those files: `claimName`).
   */
  private async releaseNames(): Promise<void> {
    const candidates = [...this.emptied.values()].map(({ node, partition }): [string, string] => [node, partition]);
    for (let start = 0; start < candidates.length; start += MIRROR_RECORDS_PER_INSERT) {
      const { values, params } = pairs(candidates.slice(start, start + MIRROR_RECORDS_PER_INSERT));
      const gone = await this.all<{ node: string; folded: string; partition: string }>(
        `DELETE FROM ${PARTITION_NAMES} n WHERE EXISTS (SELECT 1 FROM (VALUES ${values}) v(node, partition) WHERE n.node = v.node AND n.partition = v.partition)
           AND NOT EXISTS (SELECT 1 FROM ${this.dialect.table('partitions')} p WHERE p.node = n.node AND p.partition = n.partition)
           AND NOT EXISTS (SELECT 1 FROM ${this.dialect.table('ledger')} l WHERE l.node = n.node AND l.partition = n.partition AND l.status IN ('published', 'staged'))
         RETURNING node, folded, partition`,
        params,
      );
      for (const g of gone) this.released.push({ key: `${g.node}\0${g.folded}`, node: g.node, partition: g.partition });
    }
  }

  /** After the commit: the published files follow the pointers, and the views their datasets. */
  async afterCommit(): Promise<void> {
    // A dropped version's file goes once the ledger says so; should this process die first, the file stays, unread.
    for (const file of this.dropped.splice(0)) rmSync(file, { force: true });
    for (const { key, node, partition } of this.released.splice(0)) {
      this.dialect.partitionNames.delete(key);
      // Its versions' directory, empty now: on a case-insensitive file system it would be the directory of a partition that takes the name.
      try {
        rmdirSync(this.dialect.layout.versions(node, partition));
      } catch {
        // Gone already, or not empty (a file this process failed to remove stays, unread).
      }
    }
    for (const [node, partition] of this.cleared) this.dialect.recorded.delete(`${node}\0${partition}`);
    for (const [key, { partition }] of this.named) this.dialect.partitionNames.set(key, partition);
    if (this.moves.size === 0 && this.pending.size === 0) return;
    if (this.pending.size > 0) this.dialect.datasets = undefined;
    for (const key of this.moves.keys()) this.dialect.recorded.add(key);
    // A partition's record is one for all its moves: an earlier move mirrored does not clear a later one that is not.
    this.dialect.mirrored = this.dialect.mirrored.filter(([node, partition]) => !this.moves.has(`${node}\0${partition}`));
    for (const { node, partition, version } of this.moves.values()) {
      try {
        mirror(this.dialect.layout, node, partition, version === null ? null : this.dialect.layout.version(node, partition, version));
      } catch (error) {
        throw new Error(`the lake could not put the published file of ${node} ${partition} in place at ${this.dialect.layout.published(node, partition)} (${error instanceof Error ? error.message : String(error)})`, { cause: error });
      }
      // Cleared only once its file follows: should the move fail, the next holder finishes it.
      this.dialect.mirrored.push([node, partition]);
    }
    // A view changes with its dataset's columns, or between no published file and some.
    const views = new Set(this.pending.keys());
    for (const move of this.moves.values()) if (move.version === null || !this.dialect.filesViews.has(move.node)) views.add(move.node);
    if (views.size === 0) return;
    await this.c.run('BEGIN TRANSACTION');
    try {
      await this.refreshViews([...views], false);
      await this.c.run('COMMIT');
    } catch (error) {
      await this.c.run('ROLLBACK').catch(() => undefined);
      this.dialect.filesViews.clear();
      throw error;
    }
  }

  /**
   * Makes each dataset's view read its published files (or, while it has none, show its
   * columns empty), where the view is not that already (`force`: whatever it is).
   */
  async refreshViews(nodes: readonly string[], force: boolean): Promise<void> {
    for (const node of nodes) {
      const [row] = await this.all<{ columns: string; view: string | null; published: number }>(
        `SELECT d.columns, d.view, (SELECT COUNT(*) FROM ${this.dialect.table('partitions')} p WHERE p.node = d.node) AS published FROM ${CATALOG}.backfill.datasets d WHERE d.node = :node`,
        { node },
      );
      if (!row) continue;
      const columns = JSON.parse(row.columns) as Column[];
      const files = Number(row.published) > 0 && columns.length > 0;
      // The internal columns go after the union: a file of a version without rows may hold no other column.
      const view = files
        ? `SELECT * EXCLUDE (${PARTITION_COLUMN}, ${VERSION_COLUMN}) FROM (${await this.fromFiles(node, `read_parquet(${quoteLiteral(this.dialect.layout.publishedGlob(node))}, union_by_name = true, hive_partitioning = false)`)})`
        : await this.typedEmpty(node, false);
      if (files) this.dialect.filesViews.add(node);
      else this.dialect.filesViews.delete(node);
      if (!force && view === row.view) continue;
      await this.c.run(`CREATE OR REPLACE VIEW ${CATALOG}.main.${quoteIdent(node)} AS ${view}`);
      await this.run(`UPDATE ${CATALOG}.backfill.datasets SET view = :view WHERE node = :node`, { node, view });
    }
  }

  /** Removes the files written for a transaction that did not commit. */
  discardFiles(): void {
    for (const file of this.written) rmSync(file, { force: true });
    this.written = [];
  }

  async dropStaging(): Promise<void> {
    for (const table of this.stagingTables.keys()) await this.c.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    this.stagingTables.clear();
  }

  /** The one door for spec SQL: DuckDB's parser reads it alone as exactly one query; it names no file, no table function that reads, and, inside a partition, datasets by their plain names only. */
  async spec(spec: SpecSql): Promise<SpecStatement> {
    const { text, names } = positionalParameters(singleStatement(spec.sql, 'nested'), (name) => castFor(spec.bindings[name]));
    const values = bindPositional(names, spec.bindings) as DuckDBValue[];
    const parsed = await parseQuery(this.c, text, spec.sql);
    await this.assertAllowed(parsed, spec);
    const body = scopedSelect(text, spec.scope ?? [], spec.given ?? []);
    const run = <T>(work: () => Promise<T>): Promise<T> =>
      this.untilDeadline(spec.deadline, async () => {
        try {
          return await work();
        } catch (error) {
          await this.abortedAt();
          return wrapSqlError(error, spec.sql);
        }
      });
    return {
      rows: () =>
        run(async () => {
          const result = await this.prepared.run(body, values, { once: true });
          const columns = result.columnNames();
          return (await result.getRows()).map((row) => Object.fromEntries(row.map((v, i) => [columns[i]!, jsValue(v)])));
        }),
      columns: () =>
        run(async () => {
          const naming = namingSelect(text, spec.scope ?? [], spec.given ?? []);
          const prepared = (naming === undefined ? undefined : await this.c.prepare(naming).catch(() => undefined)) ?? (await this.c.prepare(body));
          try {
            return Array.from({ length: prepared.columnCount }, (_, i) => ({ name: prepared.columnName(i), type: typeName(prepared.columnType(i)) }));
          } finally {
            prepared.destroySync();
          }
        }),
      insertInto: (table, columns, partition, version) =>
        run(async () => {
          this.stage(table, partition, version, columns);
          const n = values.length;
          const cols = columns.map((c) => `, ${quoteIdent(c)}`).join('');
          const types = this.stagingTables.get(table)?.columns;
          const picked = columns.map((c) => `, ${withoutNaN(`q.${quoteIdent(c)}`, types?.get(c))}`).join('');
          await this.prepared.run(`INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${cols}) SELECT $${n + 1}, $${n + 2}${picked} FROM (\n${body}\n) AS q`, [...values, partition, version], { once: true });
        }),
      measure: (aggregate) =>
        run(async () => {
          const result = await this.prepared.run(`SELECT ${aggregate} AS n FROM (\n${body}\n) AS v`, values, { once: true });
          const n = jsValue((await result.getRows())[0]![0]!);
          return n === null ? null : Number(n);
        }),
    };
  }

  /**
   * Runs spec SQL's `work`, interrupted at its deadline: the process's one connection would
   * otherwise stay with a statement that never ends, and every later call wait behind it.
   */
  private async untilDeadline<T>(deadline: number | undefined, work: () => Promise<T>): Promise<T> {
    if (deadline === undefined) return work();
    let fired = false;
    const timer = setTimeout(() => {
      fired = true;
      this.c.interrupt();
    }, timeLeft(deadline));
    try {
      return await work();
    } catch (error) {
      if (!fired) throw error;
      this.interrupted = true;
      throw deadlineError();
    } finally {
      clearTimeout(timer);
    }
  }

  /** The door's rules on what spec SQL names. */
  private async assertAllowed(parsed: ParsedQuery, spec: SpecSql): Promise<void> {
    const inPartition = spec.scope !== undefined;
    const refuse = (what: string, why: string) =>
      inPartition ? outsideScope(what, spec) : new SqlRefusedError(`spec SQL may not ${why}: read the lake's datasets by name: ${shown(spec.sql)}`);
    if (parsed.otherSources.length > 0) throw new SqlRefusedError(notASelect(spec.sql));
    for (const fn of parsed.tableFunctions) {
      if (!ROW_FUNCTIONS.has(fn)) throw refuse(`the table function ${fn}(), which reads files or the catalogue,`, `call the table function ${fn}(), which reads files or the catalogue`);
    }
    const reading = await macrosThatRead(this.c);
    for (const fn of parsed.functions) {
      if (reading.has(fn)) throw refuse(`${fn}(), a macro that reads the catalogue,`, `call ${fn}(), a macro that reads the catalogue`);
    }
    for (const fn of parsed.functions) if (ACTS_OUTSIDE.has(fn)) throw new SqlRefusedError(`spec SQL may not call ${fn}(), which acts outside the query: ${shown(spec.sql)}`);
    for (const r of parsed.relations) {
      const full = [r.catalog, r.schema, r.name].filter((p) => p.length > 0).join('.');
      if ([r.catalog, r.schema, r.name].some(fileShaped)) throw refuse(`the file ${r.name}`, `name a file (${r.name})`);
      // A name the SQL's own WITH defines is looked up like any other: where it is read, the WITH
      // may not be in scope (one nested elsewhere, or one that reads the relation of its own name).
      if (!inPartition) continue;
      const plain = r.catalog === '' && r.schema === '';
      const lower = r.name.toLowerCase();
      const named = [...(spec.scope ?? []), ...(spec.given ?? [])].some((g) => g.name.toLowerCase() === lower);
      if (plain && (named || (await this.datasetColumns(lower)) !== null)) continue;
      // A plain name that names nothing fails as unknown when it runs; anything else it names is not a dataset.
      if (plain && !(await this.exists(lower))) continue;
      throw outsideScope(`${full} (a qualified name, a view or table that is not a dataset, or one of backfill's own tables)`, spec);
    }
  }

  private async exists(name: string): Promise<boolean> {
    const [row] = await this.all<{ n: number }>(
      `SELECT (SELECT COUNT(*) FROM duckdb_tables() WHERE lower(table_name) = :name) + (SELECT COUNT(*) FROM duckdb_views() WHERE lower(view_name) = :name) AS n`,
      { name },
    );
    return Number(row?.n ?? 0) > 0;
  }
}

/** A warehouse in a lake directory. */
export class LakeWarehouse extends SqlWarehouse {
  constructor(root: string, options: LakeOptions = {}) {
    super(new LakeDialect(root, options), { readOnly: options.readOnly === true, ...(options.warn ? { warn: options.warn } : {}) });
  }

  /** The lake's dialect (its layout, its catalogue's hold). */
  get lake(): LakeDialect {
    return this.dialect as LakeDialect;
  }
}
