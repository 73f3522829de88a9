/**
 * The embedded warehouse: one SQLite file (WAL mode, so several processes on one host can
 * share it). Writers take turns (one `BEGIN IMMEDIATE` per publish); for real parallel
 * writes and for workers on several machines use the PostgreSQL warehouse.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { PartitionInput } from '../../../core/protocol.ts';
import { changesFromRows, changesQuery, pageLimit, type ChangeRow } from '../changes.ts';
import { checkSync, type CheckOutcome } from '../checks.ts';
import { RowHasher, schemaHash } from '../checksum.ts';
import { inputVersions } from '../lineage.ts';
import { assertDataset } from '../names.ts';
import { assertSameChecksum, columnsFromSchemaHash, decideRestore, type RestoreState } from '../restore.ts';
import {
  PARTITION_COLUMN,
  VERSION_COLUMN,
  assertSelect,
  assertUserColumns,
  quoteIdent,
  quoteLiteral,
  scopedSelect,
  versionsTable,
  type ScopedRelation,
} from '../sql.ts';
import {
  CheckFailedError,
  ChecksumMismatchError,
  SqlError,
  type Bindings,
  type ChangesOptions,
  type ChangesPage,
  type InputVersions,
  type LedgerFilter,
  type LedgerRow,
  type PartitionWrite,
  type PinnedInput,
  type Published,
  type RestoreOutcome,
  type RestoreRequest,
  type RollbackFilter,
  type RollbackRecord,
  type Row,
  type SqlValue,
  type VersionRef,
  type Warehouse,
} from '../types.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS backfill_ledger (
  node TEXT NOT NULL,
  partition TEXT NOT NULL,
  version INTEGER NOT NULL,
  status TEXT NOT NULL,
  backfill_id TEXT NOT NULL,
  run_key TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  row_count INTEGER,
  checksum TEXT,
  schema_hash TEXT,
  transform TEXT NOT NULL,
  params TEXT NOT NULL,
  code_version TEXT NOT NULL,
  inputs TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  executions INTEGER NOT NULL DEFAULT 1,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  duration_ms INTEGER NOT NULL,
  previous_version INTEGER,
  error TEXT,
  PRIMARY KEY (node, partition, version)
);
CREATE INDEX IF NOT EXISTS backfill_ledger_by_backfill ON backfill_ledger (backfill_id, node, partition);
CREATE INDEX IF NOT EXISTS backfill_ledger_by_run ON backfill_ledger (run_key, node, partition);
CREATE TABLE IF NOT EXISTS backfill_partitions (
  node TEXT NOT NULL,
  partition TEXT NOT NULL,
  version INTEGER NOT NULL,
  published_at TEXT NOT NULL,
  PRIMARY KEY (node, partition)
);
CREATE TABLE IF NOT EXISTS backfill_rollbacks (
  rollback_id TEXT NOT NULL,
  backfill_id TEXT NOT NULL,
  node TEXT NOT NULL,
  partition TEXT NOT NULL,
  from_version INTEGER,
  to_version INTEGER,
  forced INTEGER NOT NULL,
  at TEXT NOT NULL,
  PRIMARY KEY (rollback_id, node, partition)
);
CREATE INDEX IF NOT EXISTS backfill_rollbacks_by_partition ON backfill_rollbacks (node, partition);
CREATE INDEX IF NOT EXISTS backfill_rollbacks_by_backfill ON backfill_rollbacks (backfill_id);
`;

/**
 * Ledger columns added after the first release. Every warehouse file, new or old, gets them
 * the same way (ALTER TABLE when missing), so the upgrade path is the one always taken.
 */
const LEDGER_ADDITIONS: ReadonlyArray<[name: string, definition: string]> = [
  ['warnings', "TEXT NOT NULL DEFAULT '[]'"],
  ['spec_hash', 'TEXT'],
  // The columns the version wrote, which its checksum covers (null: published before they were recorded).
  ['version_columns', 'TEXT'],
];

/** Pinned (node, partition, version) rows that scoped reads join; one per connection. */
const SCOPE_TABLE = 'temp.backfill_scope';
const SCOPE_SCHEMA = `CREATE TEMP TABLE IF NOT EXISTS backfill_scope (node TEXT NOT NULL, partition TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (node, partition))`;

type ColumnInfo = { name: string; type: string };

function sqlType(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? 'INTEGER' : 'REAL';
  if (typeof value === 'bigint' || typeof value === 'boolean') return 'INTEGER';
  return 'TEXT';
}

function toSqlValue(value: unknown): SqlValue {
  if (value === undefined || value === null) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') return value;
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
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

function isSqlError(error: unknown): boolean {
  return (
    (error instanceof Database.SqliteError && (error.code === 'SQLITE_ERROR' || error.code === 'SQLITE_RANGE' || error.code === 'SQLITE_MISMATCH')) ||
    (error instanceof RangeError && /named parameter/.test(error.message))
  );
}

function wrapSqlError(error: unknown, sql: string): never {
  if (error instanceof RangeError && /named parameter/.test(error.message)) {
    throw new SqlError(`${error.message}: define it in the node's params, or use :partition, :start, :end, :start_date, :end_date`);
  }
  if (isSqlError(error)) throw new SqlError(`${(error as Error).message} in SQL: ${sql.trim().slice(0, 300)}`);
  throw error;
}

type Outcome = Published | { failed: string };
type Summary = { rowCount: number; checksum: string; schemaHash: string; columns: string[] };
type PublishedFields = Summary & { previousVersion: number | null; warnings: string[] };

/** Ledger rows with whether each is the published version of its partition. */
const LEDGER_SELECT = `SELECT l.*, (p.version IS NOT NULL) AS current FROM backfill_ledger l
  LEFT JOIN backfill_partitions p ON p.node = l.node AND p.partition = l.partition AND p.version = l.version`;

function ledgerRow(r: Record<string, unknown>): LedgerRow {
  return {
    node: r.node as string,
    partition: r.partition as string,
    version: r.version as number,
    status: r.status as LedgerRow['status'],
    backfillId: r.backfill_id as string,
    runKey: r.run_key as string,
    workflowId: r.workflow_id as string,
    rowCount: r.row_count as number | null,
    checksum: r.checksum as string | null,
    schemaHash: r.schema_hash as string | null,
    transform: r.transform as string,
    params: JSON.parse(r.params as string) as Record<string, unknown>,
    codeVersion: r.code_version as string,
    inputs: JSON.parse(r.inputs as string) as InputVersions[],
    attempt: r.attempt as number,
    executions: r.executions as number,
    startedAt: r.started_at as string,
    finishedAt: r.finished_at as string,
    durationMs: r.duration_ms as number,
    previousVersion: r.previous_version as number | null,
    error: r.error as string | null,
    warnings: JSON.parse(r.warnings as string) as string[],
    specHash: r.spec_hash as string | null,
    current: r.current === 1,
  };
}

export class SqliteWarehouse implements Warehouse {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;

  constructor(readonly location: string) {
    if (location !== ':memory:') mkdirSync(dirname(location), { recursive: true });
    this.db = new Database(location);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 15000');
    // One writer at a time: processes opening an old file together add its columns once.
    this.db.transaction(() => {
      this.db.exec(SCHEMA);
      const have = new Set((this.db.pragma('main.table_info(backfill_ledger)') as ColumnInfo[]).map((c) => c.name));
      for (const [name, definition] of LEDGER_ADDITIONS) {
        if (!have.has(name)) this.db.exec(`ALTER TABLE main.backfill_ledger ADD COLUMN ${name} ${definition}`);
      }
    }).immediate();
    this.db.exec(SCOPE_SCHEMA);
  }

  private columns(node: string): ColumnInfo[] {
    const info = this.db.pragma(`main.table_info(${quoteIdent(versionsTable(node))})`) as ColumnInfo[];
    return info.filter((c) => !c.name.startsWith('__')).map((c) => ({ name: c.name, type: c.type }));
  }

  private tableExists(name: string): boolean {
    return this.db.prepare(`SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined;
  }

  /** Creates the node's versions table and view, or adds the columns a new version brings. */
  private ensureColumns(node: string, wanted: ColumnInfo[]): void {
    assertUserColumns(wanted.map((c) => c.name));
    const table = quoteIdent(versionsTable(node));
    if (!this.tableExists(versionsTable(node))) {
      const defs = wanted.map((c) => `, ${quoteIdent(c.name)} ${c.type}`).join('');
      this.db.exec(`CREATE TABLE main.${table} (${PARTITION_COLUMN} TEXT NOT NULL, ${VERSION_COLUMN} INTEGER NOT NULL${defs})`);
      this.db.exec(`CREATE INDEX main.${quoteIdent(`${versionsTable(node)}_pk`)} ON ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN})`);
      this.createView(node);
      return;
    }
    const known = new Set(this.columns(node).map((c) => c.name));
    const added = wanted.filter((c) => !known.has(c.name));
    for (const column of added) this.db.exec(`ALTER TABLE main.${table} ADD COLUMN ${quoteIdent(column.name)} ${column.type}`);
    if (added.length > 0) this.createView(node);
  }

  private createView(node: string): void {
    const list = this.columns(node).map((c) => `v.${quoteIdent(c.name)}`).join(', ') || 'NULL AS __empty';
    this.db.exec(`DROP VIEW IF EXISTS main.${quoteIdent(node)}`);
    this.db.exec(
      `CREATE VIEW main.${quoteIdent(node)} AS SELECT ${list} FROM main.${quoteIdent(versionsTable(node))} v ` +
        `JOIN main.backfill_partitions p ON p.node = ${quoteLiteral(node)} AND p.partition = v.${PARTITION_COLUMN} AND p.version = v.${VERSION_COLUMN}`,
    );
  }

  private pinNow(inputs: readonly PartitionInput[]): PinnedInput[] {
    return inputs.map((input) => {
      const { node, keys, all } = input;
      // Time keys of one grain sort in time order, so a range is a BETWEEN; static keys are listed.
      const rows = (
        all
          ? this.db.prepare('SELECT partition, version FROM backfill_partitions WHERE node = ?').raw().all(node)
          : keys
            ? this.db
                .prepare(`SELECT partition, version FROM backfill_partitions WHERE node = ? AND partition IN (${keys.map(() => '?').join(', ')})`)
                .raw()
                .all(node, ...keys)
            : this.db.prepare('SELECT partition, version FROM backfill_partitions WHERE node = ? AND partition BETWEEN ? AND ?').raw().all(node, input.from, input.to)
      ) as Array<[string, number]>;
      return { ...input, versions: rows };
    });
  }

  /** Loads the pinned versions into the scope table; returns the relations that shadow upstream datasets. */
  private loadScope(pinned: readonly PinnedInput[]): ScopedRelation[] {
    this.db.exec(`DELETE FROM ${SCOPE_TABLE}`);
    const insert = this.db.prepare(`INSERT OR REPLACE INTO ${SCOPE_TABLE} (node, partition, version) VALUES (?, ?, ?)`);
    const relations: ScopedRelation[] = [];
    for (const input of pinned) {
      for (const [partition, version] of input.versions) insert.run(input.node, partition, version);
      // An upstream dataset that was never written has no table to shadow: the SQL then fails naming it.
      if (!this.tableExists(versionsTable(input.node)) || relations.some((r) => r.name === input.node)) continue;
      relations.push({
        name: input.node,
        table: `main.${quoteIdent(versionsTable(input.node))}`,
        columns: this.columns(input.node).map((c) => c.name),
        scopeTable: SCOPE_TABLE,
      });
    }
    return relations;
  }

  /** Writes the version's rows; returns the names of the columns this version has. */
  private stage(write: PartitionWrite, version: number, relations: ScopedRelation[]): string[] {
    const { node, partition, data } = write;
    const selects = data.selects.map(({ sql, bindings }) => {
      assertSelect(sql);
      const text = scopedSelect(sql, relations);
      try {
        const statement = this.db.prepare(text);
        return { text, sql, bindings, columns: statement.columns().map((c) => c.name) };
      } catch (error) {
        return wrapSqlError(error, sql);
      }
    });
    // A column's type comes from its first non-null value.
    const rowColumns = new Map<string, string>();
    for (const row of data.rows) {
      for (const [name, value] of Object.entries(row)) {
        if (!rowColumns.get(name)) rowColumns.set(name, value === null || value === undefined ? '' : sqlType(value));
      }
    }
    const wanted: ColumnInfo[] = [...rowColumns].map(([name, type]) => ({ name, type }));
    for (const s of selects) for (const name of s.columns) if (!rowColumns.has(name) && !wanted.some((w) => w.name === name)) wanted.push({ name, type: '' });
    this.ensureColumns(node, wanted);
    const table = `main.${quoteIdent(versionsTable(node))}`;
    for (const s of selects) {
      const cols = s.columns.map((c) => `, ${quoteIdent(c)}`).join('');
      const picked = s.columns.map((c) => `, q.${quoteIdent(c)}`).join('');
      const sql = `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${cols}) SELECT @__partition, @__version${picked} FROM (${s.text}) AS q`;
      try {
        this.db.prepare(sql).run({ ...integers(s.bindings), __partition: partition, __version: version });
      } catch (error) {
        wrapSqlError(error, s.sql);
      }
    }
    if (data.rows.length > 0) {
      const names = [...rowColumns.keys()];
      const insert = this.db.prepare(
        `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${names.map((n) => `, ${quoteIdent(n)}`).join('')}) VALUES (?, ?${names.map(() => ', ?').join('')})`,
      );
      for (const row of data.rows) insert.run(partition, version, ...names.map((n) => toSqlValue(row[n])));
    }
    return [...new Set(wanted.map((c) => c.name))];
  }

  /** Row count, checksum and schema hash of one version, over the columns that version wrote. */
  private summarize(node: string, partition: string, version: number, written: readonly string[]): Summary {
    const columns = [...written].sort();
    const hasher = new RowHasher(columns);
    const list = columns.length > 0 ? columns.map(quoteIdent).join(', ') : 'NULL';
    const rows = this.db
      .prepare(`SELECT ${list} FROM main.${quoteIdent(versionsTable(node))} WHERE ${PARTITION_COLUMN} = ? AND ${VERSION_COLUMN} = ?`)
      .raw()
      .iterate(partition, version) as IterableIterator<unknown[]>;
    for (const row of rows) hasher.add(columns.length > 0 ? row : []);
    return { rowCount: hasher.rowCount, checksum: hasher.checksum(), schemaHash: schemaHash(columns), columns };
  }

  /** The rows of one stored version, as a SELECT checks can read. */
  private versionSelect(node: string, partition: string, version: number): string {
    return `SELECT * FROM main.${quoteIdent(versionsTable(node))} WHERE ${PARTITION_COLUMN} = ${quoteLiteral(partition)} AND ${VERSION_COLUMN} = ${version}`;
  }

  private runChecks(write: PartitionWrite, version: number, rowCount: number, previous: number | null): CheckOutcome {
    const staged = this.versionSelect(write.node, write.partition, version);
    const target = { rowCount, staged, previous: previous === null ? null : this.versionSelect(write.node, write.partition, previous) };
    return checkSync(write.checks, target, (sql) => {
      try {
        const n = (this.db.prepare(sql).get() as { n: number | bigint | null }).n;
        return n === null ? null : Number(n);
      } catch (error) {
        if (error instanceof Database.SqliteError) return { error: error.message };
        throw error;
      }
    });
  }

  private publishedRow(node: string, partition: string, runKey: string): Published | null {
    const row = this.db
      .prepare(
        `SELECT version, previous_version AS previousVersion, row_count AS rowCount, checksum, schema_hash AS schemaHash, warnings
         FROM backfill_ledger WHERE node = ? AND partition = ? AND run_key = ? AND status = 'published'`,
      )
      .get(node, partition, runKey) as (Omit<Published, 'warnings'> & { warnings: string }) | undefined;
    return row ? { ...row, warnings: JSON.parse(row.warnings) as string[] } : null;
  }

  private recordLedger(write: PartitionWrite, version: number, fields: PublishedFields | { failed: string; warnings: string[] }, inputs: InputVersions[]): void {
    const finishedAt = Date.now();
    const published = !('failed' in fields);
    this.db
      .prepare(
        `INSERT INTO backfill_ledger (node, partition, version, status, backfill_id, run_key, workflow_id, row_count, checksum,
          schema_hash, transform, params, code_version, inputs, attempt, executions, started_at, finished_at, duration_ms,
          previous_version, error, warnings, spec_hash, version_columns)
         VALUES (@node, @partition, @version, @status, @backfillId, @runKey, @workflowId, @rowCount, @checksum, @schemaHash,
          @transform, @params, @codeVersion, @inputs, @attempt, 1, @startedAt, @finishedAt, @durationMs, @previousVersion, @error,
          @warnings, @specHash, @versionColumns)`,
      )
      .run({
        node: write.node,
        partition: write.partition,
        version,
        status: published ? 'published' : 'failed_check',
        backfillId: write.backfillId,
        runKey: write.runKey,
        workflowId: write.workflowId,
        rowCount: published ? fields.rowCount : null,
        checksum: published ? fields.checksum : null,
        schemaHash: published ? fields.schemaHash : null,
        transform: write.transform,
        params: JSON.stringify(write.params),
        codeVersion: write.codeVersion,
        inputs: JSON.stringify(inputs),
        attempt: write.attempt,
        startedAt: new Date(write.startedAt).toISOString(),
        finishedAt: new Date(finishedAt).toISOString(),
        durationMs: finishedAt - write.startedAt,
        previousVersion: published ? fields.previousVersion : null,
        error: published ? null : fields.failed,
        warnings: JSON.stringify(fields.warnings),
        specHash: write.specHash ?? null,
        versionColumns: published ? JSON.stringify(fields.columns) : null,
      });
  }

  async pin(inputs: PartitionInput[]): Promise<PinnedInput[]> {
    return this.db.transaction(() => this.pinNow(inputs))();
  }

  async publishedBy(node: string, partition: string, runKey: string): Promise<Published | null> {
    return this.publishedRow(node, partition, runKey);
  }

  async publish(write: PartitionWrite): Promise<Published> {
    assertDataset(write.node);
    const { node, partition } = write;
    const publish = this.db.transaction((): Outcome => {
      const already = this.publishedRow(node, partition, write.runKey);
      if (already) {
        this.db.prepare('UPDATE backfill_ledger SET executions = executions + 1 WHERE node = ? AND partition = ? AND version = ?').run(node, partition, already.version);
        return { ...already, alreadyPublished: true };
      }
      const latest = this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM backfill_ledger WHERE node = ? AND partition = ?').get(node, partition) as { v: number };
      const version = latest.v + 1;
      const pinned = write.pinned ?? this.pinNow(write.inputs);
      const relations = this.loadScope(pinned);
      const inputs = inputVersions(pinned);
      const current = this.db.prepare('SELECT version FROM backfill_partitions WHERE node = ? AND partition = ?').get(node, partition) as { version: number } | undefined;
      const previousVersion = current?.version ?? null;
      // A nested transaction is a savepoint: a failed check rolls back the new rows only, and
      // the failure is recorded in the same transaction, under the version it was given.
      let warnings: string[] = [];
      const stage = this.db.transaction(() => {
        const written = this.stage(write, version, relations);
        const summary = this.summarize(node, partition, version, written);
        const checked = this.runChecks(write, version, summary.rowCount, previousVersion);
        warnings = checked.warnings;
        if (checked.errors.length > 0) throw new CheckFailedError(checked.errors.join('; '));
        return summary;
      });
      let summary: Summary;
      try {
        summary = stage();
      } catch (error) {
        if (!(error instanceof CheckFailedError)) throw error;
        this.recordLedger(write, version, { failed: error.message, warnings }, inputs);
        return { failed: error.message };
      }
      this.db
        .prepare(
          `INSERT INTO backfill_partitions (node, partition, version, published_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (node, partition) DO UPDATE SET version = excluded.version, published_at = excluded.published_at`,
        )
        .run(node, partition, version, new Date().toISOString());
      this.recordLedger(write, version, { ...summary, previousVersion, warnings }, inputs);
      const { columns: _columns, ...published } = summary;
      return { version, previousVersion, ...published, warnings };
    });
    const outcome = publish.immediate();
    // The partition is named by the activity and the failure details: kept out of the message, failures of one cause group together.
    if ('failed' in outcome) throw new CheckFailedError(`checks failed: ${outcome.failed}`);
    return outcome;
  }

  async query(sql: string, bindings: Bindings = {}, scope?: PinnedInput[]): Promise<Row[]> {
    const read = () => {
      const text = scope ? scopedSelect(sql, this.loadScope(scope)) : sql;
      try {
        return this.db.prepare(text).all(integers(bindings)) as Row[];
      } catch (error) {
        return wrapSqlError(error, sql);
      }
    };
    return scope ? this.db.transaction(read)() : read();
  }

  async ledger(filter: LedgerFilter): Promise<LedgerRow[]> {
    const where: string[] = [];
    const bindings: Bindings = {};
    if (filter.backfillId !== undefined) (where.push('l.backfill_id = @backfillId'), (bindings.backfillId = filter.backfillId));
    if (filter.node !== undefined) (where.push('l.node = @node'), (bindings.node = filter.node));
    if (filter.partition !== undefined) (where.push('l.partition = @partition'), (bindings.partition = filter.partition));
    const rows = this.db
      .prepare(
        `${LEDGER_SELECT}
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY l.node, l.partition, l.version DESC`,
      )
      .all(bindings) as Array<Record<string, unknown>>;
    return rows.map(ledgerRow);
  }

  async publishedRows(node: string): Promise<LedgerRow[]> {
    const rows = this.db.prepare(`${LEDGER_SELECT} WHERE l.node = ? AND p.version IS NOT NULL ORDER BY l.partition`).all(node) as Array<Record<string, unknown>>;
    return rows.map(ledgerRow);
  }

  async ledgerVersions(node: string, versions: readonly VersionRef[]): Promise<LedgerRow[]> {
    if (versions.length === 0) return [];
    // One statement for any number of versions: the pairs travel as one JSON array, which
    // drives the join (CROSS JOIN keeps that order), so each pair is one primary-key lookup.
    const rows = this.db
      .prepare(
        `SELECT l.*, (p.version IS NOT NULL) AS current FROM json_each(?) j
         CROSS JOIN backfill_ledger l ON l.node = ? AND l.partition = j.value ->> 0 AND l.version = j.value ->> 1
         LEFT JOIN backfill_partitions p ON p.node = l.node AND p.partition = l.partition AND p.version = l.version
         ORDER BY l.partition, l.version DESC`,
      )
      .all(JSON.stringify(versions), node) as Array<Record<string, unknown>>;
    return rows.map(ledgerRow);
  }

  async changesBy(backfillId: string, options: ChangesOptions = {}): Promise<ChangesPage> {
    const { sql, bindings } = changesQuery({ ledger: 'main.backfill_ledger', pointers: 'main.backfill_partitions' }, backfillId, options);
    const read = this.db.transaction(() => this.db.prepare(sql).all(bindings) as ChangeRow[]);
    return changesFromRows(read(), pageLimit(options.limit));
  }

  /** The published version, who published it, and this rollback's earlier restore of the partition. */
  private restoreState(request: RestoreRequest): RestoreState {
    const { node, partition } = request;
    const current = this.db
      .prepare(
        `SELECT p.version, l.backfill_id AS backfillId FROM backfill_partitions p
         LEFT JOIN backfill_ledger l ON l.node = p.node AND l.partition = p.partition AND l.version = p.version
         WHERE p.node = ? AND p.partition = ?`,
      )
      .get(node, partition) as { version: number; backfillId: string | null } | undefined;
    const recorded = this.db
      .prepare(
        `SELECT r.from_version AS fromVersion, l.backfill_id AS fromBackfillId, r.to_version AS toVersion, r.forced FROM backfill_rollbacks r
         LEFT JOIN backfill_ledger l ON l.node = r.node AND l.partition = r.partition AND l.version = r.from_version
         WHERE r.rollback_id = ? AND r.node = ? AND r.partition = ?`,
      )
      .get(request.rollbackId, node, partition) as { fromVersion: number | null; fromBackfillId: string | null; toVersion: number | null; forced: number } | undefined;
    return {
      found: current?.version ?? null,
      foundBackfillId: current?.backfillId ?? null,
      recorded: recorded ? { ...recorded, forced: recorded.forced === 1 } : null,
    };
  }

  /** Recomputes the checksum of a stored version as publish did, and compares it with the ledger's. */
  private verifyVersion(node: string, partition: string, version: number): void {
    const what = `version ${version} of ${node} ${partition}`;
    const row = this.db
      .prepare(`SELECT checksum, row_count AS rowCount, schema_hash AS schemaHash, version_columns AS columns FROM backfill_ledger WHERE node = ? AND partition = ? AND version = ? AND status = 'published'`)
      .get(node, partition, version) as { checksum: string; rowCount: number; schemaHash: string; columns: string | null } | undefined;
    if (!row) throw new ChecksumMismatchError(`${what} is not a published version in the ledger: there is no checksum to verify it by, so it was not restored`);
    const columns = row.columns !== null ? (JSON.parse(row.columns) as string[]) : this.columnsFor(node, partition, version, row.schemaHash);
    if (!columns) {
      throw new ChecksumMismatchError(`${what}: cannot tell which columns it wrote (it was published before the ledger recorded them, and no set of columns matches its schema hash), so its checksum cannot be verified and it was not restored`);
    }
    assertSameChecksum(what, row, this.summarize(node, partition, version, columns));
  }

  /** The columns a version published before the ledger kept them wrote, from its values and its schema hash. */
  private columnsFor(node: string, partition: string, version: number, expected: string): string[] | undefined {
    const names = this.columns(node).map((c) => c.name);
    if (names.length === 0) return columnsFromSchemaHash(expected, [], new Set());
    const counts = this.db
      .prepare(`SELECT ${names.map((c, i) => `COUNT(${quoteIdent(c)}) AS c${i}`).join(', ')} FROM main.${quoteIdent(versionsTable(node))} WHERE ${PARTITION_COLUMN} = ? AND ${VERSION_COLUMN} = ?`)
      .get(partition, version) as Record<string, number>;
    return columnsFromSchemaHash(expected, names, new Set(names.filter((_, i) => counts[`c${i}`]! > 0)));
  }

  async restore(request: RestoreRequest): Promise<RestoreOutcome> {
    assertDataset(request.node);
    const { node, partition, to } = request;
    const restore = this.db.transaction((): RestoreOutcome => {
      const decision = decideRestore(request, this.restoreState(request));
      if (!decision.move) return decision.outcome;
      const at = new Date().toISOString();
      if (to === null) {
        this.db.prepare('DELETE FROM backfill_partitions WHERE node = ? AND partition = ?').run(node, partition);
      } else {
        this.verifyVersion(node, partition, to);
        this.db
          .prepare(
            `INSERT INTO backfill_partitions (node, partition, version, published_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (node, partition) DO UPDATE SET version = excluded.version, published_at = excluded.published_at`,
          )
          .run(node, partition, to, at);
      }
      this.db
        .prepare(
          `INSERT INTO backfill_rollbacks (rollback_id, backfill_id, node, partition, from_version, to_version, forced, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(request.rollbackId, request.backfillId, node, partition, decision.outcome.found, to, decision.outcome.forced ? 1 : 0, at);
      return decision.outcome;
    });
    return restore.immediate();
  }

  async rollbacks(filter: RollbackFilter): Promise<RollbackRecord[]> {
    const where: string[] = [];
    const bindings: Bindings = {};
    if (filter.rollbackId !== undefined) (where.push('rollback_id = @rollbackId'), (bindings.rollbackId = filter.rollbackId));
    if (filter.backfillId !== undefined) (where.push('backfill_id = @backfillId'), (bindings.backfillId = filter.backfillId));
    if (filter.node !== undefined) (where.push('node = @node'), (bindings.node = filter.node));
    if (filter.partition !== undefined) (where.push('partition = @partition'), (bindings.partition = filter.partition));
    const rows = this.db
      .prepare(
        `SELECT rollback_id AS rollbackId, backfill_id AS backfillId, node, partition, from_version AS fromVersion, to_version AS toVersion, forced, at
         FROM backfill_rollbacks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at, node, partition`,
      )
      .all(bindings) as Array<Omit<RollbackRecord, 'forced'> & { forced: number }>;
    return rows.map((r) => ({ ...r, forced: r.forced === 1 }));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
