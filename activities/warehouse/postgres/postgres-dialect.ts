/**
 * The PostgreSQL dialect: workers on any number of machines write to one database, and
 * partitions of one node publish in parallel for real (each publish is a transaction that
 * takes an advisory lock on its own partition only).
 *
 * The ledger, the published pointers and every dataset's versions table live in a schema of
 * their own (`backfill` by default); each dataset is a view, named after its node, in the
 * connection's current schema (the first of its search_path), so `SELECT * FROM <node>`
 * reads its published partitions.
 */
import pg from 'pg';
import { BackfillError } from '../../../core/errors.ts';
import { postgresNamespace, schemaField } from '../../../core/openlineage.ts';
import type { ValueKind } from '../checksum.ts';
import { deadlineError, timeLeft, type Dialect, type TransactionOptions, type Params, type PublishRequest, type PublishStart, type Session, type SpecSql, type SpecStatement, type Wanted } from '../dialect.ts';
import type { Codec, ColumnType, InternalTable } from '../ledger.ts';
import { PARTITION_COLUMN, VERSION_COLUMN, assertNoCaseTwin, bindPositional, outsideScope, positionalParameters, quoteIdent, quoteLiteral, scopedSelect, singleStatement, versionsTable } from '../sql.ts';
import { CommitDeadlineError, InvalidDatasetError, SqlError, type DatasetFacts, type Row } from '../types.ts';
import { SqlWarehouse } from '../warehouse.ts';
import { DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, assertSchemaName, connectionUrl, postgresSettings, redactSecret, redactUrl, type PostgresOptions } from './connection.ts';
import { publishStartOf, startArgument, startCall, startDdl, startSignature, type StartRow } from './publish-start.ts';
import { parseQuery, readsCatalog } from './spec-sql.ts';
import { Stall } from './stall.ts';

export { redactUrl, type PostgresOptions } from './connection.ts';
import { UNKNOWN_OID, castFor, kindOf, toParameter, typeOfValue, widerType } from './types.ts';

/** Schemas spec SQL inside a partition may not read: their statistics and sizes span every partition. */
const CATALOG_SCHEMAS = ['pg_catalog', 'information_schema', 'pg_toast'];
/** How deep views over views are followed: a bound, since views can be made to name each other. */
const MAX_VIEW_DEPTH = 32;
const ROWS_PER_FETCH = 2000;
/** PostgreSQL allows 65,535 parameters per statement. */
const MAX_PARAMETERS = 60_000;
/** SQLSTATE classes of errors that the same SQL will hit again: syntax, unknown names, bad data. */
const NON_RETRYABLE_CLASSES = ['42', '22', '21', '0A', '2F', '25'];

/** The SQLSTATE of a statement the role has no privilege for. */
const INSUFFICIENT_PRIVILEGE = '42501';
/** The SQLSTATE of a statement cancelled, by `statement_timeout` among others. */
const QUERY_CANCELED = '57014';

/** What spec SQL stopped by the connection's own `statement_timeout` (`PostgresSession.bound`) throws. */
const ownTimeoutError = (ms: number): CommitDeadlineError =>
  new CommitDeadlineError(
    `the partition's SQL was stopped by the statement_timeout (${ms} ms) of the workers' role, the database or the URL, before the partition's time was up: nothing of it is committed, and it is retried; raise that statement_timeout if the SQL needs longer`,
  );

/** The statements of a connection that fails report its error; its 'error' event needs no more. */
const ignore = (): void => undefined;

const stoppedByTimeout = (error: unknown): boolean => (error as { code?: unknown })?.code === QUERY_CANCELED && /statement timeout/.test((error as Error).message);

/** What a statement of backfill's own (not spec SQL) stopped at the transaction's deadline throws. */
const publishDeadlineError = (): CommitDeadlineError =>
  new CommitDeadlineError(
    "the publish was stopped at the partition's deadline (the node's timeout, or the end of its run window) while a statement waited on the database (a lock another session holds?): nothing of it is committed, and it is retried",
  );

/**
 * A spec statement's error: an SqlError (not retried) when the same SQL would fail again, the
 * deadline's error when `statement_timeout` stopped it (`own`: the connection's own, stricter
 * one, was the bound).
 */
function sqlErrorOf(error: unknown, sql: string, own: number | undefined): unknown {
  const code = (error as { code?: unknown })?.code;
  if (stoppedByTimeout(error)) return own === undefined ? deadlineError() : ownTimeoutError(own);
  if (typeof code === 'string' && code.length === 5 && NON_RETRYABLE_CLASSES.includes(code.slice(0, 2))) {
    return new SqlError(`${(error as Error).message} in SQL: ${sql.trim().slice(0, 300)}`);
  }
  return error;
}

/**
 * A column of spec SQL's result, as stored: NaN (which floating and numeric types hold) becomes
 * NULL, as SQLite stores it and as a transform's NaN is stored (warehouse.ts `storable`), and a
 * floating -0 becomes 0 (adding 0 does that), as SQLite's REAL columns and the lake's Parquet
 * files keep it, so that the same SQL gives the same rows and checksums on every engine. The
 * cast is the one the INSERT would make.
 */
function withoutNaN(column: string, type: string | undefined): string {
  if (type === 'double precision' || type === 'real') return `(NULLIF(${column}::${type}, 'NaN') + 0::${type})`;
  if (type === undefined || !(type === 'numeric' || type.startsWith('numeric('))) return column;
  return `NULLIF(${column}::${type}, 'NaN')`;
}

/** Raw text for every type: checksums canonicalize it themselves. */
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

/** What queries return: numbers as numbers (bigint and numeric too, when safe), dates as text. */
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

const CODEC: Codec = {
  json: (value) => JSON.stringify(value),
  fromJson: <T>(value: unknown) => value as T,
  bool: (value) => value,
  fromBool: (value) => value === true,
  fromTime: (value) => (value instanceof Date ? value.toISOString() : String(value)),
};

const TYPES: Record<ColumnType, string> = { text: 'text', key: 'text COLLATE "C"', integer: 'integer', bigint: 'bigint', number: 'double precision', boolean: 'boolean', json: 'jsonb', time: 'timestamptz' };

export class PostgresDialect implements Dialect {
  readonly kind = 'postgres' as const;
  readonly concurrent = true;
  readonly codec = CODEC;
  readonly location: string;
  readonly scopeTable = 'pg_temp.backfill_scope';
  readonly forShare = ' FOR SHARE';
  readonly forUpdate = ' FOR UPDATE';
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly password: string;
  /** The schema of the datasets' views (the connection's current schema), found at setup. */
  viewSchema = '';
  readonly typeNames = new Map<number, string>();
  /** Internal statements with their `:name` parameters numbered, once per text. */
  readonly numbered = new Map<string, { text: string; names: string[] }>();
  /** The columns spec SQL yields, by its scoped text and its upstreams' column types (`PostgresSession.probeKey`). */
  readonly probed = new Map<string, Wanted[]>();
  private readonly warn: (message: string) => void;
  private warnedSuperuser = false;
  /** Opened for reading only (`PostgresOptions.readOnly`). */
  private readonly readOnly: boolean;
  /** Each connection's `statement_timeout` as it connected (its role's, database's or URL's; 0: none). */
  private readonly ownTimeouts = new WeakMap<pg.ClientBase, number>();

  /** `options` win over the URL's own `backfill_schema` and `backfill_pool_size` (connection.ts). */
  constructor(url: string, options: PostgresOptions = {}) {
    const settings = postgresSettings(url);
    this.location = redactUrl(url);
    const connection = connectionUrl(settings.url);
    this.password = connection.password;
    this.schema = options.schema ?? settings.options.schema ?? DEFAULT_SCHEMA;
    this.readOnly = options.readOnly === true;
    this.warn = options.warn ?? ((message) => console.warn(message));
    assertSchemaName(this.schema, url);
    this.pool = new pg.Pool({
      connectionString: connection.url,
      max: options.poolSize ?? settings.options.poolSize ?? DEFAULT_POOL_SIZE,
      types: READ_TYPES,
      application_name: 'backfill',
      // Statements go on the wire without waiting for the answers before them (PostgresSession.defer).
      pipeline: true,
      onConnect: async (client) => {
        // Each statement is planned for its parameters and the tables as they are now. A cached
        // generic plan is made once and kept for the connection's life, from the table sizes of
        // that moment: made while a first backfill's tables were nearly empty, it slowed that
        // backfill and the next ones on the same connections as the tables grew (the example:
        // 9.0 s, then 11.5 s; with this, 7.2 and 7.4). publish_start sets its own mode and keeps
        // its plans safe by their shape (publish-start.ts); this covers any other cached plan.
        // A reader makes no scope table (only publishes and scoped queries use it): its role may
        // lack TEMP, and a hot standby refuses it.
        await client.query(
          this.readOnly
            ? 'SET plan_cache_mode = force_custom_plan'
            : `SET plan_cache_mode = force_custom_plan;
           CREATE TEMP TABLE IF NOT EXISTS backfill_scope (node text COLLATE "C" NOT NULL, partition text COLLATE "C" NOT NULL, version integer NOT NULL, PRIMARY KEY (node, partition)) ON COMMIT DELETE ROWS`,
        );
        const { rows } = await client.query<{ ms: number }>(`SELECT CAST(setting AS integer) AS ms FROM pg_settings WHERE name = 'statement_timeout'`);
        this.ownTimeouts.set(client, rows[0]?.ms ?? 0);
      },
    });
    // An idle client that loses its connection must not crash the worker: the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  table(name: InternalTable): string {
    return `${quoteIdent(this.schema)}.${name}`;
  }

  indexDdl(name: string, table: InternalTable, columns: readonly string[]): string {
    return `CREATE INDEX IF NOT EXISTS ${name} ON ${this.table(table)} (${columns.join(', ')})`;
  }

  versionsTable(node: string): string {
    return `${quoteIdent(this.schema)}.${quoteIdent(versionsTable(node))}`;
  }

  jsonEach(param: string): string {
    return `jsonb_array_elements(CAST(${param} AS jsonb))`;
  }

  columnType(type: ColumnType): string {
    return TYPES[type];
  }

  /** From the catalog, not information_schema, which shows only the columns the role may use: a reader's role may see the ledger but not `leases`. */
  async tableColumns(session: Session, table: InternalTable): Promise<string[]> {
    const rows = await session.all<{ name: string }>(
      `SELECT a.attname AS name FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = :schema AND c.relname = :table AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      { schema: this.schema, table },
    );
    return rows.map((r) => r.name);
  }

  async prepare(session: Session): Promise<void> {
    // Read the catalogue with a fresh snapshot: after waiting on the setup's advisory lock, this
    // connection's catalogue cache may not yet know the schema another worker just created, and
    // CREATE SCHEMA IF NOT EXISTS alone would then fail on pg_namespace's unique index.
    const [known] = await session.all<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :schema) AS found', { schema: this.schema });
    if (!known?.found) await session.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
    const [row] = await session.all<{ schema: string | null }>('SELECT current_schema() AS schema');
    if (!row?.schema) {
      throw new Error(
        `the connection's search_path names no existing schema, so dataset views have nowhere to go: create the schema, or set search_path in the URL (e.g. ${this.location}?options=-c%20search_path%3Danalytics)`,
      );
    }
    // Said now, naming the grant: else every partition failed with a bare "permission denied for schema public" (PostgreSQL 15 no longer lets every role create in public).
    const [may] = await session.all<{ allowed: boolean; role: string }>('SELECT has_schema_privilege(current_schema(), \'CREATE\') AS allowed, current_user AS role');
    if (may && !may.allowed) {
      throw new Error(
        `the role ${may.role} may not create the datasets' views in schema ${row.schema} (the first schema of its search_path that exists): ` +
          `GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(row.schema)} TO ${quoteIdent(may.role)}, or set search_path in the URL to a schema it may create in (e.g. ${this.location}?options=-c%20search_path%3Danalytics); ` +
          `docs/deploying.md, "The workers' database role"`,
      );
    }
    this.viewSchema = row.schema;
    await this.warnIfSuperuser(session);
    // The start of a publish in one round trip (publish-start.ts): backfill's own, called by no one else.
    await session.run(startDdl(this.schema));
    await session.run(`REVOKE EXECUTE ON FUNCTION ${startSignature(this.schema)} FROM PUBLIC`);
  }

  /**
   * Spec SQL runs with the workers' role. A superuser reaches what the door for spec SQL is not
   * made to hold back (the server's files, every table, other sessions): said once, not refused,
   * since the warehouse still works.
   */
  private async warnIfSuperuser(session: Session): Promise<void> {
    if (this.warnedSuperuser) return;
    const [role] = await session.all<{ name: string; superuser: boolean }>('SELECT rolname AS name, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
    if (!role?.superuser) return;
    this.warnedSuperuser = true;
    this.warn(
      `warning: the PostgreSQL warehouse ${this.location} connects as ${role.name}, a superuser. Spec SQL runs with that role, and a superuser reaches more than backfill's checks of spec SQL hold back (the server's files, every table, other sessions). ` +
        `Connect the workers with a role that is not superuser (docs/deploying.md, "The workers' database role").`,
    );
  }

  typeOf = typeOfValue;
  widen = widerType;
  value = toParameter;

  /** The error without the password, should a driver or server error ever quote the URL. */
  private redact(error: unknown): unknown {
    if (!this.password || !(error instanceof Error)) return error;
    error.message = redactSecret(error.message, this.password);
    if (error.stack) error.stack = redactSecret(error.stack, this.password);
    return error;
  }

  async transaction<T>(work: (session: Session) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw new Error(`cannot connect to the PostgreSQL warehouse ${this.location}: ${(this.redact(error) as Error).message}`);
    }
    // A connection that fails while in use (its server process terminated, the network reset)
    // emits an error beside failing its statements; unheard, that error would end the process.
    client.on('error', ignore);
    const session = new PostgresSession(this, client, this.ownTimeouts.get(client) ?? 0, options.deadline);
    const stall = options.deadline === undefined ? undefined : new Stall(client, options.deadline, this.location);
    const run = async () => {
      session.defer(options.readOnly ? 'BEGIN READ ONLY' : 'BEGIN');
      if (options.deadline !== undefined) session.limit();
      if (options.lock) await session.lock(options.lock);
      const result = await work(session);
      // Every statement's answer is in before COMMIT's: an aborted transaction's COMMIT would only roll back.
      await session.query('COMMIT');
      return result;
    };
    try {
      return await (stall ? stall.race(run()) : run());
    } catch (error) {
      if (stall?.given) throw stall.given;
      await session.settle().catch(() => undefined);
      await client.query('ROLLBACK').catch(() => undefined);
      if (stall?.given) throw stall.given;
      if (options.deadline !== undefined && stoppedByTimeout(error)) throw session.limitedByOwn !== undefined ? ownTimeoutError(session.limitedByOwn) : publishDeadlineError();
      throw this.readOnly ? this.readerError(this.redact(error)) : this.redact(error);
    } finally {
      stall?.clear();
      client.off('error', ignore);
      // A connection given up goes, not back to the pool: its server may yet answer what it was sent.
      client.release(stall?.given);
    }
  }

  /** A reader's role that may not read backfill's schema or a table of it: what to grant. */
  private readerError(error: unknown): unknown {
    if ((error as { code?: unknown })?.code !== INSUFFICIENT_PRIVILEGE) return error;
    return new BackfillError(
      'invalid_argument',
      `cannot read the ledger in ${this.location}: ${(error as Error).message}. A reader's role needs CONNECT on the database, USAGE on the schema ${this.schema} and SELECT on its tables ` +
        `(GRANT USAGE ON SCHEMA ${quoteIdent(this.schema)} TO <role>; GRANT SELECT ON ALL TABLES IN SCHEMA ${quoteIdent(this.schema)} TO <role>): docs/deploying.md, "A reader's database role"`,
      'warehouse',
    );
  }

  /** `postgres://{host}:{port}` and `{database}.{schema}.{node}`, the schema of the views (the connection's current one). */
  async lineageDataset(session: Session, node: string): Promise<DatasetFacts> {
    const [where] = await session.all<{ db: string; schema: string }>('SELECT current_database() AS db, current_schema() AS schema');
    const columns = await session.all<{ name: string; type: string }>(
      `SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = :view ORDER BY ordinal_position`,
      { view: node },
    );
    return {
      namespace: postgresNamespace(this.location),
      name: `${where?.db}.${where?.schema}.${node}`,
      ...(columns.length > 0 ? { fields: columns.map((c) => schemaField(c.name, c.type)) } : {}),
    };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** A statement as the driver takes it. */
type Statement = string | pg.QueryConfig | pg.QueryArrayConfig;

/**
 * A transaction's connection. Statements whose answer nothing reads (BEGIN, writes, DDL,
 * savepoints, locks) are deferred: sent at once, pipelined ahead of the next statement that is
 * awaited, which reports the first of their errors instead of its own (after an error the
 * transaction is aborted, so that one could only fail). So a publish waits on the server about
 * three times, whatever number of statements it sends (test/integration/postgres-round-trips.test.ts).
 *
 * Some deferred statements cannot fail unless the transaction already has (ending a read-only
 * savepoint, closing a cursor, releasing a savepoint): they are `settled` when sent, and a
 * savepoint whose other statements are all answered is released without waiting for that either.
 */
class PostgresSession implements Session {
  readonly pipelines = true;
  private savepoints = 0;
  /** Deferred statements not yet answered, each rejecting with the error to report. */
  private pending: Array<Promise<unknown>> = [];
  /** How many of `pending` could fail on their own (see `defer`'s `settled`). */
  private unsure = 0;
  /** Whether the connection's writes are held until the next tick (`corked`). */
  private corking = false;
  /** Datasets' columns as `startPublish` read them, until a dataset's DDL in this session. */
  private readonly known = new Map<string, Array<{ name: string; type: string }> | null>();
  /** Each versions table's column types once `ensureDataset` made it fit: the casts of `insertRows`, and which of spec SQL's columns can hold NaN. */
  private readonly fitted = new Map<string, Map<string, string>>();
  /** Whether a spec statement of this transaction set `statement_timeout` (`bound`). */
  private timed = false;

  constructor(
    private readonly dialect: PostgresDialect,
    private readonly client: pg.PoolClient,
    /** The connection's own `statement_timeout` in ms (0: none), which spec SQL's bound never exceeds. */
    private readonly ownTimeout: number,
    /** When the whole transaction must have ended (`Dialect.transaction`): every statement's bound. */
    private readonly deadline?: number,
  ) {}

  /**
   * Bounds the transaction's statements by its deadline, on the server: one that waits on a lock
   * another session holds is stopped then, and the connection stays fit for the next.
   */
  limit(): void {
    this.limitedByOwn = this.bound(undefined);
  }

  /** The connection's own `statement_timeout` when it, not the deadline, bounds the transaction's statements (`limit`). */
  limitedByOwn: number | undefined;

  private statement(sql: string, params: Params): { text: string; values: unknown[] } {
    let numbered = this.dialect.numbered.get(sql);
    if (!numbered) this.dialect.numbered.set(sql, (numbered = positionalParameters(sql)));
    return { text: numbered.text, values: numbered.names.map((n) => params[n] ?? null) };
  }

  /**
   * Sends a statement whose answer nothing reads; the next statement awaited (or `settle`)
   * reports its error, as `failure` makes it. `settled`: it fails only where the transaction
   * has already failed (or its connection gone), which the next statement awaited reports anyway.
   */
  defer(config: Statement, failure?: (error: unknown) => unknown, settled = false): void {
    this.corked();
    const sent = this.client.query(config as pg.QueryConfig) as Promise<unknown>;
    const reported = failure ? sent.catch((error: unknown) => Promise.reject(failure(error))) : sent;
    reported.catch(() => undefined);
    this.pending.push(reported);
    if (!settled) this.unsure++;
  }

  /**
   * Holds the connection's writes until the current tick's work is done: the statements sent
   * meanwhile (deferred ones and the one awaited after them) leave in one write, not one system
   * call each (the driver writes each statement as it is given), and the server reads them at once.
   */
  private corked(): void {
    if (this.corking) return;
    const stream = this.client.connection.stream;
    this.corking = true;
    stream.cork();
    process.nextTick(() => {
      this.corking = false;
      stream.uncork();
    });
  }

  /** Waits for the deferred statements; throws the first one's error. */
  async settle(): Promise<void> {
    this.unsure = 0;
    for (const sent of this.pending.splice(0)) await sent;
  }

  /** Sends a statement and waits for its answer, after the deferred statements' (the first error among them wins). */
  async query(config: Statement, failure?: (error: unknown) => unknown): Promise<pg.QueryResult> {
    this.corked();
    const sent = this.client.query(config as pg.QueryConfig) as Promise<pg.QueryResult>;
    const answer = failure ? sent.catch((error: unknown) => Promise.reject(failure(error))) : sent;
    if (this.pending.length > 0) {
      answer.catch(() => undefined);
      await this.settle();
    }
    return answer;
  }

  async all<T = Row>(sql: string, params: Params = {}): Promise<T[]> {
    return (await this.query(this.statement(sql, params))).rows as T[];
  }

  async run(sql: string, params: Params = {}): Promise<void> {
    this.defer(this.statement(sql, params));
  }

  async savepoint<T>(work: () => Promise<T>, readOnly = false): Promise<T> {
    const name = `backfill_${++this.savepoints}`;
    this.defer(`SAVEPOINT ${name}${readOnly ? '; SET LOCAL transaction_read_only = on' : ''}`);
    let result: T;
    try {
      result = await work();
      // A read-only savepoint rolls back, which also ends its read-only mode; what it read is in.
      if (readOnly) this.defer(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`, undefined, true);
      // Its statements' answers are in before it counts as done: one that failed rolls it back.
      // When they are (the last one was awaited), the release goes with the next statement.
      else if (this.unsure === 0) this.defer(`RELEASE SAVEPOINT ${name}`, undefined, true);
      else await this.query(`RELEASE SAVEPOINT ${name}`);
    } catch (error) {
      await this.settle().catch(() => undefined);
      await this.query(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`).catch(() => undefined);
      throw error;
    }
    return result;
  }

  /**
   * A read-only statement in a savepoint of its own, sent with the savepoint's start and end
   * before any answer is awaited: several can be on the wire at once (checks), each in turn on
   * the server, and one that fails leaves the transaction as it was. The deferred statements
   * before it report their errors first, as `query` does.
   */
  private async aside(config: Statement, failure: (error: unknown) => unknown): Promise<pg.QueryResult> {
    const name = `backfill_${++this.savepoints}`;
    const earlier = this.pending.splice(0);
    this.unsure = 0;
    // It fails only where the transaction already has: the error it reports is the cause's, not the SQL's.
    this.corked();
    const begun = this.client.query(`SAVEPOINT ${name}; SET LOCAL transaction_read_only = on`) as Promise<unknown>;
    begun.catch(() => undefined);
    const sent = this.client.query(config as pg.QueryConfig) as Promise<pg.QueryResult>;
    const answer = sent.catch((error: unknown) => Promise.reject(failure(error)));
    answer.catch(() => undefined);
    // Rolled back whether it failed or not: a read-only savepoint changed nothing, and this also ends its read-only mode.
    this.defer(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`, undefined, true);
    for (const statement of earlier) await statement;
    await begun;
    return answer;
  }

  async lock(key: string): Promise<void> {
    // The statements after it wait for it on the server.
    this.defer({ text: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', values: [key] });
  }

  async stream(sql: string, params: Params, each: (rows: readonly unknown[][], kinds: readonly ValueKind[]) => void): Promise<void> {
    const { text, values } = this.statement(sql, params);
    this.defer({ text: `DECLARE backfill_rows NO SCROLL CURSOR FOR ${text}`, values });
    for (;;) {
      const batch = await this.query({ text: `FETCH ${ROWS_PER_FETCH} FROM backfill_rows`, rowMode: 'array', types: RAW_TEXT });
      each(batch.rows as unknown[][], batch.fields.map((f) => kindOf(f.dataTypeID)));
      if (batch.rows.length < ROWS_PER_FETCH) break;
    }
    this.defer('CLOSE backfill_rows', undefined, true);
  }

  /** Locks the partition, reads what the protocol decides on, pins the inputs into the scope table: one statement. */
  async startPublish(request: PublishRequest): Promise<PublishStart> {
    const [row] = (await this.query({ text: startCall(this.dialect.schema), values: [startArgument(request)] })).rows as Array<{ start: StartRow }>;
    const start = row!.start;
    for (const [node, columns] of Object.entries(start.columns ?? {})) this.known.set(node, columns && columns.map(([name, type]) => ({ name, type })));
    return publishStartOf(request, start);
  }

  private async columnTypes(node: string, fresh = false): Promise<Array<{ name: string; type: string }> | null> {
    if (!fresh && this.known.has(node)) return this.known.get(node)!;
    const table = this.dialect.versionsTable(node);
    const rows = await this.all<{ name: string; type: string; exists: boolean }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
       WHERE a.attrelid = to_regclass(:table) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      { table },
    );
    return rows.length > 0 ? rows.filter((c) => !c.name.startsWith('__')) : null;
  }

  async columns(node: string): Promise<string[] | null> {
    return (await this.columnTypes(node))?.map((c) => c.name) ?? null;
  }

  async ensureDataset(node: string, wanted: readonly Wanted[], adopt: boolean): Promise<void> {
    const fits = (columns: Array<{ name: string; type: string }>) =>
      wanted.every((w) => columns.some((c) => c.name === w.name && (w.type === null || widerType(c.type, w.type) === c.type)));
    const table = this.dialect.versionsTable(node);
    const before = await this.columnTypes(node);
    if (before && fits(before)) return void this.fitted.set(table, new Map(before.map((c) => [c.name, c.type])));
    this.fitted.delete(table);
    await this.lock(`backfill:ddl:${node}`);
    // What the catalogue says now, and from here on: the DDL below changes it.
    this.known.delete(node);
    const existing = await this.columnTypes(node, true);
    // Again under the lock: a concurrent publish may have added a column since the protocol looked.
    assertNoCaseTwin(node, (existing ?? []).map((c) => c.name), wanted.map((w) => w.name));
    const view = `${quoteIdent(this.dialect.viewSchema)}.${quoteIdent(node)}`;
    let dropped = false;
    const dropView = async () => {
      if (!dropped) await this.run(`DROP VIEW IF EXISTS ${view}`);
      dropped = true;
    };
    let recreateView = existing === null;
    if (existing === null) {
      await this.assertViewFree(node, view, adopt);
      await this.run(`CREATE TABLE ${table} (${PARTITION_COLUMN} text COLLATE "C" NOT NULL, ${VERSION_COLUMN} integer NOT NULL)`);
      await this.run(`CREATE INDEX ON ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN})`);
    }
    // A view of the user's that `adopt` takes over, and one made while the table had no columns (`__empty`), go.
    if (existing === null || existing.length === 0) await dropView();
    const types = new Map((existing ?? []).map((c) => [c.name, c.type]));
    for (const w of wanted) {
      const have = existing?.find((c) => c.name === w.name);
      if (!have) {
        await this.run(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(w.name)} ${w.type ?? 'text'}`);
        types.set(w.name, w.type ?? 'text');
        recreateView = true;
      } else if (w.type !== null && widerType(have.type, w.type) !== have.type) {
        // A view pins its columns' types: it is dropped and made again around the change.
        await dropView();
        const type = widerType(have.type, w.type);
        await this.run(`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(w.name)} TYPE ${type} USING ${quoteIdent(w.name)}::${type}`);
        types.set(w.name, type);
        recreateView = true;
      }
    }
    this.fitted.set(table, types);
    if (!recreateView) return;
    const list = ((await this.columns(node)) ?? []).map((c) => `v.${quoteIdent(c)}`).join(', ') || 'NULL AS __empty';
    await this.run(
      `CREATE OR REPLACE VIEW ${view} AS SELECT ${list} FROM ${table} v JOIN ${this.dialect.table('partitions')} p ` +
        `ON p.node = ${quoteLiteral(node)} AND p.partition = v.${PARTITION_COLUMN} AND p.version = v.${VERSION_COLUMN}`,
    );
  }

  /** Before a dataset's first version: its view's name must be free, or a view the node adopts. */
  private async assertViewFree(node: string, view: string, adopt: boolean): Promise<void> {
    const [found] = await this.all<{ kind: string }>(`SELECT c.relkind AS kind FROM pg_class c WHERE c.oid = to_regclass(:view)`, { view });
    if (!found || (found.kind === 'v' && adopt)) return;
    throw new InvalidDatasetError(
      found.kind === 'v'
        ? `dataset '${node}': a view ${view} exists that backfill did not create: set adopt: true on the node to replace it with the dataset's view, or rename the node`
        : `dataset '${node}': ${view} exists and is not a view backfill created (a table or another object): rename the node, or move that object out of the way (adopt replaces views only)`,
    );
  }

  /**
   * The rows in one statement of one array per column, cast to the column's type as a text
   * literal would be: a short text PostgreSQL parses and plans at once, where a VALUES list
   * holds a placeholder per value (the example's JavaScript rows: half the time on both sides).
   * Not for a type with a modifier (`varchar(10)`, `numeric(10,2)`): a cast to it would cut
   * what a VALUES list refuses.
   */
  async insertRows(table: string, partition: string, version: number, columns: readonly string[], rows: readonly unknown[][]): Promise<void> {
    const types = this.fitted.get(table);
    const casts = types && columns.map((c) => types.get(c));
    if (columns.length > 0 && casts?.every((t) => t !== undefined && !t.includes('('))) {
      const names = columns.map((c) => `, ${quoteIdent(c)}`).join('');
      const picked = casts.map((type, i) => `, u.c${i}::${type}`).join('');
      const arrays = columns.map((_, i) => `$${i + 3}::text[]`).join(', ');
      const aliases = columns.map((_, i) => `c${i}`).join(', ');
      this.defer({
        text: `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${names}) SELECT $1, $2${picked} FROM unnest(${arrays}) AS u(${aliases})`,
        values: [partition, version, ...columns.map((_, i) => rows.map((row) => row[i] ?? null))],
      });
      return;
    }
    const perRow = columns.length + 2;
    const chunk = Math.max(1, Math.floor(MAX_PARAMETERS / perRow));
    const head = `INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${columns.map((c) => `, ${quoteIdent(c)}`).join('')}) VALUES `;
    for (let start = 0; start < rows.length; start += chunk) {
      const values: unknown[] = [];
      const tuples = rows.slice(start, start + chunk).map((row, r) => {
        values.push(partition, version, ...row);
        return `(${Array.from({ length: perRow }, (_, i) => `$${r * perRow + i + 1}`).join(', ')})`;
      });
      this.defer({ text: head + tuples.join(', '), values });
    }
  }

  /** The one door for spec SQL: parsed by PostgreSQL's parser, scoped, and sent with the extended protocol only. */
  async spec(spec: SpecSql): Promise<SpecStatement> {
    const { text, names } = positionalParameters(singleStatement(spec.sql, 'nested'), (name) => castFor(spec.bindings[name]));
    const values = bindPositional(names, spec.bindings);
    const parsed = await parseQuery(text, spec.sql);
    if (spec.scope) await this.assertInScope(parsed, spec);
    const body = scopedSelect(parsed.text, spec.scope ?? [], spec.given ?? []);
    // The extended protocol always, parameters or none: it runs one statement, never several.
    // Bounded as it is sent, its error is read with the bound it had.
    const statement = (query: string, extra: unknown[] = []) => {
      const own = this.bound(spec.deadline);
      const config = { text: query, values: [...values, ...extra], queryMode: 'extended' } as pg.QueryConfig;
      return { config, failure: (error: unknown) => sqlErrorOf(error, spec.sql, own) };
    };
    const run = (query: string) => {
      const { config, failure } = statement(query);
      return this.query(config, failure);
    };
    const key = this.probeKey(parsed, spec, body);
    return {
      rows: async () => (await run(body)).rows as Row[],
      columns: async () => {
        const known = key === null ? undefined : this.dialect.probed.get(key);
        if (known) return known.map((c) => ({ ...c }));
        const columns = await this.savepoint(async () => {
          const probe = await run(`SELECT * FROM (\n${body}\n) AS q LIMIT 0`);
          const found: Wanted[] = [];
          for (const field of probe.fields) found.push({ name: field.name, type: await this.typeName(field.dataTypeID) });
          return found;
        }, true);
        if (key !== null) {
          if (this.dialect.probed.size >= 1000) this.dialect.probed.clear();
          this.dialect.probed.set(key, columns.map((c) => ({ ...c })));
        }
        return columns;
      },
      insertInto: async (table, columns, partition, version) => {
        const n = values.length;
        const cols = columns.map((c) => `, ${quoteIdent(c)}`).join('');
        const types = this.fitted.get(table);
        const picked = columns.map((c) => `, ${withoutNaN(`q.${quoteIdent(c)}`, types?.get(c))}`).join('');
        const { config, failure } = statement(`INSERT INTO ${table} (${PARTITION_COLUMN}, ${VERSION_COLUMN}${cols}) SELECT $${n + 1}, $${n + 2}${picked} FROM (\n${body}\n) AS q`, [partition, version]);
        this.defer(config, failure);
      },
      measure: async (aggregate) => {
        const { config, failure } = statement(`SELECT ${aggregate} AS n FROM (\n${body}\n) AS v`);
        const n = ((await this.aside(config, failure)).rows[0] as { n: unknown }).n;
        return n === null ? null : Number(n);
      },
    };
  }

  /**
   * Bounds the spec statement sent next by its deadline: the server stops it then, whether or
   * not this process is still there to ask, and frees its connection and the partition's lock.
   * Statements after it in the transaction keep the bound (the next spec statement's replaces
   * it); they are backfill's own and short, and past the deadline nothing of it commits anyway.
   * An operator's stricter `statement_timeout` holds: the bound is the smaller of the two.
   * Returns the connection's own timeout when that is what bounds the statement.
   */
  private bound(statementDeadline: number | undefined): number | undefined {
    const own = this.ownTimeout > 0 ? this.ownTimeout : undefined;
    const deadline = statementDeadline === undefined || this.deadline === undefined ? (statementDeadline ?? this.deadline) : Math.min(statementDeadline, this.deadline);
    if (deadline === undefined) {
      // Settled: a SET fails only where the transaction already has. DEFAULT is the connection's own.
      if (this.timed) this.defer('SET LOCAL statement_timeout TO DEFAULT', undefined, true);
      this.timed = false;
      return own;
    }
    const left = timeLeft(deadline);
    this.timed = true;
    this.defer(`SET LOCAL statement_timeout = ${own === undefined ? left : Math.min(own, left)}`, undefined, true);
    return own !== undefined && own <= left ? own : undefined;
  }

  /**
   * What decides the columns of spec SQL that reads only its upstreams (and its own WITH
   * names): its text, bindings' casts included, and the upstreams' columns with their types as
   * this transaction read them (`startPublish`, under the partition's lock). The same key gives
   * the same columns, so a node's partitions probe once per worker, not once each. Null (probe
   * every time) when it names anything else, whose columns could change unseen.
   */
  private probeKey(parsed: Awaited<ReturnType<typeof parseQuery>>, spec: SpecSql, body: string): string | null {
    if (!spec.scope || (spec.given ?? []).length > 0) return null;
    const scoped = new Set(spec.scope.map((r) => r.name));
    if (parsed.relations.some((r) => r.schema !== null || !(scoped.has(r.name) || parsed.ctes.has(r.name)))) return null;
    const upstreams: Array<[string, Array<{ name: string; type: string }>]> = [];
    for (const relation of spec.scope) {
      const columns = this.known.get(relation.name);
      if (!columns) return null;
      upstreams.push([relation.name, columns]);
    }
    return JSON.stringify([body, upstreams]);
  }

  /**
   * Inside a partition, what spec SQL names must not reach backfill's tables (through views
   * too), except the datasets named plainly: an upstream is scoped, another dataset shows its
   * published partitions, as it does outside. Only the names backfill defines around the SQL
   * are exempt: a name the SQL's own WITH defines is looked up like any other, since where it
   * is read the WITH may not be in scope (one nested elsewhere, or one that reads the relation
   * of its own name). Such a name that is no relation passes; one that shadows a way to
   * backfill's tables is refused. So is the system catalog, whose statistics views (pg_stats)
   * show values of every partition: a partition's SQL has no need of it. A view is followed
   * to every relation its rule's range tables name (the `:relid`s of its stored tree), not to
   * the dependencies PostgreSQL records: it records none on its own pinned tables (pg_class,
   * pg_statistic), so a view of yours over those would pass unseen.
   */
  private async assertInScope(parsed: Awaited<ReturnType<typeof parseQuery>>, spec: SpecSql): Promise<void> {
    const reader = [...parsed.functions].find(readsCatalog);
    if (reader) throw outsideScope(`${reader}(), which reads the database's catalog or statistics,`, spec);
    const plain = new Set([...(spec.scope ?? []).map((r) => r.name), ...(spec.given ?? []).map((g) => g.name)]);
    const named = parsed.relations.filter((r) => r.schema !== null || !plain.has(r.name));
    if (named.length === 0) return;
    const reached = await this.all<{ ord: number; nspname: string; relname: string; catalog: boolean }>(
      `WITH RECURSIVE named AS (
         SELECT n.ord, to_regclass(n.name) AS oid FROM unnest(CAST(:names AS text[]), CAST(:datasets AS text[])) WITH ORDINALITY AS n(name, dataset, ord)
         WHERE n.dataset IS NULL OR to_regclass(n.dataset) IS NULL
       ), reads(ord, oid, depth) AS (
         SELECT ord, oid, 0 FROM named WHERE oid IS NOT NULL
         UNION
         SELECT r.ord, CAST(m.relid[1] AS oid), r.depth + 1 FROM reads r JOIN pg_rewrite w ON w.ev_class = r.oid
         CROSS JOIN LATERAL regexp_matches(CAST(w.ev_action AS text), ':relid (\\d+)', 'g') AS m(relid)
         WHERE r.depth < ${MAX_VIEW_DEPTH} AND CAST(m.relid[1] AS oid) <> r.oid
       )
       SELECT r.ord, s.nspname, c.relname, s.nspname = ANY(CAST(:catalogs AS text[])) AS catalog
       FROM reads r JOIN pg_class c ON c.oid = r.oid JOIN pg_namespace s ON s.oid = c.relnamespace
       WHERE s.nspname = :schema OR s.oid = pg_my_temp_schema() OR s.nspname = ANY(CAST(:catalogs AS text[])) ORDER BY r.ord, r.depth LIMIT 1`,
      {
        catalogs: CATALOG_SCHEMAS,
        names: named.map((r) => (r.schema === null ? quoteIdent(r.name) : `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`)),
        // A plain name with a versions table is a dataset's view.
        datasets: named.map((r) => (r.schema === null ? this.dialect.versionsTable(r.name) : null)),
        schema: this.dialect.schema,
      },
    );
    const first = reached[0];
    if (first) {
      const r = named[Number(first.ord) - 1]!;
      const name = r.schema === null ? r.name : `${r.schema}.${r.name}`;
      throw outsideScope(first.catalog ? `${name}, which reads the database's catalog (${first.nspname}.${first.relname}),` : `${name}, which reaches backfill's table ${first.relname},`, spec);
    }
  }

  private async typeName(oid: number): Promise<string> {
    if (oid === UNKNOWN_OID) return 'text';
    let name = this.dialect.typeNames.get(oid);
    if (name === undefined) {
      name = (await this.all<{ name: string }>('SELECT format_type(CAST(:oid AS oid), NULL) AS name', { oid }))[0]!.name;
      this.dialect.typeNames.set(oid, name);
    }
    return name;
  }
}

/** A warehouse on PostgreSQL. */
export class PostgresWarehouse extends SqlWarehouse {
  constructor(url: string, options: PostgresOptions = {}) {
    super(new PostgresDialect(url, options), { readOnly: options.readOnly === true });
  }
}
