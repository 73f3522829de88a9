/**
 * What a warehouse adapter imports, `import … from 'durable-backfill/warehouse'`: the warehouse
 * interface and its types and errors, the dialect interface with `SqlWarehouse` (the one
 * protocol written over any dialect), the SQL helpers the built-in dialects share, the SQLite
 * and PostgreSQL dialects as references, `registerWarehouse` to serve a URL scheme, and
 * `deferredWarehouse` for an adapter whose driver should load only when used. The Parquet lake
 * (activities/warehouse/lake/) is an adapter built from this entry alone.
 * Its conformance kit is `durable-backfill/warehouse-testkit`. See docs/warehouses.md.
 */
export type { PartitionInput } from './core/protocol.ts';
export type { CheckInput } from './core/spec.ts';
export type {
  Bindings,
  Change,
  ChangeCursor,
  ChangesOptions,
  ChangesPage,
  ColumnChange,
  ColumnStats,
  DatasetFacts,
  DatasetLease,
  DiffOptions,
  DiffPage,
  DiscardOptions,
  InputVersions,
  LeaseHolder,
  LeaseOutcome,
  LedgerFilter,
  LedgerNode,
  LedgerRow,
  LedgerStatus,
  PartitionData,
  PartitionDiff,
  PartitionWrite,
  PinnedInput,
  Published,
  PublishedBatch,
  QueryOptions,
  RestoreOutcome,
  RestoreRequest,
  RestoreStatus,
  RollbackFilter,
  RollbackRecord,
  Row,
  SignatureClaim,
  SqlValue,
  StagedOutcome,
  StagedRun,
  VersionRef,
  Warehouse,
} from './activities/warehouse/types.ts';
export type { SignatureHolder } from './core/signature-claim.ts';
export type { UndoneBy } from './core/rollback.ts';
export {
  AfterCommitError,
  CheckFailedError,
  ChecksumMismatchError,
  CommitDeadlineError,
  InvalidDatasetError,
  InvalidOutputError,
  PublishApartError,
  SqlError,
  SqlRefusedError,
  StaleRunError,
  publishInTurn,
  reviveError,
} from './activities/warehouse/types.ts';
export type { Dialect, Params, PublishRequest, PublishStart, Session, SpecSql, SpecStatement, TransactionOptions, Wanted } from './activities/warehouse/dialect.ts';
export { deadlineError, partitionLock, timeLeft } from './activities/warehouse/dialect.ts';
export { SqlWarehouse } from './activities/warehouse/warehouse.ts';
export type { Codec, ColumnDef, ColumnType, InternalTable, TableDef } from './activities/warehouse/ledger.ts';
export { publishedOf } from './activities/warehouse/ledger.ts';
export type { ValueKind } from './activities/warehouse/checksum.ts';
export {
  PARTITION_COLUMN,
  VERSION_COLUMN,
  assertNoCaseTwin,
  bindPositional,
  namingSelect,
  notASelect,
  outsideScope,
  positionalParameters,
  quoteIdent,
  quoteLiteral,
  scopedSelect,
  singleStatement,
  versionsTable,
  type GivenRelation,
  type ScopedRelation,
} from './activities/warehouse/sql.ts';
export { SqliteDialect, SqliteWarehouse } from './activities/warehouse/sqlite/sqlite-dialect.ts';
export { PostgresDialect, PostgresWarehouse, type PostgresOptions } from './activities/warehouse/postgres/postgres-dialect.ts';
export { openWarehouse } from './activities/warehouse/index.ts';
export { loadWarehouseAdapters, registerWarehouse, registeredSchemes, type WarehouseAdapter } from './activities/warehouse/registry.ts';
export { deferredWarehouse } from './activities/warehouse/deferred.ts';
export { BackfillError, type ErrorCode } from './core/errors.ts';
export type { DatasetName, SchemaField } from './core/openlineage.ts';
