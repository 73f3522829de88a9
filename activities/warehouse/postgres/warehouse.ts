/**
 * The PostgreSQL warehouse: workers on any number of machines write to one database, and
 * partitions of one node publish in parallel for real (each publish is a transaction that
 * locks only its own partition).
 *
 * The ledger, the published pointers and every dataset's versions table live in a schema of
 * their own (`backfill` by default); each dataset is a view, named after its node, in the
 * connection's current schema (the first of its search_path), so `SELECT * FROM <node>`
 * reads its published partitions.
 */
import pg from 'pg';
import type { PartitionInput } from '../../../core/protocol.ts';
import { changesFromRows, changesQuery, pageLimit, type ChangeRow } from '../changes.ts';
import { checkAsync, type CheckOutcome } from '../checks.ts';
import { RowHasher, schemaHash } from '../checksum.ts';
import { inputVersions } from '../lineage.ts';
import { assertDataset } from '../names.ts';
import { assertSameChecksum, columnsFromSchemaHash, decideRestore, type RestoreState } from '../restore.ts';
import {
  PARTITION_COLUMN,
  VERSION_COLUMN,
  assertSelect,
  assertUserColumns,
  bindPositional,
  positionalParameters,
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
  type VersionRef,
  type Warehouse,
} from '../types.ts';
import { UNKNOWN_OID, castFor, kindOf, toParameter, typeOfValue, widerType } from './types.ts';

export type PostgresOptions = {
  /** The schema of the ledger and the versions tables (default `backfill`). */
  schema?: string;
  /** Connections in the pool (default 10): the most partitions this process publishes at once. */
  poolSize?: number;
};

type Column = { name: string; type: string };
/** A column a new version writes; a null type holds only NULLs, which fit any type (new columns get text). */
type Wanted = { name: string; type: string | null };
type Client = pg.PoolClient;
type Summary = { rowCount: number; checksum: string; schemaHash: string; columns: string[] };
type PublishedFields = Summary & { previousVersion: number | null; warnings: string[] };

/**
 * Ledger columns added after the first release: every schema, new or old, gets them the same
 * way (ADD COLUMN IF NOT EXISTS), so the upgrade path is the one always taken.
 */
const LEDGER_ADDITIONS: ReadonlyArray<[name: string, definition: string]> = [
  ['warnings', "jsonb NOT NULL DEFAULT '[]'::jsonb"],
  ['spec_hash', 'text'],
  // The columns the version wrote, which its checksum covers (null: published before they were recorded).
  ['version_columns', 'jsonb'],
];

/** Pinned (node, partition, version) rows that scoped reads join: a temporary table per connection, emptied at commit. */
const SCOPE_TABLE = 'pg_temp.backfill_scope';
const ROWS_PER_FETCH = 2000;
/** PostgreSQL allows 65,535 parameters per statement. */
const MAX_PARAMETERS = 60_000;

/** SQLSTATE classes of errors that the same SQL will hit again: syntax, unknown names, bad data. */
const NON_RETRYABLE_CLASSES = ['42', '22', '21', '0A', '2F'];

function sqlstate(error: unknown): string | undefined {
  return typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : undefined;
}

function isSqlError(error: unknown): boolean {
  const code = sqlstate(error);
  return code !== undefined && code.length === 5 && NON_RETRYABLE_CLASSES.includes(code.slice(0, 2));
}

function wrapSqlError(error: unknown, sql: string): never {
  if (error instanceof SqlError) throw error;
  if (isSqlError(error)) throw new SqlError(`${(error as Error).message} in SQL: ${sql.trim().slice(0, 300)}`);
  throw error;
}

/** Raw text for every type: checksums canonicalize it themselves. */
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

/** What user queries return: numbers as numbers (bigint and numeric too, when safe), dates as text. */
const READ_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === 20 || oid === 1700) {
      return (value: string) => {
        const n = Number(value);
        return Number.isSafeInteger(n) || (oid === 1700 && Number.isFinite(n) && !/^\d{16,}$/.test(value)) ? n : value;
      };
    }
    if (oid === 1082) return (value: string) => value;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** The URL without its password, for messages and `location`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));

function ledgerRow(r: Record<string, unknown>): LedgerRow {
  return {
    node: r.node as string,
    partition: r.partition as string,
    version: r.version as number,
    status: r.status as LedgerRow['status'],
    backfillId: r.backfill_id as string,
    runKey: r.run_key as string,
    workflowId: r.workflow_id as string,
    rowCount: r.row_count === null ? null : Number(r.row_count),
    checksum: r.checksum as string | null,
    schemaHash: r.schema_hash as string | null,
    transform: r.transform as string,
    params: r.params as Record<string, unknown>,
    codeVersion: r.code_version as string,
    inputs: r.inputs as InputVersions[],
    attempt: r.attempt as number,
    executions: r.executions as number,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    durationMs: Number(r.duration_ms),
    previousVersion: r.previous_version as number | null,
    error: r.error as string | null,
    warnings: r.warnings as string[],
    specHash: r.spec_hash as string | null,
    current: r.current === true,
  };
}

export class PostgresWarehouse implements Warehouse {
  readonly kind = 'postgres' as const;
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private setup: Promise<string> | undefined;
  private typeNames = new Map<number, string>();

  constructor(url: string, options: PostgresOptions = {}) {
    this.location = redactUrl(url);
    this.schema = options.schema ?? 'backfill';
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      types: READ_TYPES,
      application_name: 'backfill',
      onConnect: async (client) => {
        await client.query(
          `CREATE TEMP TABLE IF NOT EXISTS backfill_scope (node text COLLATE "C" NOT NULL, partition text COLLATE "C" NOT NULL, version integer NOT NULL, PRIMARY KEY (node, partition)) ON COMMIT DELETE ROWS`,
        );
      },
    });
    // An idle client that loses its connection must not crash the worker: the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  private get ledgerTable(): string {
    return `${quoteIdent(this.schema)}.ledger`;
  }

  private get pointerTable(): string {
    return `${quoteIdent(this.schema)}.partitions`;
  }

  private get rollbackTable(): string {
    return `${quoteIdent(this.schema)}.rollbacks`;
  }

  private table(node: string): string {
    return `${quoteIdent(this.schema)}.${quoteIdent(versionsTable(node))}`;
  }

  /** Creates the schema and its tables once; resolves to the schema that holds the datasets' views. */
  private ready(): Promise<string> {
    this.setup ??= this.transaction(async (client) => {
      // Several workers start at once: one of them creates the tables, the others wait for it.
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('backfill:setup', 0))`);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.ledgerTable} (
          node text COLLATE "C" NOT NULL,
          partition text COLLATE "C" NOT NULL,
          version integer NOT NULL,
          status text NOT NULL,
          backfill_id text NOT NULL,
          run_key text NOT NULL,
          workflow_id text NOT NULL,
          row_count bigint,
          checksum text,
          schema_hash text,
          transform text NOT NULL,
          params jsonb NOT NULL,
          code_version text NOT NULL,
          inputs jsonb NOT NULL,
          attempt integer NOT NULL,
          executions integer NOT NULL DEFAULT 1,
          started_at timestamptz NOT NULL,
          finished_at timestamptz NOT NULL,
          duration_ms bigint NOT NULL,
          previous_version integer,
          error text,
          PRIMARY KEY (node, partition, version)
        )`);
      for (const [name, definition] of LEDGER_ADDITIONS) {
        await client.query(`ALTER TABLE ${this.ledgerTable} ADD COLUMN IF NOT EXISTS ${name} ${definition}`);
      }
      await client.query(`CREATE INDEX IF NOT EXISTS ledger_by_backfill ON ${this.ledgerTable} (backfill_id, node, partition)`);
      await client.query(`CREATE INDEX IF NOT EXISTS ledger_by_run ON ${this.ledgerTable} (run_key, node, partition)`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.pointerTable} (
          node text COLLATE "C" NOT NULL,
          partition text COLLATE "C" NOT NULL,
          version integer NOT NULL,
          published_at timestamptz NOT NULL,
          PRIMARY KEY (node, partition)
        )`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.rollbackTable} (
          rollback_id text COLLATE "C" NOT NULL,
          backfill_id text NOT NULL,
          node text COLLATE "C" NOT NULL,
          partition text COLLATE "C" NOT NULL,
          from_version integer,
          to_version integer,
          forced boolean NOT NULL,
          at timestamptz NOT NULL,
          PRIMARY KEY (rollback_id, node, partition)
        )`);
      await client.query(`CREATE INDEX IF NOT EXISTS rollbacks_by_partition ON ${this.rollbackTable} (node, partition)`);
      await client.query(`CREATE INDEX IF NOT EXISTS rollbacks_by_backfill ON ${this.rollbackTable} (backfill_id)`);
      const { rows } = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
      const viewSchema = rows[0]?.schema;
      if (!viewSchema) {
        throw new Error(
          `the connection's search_path names no existing schema, so dataset views have nowhere to go: create the schema, or set search_path in the URL (e.g. ${this.location}?options=-c%20search_path%3Danalytics)`,
        );
      }
      return viewSchema;
    });
    this.setup.catch(() => (this.setup = undefined));
    return this.setup;
  }

  private async transaction<T>(work: (client: Client) => Promise<T>): Promise<T> {
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw new Error(`cannot connect to the PostgreSQL warehouse ${this.location}: ${(error as Error).message}`);
    }
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Columns of a versions table in table order, without the internal ones; empty when it does not exist. */
  private async columns(client: Client, node: string): Promise<Column[]> {
    const { rows } = await client.query<Column>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
       WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [this.table(node)],
    );
    return rows.filter((c) => !c.name.startsWith('__'));
  }

  private async typeName(client: Client, oid: number): Promise<string> {
    if (oid === UNKNOWN_OID) return 'text';
    let name = this.typeNames.get(oid);
    if (name === undefined) {
      const { rows } = await client.query<{ name: string }>('SELECT format_type($1, NULL) AS name', [oid]);
      name = rows[0]!.name;
      this.typeNames.set(oid, name);
    }
    return name;
  }

  /** Creates the versions table and the view, adds new columns and widens types, under a per-dataset lock. */
  private async ensureColumns(client: Client, node: string, wanted: Wanted[], viewSchema: string): Promise<Column[]> {
    assertUserColumns(wanted.map((c) => c.name));
    let existing = await this.columns(client, node);
    const satisfied = (columns: Column[]) =>
      wanted.every((w) => {
        const have = columns.find((c) => c.name === w.name);
        return have !== undefined && (w.type === null || widerType(have.type, w.type) === have.type);
      });
    if (existing.length > 0 && satisfied(existing)) return existing;
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`backfill:ddl:${node}`]);
    existing = await this.columns(client, node);
    const table = this.table(node);
    const view = `${quoteIdent(viewSchema)}.${quoteIdent(node)}`;
    const exists = (await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table])).rows[0]?.t != null;
    let recreateView = !exists;
    let dropView = false;
    if (!exists) {
      await client.query(`CREATE TABLE ${table} (${PARTITION_COLUMN} text COLLATE "C" NOT NULL, ${VERSION_COLUMN} integer NOT NULL)`);
      await client.query(`CREATE INDEX ON ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN})`);
    }
    for (const w of wanted) {
      const have = existing.find((c) => c.name === w.name);
      if (!have) {
        await client.query(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(w.name)} ${w.type ?? 'text'}`);
        recreateView = true;
      } else if (w.type !== null && widerType(have.type, w.type) !== have.type) {
        // A view pins its columns' types: it is dropped and made again around the change.
        if (!dropView) await client.query(`DROP VIEW IF EXISTS ${view}`);
        dropView = true;
        const type = widerType(have.type, w.type);
        await client.query(`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(w.name)} TYPE ${type} USING ${quoteIdent(w.name)}::${type}`);
        recreateView = true;
      }
    }
    const columns = await this.columns(client, node);
    if (recreateView) {
      // A view made while the table had no columns shows `__empty`, which CREATE OR REPLACE cannot rename.
      if (exists && existing.length === 0 && !dropView) await client.query(`DROP VIEW IF EXISTS ${view}`);
      const list = columns.map((c) => `v.${quoteIdent(c.name)}`).join(', ') || 'NULL AS __empty';
      await client.query(
        `CREATE OR REPLACE VIEW ${view} AS SELECT ${list} FROM ${table} v JOIN ${this.pointerTable} p ` +
          `ON p.node = ${quoteLiteral(node)} AND p.partition = v.${PARTITION_COLUMN} AND p.version = v.${VERSION_COLUMN}`,
      );
    }
    return columns;
  }

  private async pinWith(client: Client, inputs: readonly PartitionInput[]): Promise<PinnedInput[]> {
    const pinned: PinnedInput[] = [];
    for (const input of inputs) {
      const { node, keys, all } = input;
      const sql = all
        ? `SELECT partition, version FROM ${this.pointerTable} WHERE node = $1`
        : keys
          ? `SELECT partition, version FROM ${this.pointerTable} WHERE node = $1 AND partition = ANY($2::text[])`
          : `SELECT partition, version FROM ${this.pointerTable} WHERE node = $1 AND partition BETWEEN $2 AND $3`;
      const values = all ? [node] : keys ? [node, keys] : [node, input.from, input.to];
      const { rows } = await client.query<[string, number]>({ text: sql, values, rowMode: 'array' });
      pinned.push({ ...input, versions: rows });
    }
    return pinned;
  }

  /** Loads the pinned versions into the connection's scope table; returns the relations that shadow upstream datasets. */
  private async loadScope(client: Client, pinned: readonly PinnedInput[]): Promise<ScopedRelation[]> {
    await client.query(`DELETE FROM ${SCOPE_TABLE}`);
    const relations: ScopedRelation[] = [];
    for (const input of pinned) {
      if (input.versions.length > 0) {
        await client.query(
          `INSERT INTO ${SCOPE_TABLE} (node, partition, version) SELECT $1, p, v FROM unnest($2::text[], $3::int[]) AS u(p, v) ON CONFLICT DO NOTHING`,
          [input.node, input.versions.map(([p]) => p), input.versions.map(([, v]) => v)],
        );
      }
      if (relations.some((r) => r.name === input.node)) continue;
      const columns = await this.columns(client, input.node);
      // An upstream dataset that was never written has no table to shadow: the SQL then fails naming it.
      if (columns.length === 0 && (await client.query('SELECT to_regclass($1) AS t', [this.table(input.node)])).rows[0]?.t == null) continue;
      relations.push({ name: input.node, table: this.table(input.node), columns: columns.map((c) => c.name), scopeTable: SCOPE_TABLE });
    }
    return relations;
  }

  private statement(sql: string, bindings: Bindings): { text: string; values: unknown[] } {
    const { text, names } = positionalParameters(sql, (name) => castFor(bindings[name]));
    return { text, values: bindPositional(names, bindings) };
  }

  private async publishedRow(client: Client | pg.Pool, node: string, partition: string, runKey: string): Promise<Published | null> {
    const { rows } = await client.query<{ version: number; previousVersion: number | null; rowCount: string; checksum: string; schemaHash: string; warnings: string[] }>(
      `SELECT version, previous_version AS "previousVersion", row_count AS "rowCount", checksum, schema_hash AS "schemaHash", warnings
       FROM ${this.ledgerTable} WHERE node = $1 AND partition = $2 AND run_key = $3 AND status = 'published'`,
      [node, partition, runKey],
    );
    const row = rows[0];
    return row ? { ...row, rowCount: Number(row.rowCount) } : null;
  }

  /** Writes the version's rows; returns the names of the columns it has. */
  private async stage(client: Client, write: PartitionWrite, version: number, relations: ScopedRelation[], viewSchema: string): Promise<string[]> {
    const { node, partition, data } = write;
    const selects = [];
    for (const { sql, bindings } of data.selects) {
      assertSelect(sql);
      const statement = this.statement(scopedSelect(sql, relations), bindings);
      try {
        await client.query('SAVEPOINT probe');
        const probe = await client.query({ text: `SELECT * FROM (${statement.text}) AS q LIMIT 0`, values: statement.values });
        await client.query('RELEASE SAVEPOINT probe');
        const columns: Column[] = [];
        for (const field of probe.fields) columns.push({ name: field.name, type: await this.typeName(client, field.dataTypeID) });
        selects.push({ sql, statement, columns });
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT probe').catch(() => undefined);
        wrapSqlError(error, sql);
      }
    }
    const rowTypes = new Map<string, string | null>();
    for (const row of data.rows) {
      for (const [name, value] of Object.entries(row)) {
        const type = typeOfValue(value);
        const seen = rowTypes.get(name);
        rowTypes.set(name, seen == null ? type : type === null ? seen : widerType(seen, type));
      }
    }
    const wanted: Wanted[] = [...rowTypes].map(([name, type]) => ({ name, type }));
    for (const s of selects) {
      for (const c of s.columns) {
        const at = wanted.findIndex((w) => w.name === c.name);
        if (at < 0) wanted.push(c);
        else wanted[at] = { name: c.name, type: wanted[at]!.type === null ? c.type : widerType(wanted[at]!.type!, c.type) };
      }
    }
    await this.ensureColumns(client, node, wanted, viewSchema);
    const table = this.table(node);
    for (const s of selects) {
      const n = s.statement.values.length;
      const cols = s.columns.map((c) => `, ${quoteIdent(c.name)}`).join('');
      const picked = s.columns.map((c) => `, q.${quoteIdent(c.name)}`).join('');
      try {
        await client.query({
          text: `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${cols}) SELECT $${n + 1}, $${n + 2}${picked} FROM (${s.statement.text}) AS q`,
          values: [...s.statement.values, partition, version],
        });
      } catch (error) {
        wrapSqlError(error, s.sql);
      }
    }
    if (data.rows.length > 0) {
      const names = [...rowTypes.keys()];
      const perRow = names.length + 2;
      const chunk = Math.max(1, Math.floor(MAX_PARAMETERS / perRow));
      const head = `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${names.map((c) => `, ${quoteIdent(c)}`).join('')}) VALUES `;
      for (let start = 0; start < data.rows.length; start += chunk) {
        const rows = data.rows.slice(start, start + chunk);
        const values: unknown[] = [];
        const tuples = rows.map((row, r) => {
          values.push(partition, version, ...names.map((c) => toParameter(row[c])));
          return `(${Array.from({ length: perRow }, (_, i) => `$${r * perRow + i + 1}`).join(', ')})`;
        });
        await client.query({ text: head + tuples.join(', '), values });
      }
    }
    return [...new Set(wanted.map((c) => c.name))];
  }

  /** Row count, checksum and schema hash of one version, over the columns that version wrote (read through a cursor). */
  private async summarize(client: Client, node: string, partition: string, version: number, written: readonly string[]): Promise<Summary> {
    const columns = [...written].sort();
    const list = columns.length > 0 ? columns.map(quoteIdent).join(', ') : 'NULL';
    await client.query({
      text: `DECLARE backfill_summary NO SCROLL CURSOR FOR SELECT ${list} FROM ${this.table(node)} WHERE ${PARTITION_COLUMN} = $1 AND ${VERSION_COLUMN} = $2`,
      values: [partition, version],
    });
    let hasher: RowHasher | undefined;
    for (;;) {
      const batch = await client.query({ text: `FETCH ${ROWS_PER_FETCH} FROM backfill_summary`, rowMode: 'array', types: RAW_TEXT });
      hasher ??= new RowHasher(columns, batch.fields.map((f) => kindOf(f.dataTypeID)));
      for (const row of batch.rows as unknown[][]) hasher.add(columns.length > 0 ? row : []);
      if (batch.rows.length < ROWS_PER_FETCH) break;
    }
    await client.query('CLOSE backfill_summary');
    return { rowCount: hasher!.rowCount, checksum: hasher!.checksum(), schemaHash: schemaHash(columns), columns };
  }

  /** The rows of one stored version, as a SELECT checks can read. */
  private versionSelect(node: string, partition: string, version: number): string {
    return `SELECT * FROM ${this.table(node)} WHERE ${PARTITION_COLUMN} = ${quoteLiteral(partition)} AND ${VERSION_COLUMN} = ${version}`;
  }

  private async runChecks(client: Client, write: PartitionWrite, version: number, rowCount: number, previous: number | null): Promise<CheckOutcome> {
    const staged = this.versionSelect(write.node, write.partition, version);
    const target = { rowCount, staged, previous: previous === null ? null : this.versionSelect(write.node, write.partition, previous) };
    return checkAsync(write.checks, target, async (sql) => {
      // A failed statement aborts the transaction: each check runs in a savepoint of its own.
      await client.query('SAVEPOINT check_query');
      try {
        const { rows } = await client.query<{ n: string | number | null }>(sql);
        await client.query('RELEASE SAVEPOINT check_query');
        const n = rows[0]!.n;
        return n === null ? null : Number(n);
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT check_query');
        if (sqlstate(error) !== undefined) return { error: (error as Error).message };
        throw error;
      }
    });
  }

  private async recordLedger(
    client: Client,
    write: PartitionWrite,
    version: number,
    fields: PublishedFields | { failed: string; warnings: string[] },
    inputs: InputVersions[],
  ): Promise<void> {
    const finishedAt = Date.now();
    const published = !('failed' in fields);
    await client.query(
      `INSERT INTO ${this.ledgerTable} (node, partition, version, status, backfill_id, run_key, workflow_id, row_count, checksum,
        schema_hash, transform, params, code_version, inputs, attempt, executions, started_at, finished_at, duration_ms,
        previous_version, error, warnings, spec_hash, version_columns)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, $16, $17, $18, $19, $20, $21, $22, $23)`,
      [
        write.node,
        write.partition,
        version,
        published ? 'published' : 'failed_check',
        write.backfillId,
        write.runKey,
        write.workflowId,
        published ? fields.rowCount : null,
        published ? fields.checksum : null,
        published ? fields.schemaHash : null,
        write.transform,
        JSON.stringify(write.params),
        write.codeVersion,
        JSON.stringify(inputs),
        write.attempt,
        new Date(write.startedAt).toISOString(),
        new Date(finishedAt).toISOString(),
        finishedAt - write.startedAt,
        published ? fields.previousVersion : null,
        published ? null : fields.failed,
        JSON.stringify(fields.warnings),
        write.specHash ?? null,
        published ? JSON.stringify(fields.columns) : null,
      ],
    );
  }

  async pin(inputs: PartitionInput[]): Promise<PinnedInput[]> {
    await this.ready();
    return this.transaction((client) => this.pinWith(client, inputs));
  }

  async publishedBy(node: string, partition: string, runKey: string): Promise<Published | null> {
    await this.ready();
    return this.publishedRow(this.pool, node, partition, runKey);
  }

  async publish(write: PartitionWrite): Promise<Published> {
    assertDataset(write.node);
    const viewSchema = await this.ready();
    const { node, partition } = write;
    const outcome = await this.transaction(async (client): Promise<Published | { failed: string }> => {
      // Attempts of one partition (a retry and a worker presumed dead) take turns; other partitions run in parallel.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`backfill:partition:${node}/${partition}`]);
      const already = await this.publishedRow(client, node, partition, write.runKey);
      if (already) {
        await client.query(`UPDATE ${this.ledgerTable} SET executions = executions + 1 WHERE node = $1 AND partition = $2 AND version = $3`, [node, partition, already.version]);
        return { ...already, alreadyPublished: true };
      }
      const { rows } = await client.query<{ v: number }>(`SELECT COALESCE(MAX(version), 0) AS v FROM ${this.ledgerTable} WHERE node = $1 AND partition = $2`, [node, partition]);
      const version = rows[0]!.v + 1;
      const pinned = write.pinned ?? (await this.pinWith(client, write.inputs));
      const relations = await this.loadScope(client, pinned);
      const inputs = inputVersions(pinned);
      const current = await client.query<{ version: number }>(`SELECT version FROM ${this.pointerTable} WHERE node = $1 AND partition = $2`, [node, partition]);
      const previousVersion = current.rows[0]?.version ?? null;
      await client.query('SAVEPOINT stage');
      const written = await this.stage(client, write, version, relations, viewSchema);
      const summary = await this.summarize(client, node, partition, version, written);
      const { errors, warnings } = await this.runChecks(client, write, version, summary.rowCount, previousVersion);
      if (errors.length > 0) {
        // The new rows go; the failure is recorded under the version it was given.
        await client.query('ROLLBACK TO SAVEPOINT stage');
        await this.recordLedger(client, write, version, { failed: errors.join('; '), warnings }, inputs);
        return { failed: errors.join('; ') };
      }
      await client.query('RELEASE SAVEPOINT stage');
      await client.query(
        `INSERT INTO ${this.pointerTable} (node, partition, version, published_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (node, partition) DO UPDATE SET version = excluded.version, published_at = excluded.published_at`,
        [node, partition, version],
      );
      await this.recordLedger(client, write, version, { ...summary, previousVersion, warnings }, inputs);
      const { columns: _columns, ...published } = summary;
      return { version, previousVersion, ...published, warnings };
    });
    // The partition is named by the activity and the failure details: kept out of the message, failures of one cause group together.
    if ('failed' in outcome) throw new CheckFailedError(`checks failed: ${outcome.failed}`);
    return outcome;
  }

  async query(sql: string, bindings: Bindings = {}, scope?: PinnedInput[]): Promise<Row[]> {
    await this.ready();
    return this.transaction(async (client) => {
      const text = scope ? scopedSelect(sql, await this.loadScope(client, scope)) : sql;
      const statement = this.statement(text, bindings);
      try {
        return (await client.query(statement.text, statement.values)).rows as Row[];
      } catch (error) {
        return wrapSqlError(error, sql);
      }
    });
  }

  async ledger(filter: LedgerFilter): Promise<LedgerRow[]> {
    await this.ready();
    const where: string[] = [];
    const values: string[] = [];
    if (filter.backfillId !== undefined) where.push(`l.backfill_id = $${values.push(filter.backfillId)}`);
    if (filter.node !== undefined) where.push(`l.node = $${values.push(filter.node)}`);
    if (filter.partition !== undefined) where.push(`l.partition = $${values.push(filter.partition)}`);
    const { rows } = await this.pool.query<Record<string, unknown>>(
      `${this.ledgerSelect}
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY l.node, l.partition, l.version DESC`,
      values,
    );
    return rows.map(ledgerRow);
  }

  async publishedRows(node: string): Promise<LedgerRow[]> {
    await this.ready();
    const { rows } = await this.pool.query<Record<string, unknown>>(`${this.ledgerSelect} WHERE l.node = $1 AND p.version IS NOT NULL ORDER BY l.partition`, [node]);
    return rows.map(ledgerRow);
  }

  async ledgerVersions(node: string, versions: readonly VersionRef[]): Promise<LedgerRow[]> {
    if (versions.length === 0) return [];
    await this.ready();
    const { rows } = await this.pool.query<Record<string, unknown>>(
      `${this.ledgerSelect} JOIN unnest($2::text[], $3::int[]) AS u(partition, version) ON l.partition = u.partition AND l.version = u.version
       WHERE l.node = $1 ORDER BY l.partition, l.version DESC`,
      [node, versions.map(([p]) => p), versions.map(([, v]) => v)],
    );
    return rows.map(ledgerRow);
  }

  /** Ledger rows with whether each is the published version of its partition. */
  private get ledgerSelect(): string {
    return `SELECT l.*, (p.version IS NOT NULL) AS current FROM ${this.ledgerTable} l
      LEFT JOIN ${this.pointerTable} p ON p.node = l.node AND p.partition = l.partition AND p.version = l.version`;
  }

  async changesBy(backfillId: string, options: ChangesOptions = {}): Promise<ChangesPage> {
    await this.ready();
    const { sql, bindings } = changesQuery({ ledger: this.ledgerTable, pointers: this.pointerTable }, backfillId, options);
    const statement = this.statement(sql, bindings);
    const { rows } = await this.pool.query<ChangeRow>(statement.text, statement.values);
    return changesFromRows(rows, pageLimit(options.limit));
  }

  /** The published version, who published it, and this rollback's earlier restore of the partition. */
  private async restoreState(client: Client, request: RestoreRequest): Promise<RestoreState> {
    const { node, partition } = request;
    const current = await client.query<{ version: number; backfillId: string | null }>(
      `SELECT p.version, l.backfill_id AS "backfillId" FROM ${this.pointerTable} p
       LEFT JOIN ${this.ledgerTable} l ON l.node = p.node AND l.partition = p.partition AND l.version = p.version
       WHERE p.node = $1 AND p.partition = $2`,
      [node, partition],
    );
    const recorded = await client.query<{ fromVersion: number | null; fromBackfillId: string | null; toVersion: number | null; forced: boolean }>(
      `SELECT r.from_version AS "fromVersion", l.backfill_id AS "fromBackfillId", r.to_version AS "toVersion", r.forced FROM ${this.rollbackTable} r
       LEFT JOIN ${this.ledgerTable} l ON l.node = r.node AND l.partition = r.partition AND l.version = r.from_version
       WHERE r.rollback_id = $1 AND r.node = $2 AND r.partition = $3`,
      [request.rollbackId, node, partition],
    );
    const found = current.rows[0];
    return { found: found?.version ?? null, foundBackfillId: found?.backfillId ?? null, recorded: recorded.rows[0] ?? null };
  }

  /** Recomputes the checksum of a stored version as publish did, and compares it with the ledger's. */
  private async verifyVersion(client: Client, node: string, partition: string, version: number): Promise<void> {
    const what = `version ${version} of ${node} ${partition}`;
    const { rows } = await client.query<{ checksum: string; rowCount: string; schemaHash: string; columns: string[] | null }>(
      `SELECT checksum, row_count AS "rowCount", schema_hash AS "schemaHash", version_columns AS columns FROM ${this.ledgerTable}
       WHERE node = $1 AND partition = $2 AND version = $3 AND status = 'published'`,
      [node, partition, version],
    );
    const row = rows[0];
    if (!row) throw new ChecksumMismatchError(`${what} is not a published version in the ledger: there is no checksum to verify it by, so it was not restored`);
    const columns = row.columns ?? (await this.columnsFor(client, node, partition, version, row.schemaHash));
    if (!columns) {
      throw new ChecksumMismatchError(`${what}: cannot tell which columns it wrote (it was published before the ledger recorded them, and no set of columns matches its schema hash), so its checksum cannot be verified and it was not restored`);
    }
    const now = await this.summarize(client, node, partition, version, columns);
    assertSameChecksum(what, { checksum: row.checksum, rowCount: Number(row.rowCount) }, now);
  }

  /** The columns a version published before the ledger kept them wrote, from its values and its schema hash. */
  private async columnsFor(client: Client, node: string, partition: string, version: number, expected: string): Promise<string[] | undefined> {
    const names = (await this.columns(client, node)).map((c) => c.name);
    if (names.length === 0) return columnsFromSchemaHash(expected, [], new Set());
    const { rows } = await client.query<Record<string, string>>(
      `SELECT ${names.map((c, i) => `COUNT(${quoteIdent(c)}) AS c${i}`).join(', ')} FROM ${this.table(node)} WHERE ${PARTITION_COLUMN} = $1 AND ${VERSION_COLUMN} = $2`,
      [partition, version],
    );
    const counts = rows[0]!;
    return columnsFromSchemaHash(expected, names, new Set(names.filter((_, i) => Number(counts[`c${i}`]) > 0)));
  }

  async restore(request: RestoreRequest): Promise<RestoreOutcome> {
    assertDataset(request.node);
    await this.ready();
    const { node, partition, to } = request;
    return this.transaction(async (client) => {
      // Publishes and restores of one partition take turns.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`backfill:partition:${node}/${partition}`]);
      const decision = decideRestore(request, await this.restoreState(client, request));
      if (!decision.move) return decision.outcome;
      if (to === null) {
        await client.query(`DELETE FROM ${this.pointerTable} WHERE node = $1 AND partition = $2`, [node, partition]);
      } else {
        await this.verifyVersion(client, node, partition, to);
        await client.query(
          `INSERT INTO ${this.pointerTable} (node, partition, version, published_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (node, partition) DO UPDATE SET version = excluded.version, published_at = excluded.published_at`,
          [node, partition, to],
        );
      }
      await client.query(
        `INSERT INTO ${this.rollbackTable} (rollback_id, backfill_id, node, partition, from_version, to_version, forced, at) VALUES ($1, $2, $3, $4, $5, $6, $7, now())`,
        [request.rollbackId, request.backfillId, node, partition, decision.outcome.found, to, decision.outcome.forced],
      );
      return decision.outcome;
    });
  }

  async rollbacks(filter: RollbackFilter): Promise<RollbackRecord[]> {
    await this.ready();
    const where: string[] = [];
    const values: string[] = [];
    if (filter.rollbackId !== undefined) where.push(`rollback_id = $${values.push(filter.rollbackId)}`);
    if (filter.backfillId !== undefined) where.push(`backfill_id = $${values.push(filter.backfillId)}`);
    if (filter.node !== undefined) where.push(`node = $${values.push(filter.node)}`);
    if (filter.partition !== undefined) where.push(`partition = $${values.push(filter.partition)}`);
    const { rows } = await this.pool.query<Omit<RollbackRecord, 'at'> & { at: Date }>(
      `SELECT rollback_id AS "rollbackId", backfill_id AS "backfillId", node, partition, from_version AS "fromVersion", to_version AS "toVersion", forced, at
       FROM ${this.rollbackTable} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at, node, partition`,
      values,
    );
    return rows.map((r) => ({ ...r, at: r.at.toISOString() }));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
