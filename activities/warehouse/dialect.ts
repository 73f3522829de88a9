/**
 * What a warehouse backend supplies: only what differs between engines. The warehouse
 * protocol (publish, restore, the ledger, leases) is written once against it, in
 * `warehouse.ts` (`SqlWarehouse`); each backend is a dialect of a few hundred lines, and
 * `new SqlWarehouse(dialect)` is its warehouse. Exported as `durable-backfill/warehouse`:
 * see docs/warehouses.md.
 */
import type { PartitionInput } from '../../core/protocol.ts';
import type { ValueKind } from './checksum.ts';
import type { Codec, InternalTable, TableDef } from './ledger.ts';
import { PARTITION_COLUMN, VERSION_COLUMN, quoteLiteral, type GivenRelation, type ScopedRelation } from './sql.ts';
import { CommitDeadlineError, type Bindings, type DatasetFacts, type PinnedInput, type Published, type Row } from './types.ts';

/** Parameters of backfill's own statements, named `:name` in their text. */
export type Params = Record<string, unknown>;

/** A column a new version writes; a null type holds only NULLs, which fit any type. */
export type Wanted = { name: string; type: string | null };

/** SQL from a spec (node SQL, check SQL, a transform's query()): what it may read, and its parameters. */
export type SpecSql = {
  sql: string;
  bindings: Bindings;
  /**
   * Inside a partition: its upstream datasets, read by their plain names and scoped to the
   * pinned partitions. Any other way to reach backfill's tables is refused. Absent: a read
   * outside any partition, which sees the published datasets.
   */
  scope?: readonly ScopedRelation[];
  /** Relations the statement wrapping it defines for it: `{{this}}` and `{{previous}}` of a check. */
  given?: readonly GivenRelation[];
  /**
   * Epoch ms at which the engine stops the statement, and it throws `CommitDeadlineError`
   * (`timeLeft`): the partition's time is up. Absent: no deadline.
   */
  deadline?: number;
};

/** Spec SQL that passed the door's rules, ready to run in its session, in one of these ways only. */
export interface SpecStatement {
  /** Its rows (a read-only statement). */
  rows(): Promise<Row[]>;
  /** Its columns and their types, without running it for real. */
  columns(): Promise<Wanted[]>;
  /** Runs it as the source of the new version's rows (`columns` as `columns()` gave them). */
  insertInto(table: string, columns: readonly string[], partition: string, version: number): Promise<void>;
  /** One aggregate over its rows, such as `COUNT(*)` (a check), read-only. */
  measure(aggregate: string): Promise<number | null>;
}

/** A publish about to write, as `Session.startPublish` takes it. */
export type PublishRequest = {
  node: string;
  partition: string;
  runKey: string;
  /** The upstream partitions it maps to. */
  inputs: readonly PartitionInput[];
  /** The versions its transform already read (`Warehouse.pin`): these, not the published ones, go into its scope. */
  pinned?: readonly PinnedInput[];
};

/** What a publish learns before it writes, in its transaction, with its partition locked. */
export type PublishStart = {
  /** The run the dataset is leased to (null: no lease, anyone publishes). */
  lease: { backfillId: string; runKey: string } | null;
  /** The version this run published already (a retry after a crash), if it did. */
  already: Published | null;
  /** The newest version of the partition in the ledger (0: none yet). */
  latest: number;
  /** The version published now (null: none). */
  current: number | null;
  /** The upstream versions in scope, per input, now in the scope table. */
  pinned: PinnedInput[];
};

/** A connection inside one transaction. */
export interface Session {
  /** Rows of one of backfill's own statements. */
  all<T = Row>(sql: string, params?: Params): Promise<T[]>;
  /**
   * A statement whose result nothing reads. It may go out without waiting (PostgreSQL pipelines
   * it): its error then comes from the next statement awaited, the end of a savepoint, or the
   * commit, so the protocol never relies on `run` itself throwing.
   */
  run(sql: string, params?: Params): Promise<void>;
  /** Runs `work` in a savepoint: rolled back when it throws, released when it returns. */
  savepoint<T>(work: () => Promise<T>): Promise<T>;
  /**
   * True once the engine itself ended the transaction (SQLite rolls all of it back on a full
   * disk, an I/O error, ...): nothing written in it is kept, and it will not commit (the
   * transaction throws the error that ended it).
   */
  readonly ended?: boolean;
  /** Waits for a lock named `key` until the transaction ends (where the engine has such locks). */
  lock(key: string): Promise<void>;
  /** Rows of one of backfill's own SELECTs as arrays, a batch at a time, with how each column's values canonicalize. */
  stream(sql: string, params: Params, each: (rows: readonly unknown[][], kinds: readonly ValueKind[]) => void): Promise<void>;
  /** A dataset's columns in table order, without the internal ones; null when it has no versions table. */
  columns(node: string): Promise<string[] | null>;
  /**
   * Makes the dataset's versions table and its view, or adds and widens the columns a new
   * version brings. An object of the view's name that backfill did not make is refused,
   * unless `adopt` (a view only). The protocol refused a column whose name differs only in
   * case from one the dataset had when it looked (`assertNoCaseTwin`); an engine where two
   * publishes may add columns at once checks again under its lock.
   */
  ensureDataset(node: string, wanted: readonly Wanted[], adopt: boolean): Promise<void>;
  /** Writes rows a transform returned (values in `columns` order, as `Dialect.value` gives them) into a version. */
  insertRows(table: string, partition: string, version: number, columns: readonly string[], rows: readonly unknown[][]): Promise<void>;
  /** The one door for spec SQL: checks its rules before any of it runs. */
  spec(sql: SpecSql): Promise<SpecStatement>;
  /**
   * Hears of each new version this transaction writes, before any of its rows (a version may
   * get none). Where an engine keeps each version apart (the lake: a file per version), it
   * stores every such version itself, rows or not: what lies at the version's place already
   * (a file an attempt that died before its commit left) is not that version.
   */
  newVersion?(node: string, partition: string, version: number): Promise<void>;
  /**
   * Where an engine keeps each version apart (the lake: a file per version), the rows of one
   * version with the internal columns, as a relation to read FROM. Without it, the protocol
   * filters the versions table.
   */
  versionRows?(node: string, partition: string, version: number): Promise<string>;
  /**
   * Likewise, the rows of these pinned versions of an upstream dataset, with `columns`: what a
   * partition's scoped read of it shows. Without it, the versions table is joined with the scope table.
   */
  pinnedRows?(node: string, versions: ReadonlyArray<readonly [partition: string, version: number]>, columns: readonly string[]): Promise<string>;
  /**
   * Where versions of other partitions could share a new version's storage (the lake: keys that
   * differ only in case name the same files on some file systems), the number the partition's
   * versions must be numbered past. Without it, a partition's versions count from its own newest.
   */
  versionFloor?(node: string, partition: string): Promise<number>;
  /** Hears of every move of a published pointer (null: removed), for an engine that mirrors them outside its tables (the lake's files). */
  pointed?(node: string, partition: string, version: number | null): Promise<void>;
  /**
   * Where an engine keeps each version apart, drops these versions' rows (a discarded staged
   * version's), once the transaction commits. Without it, they are deleted from the versions table.
   */
  dropVersions?(node: string, versions: ReadonlyArray<readonly [partition: string, version: number]>): Promise<void>;
  /**
   * Optional: what `SqlWarehouse` otherwise does in several statements at the start of a
   * publish (lock the partition, read its lease, this run's published version, the newest and
   * the published version, pin the inputs into the scope table), in one. It must give exactly
   * what the protocol's own would (the contract suite runs both).
   */
  startPublish?(request: PublishRequest): Promise<PublishStart>;
  /**
   * Whether statements of spec SQL may be in flight at once on this session (`SpecStatement.measure`
   * of several checks): the connection pipelines them, and each keeps to a savepoint of its own.
   */
  readonly pipelines?: boolean;
}

export interface Dialect {
  /** The engine's name (`sqlite`, `postgres`, or an adapter's own), as `Warehouse.kind`. */
  readonly kind: string;
  /** Where it is (a file path, a PostgreSQL URL without its password, a lake's directory). */
  readonly location: string;
  /** Whether publishes may run at once; if not, the warehouse runs its transactions one at a time. */
  readonly concurrent: boolean;
  /**
   * Optionally, for a dialect whose transactions run one at a time and cost most in their
   * commit (the lake): the publishes that wait for their turn commit together, in one
   * transaction, each still atomic and answered as if it had run alone (see
   * `SqlWarehouse.publishMany`).
   */
  readonly groupsPublishes?: boolean;
  readonly codec: Codec;
  /** The qualified name of one of backfill's tables, and of a dataset's versions table. */
  table(name: InternalTable): string;
  /** Creates an index of backfill's, if it does not exist. */
  indexDdl(name: string, table: InternalTable, columns: readonly string[]): string;
  versionsTable(node: string): string;
  /** The temporary table of pinned (node, partition, version) rows that scoped reads join. */
  readonly scopeTable: string;
  /** A set of rows `j.value`, one per element of a JSON array parameter: `FROM ${jsonEach(':p')} j`. */
  jsonEach(param: string): string;
  /** What locks the rows a SELECT reads until commit ('' where writers take turns anyway). */
  readonly forShare: string;
  /**
   * What locks the rows a SELECT reads for writing until commit; absent or '' where writers take
   * turns anyway. A staged publish and a restore lock the pointers they read this way, so that
   * neither moves a pointer the other read before it moved.
   */
  readonly forUpdate?: string;
  /** A column type's name in this engine. */
  columnType(type: TableDef['columns'][number]['type']): string;
  /** The columns a table has now (to add those of newer releases). */
  tableColumns(session: Session, table: InternalTable): Promise<string[]>;
  /** Runs in the transaction that creates backfill's tables, before it does (PostgreSQL makes its schema, and finds the one for views). */
  prepare?(session: Session): Promise<void>;
  /** The column type of a value a transform returned (null: any), and the type that holds two. */
  typeOf(value: unknown): string | null;
  widen(a: string, b: string): string;
  /** A value a transform returned, as this engine stores it. */
  value(value: unknown): unknown;
  /**
   * `deadline` (ms since the epoch): when the transaction must have ended, as its partitions'
   * attempt ends then. An engine that can stops its statements by then (a lock another session
   * holds, a server that stops answering), and never reuses a connection it had to give up.
   * Work the engine does after the commit (the lake's file moves) that fails throws
   * `AfterCommitError`: the transaction's writes are kept, and nothing of it is done again.
   */
  transaction<T>(work: (session: Session) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Optionally, for lineage: how OpenLineage names `node`'s dataset, and its columns, read in a read-only session (`Warehouse.lineageDataset`). */
  lineageDataset?(session: Session, node: string): Promise<DatasetFacts>;
  close(): Promise<void>;
}

export type TransactionOptions = { lock?: string; readOnly?: boolean; deadline?: number };

/**
 * The milliseconds a statement with this deadline may still run (at least 1), or
 * `CommitDeadlineError` when it has passed: the statement must not start.
 */
export function timeLeft(deadline: number, now = Date.now()): number {
  if (now < deadline) return Math.ceil(deadline - now);
  throw deadlineError();
}

/** What spec SQL stopped at its deadline throws. */
export const deadlineError = (): CommitDeadlineError =>
  new CommitDeadlineError("the partition's SQL was stopped at its deadline (its run window closed or the node's timeout passed): nothing of it is committed, and it is retried");

/** The lock a partition's publishes and restores take turns on (`Session.lock`). */
export const partitionLock = (node: string, partition: string): string => `backfill:partition:${node}/${partition}`;


/** A SELECT of one version's rows with the internal columns: the session's own relation, or the versions table filtered. */
export async function versionSelect(s: Session, dialect: Dialect, node: string, partition: string, version: number): Promise<string> {
  if (s.versionRows) return `SELECT * FROM ${await s.versionRows(node, partition, version)} AS v`;
  return `SELECT * FROM ${dialect.versionsTable(node)} WHERE ${PARTITION_COLUMN} = ${quoteLiteral(partition)} AND ${VERSION_COLUMN} = ${version}`;
}
