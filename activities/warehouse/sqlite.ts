/** The embedded warehouse: one SQLite file (WAL mode, so several worker processes can share it). */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Check } from '../../core/spec.ts';
import {
  CheckFailedError,
  SqlError,
  type Bindings,
  type InputVersions,
  type LedgerRow,
  type PartitionWrite,
  type Published,
  type Row,
  type SqlValue,
  type Warehouse,
} from './types.ts';

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
const versionsTable = (node: string) => quote(`${node}__versions`);
/** Above this many upstream partitions, lineage keeps a digest instead of every version. */
const MAX_LISTED_INPUTS = 100;

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
`;

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

function wrapSqlError(error: unknown, sql: string): never {
  if (error instanceof Database.SqliteError && (error.code === 'SQLITE_ERROR' || error.code === 'SQLITE_RANGE')) {
    throw new SqlError(`${error.message} in SQL: ${sql.trim().slice(0, 300)}`);
  }
  if (error instanceof RangeError && /named parameter/.test(error.message)) {
    throw new SqlError(`${error.message}: define it in the node's params, or use :partition, :start, :end, :start_date, :end_date`);
  }
  throw error;
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
    this.db.exec(SCHEMA);
  }

  private columns(node: string): ColumnInfo[] {
    const info = this.db.pragma(`table_info(${versionsTable(node)})`) as Array<{ name: string; type: string }>;
    return info.filter((c) => !c.name.startsWith('__')).map((c) => ({ name: c.name, type: c.type }));
  }

  /** Creates the node's version table and view, or adds the columns a new version brings. */
  private ensureColumns(node: string, wanted: ColumnInfo[]): void {
    for (const column of wanted) {
      if (column.name.startsWith('__')) throw new SqlError(`column '${column.name}' is reserved: names starting with __ belong to backfill`);
    }
    let existing = this.columns(node);
    if (existing.length === 0 && !this.tableExists(`${node}__versions`)) {
      const defs = wanted.map((c) => `${quote(c.name)} ${c.type}`).join(', ');
      this.db.exec(`CREATE TABLE ${versionsTable(node)} (__partition TEXT NOT NULL, __version INTEGER NOT NULL${defs ? `, ${defs}` : ''})`);
      this.db.exec(`CREATE INDEX ${quote(`${node}__versions_pk`)} ON ${versionsTable(node)} (__partition, __version)`);
      existing = this.columns(node);
      this.createView(node, existing);
      return;
    }
    const known = new Set(existing.map((c) => c.name));
    const added = wanted.filter((c) => !known.has(c.name));
    for (const column of added) this.db.exec(`ALTER TABLE ${versionsTable(node)} ADD COLUMN ${quote(column.name)} ${column.type}`);
    if (added.length > 0) this.createView(node, this.columns(node));
  }

  private tableExists(name: string): boolean {
    return this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined;
  }

  private createView(node: string, columns: ColumnInfo[]): void {
    const list = columns.map((c) => `v.${quote(c.name)}`).join(', ') || 'NULL AS empty';
    this.db.exec(`DROP VIEW IF EXISTS ${quote(node)}`);
    this.db.exec(
      `CREATE VIEW ${quote(node)} AS SELECT ${list} FROM ${versionsTable(node)} v ` +
        `JOIN backfill_partitions p ON p.node = '${node}' AND p.partition = v.__partition AND p.version = v.__version`,
    );
  }

  private assignVersion(node: string, partition: string, runKey: string): number {
    const mine = this.db
      .prepare('SELECT version FROM backfill_ledger WHERE node = ? AND partition = ? AND run_key = ?')
      .get(node, partition, runKey) as { version: number } | undefined;
    if (mine) return mine.version;
    const latest = this.db
      .prepare('SELECT COALESCE(MAX(version), 0) AS v FROM backfill_ledger WHERE node = ? AND partition = ?')
      .get(node, partition) as { v: number };
    return latest.v + 1;
  }

  /** Writes the version's rows; returns the names of the columns this version has. */
  private stage(write: PartitionWrite, version: number): string[] {
    const { node, partition, data } = write;
    const selects = data.selects.map(({ sql, bindings }) => {
      try {
        const statement = this.db.prepare(sql);
        if (!statement.reader) throw new SqlError(`a node's SQL must be a SELECT that returns the partition's rows: ${sql.trim().slice(0, 200)}`);
        return { sql, bindings, columns: statement.columns().map((c) => c.name) };
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
    for (const s of selects) for (const name of s.columns) if (!rowColumns.has(name)) wanted.push({ name, type: '' });
    this.ensureColumns(node, wanted);
    this.db.prepare(`DELETE FROM ${versionsTable(node)} WHERE __partition = ? AND __version = ?`).run(partition, version);
    for (const s of selects) {
      const cols = s.columns.map(quote).join(', ');
      const sql = `INSERT INTO ${versionsTable(node)} (__partition, __version${cols ? `, ${cols}` : ''}) SELECT @__partition, @__version${cols ? `, ${s.columns.map((c) => `q.${quote(c)}`).join(', ')}` : ''} FROM (${s.sql}) AS q`;
      try {
        this.db.prepare(sql).run({ ...s.bindings, __partition: partition, __version: version });
      } catch (error) {
        wrapSqlError(error, s.sql);
      }
    }
    if (data.rows.length > 0) {
      const names = [...rowColumns.keys()];
      const insert = this.db.prepare(
        `INSERT INTO ${versionsTable(node)} (__partition, __version, ${names.map(quote).join(', ')}) VALUES (?, ?, ${names.map(() => '?').join(', ')})`,
      );
      for (const row of data.rows) insert.run(partition, version, ...names.map((n) => toSqlValue(row[n])));
    }
    return [...new Set(wanted.map((c) => c.name))];
  }

  /**
   * Row count, checksum and schema hash of one version, over the columns that version wrote
   * (sorted by name): columns other versions added to the table do not change them.
   */
  private summarize(node: string, partition: string, version: number, written: string[]): { rowCount: number; checksum: string; schemaHash: string } {
    const columns = [...written].sort();
    const hash = createHash('sha256');
    let rowCount = 0;
    if (columns.length === 0) {
      rowCount = (this.db.prepare(`SELECT COUNT(*) AS n FROM ${versionsTable(node)} WHERE __partition = ? AND __version = ?`).get(partition, version) as { n: number }).n;
    } else {
      const list = columns.map(quote).join(', ');
      const rows = this.db
        .prepare(`SELECT ${list} FROM ${versionsTable(node)} WHERE __partition = ? AND __version = ? ORDER BY ${list}`)
        .raw()
        .iterate(partition, version) as IterableIterator<unknown[]>;
      for (const row of rows) {
        hash.update(JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
        hash.update('\n');
        rowCount++;
      }
    }
    const schemaHash = createHash('sha256').update(JSON.stringify(columns)).digest('hex').slice(0, 16);
    return { rowCount, checksum: hash.digest('hex'), schemaHash };
  }

  private runChecks(node: string, partition: string, version: number, rowCount: number, checks: Check[]): string[] {
    const staged = `(SELECT * FROM ${versionsTable(node)} WHERE __partition = @__partition AND __version = @__version)`;
    const bindings = { __partition: partition, __version: version };
    const count = (sql: string) => (this.db.prepare(sql).get(bindings) as { n: number }).n;
    const problems: string[] = [];
    for (const check of checks) {
      const label = check.name ?? check.type;
      try {
        switch (check.type) {
          case 'row_count':
            if (check.min !== undefined && rowCount < check.min) problems.push(`${label}: ${rowCount} rows, expected at least ${check.min}`);
            if (check.max !== undefined && rowCount > check.max) problems.push(`${label}: ${rowCount} rows, expected at most ${check.max}`);
            break;
          case 'not_null':
            for (const column of check.columns) {
              const n = count(`SELECT COUNT(*) AS n FROM ${staged} AS t WHERE ${quote(column)} IS NULL`);
              if (n > 0) problems.push(`${label}: ${n} rows have ${column} NULL`);
            }
            break;
          case 'unique': {
            const cols = check.columns.map(quote).join(', ');
            const n = count(`SELECT COUNT(*) AS n FROM (SELECT ${cols} FROM ${staged} AS t GROUP BY ${cols} HAVING COUNT(*) > 1)`);
            if (n > 0) problems.push(`${label}: ${n} duplicated values of (${check.columns.join(', ')})`);
            break;
          }
          case 'sql': {
            const sql = check.sql.replace(/\{\{\s*this\s*\}\}/g, staged);
            const n = count(`SELECT COUNT(*) AS n FROM (${sql})`);
            if (n > 0) problems.push(`${label}: ${n} violating rows`);
            break;
          }
        }
      } catch (error) {
        if (error instanceof Database.SqliteError) problems.push(`${label}: the check's SQL failed: ${error.message}`);
        else throw error;
      }
    }
    return problems;
  }

  private inputVersions(inputs: PartitionWrite['inputs']): InputVersions[] {
    return inputs.map(({ keys, all, ...input }) => {
      // Time keys of one grain sort in time order, so a range is a BETWEEN; static keys are listed.
      const rows = (
        all
          ? this.db.prepare('SELECT partition, version FROM backfill_partitions WHERE node = ? ORDER BY partition').all(input.node)
          : keys
          ? this.db
              .prepare(`SELECT partition, version FROM backfill_partitions WHERE node = ? AND partition IN (${keys.map(() => '?').join(', ')}) ORDER BY partition`)
              .all(input.node, ...keys)
          : this.db
              .prepare('SELECT partition, version FROM backfill_partitions WHERE node = ? AND partition BETWEEN ? AND ? ORDER BY partition')
              .all(input.node, input.from, input.to)
      ) as Array<{ partition: string; version: number }>;
      const digest = createHash('sha256');
      for (const r of rows) digest.update(`${r.partition}=${r.version}\n`);
      return {
        ...input,
        partitions: rows.length,
        ...(rows.length <= MAX_LISTED_INPUTS ? { versions: Object.fromEntries(rows.map((r) => [r.partition, r.version])) } : {}),
        digest: digest.digest('hex').slice(0, 16),
      };
    });
  }

  async publish(write: PartitionWrite): Promise<Published> {
    const { node, partition } = write;
    const record = this.db.prepare(`
      INSERT INTO backfill_ledger (node, partition, version, status, backfill_id, run_key, workflow_id, row_count, checksum,
        schema_hash, transform, params, code_version, inputs, attempt, executions, started_at, finished_at, duration_ms,
        previous_version, error)
      VALUES (@node, @partition, @version, @status, @backfillId, @runKey, @workflowId, @rowCount, @checksum, @schemaHash,
        @transform, @params, @codeVersion, @inputs, @attempt, 1, @startedAt, @finishedAt, @durationMs, @previousVersion, @error)
      ON CONFLICT (node, partition, version) DO UPDATE SET status = excluded.status, workflow_id = excluded.workflow_id,
        row_count = excluded.row_count, checksum = excluded.checksum, schema_hash = excluded.schema_hash,
        params = excluded.params, code_version = excluded.code_version, inputs = excluded.inputs, attempt = excluded.attempt,
        executions = backfill_ledger.executions + 1, started_at = excluded.started_at, finished_at = excluded.finished_at,
        duration_ms = excluded.duration_ms, previous_version = excluded.previous_version, error = excluded.error`);
    const ledgerRow = (version: number, fields: { status: string; rowCount: number | null; checksum: string | null; schemaHash: string | null; previousVersion: number | null; error: string | null }) => {
      const finishedAt = Date.now();
      return {
        node,
        partition,
        version,
        backfillId: write.backfillId,
        runKey: write.runKey,
        workflowId: write.workflowId,
        transform: write.transform,
        params: JSON.stringify(write.params),
        codeVersion: write.codeVersion,
        inputs: JSON.stringify(this.inputVersions(write.inputs)),
        attempt: write.attempt,
        startedAt: new Date(write.startedAt).toISOString(),
        finishedAt: new Date(finishedAt).toISOString(),
        durationMs: finishedAt - write.startedAt,
        ...fields,
      };
    };

    const publish = this.db.transaction((): Published | { version: number; problems: string[] } => {
      const version = this.assignVersion(node, partition, write.runKey);
      // A nested transaction is a savepoint: a failed check rolls back the new rows only, and
      // the failure is recorded in the same transaction, under the version it was given.
      let problems: string[] = [];
      const staged = this.db.transaction(() => {
        const written = this.stage(write, version);
        const summary = this.summarize(node, partition, version, written);
        problems = this.runChecks(node, partition, version, summary.rowCount, write.checks);
        if (problems.length > 0) throw new CheckFailedError(problems.join('; '));
        return summary;
      });
      let summary: ReturnType<typeof staged>;
      try {
        summary = staged();
      } catch (error) {
        if (!(error instanceof CheckFailedError)) throw error;
        this.recordCheckFailure(record, ledgerRow(version, { status: 'failed_check', rowCount: null, checksum: null, schemaHash: null, previousVersion: null, error: problems.join('; ') }));
        return { version, problems };
      }
      const current = this.db.prepare('SELECT version FROM backfill_partitions WHERE node = ? AND partition = ?').get(node, partition) as
        | { version: number }
        | undefined;
      // A retry of a version already published keeps the version it replaced.
      const previousVersion =
        current && current.version !== version
          ? current.version
          : ((this.db.prepare('SELECT previous_version AS p FROM backfill_ledger WHERE node = ? AND partition = ? AND version = ?').get(node, partition, version) as
              | { p: number | null }
              | undefined)?.p ?? null);
      this.db
        .prepare(
          `INSERT INTO backfill_partitions (node, partition, version, published_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (node, partition) DO UPDATE SET version = excluded.version, published_at = excluded.published_at`,
        )
        .run(node, partition, version, new Date().toISOString());
      record.run(ledgerRow(version, { status: 'published', ...summary, previousVersion, error: null }));
      return { version, previousVersion, ...summary };
    });
    const outcome = publish.immediate();
    if ('problems' in outcome) throw new CheckFailedError(`checks failed for ${node} ${partition}: ${outcome.problems.join('; ')}`);
    return outcome;
  }

  /** A version already published by an earlier attempt stays published: only the failure is noted. */
  private recordCheckFailure(record: Database.Statement, row: Record<string, unknown> & { node: string; partition: string; version: number; error: string | null }): void {
    const existing = this.db.prepare('SELECT status FROM backfill_ledger WHERE node = ? AND partition = ? AND version = ?').get(row.node, row.partition, row.version) as
      | { status: string }
      | undefined;
    if (existing?.status === 'published') {
      this.db
        .prepare('UPDATE backfill_ledger SET executions = executions + 1, error = ? WHERE node = ? AND partition = ? AND version = ?')
        .run(row.error, row.node, row.partition, row.version);
    } else {
      record.run(row);
    }
  }

  async query(sql: string, bindings: Bindings = {}): Promise<Row[]> {
    try {
      return this.db.prepare(sql).all(bindings) as Row[];
    } catch (error) {
      return wrapSqlError(error, sql);
    }
  }

  async ledger(filter: { backfillId?: string; node?: string; partition?: string }): Promise<LedgerRow[]> {
    const where: string[] = [];
    const bindings: Bindings = {};
    if (filter.backfillId !== undefined) (where.push('l.backfill_id = @backfillId'), (bindings.backfillId = filter.backfillId));
    if (filter.node !== undefined) (where.push('l.node = @node'), (bindings.node = filter.node));
    if (filter.partition !== undefined) (where.push('l.partition = @partition'), (bindings.partition = filter.partition));
    const rows = this.db
      .prepare(
        `SELECT l.*, (p.version IS NOT NULL) AS current FROM backfill_ledger l
         LEFT JOIN backfill_partitions p ON p.node = l.node AND p.partition = l.partition AND p.version = l.version
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY l.node, l.partition, l.version DESC`,
      )
      .all(bindings) as Array<Record<string, unknown>>;
    return rows.map((r) => ({
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
      current: r.current === 1,
    }));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
