/**
 * backfill's own tables as data, for every dialect: their columns, keys and indexes, the
 * ledger columns newer releases add, the ledger's INSERT and the decoding of its rows. A
 * dialect only says how each column type is spelled and how values travel (its codec).
 */
import type { InputVersions, LedgerRow, PartitionWrite, Published, RollbackRecord } from './types.ts';
import type { ValueKind } from './checksum.ts';

/** Column types as backfill means them; each dialect spells them its own way. */
/** `number`: a floating-point number (a reported cost may be a fraction: credits, a price). */
export type ColumnType = 'text' | 'key' | 'integer' | 'bigint' | 'number' | 'boolean' | 'json' | 'time';

export type ColumnDef = { name: string; type: ColumnType; notNull?: boolean; default?: string };

export type TableDef = {
  name: InternalTable;
  columns: readonly ColumnDef[];
  primaryKey: readonly string[];
  indexes?: ReadonlyArray<{ name: string; columns: readonly string[] }>;
  /** Columns added after the first release: every table, new or old, gets them the same way, when missing. */
  additions?: readonly ColumnDef[];
  /** Only the workers read it: a reader (reading.ts) of a warehouse that lacks it reads on. */
  workersOnly?: true;
};

export type InternalTable = 'ledger' | 'partitions' | 'rollbacks' | 'meta' | 'leases' | 'signatures';

/** How a dialect reads and writes the values of JSON, boolean and time columns. */
export type Codec = {
  json(value: unknown): unknown;
  fromJson<T>(value: unknown): T;
  bool(value: boolean): unknown;
  fromBool(value: unknown): boolean;
  /** A time as an ISO 8601 string, from what the driver returned. */
  fromTime(value: unknown): string;
};

const col = (name: string, type: ColumnType, notNull = true, extra: Partial<ColumnDef> = {}): ColumnDef => ({ name, type, notNull, ...extra });

export const TABLES: readonly TableDef[] = [
  {
    name: 'ledger',
    columns: [
      col('node', 'key'),
      col('partition', 'key'),
      col('version', 'integer'),
      col('status', 'text'),
      col('backfill_id', 'text'),
      col('run_key', 'text'),
      col('workflow_id', 'text'),
      col('row_count', 'bigint', false),
      col('checksum', 'text', false),
      col('schema_hash', 'text', false),
      col('transform', 'text'),
      col('params', 'json'),
      col('code_version', 'text'),
      col('inputs', 'json'),
      col('attempt', 'integer'),
      col('executions', 'integer', true, { default: '1' }),
      col('started_at', 'time'),
      col('finished_at', 'time'),
      col('duration_ms', 'bigint'),
      col('previous_version', 'integer', false),
      col('error', 'text', false),
    ],
    additions: [
      col('warnings', 'json', true, { default: "'[]'" }),
      col('spec_hash', 'text', false),
      // The columns the version wrote, which its checksum covers (null: published before they were recorded).
      col('version_columns', 'json', false),
      // What the transform reported producing the partition cost (ctx.reportCost); null: it reported nothing.
      col('cost', 'number', false),
      // Written as a staged version (its status then says whether it is published, staged or discarded).
      col('staged', 'boolean', true, { default: 'false' }),
      // How the checksum read each of version_columns (number, boolean, text), so that a restore reads
      // them the same way after a later version widened a column's type (null: not recorded).
      col('version_kinds', 'json', false),
    ],
    primaryKey: ['node', 'partition', 'version'],
    indexes: [
      { name: 'ledger_by_backfill', columns: ['backfill_id', 'node', 'partition'] },
      { name: 'ledger_by_run', columns: ['run_key', 'node', 'partition'] },
    ],
  },
  {
    name: 'partitions',
    columns: [col('node', 'key'), col('partition', 'key'), col('version', 'integer'), col('published_at', 'time')],
    primaryKey: ['node', 'partition'],
  },
  {
    name: 'rollbacks',
    columns: [
      col('rollback_id', 'key'),
      col('backfill_id', 'text'),
      col('node', 'key'),
      col('partition', 'key'),
      col('from_version', 'integer', false),
      col('to_version', 'integer', false),
      col('forced', 'boolean'),
      col('at', 'time'),
    ],
    additions: [
      // The newest version of the backfill that the rollback undid there (null: recorded before it was kept).
      col('rolled_back_version', 'integer', false),
      // Null: the pointer moved (from_version to to_version). `changed_since` or `already_restored`: it did not,
      // but the backfill's versions up to rolled_back_version count as rolled back all the same.
      col('outcome', 'text', false),
    ],
    primaryKey: ['rollback_id', 'node', 'partition'],
    indexes: [
      { name: 'rollbacks_by_partition', columns: ['node', 'partition'] },
      { name: 'rollbacks_by_backfill', columns: ['backfill_id'] },
    ],
  },
  // Facts about the warehouse itself: its identity.
  { name: 'meta', columns: [col('key', 'key'), col('value', 'text')], primaryKey: ['key'] },
  // Which run may publish a dataset's partitions (one writer per dataset).
  {
    name: 'leases',
    columns: [col('node', 'key'), col('backfill_id', 'text'), col('run_key', 'text'), col('acquired_at', 'time')],
    primaryKey: ['node'],
  },
  // The signed starts admitted, by the digest of their signed text (core/signature-claim.ts): the run that used each.
  {
    name: 'signatures',
    columns: [col('signature_key', 'key'), col('backfill_id', 'text'), col('workflow_id', 'text'), col('run_id', 'text'), col('claimed_at', 'time')],
    primaryKey: ['signature_key'],
    workersOnly: true,
  },
];

/** What a publish recorded of the version it published, or why it failed. */
export type LedgerFields =
  | { rowCount: number; checksum: string; schemaHash: string; columns: string[]; kinds: ValueKind[]; previousVersion: number | null; warnings: string[] }
  | { failed: string; warnings: string[] };

const LEDGER_COLUMNS = [...TABLES[0]!.columns, ...TABLES[0]!.additions!].map((c) => c.name);

/** A ledger row's values by column, as `ledgerValues` gives them. */
export type LedgerValues = Record<string, unknown>;

/**
 * Ledger rows one INSERT writes at most: a batch's (`PublishBuffer` and a lake's group take at
 * most 100 partitions) in one, with 2,700 parameters, far under the engines' limits (SQLite's
 * 32,766, PostgreSQL's 65,535); and each engine's statement cache keeps at most 100 texts of it.
 */
export const LEDGER_ROWS_PER_INSERT = 100;

/** The INSERTs that write these ledger rows, `perInsert` rows each at most: `:column_i` parameters for row i. */
export function ledgerInserts(ledger: string, rows: readonly LedgerValues[], perInsert = LEDGER_ROWS_PER_INSERT): Array<{ sql: string; params: LedgerValues }> {
  const inserts: Array<{ sql: string; params: LedgerValues }> = [];
  for (let start = 0; start < rows.length; start += perInsert) {
    const chunk = rows.slice(start, start + perInsert);
    const params: LedgerValues = {};
    const tuples = chunk.map((row, i) => {
      for (const c of LEDGER_COLUMNS) params[`${c}_${i}`] = row[c];
      return `(${LEDGER_COLUMNS.map((c) => `:${c}_${i}`).join(', ')})`;
    });
    inserts.push({ sql: `INSERT INTO ${ledger} (${LEDGER_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`, params });
  }
  return inserts;
}

/** A ledger row's values for one publish or failed check; `publishBegan`: when this partition's publish began. */
export function ledgerValues(codec: Codec, write: PartitionWrite, version: number, fields: LedgerFields, inputs: InputVersions[], publishBegan?: number): LedgerValues {
  const finishedAt = Date.now();
  const durationMs = write.computedAt !== undefined && publishBegan !== undefined ? Math.max(0, write.computedAt - write.startedAt) + (finishedAt - publishBegan) : finishedAt - write.startedAt;
  const published = !('failed' in fields);
  return {
    node: write.node,
    partition: write.partition,
    version,
    status: !published ? 'failed_check' : write.stage ? 'staged' : 'published',
    backfill_id: write.backfillId,
    run_key: write.runKey,
    workflow_id: write.workflowId,
    row_count: published ? fields.rowCount : null,
    checksum: published ? fields.checksum : null,
    schema_hash: published ? fields.schemaHash : null,
    transform: write.transform,
    params: codec.json(write.params),
    code_version: write.codeVersion,
    inputs: codec.json(inputs),
    attempt: write.attempt,
    executions: 1,
    started_at: new Date(write.startedAt).toISOString(),
    finished_at: new Date(finishedAt).toISOString(),
    duration_ms: durationMs,
    previous_version: published ? fields.previousVersion : null,
    error: published ? null : fields.failed,
    warnings: codec.json(fields.warnings),
    spec_hash: write.specHash ?? null,
    version_columns: published ? codec.json(fields.columns) : null,
    cost: write.cost ?? null,
    staged: codec.bool(write.stage === true),
    version_kinds: published ? codec.json(fields.kinds) : null,
  };
}

/** A write's reported cost is a number of 0 or more (the warehouse kit takes writes from any caller). */
export function assertCost(write: Pick<PartitionWrite, 'node' | 'partition' | 'cost'>): void {
  const { cost } = write;
  if (cost !== undefined && !(typeof cost === 'number' && Number.isFinite(cost) && cost >= 0)) {
    throw new RangeError(`${write.node} ${write.partition}: a reported cost is a number of 0 or more (got ${String(cost)}); leave it out when the transform reported none`);
  }
}

type Raw = Record<string, unknown>;

const numberOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

/** A ledger row as the contract gives it, from a row of `SELECT l.*, <published> AS current`. */
export function ledgerRow(codec: Codec, r: Raw): LedgerRow {
  return {
    node: r.node as string,
    partition: r.partition as string,
    version: Number(r.version),
    status: r.status as LedgerRow['status'],
    backfillId: r.backfill_id as string,
    runKey: r.run_key as string,
    workflowId: r.workflow_id as string,
    rowCount: numberOrNull(r.row_count),
    checksum: r.checksum as string | null,
    schemaHash: r.schema_hash as string | null,
    transform: r.transform as string,
    params: codec.fromJson(r.params),
    codeVersion: r.code_version as string,
    inputs: codec.fromJson(r.inputs),
    attempt: Number(r.attempt),
    executions: Number(r.executions),
    startedAt: codec.fromTime(r.started_at),
    finishedAt: codec.fromTime(r.finished_at),
    durationMs: Number(r.duration_ms),
    previousVersion: numberOrNull(r.previous_version),
    error: r.error as string | null,
    warnings: codec.fromJson(r.warnings),
    specHash: r.spec_hash as string | null,
    cost: numberOrNull(r.cost),
    staged: codec.fromBool(r.staged),
    current: codec.fromBool(r.current),
  };
}

/** What `publishedBy` returns, from a published ledger row. */
export function publishedOf(codec: Codec, r: Raw): Published {
  return {
    version: Number(r.version),
    previousVersion: numberOrNull(r.previous_version),
    rowCount: Number(r.row_count),
    checksum: r.checksum as string,
    schemaHash: r.schema_hash as string,
    warnings: codec.fromJson(r.warnings),
    ...(r.status === 'staged' ? { staged: true } : {}),
  };
}

/** What `publishedBy` adds to `publishedOf`: what making the version took and cost, from the same row. */
export function madeOf(r: Raw): Pick<Published, 'durationMs' | 'cost'> {
  return {
    ...(r.duration_ms !== null && r.duration_ms !== undefined ? { durationMs: Number(r.duration_ms) } : {}),
    ...(r.cost !== null && r.cost !== undefined ? { cost: Number(r.cost) } : {}),
  };
}

export function rollbackRecord(codec: Codec, r: Raw): RollbackRecord {
  return {
    rollbackId: r.rollback_id as string,
    backfillId: r.backfill_id as string,
    node: r.node as string,
    partition: r.partition as string,
    fromVersion: numberOrNull(r.from_version),
    toVersion: numberOrNull(r.to_version),
    forced: codec.fromBool(r.forced),
    at: codec.fromTime(r.at),
  };
}
