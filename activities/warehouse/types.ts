/**
 * Where partitions are written and the ledger lives: one interface, every backend held to the
 * same test suite (`warehouseSuite` in `durable-backfill/warehouse-testkit`). SQLite and
 * PostgreSQL are built in, a Parquet lake on DuckDB is an adapter that ships with backfill,
 * and an adapter of anyone's adds an engine (docs/warehouses.md).
 *
 * Each dataset (node) keeps every version of every partition; a view named after the node
 * shows the published version of each partition. Versions are immutable once published:
 * every attempt that writes gets a version of its own, and a retry of an attempt that had
 * already published returns what it published instead of writing again. Publishing a
 * partition (rows, checks, pointer and ledger row) is one transaction.
 *
 * A partition's SQL reads its upstream datasets through a scope: inside it, `FROM <node>`
 * shows only the upstream partitions it maps to, at the versions pinned when it first read
 * them, and those pinned versions are what the ledger records as its inputs.
 */
import type { SignatureHolder } from '../../core/signature-claim.ts';
import type { PartitionInput } from '../../core/protocol.ts';
import type { CheckInput } from '../../core/spec.ts';
import type { PartitionDiff } from '../../core/diff.ts';
import type { DatasetName, SchemaField } from '../../core/openlineage.ts';
import type { UndoneBy } from '../../core/rollback.ts';

export type { ColumnChange, ColumnStats, PartitionDiff } from '../../core/diff.ts';

export type SqlValue = string | number | bigint | boolean | null;
export type Row = Record<string, unknown>;
export type Bindings = Record<string, SqlValue>;

/** The rows of a new partition version: rows a transform produced and SELECTs run in the warehouse. */
export type PartitionData = {
  rows: Row[];
  selects: Array<{ sql: string; bindings: Bindings }>;
};

/** The upstream partitions one input covers, with the version of each that was read. */
export type PinnedInput = PartitionInput & { versions: Array<[partition: string, version: number]> };

/** Lineage of one upstream input, as the ledger records it. */
export type InputVersions = {
  node: string;
  from: string;
  to: string;
  partitions: number;
  /** Published version of each upstream partition read (omitted above a size, see `digest`). */
  versions?: Record<string, number>;
  /** A hash of every (partition, version) pair read. */
  digest: string;
};

/** How long a read may run: a transform's `query()` ends with its partition's time. */
export type QueryOptions = { deadline?: number };

export type PartitionWrite = {
  node: string;
  partition: string;
  backfillId: string;
  runKey: string;
  workflowId: string;
  data: PartitionData;
  /** Run on the new version; `severity: warn` ones publish and record a warning. */
  checks: CheckInput[];
  transform: string;
  params: Record<string, unknown>;
  codeVersion: string;
  /** The upstream partitions this partition maps to. */
  inputs: PartitionInput[];
  /** The versions the transform read (`pin`); absent, publish pins them itself as its SELECTs read them. */
  pinned?: PinnedInput[];
  attempt: number;
  startedAt: number;
  /**
   * When its transform returned, where a batch commits it later: the ledger's duration is the
   * work until then plus its own publish, without its wait for the commit (its finish is the
   * commit, when readers first see it).
   */
  computedAt?: number;
  /** A hash of the node's transform, SQL, params and checks (`specHash`), recorded in the ledger. */
  specHash?: string;
  /** Take over an existing view named after the node that backfill did not create (else publishing is refused). */
  adopt?: boolean;
  /** What the transform reported this partition cost (ctx.reportCost), recorded in the ledger. */
  cost?: number;
  /**
   * Epoch ms after which none of this partition may be committed (the end of its run window, or
   * of its timeout): its SQL is stopped then where the engine can stop it, and SQL that finishes
   * later is rolled back (`CommitDeadlineError`), as its batch has given up waiting for it. A
   * warehouse that cannot tell may ignore it.
   */
  commitBy?: number;
  /**
   * Write and check the version but publish nothing: it is recorded as `staged`, and only
   * `publishStaged` of its run moves the pointer. Its upstream reads prefer the versions its
   * run staged (`pin` with the run key).
   */
  stage?: boolean;
  /**
   * False: should its checks fail, write no ledger row of it (its staged rows go too), for the
   * batch gives it back to run again, and that run records it. Absent: recorded, as always.
   */
  recordFailure?: boolean;
};

export type Published = {
  version: number;
  previousVersion: number | null;
  rowCount: number;
  checksum: string;
  schemaHash: string;
  /** Checks of severity `warn` that failed: the version was published all the same. */
  warnings: string[];
  /** True when an earlier attempt of the same run had published (or staged) it: nothing was written this time. */
  alreadyPublished?: boolean;
  /** The version is staged: written and checked, not published. */
  staged?: boolean;
  /**
   * From the ledger, for a run that finds the partition made already (`publishedBy` only): how long
   * making it took (duration_ms) and what its transform reported it cost. The attempt or workflow
   * run that made it never delivered its result, so the budgets are charged these instead.
   */
  durationMs?: number;
  cost?: number;
};

export type LedgerRow = {
  node: string;
  partition: string;
  version: number;
  /**
   * `published`: it passed its checks and its pointer moved (directly, or from staged by
   * `publishStaged`); `staged`: it passed its checks and waits for its run's publish;
   * `discarded`: it was staged and dropped (its rows are gone); `failed_check`.
   */
  status: LedgerStatus;
  backfillId: string;
  runKey: string;
  workflowId: string;
  rowCount: number | null;
  checksum: string | null;
  schemaHash: string | null;
  transform: string;
  params: Record<string, unknown>;
  codeVersion: string;
  inputs: InputVersions[];
  attempt: number;
  /** Attempts that reached this version: more than 1 when a retry found it already published. */
  executions: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  previousVersion: number | null;
  error: string | null;
  /** Failed checks of severity `warn`. */
  warnings: string[];
  /** The hash of the node's transform, SQL, params and checks (null: recorded before the ledger kept it). */
  specHash: string | null;
  /** What the transform reported producing this version cost (ctx.reportCost); null when it reported nothing. */
  cost: number | null;
  /** Written as a staged version (published later, or discarded, or still waiting); absent in rows made by hand. */
  staged?: boolean;
  current: boolean;
};

export type LedgerStatus = 'published' | 'failed_check' | 'staged' | 'discarded';

export type LedgerFilter = { backfillId?: string; node?: string; partition?: string };

/** A node the ledger has versions of: how many partitions, and its first and last key (in key order). */
export type LedgerNode = { node: string; partitions: number; first: string; last: string };

/** One partition a backfill published: what it replaced, what it published, and what is published now. */
export type Change = {
  node: string;
  partition: string;
  /** The newest version the backfill published. */
  version: number;
  checksum: string;
  /** The version published before the backfill's publishes (where a rollback goes); null when the backfill created the partition. */
  previousVersion: number | null;
  previousChecksum: string | null;
  /** The partition's published version now (null: none), and the backfill that published it. */
  currentVersion: number | null;
  currentBackfillId: string | null;
  /** The current version was published on top of the backfill's (`force` may undo it). */
  onTop?: boolean;
  /** Neither the backfill's version nor on top of it: the rollback that took the pointer off it (null: none the audit has). */
  undoneBy?: UndoneBy | null;
};

/** Where a page of changes ends; the next page starts after it. */
export type ChangeCursor = { node: string; partition: string };
export type ChangesOptions = { node?: string; after?: ChangeCursor; limit?: number };
export type ChangesPage = { changes: Change[]; next: ChangeCursor | null };

export type RestoreRequest = {
  /** Recorded with the restore; the same rollback restoring the same partition again replays its first outcome. */
  rollbackId: string;
  /** The backfill being rolled back. */
  backfillId: string;
  node: string;
  partition: string;
  /** The version the backfill published: the partition is restored only while it is still the published one. */
  from: number;
  /** The version to publish again, or null to remove the partition (the backfill created it). */
  to: number | null;
  /** Restore also when a later publish changed the partition. */
  force?: boolean;
};

/** `undone`: another backfill's rollback took the pointer off the backfill's version before; nothing of it is published there. */
export type RestoreStatus = 'restored' | 'removed' | 'already_restored' | 'changed_since' | 'undone';

export type RestoreOutcome = {
  node: string;
  partition: string;
  status: RestoreStatus;
  /** The published version the restore found (null: none), and the backfill that published it. */
  found: number | null;
  foundBackfillId: string | null;
  /** The published version after the restore (null: none). */
  to: number | null;
  /** True when `force` replaced a version that a later publish had made. */
  forced: boolean;
  /** `undone`: the rollback that undid the backfill's version there. */
  undoneBy?: UndoneBy;
};

/** A restore as the rollback audit records it. */
export type RollbackRecord = {
  rollbackId: string;
  backfillId: string;
  node: string;
  partition: string;
  fromVersion: number | null;
  toVersion: number | null;
  forced: boolean;
  at: string;
};

export type RollbackFilter = { rollbackId?: string; backfillId?: string; node?: string; partition?: string };
/** One version of one partition of a node. */
export type VersionRef = readonly [partition: string, version: number];

/** The run that may publish a set of datasets (nodes): one writer per dataset. */
export type DatasetLease = { backfillId: string; runKey: string; nodes: string[] };
/** A signed start's claim (core/signature-claim.ts): its key (the digest of its signed text) for the run admitted with it. */
export type SignatureClaim = { key: string; backfillId: string; workflowId: string; runId: string };
export type LeaseHolder = { node: string; backfillId: string; runKey: string };
/** Every dataset leased to the run, or none: then `holders` are the other runs that hold some of them. */
export type LeaseOutcome = { acquired: true } | { acquired: false; holders: LeaseHolder[] };

/** The versions one backfill run staged: a run key belongs to one backfill, and both must match. */
export type StagedRun = { backfillId: string; runKey: string };
/**
 * `ended`: the run has ended (cancelled or failed while staging): refuse (`StaleRunError`, nothing
 * dropped) while it still leases a dataset, for then it is running and decides for itself.
 */
export type DiscardOptions = { ended?: boolean };

/** What `publishStaged` or `discardStaged` did: by node, how many versions it moved (or dropped) now and how many it had before. */
export type StagedOutcome = {
  /** Versions published (or discarded) by this call. */
  versions: number;
  /** Versions of the run an earlier call had published (or discarded) already: a retried call finds them. */
  before: number;
  nodes: Array<{ node: string; versions: number }>;
};

export type DiffOptions = {
  /** Key columns by node (a node's `key`); a node without them is compared by whole rows. */
  keys?: Readonly<Record<string, readonly string[]>>;
  /**
   * `staged` (the default): the run's staged versions against the versions published now (what
   * publishing would change). `published`: the run's versions that were staged and have been
   * published, each against the version its publish replaced (what publishing changed); then a
   * diff's `stagedVersion` is that version and `publishedVersion` the one before it.
   */
  of?: 'staged' | 'published';
  node?: string;
  after?: ChangeCursor;
  /** Partitions per page (default 500). */
  limit?: number;
};

export type DiffPage = { partitions: PartitionDiff[]; next: ChangeCursor | null };

/**
 * What publishing several partitions in turn came to: the versions published, in order, up to
 * the first that failed; that one's error, and nothing of the partitions after it.
 */
export type PublishedBatch = { published: Published[]; failed?: { index: number; error: Error } };

/**
 * A dataset as OpenLineage names it (its naming spec, https://openlineage.io/docs/spec/naming),
 * with its columns in order and their types as the engine declares them; `fields` is absent
 * while the dataset does not exist.
 */
export type DatasetFacts = DatasetName & { fields?: SchemaField[] };

export interface Warehouse {
  /** The engine (`sqlite`, `postgres`, `lake`, or an adapter's own name). */
  readonly kind: string;
  /** Where it is (a file path, a PostgreSQL URL without its password, or a lake's directory). */
  readonly location: string;
  /**
   * The published version of every upstream partition `inputs` cover, now; with `runKey`, a
   * version that run staged wins over the published one (a staged backfill reads its own
   * staged upstream versions, so the staged graph is consistent in itself).
   */
  pin(inputs: PartitionInput[], options?: { runKey?: string }): Promise<PinnedInput[]>;
  /**
   * Runs a read-only query. With `scope`, each upstream dataset it names shows only the
   * pinned versions of the partitions it covers. With `deadline` (epoch ms), the engine stops
   * it then (`CommitDeadlineError`), where it can.
   */
  query(sql: string, bindings?: Bindings, scope?: PinnedInput[], options?: QueryOptions): Promise<Row[]>;
  /**
   * Writes `data` as a new version of the partition, runs the checks, then publishes it and
   * records its ledger row, atomically. Throws `CheckFailedError` when a check fails
   * (nothing is published then, and the failure is recorded). When this run had already
   * published the partition, returns that version and writes nothing.
   */
  publish(write: PartitionWrite): Promise<Published>;
  /**
   * Publishes partitions in turn, as `publish` would one by one, stopping at the first that
   * fails; each partition's publish stays atomic. A warehouse may commit them together (one
   * transaction, one round trip to disk), so a batch activity pays the commit once.
   */
  publishMany(writes: readonly PartitionWrite[]): Promise<PublishedBatch>;
  /** The version this run published or staged, if it did (a retry after a crash skips its work). */
  publishedBy(node: string, partition: string, runKey: string): Promise<Published | null>;
  /** Ledger rows, ordered by node, partition and newest version first. */
  ledger(filter: LedgerFilter): Promise<LedgerRow[]>;
  /** Optionally, every node the ledger has versions of, by id (`lineage` names them when asked for one it has not); null: not known. */
  ledgerNodes?(): Promise<LedgerNode[] | null>;
  /** Optionally, which other runs lease some of `nodes` now (`rollback --dry-run` says a rollback would be refused); null: not known. */
  leaseHolders?(nodes: readonly string[]): Promise<LeaseHolder[] | null>;
  /**
   * The partitions a backfill published (of one node, with `node`), ordered by node and
   * partition, a page at a time (`limit`, default 500): pass `next` back as `after`.
   */
  changesBy(backfillId: string, options?: ChangesOptions): Promise<ChangesPage>;
  /**
   * Moves a partition's published pointer back to `to` (or removes it), atomically, if the
   * published version is still `from` (or `force`); verifies first that the rows of `to`
   * still hash to the checksum the ledger recorded (`ChecksumMismatchError` if not), and
   * records the restore in the rollback audit.
   */
  restore(request: RestoreRequest): Promise<RestoreOutcome>;
  /** The rollback audit, ordered by time, node and partition. */
  rollbacks(filter: RollbackFilter): Promise<RollbackRecord[]>;
  /** The ledger row of the published version of every partition of `node`, ordered by partition. */
  publishedRows(node: string): Promise<LedgerRow[]>;
  /** The ledger rows of these versions of `node`'s partitions (those that exist), ordered by partition. */
  ledgerVersions(node: string, versions: readonly VersionRef[]): Promise<LedgerRow[]>;
  /** A random identity the warehouse keeps from its first use on: workers on another warehouse tell by it. */
  identity(): Promise<string>;
  /**
   * Leases the datasets to one run, all of them or none, atomically. A dataset leased to an
   * earlier run of the same backfill passes to this run (`--rerun`, `resume`); one leased to
   * another backfill is refused, naming it. While a dataset is leased, only its run publishes.
   */
  acquireDatasets(lease: DatasetLease): Promise<LeaseOutcome>;
  /** Releases the datasets the run holds (none: nothing to do). */
  releaseDatasets(run: { backfillId: string; runKey: string }): Promise<void>;
  /**
   * Optional: records that the run was admitted with a signed start, unless a run did with it
   * before (insert if absent, atomically), and answers the run that holds it: this one, or that
   * earlier one. Kept for good, so that the signature admits one run even once the server forgets
   * it. Absent: the warehouse keeps no claims, and the runs the server lists judge alone
   * (docs/governance.md).
   */
  claimSignature?(claim: SignatureClaim): Promise<SignatureHolder>;
  /**
   * Publishes every version the run staged, in one transaction: a reader sees all of them or
   * none. Idempotent (a second call publishes nothing and counts what the first did). Refused
   * (`StaleRunError`, nothing moves) when a dataset is leased to another run.
   */
  publishStaged(run: StagedRun): Promise<StagedOutcome>;
  /** Drops every version the run staged, in one transaction: their rows go, their ledger rows say `discarded`. Idempotent. */
  discardStaged(run: StagedRun, options?: DiscardOptions): Promise<StagedOutcome>;
  /** The run's staged versions against the published ones, per partition, a page at a time (as `changesBy`). */
  diffStaged(run: StagedRun, options?: DiffOptions): Promise<DiffPage>;
  /**
   * Optional, for lineage: `node`'s dataset (its view) as OpenLineage names it, with its
   * columns; read by the warehouse itself, never through spec SQL. Absent, or null: lineage
   * names the dataset after the warehouse's location (`locationNamespace`) and gives no schema.
   */
  lineageDataset?(node: string): Promise<DatasetFacts | null>;
  close(): Promise<void>;
}

export class CheckFailedError extends Error {
  override readonly name = 'CheckFailedError';
}

/** SQL that cannot succeed as written (syntax, unknown table or column, missing parameter). */
export class SqlError extends Error {
  override readonly name: string = 'SqlError';
}

/** Spec SQL refused before it ran: more than one statement, not a read, or a read outside its scope. */
export class SqlRefusedError extends SqlError {
  override readonly name = 'SqlRefusedError';
}

/** A publish by a run that no longer holds the dataset's lease (a stale activity of an earlier run). */
export class StaleRunError extends Error {
  override readonly name = 'StaleRunError';
}

/**
 * A partition whose work ended after its `commitBy`, or spec SQL stopped at its deadline:
 * nothing of it was committed. Retried, as a timeout is.
 */
export class CommitDeadlineError extends Error {
  override readonly name = 'CommitDeadlineError';
}

/** A warehouse that keeps no signature claims (an adapter without `claimSignature`, behind a wrapper that has the method). */
export class ClaimsUnsupportedError extends Error {
  override readonly name = 'ClaimsUnsupportedError';
  constructor(location: string) {
    super(`the warehouse ${location} keeps no signature claims (its adapter has no claimSignature)`);
  }
}

/** A stored version whose rows no longer hash to the checksum its ledger row recorded. */
export class ChecksumMismatchError extends Error {
  override readonly name = 'ChecksumMismatchError';
}

/**
 * A transaction whose commit succeeded, after which the engine's own work on it failed (the
 * lake: moving the published files into place): what it wrote is kept, and is the answer
 * (`SqlWarehouse` answers a publish with what it committed, never publishes it again). Thrown by
 * `Dialect.transaction`, with the error of the work that failed.
 */
export class AfterCommitError extends Error {
  override readonly name = 'AfterCommitError';
  constructor(readonly failure: Error) {
    super(`the transaction committed (what it wrote is kept), and then the work after its commit failed: ${failure.message}`, { cause: failure });
  }
}

/**
 * Thrown by a `Session` (the lake's) when a write of a batch would change the type of a column
 * that holds the rows of versions staged before it in the same transaction, which the change
 * would convert (rounding a BIGINT above 2^53 into a DOUBLE): `SqlWarehouse` commits the writes
 * before it as they are and publishes this one, and those after it, in a transaction of their own.
 */
export class PublishApartError extends Error {
  override readonly name = 'PublishApartError';
}

/**
 * Output no version may hold, refused before anything of it is written: a column named as
 * backfill's own (`__`), one with an empty name, or two whose names are the same in any case
 * (`assertUserColumns`). The transform's to fix: failed as `InvalidOutput`, not retried.
 */
export class InvalidOutputError extends Error {
  override readonly name = 'InvalidOutputError';
}

/** A dataset name that is not safe to create tables for (the spec was not validated). */
export class InvalidDatasetError extends Error {
  override readonly name = 'InvalidDatasetError';
}

const ERRORS: Record<string, new (message: string) => Error> = { CheckFailedError, ChecksumMismatchError, CommitDeadlineError, SqlError, SqlRefusedError, InvalidDatasetError, InvalidOutputError, StaleRunError };

/** A warehouse error again from its name and message (after a thread or process boundary): the classes above, else a plain Error of that name. */
export function reviveError(error: { name: string; message: string }): Error {
  const Type = ERRORS[error.name];
  if (Type) return new Type(error.message);
  const revived = new Error(error.message);
  revived.name = error.name;
  return revived;
}

/** `publishMany` for a warehouse that publishes one partition at a time: `publish` in turn. */
export async function publishInTurn(warehouse: Pick<Warehouse, 'publish'>, writes: readonly PartitionWrite[]): Promise<PublishedBatch> {
  const published: Published[] = [];
  for (const [index, write] of writes.entries()) {
    try {
      published.push(await warehouse.publish(write));
    } catch (error) {
      return { published, failed: { index, error: error instanceof Error ? error : new Error(String(error)) } };
    }
  }
  return { published };
}
