/**
 * The warehouse protocol, written once over a dialect: pinning, publishing (rows, checks,
 * pointer and ledger row in one transaction), staged versions (staging.ts), the ledger, what a backfill changed,
 * restoring, the rollback audit, the warehouse's identity and dataset leases. Every
 * statement that comes from a spec goes through the dialect's one door (`Session.spec`).
 */
import { randomUUID } from 'node:crypto';
import { leasedRollbackRefusal } from '../../core/busy-datasets.ts';
import type { PartitionInput } from '../../core/protocol.ts';
import { restoreTarget, versionStanding, type PointerMove, type UndoneBy, type VersionLink } from '../../core/rollback.ts';
import { changesFromRows, changesQuery, linksQuery, movedBy, movesQuery, pageLimit, type ChangeRow, type LinkRow, type MoveRow } from './changes.ts';
import { PREVIOUS, THIS, checkAsync, type CheckOutcome } from './checks.ts';
import { RowHasher, schemaHash, type ValueKind } from './checksum.ts';
import { partitionLock, versionSelect, type Dialect, type TransactionOptions, type PublishRequest, type PublishStart, type Session, type SpecStatement, type Wanted } from './dialect.ts';
import { TABLES, assertCost, ledgerInserts, ledgerRow, ledgerValues, madeOf, publishedOf, rollbackRecord, type ColumnDef, type InternalTable, type LedgerFields, type LedgerValues } from './ledger.ts';
import type { SignatureHolder } from '../../core/signature-claim.ts';
import { inputVersions } from './lineage.ts';
import { ledgerLayout, readOnlyWarehouse, unreadableLedger } from './reading.ts';
import { assertDataset } from './names.ts';
import { assertSameChecksum, columnsFromSchemaHash, decideRestore, type RestoreState } from './restore.ts';
import { diffPage, discardRun, publishRun, stageLock, stagedVersions } from './staging.ts';
import { PARTITION_COLUMN, VERSION_COLUMN, assertNamedQuotes, assertNoCaseTwin, assertUserColumns, quoteIdent, type ScopedRelation } from './sql.ts';
import {
  AfterCommitError,
  CheckFailedError,
  ChecksumMismatchError,
  CommitDeadlineError,
  PublishApartError,
  SqlError,
  SqlRefusedError,
  StaleRunError,
  type Bindings,
  type ChangesOptions,
  type ChangesPage,
  type DatasetFacts,
  type DatasetLease,
  type DiffOptions,
  type DiffPage,
  type LeaseHolder,
  type LeaseOutcome,
  type LedgerFilter,
  type LedgerNode,
  type LedgerRow,
  type PartitionWrite,
  type PinnedInput,
  type Published,
  type QueryOptions,
  type PublishedBatch,
  type RestoreOutcome,
  type RestoreRequest,
  type RollbackFilter,
  type RollbackRecord,
  type Row,
  type SignatureClaim,
  type StagedOutcome,
  type StagedRun,
  type DiscardOptions,
  type VersionRef,
  type Warehouse,
} from './types.ts';

/** A version's summary: its checksum covers `columns`, each read as its `kinds` says. */
type Summary = { rowCount: number; checksum: string; schemaHash: string; columns: string[]; kinds: ValueKind[] };
type Raw = Record<string, unknown>;

/** `WHERE a = :a AND ...` for the filters that are set. */
function whereEqual(filters: Record<string, unknown>, prefix = ''): string {
  const set = Object.keys(filters).filter((c) => filters[c] !== undefined);
  return set.length > 0 ? `WHERE ${set.map((c) => `${prefix}${c} = :${c}`).join(' AND ')}` : '';
}

/**
 * Refuses a partition whose batch stopped waiting for it (`commitBy`): before its SQL runs, and
 * after, as a statement that is running cannot be stopped.
 */
function assertInTime(write: PartitionWrite): void {
  if (write.commitBy === undefined || Date.now() <= write.commitBy) return;
  throw new CommitDeadlineError('the partition\'s work ended after its batch stopped waiting for it (its run window closed or its timeout passed): nothing of it is committed');
}

/** The deadline a partition's spec SQL runs under: its `commitBy`. */
const deadlineOf = (write: PartitionWrite): { deadline?: number } => (write.commitBy === undefined ? {} : { deadline: write.commitBy });

/** Publishes waiting for their turn, committed together (`Dialect.groupsPublishes`). */
type GroupedPublish = { writes: readonly PartitionWrite[]; answer: (batch: PublishedBatch) => void };
type PublishGroup = { requests: GroupedPublish[]; partitions: number; rows: number };
/** A group takes no more partitions or rows than this; a publish that would pass them starts the next group. */
const GROUP_MAX_PARTITIONS = 100;
const GROUP_MAX_ROWS = 50_000;

/** A partition's publish: what it answers, and the ledger row it leaves to write (none when it found its version published already). */
type PublishOutcome = { outcome: Published | { failed: string }; row?: LedgerValues };

/** A ledger row waiting for its batch's INSERT (`publishEach`), with the write it records. */
type PendingRow = { write: PartitionWrite; values: LedgerValues };

/**
 * Whether a partition's publish may read a pending ledger row before it writes anything: the
 * rows of its own partition (this run's version, the newest), and, where an engine keeps a
 * partition's files by a name that ignores case (the lake), of a partition whose key differs
 * only in case; or, staged, its upstream's rows (the run's staged versions it pins).
 */
function readsPending(write: PartitionWrite, pending: PendingRow): boolean {
  const other = pending.write;
  if (write.inputs.some((input) => input.node === other.node)) return true;
  return other.node === write.node && other.partition.toLowerCase() === write.partition.toLowerCase();
}

/**
 * A write of a batch threw, after those before it, in a way that ended the whole transaction
 * (the engine rolled it back, or will not commit it): nothing of the batch is kept.
 */
class BatchEnded extends Error {
  constructor(
    readonly index: number,
    readonly error: Error,
  ) {
    super(error.message);
  }
}

/** A batch as `publishEach` ends it: `apartFrom`, the write it stopped before, to publish in a transaction after it (`PublishApartError`). */
type EachBatch = PublishedBatch & { apartFrom?: number };

/** A check's errors, thrown inside the staging savepoint so that the new rows roll back. */
class ChecksFailed extends Error {
  constructor(readonly outcome: CheckOutcome) {
    super('checks failed');
  }
}

export class SqlWarehouse implements Warehouse {
  readonly kind: Warehouse['kind'];
  readonly location: string;
  private setup: Promise<void> | undefined;
  /** The transactions of a dialect that runs them one at a time, in turn. */
  private turn: Promise<unknown> = Promise.resolve();
  /** The group of publishes waiting for the turn, still open to more. */
  private gathering: PublishGroup | undefined;
  private id: string | undefined;
  /** Opened for reading only: nothing is set up, and every write is refused (reading.ts). */
  readonly readOnly: boolean;

  /** Where what went wrong without failing a call is told (default `console.warn`). */
  private readonly warn: (message: string) => void;

  constructor(
    protected readonly dialect: Dialect,
    options: { readOnly?: boolean; warn?: (message: string) => void } = {},
  ) {
    this.kind = dialect.kind;
    this.location = dialect.location;
    this.readOnly = options.readOnly === true;
    this.warn = options.warn ?? ((message) => console.warn(message));
  }

  private t(name: Parameters<Dialect['table']>[0]): string {
    return this.dialect.table(name);
  }

  /** Creates backfill's tables once (adding the columns of newer releases) and its identity; for a reader, checks that they are there. */
  private ready(): Promise<void> {
    if (this.readOnly) return this.inspected();
    const d = this.dialect;
    // Names quoted: `at` is a keyword in DuckDB.
    const column = (c: ColumnDef) => `${quoteIdent(c.name)} ${d.columnType(c.type)}${c.notNull ? ' NOT NULL' : ''}${c.default !== undefined ? ` DEFAULT ${c.default}` : ''}`;
    this.setup ??= d.transaction(
      async (s) => {
        await d.prepare?.(s);
        for (const table of TABLES) {
          const have = new Set(await d.tableColumns(s, table.name));
          // A new table gets every column at once; an older one the columns of newer releases.
          const columns = have.size === 0 ? [...table.columns, ...(table.additions ?? [])] : table.columns;
          await s.run(`CREATE TABLE IF NOT EXISTS ${d.table(table.name)} (${columns.map(column).join(', ')}, PRIMARY KEY (${table.primaryKey.join(', ')}))`);
          for (const added of table.additions ?? []) if (have.size > 0 && !have.has(added.name)) await s.run(`ALTER TABLE ${d.table(table.name)} ADD COLUMN ${column(added)}`);
          for (const index of table.indexes ?? []) await s.run(d.indexDdl(index.name, table.name, index.columns));
        }
        await s.run(`INSERT INTO ${d.table('meta')} (key, value) VALUES ('identity', :id) ON CONFLICT (key) DO NOTHING`, { id: randomUUID() });
      },
      { lock: 'backfill:setup' },
    );
    this.setup.catch(() => (this.setup = undefined));
    return this.setup;
  }

  /** A reader's setup: finds backfill's tables as they are, in a read-only transaction, and refuses a ledger it cannot read. */
  private inspected(): Promise<void> {
    const d = this.dialect;
    this.setup ??= d.transaction(
      async (s) => {
        const found = new Map<InternalTable, string[]>();
        for (const table of TABLES) found.set(table.name, await d.tableColumns(s, table.name));
        const layout = ledgerLayout(found);
        if (layout) throw unreadableLedger(this.location, layout);
      },
      { readOnly: true },
    );
    this.setup.catch(() => (this.setup = undefined));
    return this.setup;
  }

  /** A transaction once the tables exist; in turn with the others where the dialect runs one at a time. */
  private tx<T>(work: (s: Session) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const run = () => this.txNow(work, options);
    return this.dialect.concurrent ? run() : this.inTurn(run);
  }

  /** A transaction now (the caller has the turn, or the dialect needs none). */
  private async txNow<T>(work: (s: Session) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (this.readOnly && !options.readOnly) throw readOnlyWarehouse(this.location);
    await this.ready();
    return this.dialect.transaction(work, options);
  }

  private inTurn<T>(run: () => Promise<T>): Promise<T> {
    const result = this.turn.then(run, run);
    this.turn = result.catch(() => undefined);
    return result;
  }

  private read<T>(work: (s: Session) => Promise<T>): Promise<T> {
    return this.tx(work, { readOnly: true });
  }

  async lineageDataset(node: string): Promise<DatasetFacts | null> {
    const facts = this.dialect.lineageDataset?.bind(this.dialect);
    return facts ? this.read((s) => facts(s, node)) : null;
  }

  async identity(): Promise<string> {
    this.id ??= await this.read(async (s) => (await s.all<{ value: string }>(`SELECT value FROM ${this.t('meta')} WHERE key = 'identity'`))[0]!.value);
    return this.id;
  }

  pin(inputs: PartitionInput[], options: { runKey?: string } = {}): Promise<PinnedInput[]> {
    return this.read((s) => this.pinWith(s, inputs, options.runKey));
  }

  /** The published versions `inputs` cover; with `runKey`, the versions that run staged win (see `Warehouse.pin`). */
  private async pinWith(s: Session, inputs: readonly PartitionInput[], runKey?: string): Promise<PinnedInput[]> {
    const pinned: PinnedInput[] = [];
    for (const input of inputs) {
      const { node, keys, all } = input;
      // Time keys of one grain sort in time order, so a range is a BETWEEN; static keys are listed.
      const where = all
        ? ''
        : keys
          ? ` AND partition IN (SELECT j.value ->> 0 FROM ${this.dialect.jsonEach(':keys')} j)`
          : ' AND partition BETWEEN :from AND :to';
      const params = all ? {} : keys ? { keys: JSON.stringify(keys.map((k) => [k])) } : { from: input.from, to: input.to };
      const rows = await s.all<{ partition: string; version: number }>(`SELECT partition, version FROM ${this.t('partitions')} WHERE node = :node${where}`, { node, ...params });
      let versions: Array<[string, number]> = rows.map((r) => [r.partition, Number(r.version)]);
      if (runKey !== undefined) {
        const staged = await stagedVersions(s, this.t('ledger'), node, where, params, runKey);
        if (staged.size > 0) {
          const merged = new Map(versions);
          for (const [partition, version] of staged) merged.set(partition, version);
          versions = [...merged];
        }
      }
      pinned.push({ ...input, versions });
    }
    return pinned;
  }

  /** Loads the pinned versions into the scope table that scoped reads join. */
  private async fillScope(s: Session, pinned: readonly PinnedInput[]): Promise<void> {
    // A session that reads pinned versions directly (`pinnedRows`) joins no scope table.
    if (s.pinnedRows) return;
    const d = this.dialect;
    await s.run(`DELETE FROM ${d.scopeTable}`);
    for (const input of pinned) {
      if (input.versions.length === 0) continue;
      await s.run(
        `INSERT INTO ${d.scopeTable} (node, partition, version) SELECT :node, j.value ->> 0, CAST(j.value ->> 1 AS INTEGER) FROM ${d.jsonEach(':versions')} j WHERE true ON CONFLICT DO NOTHING`,
        { node: input.node, versions: JSON.stringify(input.versions) },
      );
    }
  }

  /** The relations that shadow the upstream datasets, by their plain names, inside a partition. */
  private async relations(s: Session, pinned: readonly PinnedInput[]): Promise<ScopedRelation[]> {
    const d = this.dialect;
    const relations: ScopedRelation[] = [];
    const versions = new Map<string, Array<readonly [string, number]>>();
    for (const input of pinned) {
      versions.set(input.node, [...(versions.get(input.node) ?? []), ...input.versions]);
      if (relations.some((r) => r.name === input.node)) continue;
      const columns = await s.columns(input.node);
      // An upstream dataset that was never written has no table to shadow: the SQL then fails naming it.
      if (columns) relations.push({ name: input.node, table: d.versionsTable(input.node), columns, scopeTable: d.scopeTable });
    }
    if (s.pinnedRows) {
      for (const relation of relations) relation.rows = await s.pinnedRows(relation.name, versions.get(relation.name) ?? [], relation.columns);
    }
    return relations;
  }

  async query(sql: string, bindings: Bindings = {}, scope?: PinnedInput[], options: QueryOptions = {}): Promise<Row[]> {
    const deadline = options.deadline === undefined ? {} : { deadline: options.deadline };
    return this.read(async (s) => {
      let relations: ScopedRelation[] | undefined;
      if (scope) {
        await this.fillScope(s, scope);
        relations = await this.relations(s, scope);
      }
      return (await s.spec({ sql, bindings, ...(relations ? { scope: relations } : {}), ...deadline })).rows();
    });
  }

  /**
   * The version this run published or staged of the partition (a run writes at most one that
   * passed its checks); with `made`, what making it took and cost too.
   */
  private async publishedRow(s: Session, node: string, partition: string, runKey: string, made = false): Promise<Published | null> {
    const [row] = await s.all<Raw>(
      `SELECT version, previous_version, row_count, checksum, schema_hash, warnings, status${made ? ', duration_ms, cost' : ''} FROM ${this.t('ledger')}
       WHERE node = :node AND partition = :partition AND run_key = :run_key AND status IN ('published', 'staged') ORDER BY version DESC`,
      { node, partition, run_key: runKey },
    );
    if (!row) return null;
    return made ? { ...publishedOf(this.dialect.codec, row), ...madeOf(row) } : publishedOf(this.dialect.codec, row);
  }

  publishedBy(node: string, partition: string, runKey: string): Promise<Published | null> {
    return this.read((s) => this.publishedRow(s, node, partition, runKey, true));
  }

  async publish(write: PartitionWrite): Promise<Published> {
    const { published, failed } = await this.publishMany([write]);
    if (failed) throw failed.error;
    return published[0]!;
  }

  /**
   * Publishes the partitions in turn in one transaction: one commit for all of them. Each
   * partition's publish is atomic on its own (a savepoint around it): the first that fails
   * keeps what its checks recorded and ends the batch; those before it are committed, and
   * nothing of those after it is written. A failure that ends the whole transaction keeps none:
   * SQLite's full disk fails the batch at index 0; on an engine whose session says the
   * transaction `ended` (DuckDB at any error while a statement runs) the partitions before the
   * one that failed are published again in a transaction of their own, and it fails alone. The
   * ledger rows of the partitions it keeps (one that failed its checks included) go in one
   * INSERT before the commit.
   */
  async publishMany(writes: readonly PartitionWrite[]): Promise<PublishedBatch> {
    writes.forEach((w) => (assertDataset(w.node), assertCost(w)));
    if (writes.length === 0) return { published: [] };
    if (this.dialect.groupsPublishes && !this.dialect.concurrent) return this.grouped(writes);
    // The publish ends when its partitions' attempt does (their batch's commitBy): not waiting on for ever.
    const deadlines = writes.flatMap((w) => (w.commitBy === undefined ? [] : [w.commitBy]));
    const options = deadlines.length > 0 ? { deadline: Math.min(...deadlines) } : {};
    return this.publishAlone(writes, (work) => this.tx(work, options));
  }

  /**
   * A publish that waits for its turn joins the group of those waiting with it: when the turn
   * comes, the group commits in one transaction (a dialect with `groupsPublishes`, whose
   * transactions run one at a time and cost most in their commit). Each publish in it reads
   * what those before it wrote, as it would have in a transaction after theirs, and is answered
   * as it would have been alone: should any write of the group throw (rather than fail its
   * checks, which its own savepoint contains), the group's transaction rolls back and each
   * publish runs again alone, in a transaction of its own. A group whose transaction committed
   * is answered with what it committed, whatever failed after the commit.
   */
  private grouped(writes: readonly PartitionWrite[]): Promise<PublishedBatch> {
    const rows = writes.reduce((n, w) => n + w.data.rows.length, 0);
    let group = this.gathering;
    if (!group || group.partitions + writes.length > GROUP_MAX_PARTITIONS || group.rows + rows > GROUP_MAX_ROWS) {
      const opened: PublishGroup = { requests: [], partitions: 0, rows: 0 };
      this.gathering = group = opened;
      void this.inTurn(async () => {
        if (this.gathering === opened) this.gathering = undefined;
        await this.publishGroup(opened.requests).catch((error: unknown) => {
          // Not expected (each publish's failure is its answer), but no publish is left waiting.
          const failed = { index: 0, error: error instanceof Error ? error : new Error(String(error)) };
          for (const r of opened.requests) r.answer({ published: [], failed });
        });
      });
    }
    group.partitions += writes.length;
    group.rows += rows;
    return new Promise((answer) => group.requests.push({ writes, answer }));
  }

  private async publishGroup(requests: readonly GroupedPublish[]): Promise<void> {
    if (requests.length > 1) {
      // Only a group that committed nothing runs again apart: one that committed is answered with what it committed.
      const outcomes = await this.committed<PublishedBatch[]>(
        requests.flatMap((r) => r.writes),
        (work) => this.txNow(work),
        async (s) => {
          const batches: PublishedBatch[] = [];
          for (const { writes } of requests) batches.push(await this.publishEach(s, writes, { grouped: true }));
          return batches;
        },
      ).catch(() => undefined);
      if (outcomes) return requests.forEach((r, i) => r.answer(outcomes[i]!));
    }
    for (const r of requests) r.answer(await this.publishAlone(r.writes, (work) => this.txNow(work)));
  }

  /**
   * `work`'s result once its transaction committed, even where the engine's work after the commit
   * failed (`AfterCommitError`, the lake's file moves, which it finishes later): the commit is
   * what happened, and doing the work again would publish what is published (answered
   * `alreadyPublished`, its check warnings unsaid) and record a failed check a second time.
   */
  private async committed<T>(writes: readonly PartitionWrite[], tx: (work: (s: Session) => Promise<T>) => Promise<T>, work: (s: Session) => Promise<T>): Promise<T> {
    let done: { result: T } | undefined;
    try {
      return await tx(async (s) => {
        const result = await work(s);
        done = { result };
        return result;
      });
    } catch (error) {
      if (error instanceof AfterCommitError && done) {
        const partitions = writes.map((w) => `${w.node} ${w.partition}`).join(', ');
        this.warn(`${this.location}: the publish of ${partitions} committed, but ${error.failure.message}; the warehouse's next write finishes it (until then its published files may not be the ledger's)`);
        return done.result;
      }
      throw error;
    }
  }

  /**
   * The writes published in one transaction of their own: a failure before any is committed is
   * the batch's. One of a later write that ended the whole transaction is still that write's:
   * those before it are published again, in a transaction of their own, and the batch fails at it.
   */
  private async publishAlone(writes: readonly PartitionWrite[], tx: <T>(work: (s: Session) => Promise<T>) => Promise<T>): Promise<PublishedBatch> {
    try {
      const { apartFrom, ...batch } = await this.committed<EachBatch>(writes, tx, (s) => this.publishEach(s, writes, { grouped: false }));
      if (apartFrom === undefined) return batch;
      // The writes before `apartFrom` are committed as they were staged; the rest go in a transaction of their own.
      const rest = await this.publishAlone(writes.slice(apartFrom), tx);
      return { published: [...batch.published, ...rest.published], ...(rest.failed ? { failed: { index: apartFrom + rest.failed.index, error: rest.failed.error } } : {}) };
    } catch (error) {
      if (error instanceof BatchEnded) {
        const before = await this.publishAlone(writes.slice(0, error.index), tx);
        return before.failed ? before : { published: before.published, failed: { index: error.index, error: error.error } };
      }
      return { published: [], failed: { index: 0, error: error instanceof Error ? error : new Error(String(error)) } };
    }
  }

  /**
   * Publishes `writes` in turn in the session's transaction, stopping at the first that fails.
   * Alone in its transaction, the batch throws a failure of its first write (the transaction
   * rolls back), keeps the writes before a later one that throws, and a single write needs no
   * savepoint of its own; in a group, any write that throws throws (the group runs again apart).
   * A failure that ended the whole transaction (SQLite rolls it back itself on a full disk)
   * throws too: the writes before it are gone with it. A write the session could stage only by
   * converting the rows staged before it (`PublishApartError`) ends the batch before it
   * (`apartFrom`), which `publishAlone` goes on with in a new transaction.
   */
  private async publishEach(s: Session, writes: readonly PartitionWrite[], { grouped }: { grouped: boolean }): Promise<EachBatch> {
    const published: Published[] = [];
    // The ledger rows of the partitions published so far, written together when the batch ends
    // (one statement, not one a partition): a partition's row is added only once its savepoint
    // is released, so the row of one that threw is never among them.
    const pending: PendingRow[] = [];
    const ends = async (batch: EachBatch): Promise<EachBatch> => {
      await this.writeLedger(s, pending);
      return batch;
    };
    for (const [index, write] of writes.entries()) {
      if (pending.some((row) => readsPending(write, row))) await this.writeLedger(s, pending);
      let done: PublishOutcome;
      try {
        done = writes.length === 1 || grouped ? await this.publishOne(s, write) : await s.savepoint(() => this.publishOne(s, write));
      } catch (error) {
        if (index === 0 || grouped) throw error;
        // Its savepoint undid what it staged: those before it commit, and it is published after them.
        if (error instanceof PublishApartError && s.ended !== true) return ends({ published, apartFrom: index });
        const failed = error instanceof Error ? error : new Error(String(error));
        if (s.ended === true) throw new BatchEnded(index, failed);
        return ends({ published, failed: { index, error: failed } });
      }
      if (done.row) pending.push({ write, values: done.row });
      const { outcome } = done;
      // The partition is named by the activity and the failure details: kept out of the message, failures of one cause group together.
      if ('failed' in outcome) return ends({ published, failed: { index, error: new CheckFailedError(`checks failed: ${outcome.failed}`) } });
      published.push(outcome);
    }
    return ends({ published });
  }

  /**
   * Writes the pending ledger rows, and forgets them. Should their INSERT fail (no partition's
   * doing: the rows are the engine's own), the transaction fails with it and keeps none.
   */
  private async writeLedger(s: Session, pending: PendingRow[]): Promise<void> {
    const rows = pending.splice(0).map((row) => row.values);
    for (const { sql, params } of ledgerInserts(this.t('ledger'), rows)) await s.run(sql, params);
  }

  /**
   * One partition's publish, in a transaction of its own or in a batch's: what it needs to
   * know first (one round trip where the dialect has `startPublish`), its rows, checks and
   * summary (one more), then the pointer, which goes with the commit. Its ledger row is left to
   * the caller to write: `publishEach` writes a batch's together.
   */
  private async publishOne(s: Session, write: PartitionWrite): Promise<PublishOutcome> {
    const { node, partition } = write;
    const began = Date.now();
    const start = await this.startPublish(s, write);
    if (start.lease && start.lease.runKey !== write.runKey) {
      throw new StaleRunError(
        `dataset ${node} is leased to run ${start.lease.runKey} of backfill '${start.lease.backfillId}', not to this run (${write.runKey} of '${write.backfillId}'): ` +
          'this attempt belongs to a run that no longer writes the dataset, so it publishes nothing',
      );
    }
    if (start.already) {
      await s.run(`UPDATE ${this.t('ledger')} SET executions = executions + 1 WHERE node = :node AND partition = :partition AND version = :version`, {
        node,
        partition,
        version: start.already.version,
      });
      // Staged by this run, now written directly (the run went on without staging): it is published now.
      if (start.already.staged && !write.stage) return { outcome: { ...(await this.promote(s, node, partition, start.already)), alreadyPublished: true } };
      return { outcome: { ...start.already, alreadyPublished: true } };
    }
    const version = start.latest + 1;
    const previousVersion = start.current;
    assertInTime(write);
    const scope = await this.relations(s, start.pinned);
    let fields: LedgerFields;
    try {
      fields = await this.stageAndCheck(s, write, version, previousVersion, scope);
    } catch (error) {
      if (!(error instanceof ChecksFailed)) throw error;
      // The new rows went; the failure is recorded under the version it was given.
      fields = { failed: error.outcome.errors.join('; '), warnings: error.outcome.warnings };
    }
    assertInTime(write);
    if (!('failed' in fields) && !write.stage) await this.point(s, node, partition, version, previousVersion);
    if ('failed' in fields && write.recordFailure === false) return { outcome: { failed: fields.failed } };
    const row = ledgerValues(this.dialect.codec, write, version, fields, inputVersions(start.pinned), began);
    if ('failed' in fields) return { outcome: { failed: fields.failed }, row };
    const { columns: _columns, kinds: _kinds, ...published } = fields;
    return { outcome: { version, ...published, ...(write.stage ? { staged: true } : {}) }, row };
  }

  /** What a publish needs to know before it writes: the dialect's own `startPublish`, or these statements. */
  private async startPublish(s: Session, write: PartitionWrite): Promise<PublishStart> {
    const { node, partition, runKey } = write;
    const request: PublishRequest = { node, partition, runKey, inputs: write.inputs, ...(write.pinned ? { pinned: write.pinned } : {}) };
    // A staged write pins its run's staged upstream versions and finds its own staged ones: the statements below do that.
    if (s.startPublish && !write.stage) return s.startPublish(request);
    const key = { node, partition };
    // Attempts of one partition (a retry and a worker presumed dead) take turns; other partitions run in parallel.
    await s.lock(partitionLock(node, partition));
    const [held] = await s.all<Raw>(`SELECT backfill_id, run_key FROM ${this.t('leases')} WHERE node = :node${this.dialect.forShare}`, { node });
    const lease = held ? { backfillId: String(held.backfill_id), runKey: String(held.run_key) } : null;
    const skipped = { latest: 0, current: null, pinned: [] };
    if (lease && lease.runKey !== runKey) return { lease, already: null, ...skipped };
    const already = await this.publishedRow(s, node, partition, runKey);
    if (already) return { lease, already, ...skipped };
    const [newest] = await s.all<{ v: number }>(`SELECT COALESCE(MAX(version), 0) AS v FROM ${this.t('ledger')} WHERE node = :node AND partition = :partition`, key);
    const latest = { v: Math.max(Number(newest!.v), (await s.versionFloor?.(node, partition)) ?? 0) };
    const [current] = await s.all<{ version: number }>(`SELECT version FROM ${this.t('partitions')} WHERE node = :node AND partition = :partition`, key);
    const pinned = write.pinned ?? (await this.pinWith(s, write.inputs, write.stage ? runKey : undefined));
    await this.fillScope(s, pinned);
    return { lease, already: null, latest: Number(latest!.v), current: current ? Number(current.version) : null, pinned };
  }

  /**
   * The new version's rows, summarized and checked, in a savepoint when it has checks: when one
   * fails they roll back (without checks, anything that fails fails the whole publish).
   */
  private stageAndCheck(s: Session, write: PartitionWrite, version: number, previousVersion: number | null, scope: ScopedRelation[]): Promise<LedgerFields> {
    const work = async (): Promise<LedgerFields> => {
      const written = await this.stage(s, write, version, scope);
      const summary = await this.summarize(s, write.node, write.partition, version, written);
      const checked = await this.runChecks(s, write, version, previousVersion, summary.rowCount, scope);
      if (checked.errors.length > 0) throw new ChecksFailed(checked);
      return { ...summary, previousVersion, warnings: checked.warnings };
    };
    return write.checks.length > 0 ? s.savepoint(work) : work();
  }

  /** Publishes one version this run staged: its pointer moves, its status becomes published. */
  private async promote(s: Session, node: string, partition: string, staged: Published): Promise<Published> {
    const [current] = await s.all<{ version: number }>(`SELECT version FROM ${this.t('partitions')} WHERE node = :node AND partition = :partition`, { node, partition });
    const previousVersion = current ? Number(current.version) : null;
    await s.run(`UPDATE ${this.t('ledger')} SET status = 'published', previous_version = :previous WHERE node = :node AND partition = :partition AND version = :version`, {
      node,
      partition,
      version: staged.version,
      previous: previousVersion,
    });
    await this.point(s, node, partition, staged.version, previousVersion);
    const { staged: _staged, ...rest } = staged;
    return { ...rest, previousVersion };
  }

  /**
   * Moves the published pointer. With `current`, the version published now as read under the
   * partition's lock, it is a plain insert or update (an upsert costs some engines, DuckDB among
   * them, several times more).
   */
  private async point(s: Session, node: string, partition: string, version: number | null, current?: number | null): Promise<void> {
    const at = new Date().toISOString();
    if (version === null) await s.run(`DELETE FROM ${this.t('partitions')} WHERE node = :node AND partition = :partition`, { node, partition });
    else if (current === null) {
      await s.run(`INSERT INTO ${this.t('partitions')} (node, partition, version, published_at) VALUES (:node, :partition, :version, :at)`, { node, partition, version, at });
    } else if (current !== undefined) {
      await s.run(`UPDATE ${this.t('partitions')} SET version = :version, published_at = :at WHERE node = :node AND partition = :partition`, { node, partition, version, at });
    } else {
      await s.run(
        `INSERT INTO ${this.t('partitions')} (node, partition, version, published_at) VALUES (:node, :partition, :version, :at)
         ON CONFLICT (node, partition) DO UPDATE SET version = excluded.version, published_at = excluded.published_at`,
        { node, partition, version, at },
      );
    }
    await s.pointed?.(node, partition, version);
  }

  /** The rows of one version, to read FROM: the dialect's own relation, or its versions table filtered. */
  private async versionFrom(s: Session, node: string, partition: string, version: number): Promise<{ from: string; params: Record<string, unknown> }> {
    if (s.versionRows) return { from: `${await s.versionRows(node, partition, version)} AS v`, params: {} };
    return { from: `${this.dialect.versionsTable(node)} WHERE ${PARTITION_COLUMN} = :partition AND ${VERSION_COLUMN} = :version`, params: { partition, version } };
  }

  /** Writes the version's rows; returns the names of the columns it has. */
  private async stage(s: Session, write: PartitionWrite, version: number, scope: ScopedRelation[]): Promise<string[]> {
    const d = this.dialect;
    const { node, partition, data } = write;
    const merge = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : d.widen(a, b));
    const types = new Map<string, string | null>();
    for (const row of data.rows) for (const [name, value] of Object.entries(row)) types.set(name, merge(types.get(name) ?? null, d.typeOf(value)));
    const rowColumns = [...types.keys()];
    // Refused before any SQL runs: the rows' columns, and each statement's as soon as it is prepared.
    assertUserColumns(rowColumns);
    const selects: Array<{ statement: SpecStatement; columns: Wanted[] }> = [];
    for (const { sql, bindings } of data.selects) {
      assertNamedQuotes(sql);
      const statement = await s.spec({ sql, bindings, scope, ...deadlineOf(write) });
      const columns = await statement.columns();
      assertUserColumns(columns.map((c) => c.name));
      selects.push({ statement, columns });
    }
    for (const select of selects) for (const c of select.columns) types.set(c.name, types.has(c.name) ? merge(types.get(c.name) ?? null, c.type) : c.type);
    const wanted = [...types].map(([name, type]) => ({ name, type }));
    assertUserColumns(types.keys());
    assertNoCaseTwin(node, (await s.columns(node)) ?? [], types.keys());
    await s.ensureDataset(node, wanted, write.adopt === true);
    await s.newVersion?.(node, partition, version);
    const table = d.versionsTable(node);
    for (const select of selects) await select.statement.insertInto(table, select.columns.map((c) => c.name), partition, version);
    if (data.rows.length > 0) await s.insertRows(table, partition, version, rowColumns, data.rows.map((row) => rowColumns.map((c) => d.value(storable(row[c])))));
    return [...types.keys()];
  }

  /**
   * Row count, checksum and schema hash of one version, over the columns that version wrote,
   * each read as the engine types it now, or as `recorded` says (a restore: the kinds its
   * publish read, which a later widening of a column's type must not change).
   */
  private async summarize(s: Session, node: string, partition: string, version: number, written: readonly string[], recorded?: readonly ValueKind[]): Promise<Summary> {
    const columns = [...written].sort();
    const list = columns.length > 0 ? columns.map(quoteIdent).join(', ') : 'NULL';
    let hasher: RowHasher | undefined;
    let read: readonly ValueKind[] = [];
    const { from, params } = await this.versionFrom(s, node, partition, version);
    await s.stream(`SELECT ${list} FROM ${from}`, params, (rows, kinds: readonly ValueKind[]) => {
      if (!hasher) {
        read = recorded ?? kinds;
        hasher = new RowHasher(columns, read);
      }
      for (const row of rows) hasher.add(columns.length > 0 ? row : []);
    });
    hasher ??= new RowHasher(columns);
    return { rowCount: hasher.rowCount, checksum: hasher.checksum(), schemaHash: schemaHash(columns), columns, kinds: columns.length > 0 ? [...read] : [] };
  }

  /** The rows of one stored version, as a SELECT checks can read. */
  private versionSelect(s: Session, node: string, partition: string, version: number): Promise<string> {
    return versionSelect(s, this.dialect, node, partition, version);
  }

  private async runChecks(s: Session, write: PartitionWrite, version: number, previous: number | null, rowCount: number, scope: ScopedRelation[]): Promise<CheckOutcome> {
    if (write.checks.length === 0) return { errors: [], warnings: [] };
    const staged = await this.versionSelect(s, write.node, write.partition, version);
    const own = (await s.columns(write.node)) ?? [];
    const columns = [PARTITION_COLUMN, VERSION_COLUMN, ...own];
    const given = [
      { name: THIS, select: staged, columns },
      // Without a published version `{{previous}}` is empty, with the new version's columns.
      { name: PREVIOUS, select: previous === null ? `SELECT * FROM (${staged}) AS s WHERE 1 = 0` : await this.versionSelect(s, write.node, write.partition, previous), columns },
    ];
    return checkAsync(write.checks, { rowCount, hasPrevious: previous !== null, columns: own }, async ({ sql, aggregate }) => {
      try {
        return await (await s.spec({ sql, bindings: {}, scope, given, ...deadlineOf(write) })).measure(aggregate);
      } catch (error) {
        // SQL that fails fails its check; SQL refused before it ran fails the publish, as does
        // SQL whose failure ended the transaction (DuckDB's at any error while a statement runs):
        // the failed check could not be recorded in it.
        if (error instanceof SqlError && !(error instanceof SqlRefusedError) && s.ended === true) {
          throw new SqlError(
            `a check's SQL failed while it ran (${error.message}), and the engine ended the publish's transaction with it, so nothing of ${write.node} ${write.partition} is written ` +
              "(a lake's DuckDB does at any such error): fix the check's SQL, or guard the failing expression (TRY_CAST instead of CAST, for one)",
          );
        }
        if (error instanceof SqlError && !(error instanceof SqlRefusedError)) return { error: error.message };
        throw error;
      }
    }, { together: s.pipelines === true });
  }

  private ledgerSelect(join = ''): string {
    return `SELECT l.*, (p.version IS NOT NULL) AS current FROM ${join || this.t('ledger') + ' l'}
      LEFT JOIN ${this.t('partitions')} p ON p.node = l.node AND p.partition = l.partition AND p.version = l.version`;
  }

  async ledger(filter: LedgerFilter): Promise<LedgerRow[]> {
    const params = { backfill_id: filter.backfillId, node: filter.node, partition: filter.partition };
    const rows = await this.read((s) => s.all<Raw>(`${this.ledgerSelect()} ${whereEqual(params, 'l.')} ORDER BY l.node, l.partition, l.version DESC`, params));
    return rows.map((r) => ledgerRow(this.dialect.codec, r));
  }

  async ledgerNodes(): Promise<LedgerNode[]> {
    const rows = await this.read((s) =>
      s.all<{ node: string; partitions: number | string | bigint; first_key: string; last_key: string }>(
        `SELECT node, COUNT(DISTINCT partition) AS partitions, MIN(partition) AS first_key, MAX(partition) AS last_key FROM ${this.t('ledger')} GROUP BY node ORDER BY node`,
      ),
    );
    return rows.map((r) => ({ node: r.node, partitions: Number(r.partitions), first: r.first_key, last: r.last_key }));
  }

  async publishedRows(node: string): Promise<LedgerRow[]> {
    const rows = await this.read((s) => s.all<Raw>(`${this.ledgerSelect()} WHERE l.node = :node AND p.version IS NOT NULL ORDER BY l.partition`, { node }));
    return rows.map((r) => ledgerRow(this.dialect.codec, r));
  }

  async ledgerVersions(node: string, versions: readonly VersionRef[]): Promise<LedgerRow[]> {
    if (versions.length === 0) return [];
    // One statement for any number of versions: the pairs travel as one JSON array, which
    // drives the join (CROSS JOIN keeps that order), so each pair is one primary-key lookup.
    // `->>` in parentheses: DuckDB binds it more loosely than `=`.
    const pairs = `${this.dialect.jsonEach(':pairs')} j CROSS JOIN ${this.t('ledger')} l`;
    const rows = await this.read((s) =>
      s.all<Raw>(
        `${this.ledgerSelect(pairs)} WHERE l.node = :node AND l.partition = (j.value ->> 0) AND l.version = CAST(j.value ->> 1 AS INTEGER) ORDER BY l.partition, l.version DESC`,
        { node, pairs: JSON.stringify(versions) },
      ),
    );
    return rows.map((r) => ledgerRow(this.dialect.codec, r));
  }

  async changesBy(backfillId: string, options: ChangesOptions = {}): Promise<ChangesPage> {
    const page = await this.changesPage(backfillId, options);
    // Where the backfill's version is no longer the published one: on top of it, or taken off it by a rollback.
    const moved = page.changes.filter((c) => c.currentVersion !== c.version);
    if (moved.length === 0) return page;
    const standings = await this.read((s) => this.standings(s, moved.map((c) => ({ node: c.node, partition: c.partition, of: c.version, found: c.currentVersion }))));
    const changes = page.changes.map((c) => {
      const standing = standings.get(`${c.node}\u0000${c.partition}`);
      return standing ? { ...c, ...standing } : c;
    });
    return { ...page, changes };
  }

  /**
   * Where each backfill version `of` stands under its partition's published version `found`
   * (core/rollback.ts `versionStanding`), from the partitions' ledger and rollback audit.
   */
  private async standings(s: Session, targets: ReadonlyArray<{ node: string; partition: string; of: number; found: number | null }>): Promise<Map<string, { onTop: boolean; undoneBy: UndoneBy | null }>> {
    const tables = { ledger: this.t('ledger'), pointers: this.t('partitions'), rollbacks: this.t('rollbacks') };
    const pairs = JSON.stringify(targets.map((t) => [t.node, t.partition]));
    const key = (node: string, partition: string) => `${node}\u0000${partition}`;
    const links = new Map<string, Map<number, VersionLink>>();
    for (const l of await s.all<LinkRow>(linksQuery(tables, this.dialect.jsonEach(':pairs')), { pairs })) {
      const versions = links.get(key(l.node, l.partition)) ?? links.set(key(l.node, l.partition), new Map()).get(key(l.node, l.partition))!;
      versions.set(Number(l.version), { previousVersion: l.previousVersion === null ? null : Number(l.previousVersion), checksum: l.checksum, backfillId: l.backfillId, rolledBack: Number(l.rolledBack) === 1 });
    }
    const moves = new Map<string, PointerMove[]>();
    const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    for (const m of await s.all<MoveRow>(movesQuery(tables, this.dialect.jsonEach(':pairs')), { pairs })) {
      const list = moves.get(key(m.node, m.partition)) ?? moves.set(key(m.node, m.partition), []).get(key(m.node, m.partition))!;
      list.push({ rollbackId: m.rollbackId, backfillId: m.backfillId, fromVersion: n(m.fromVersion), toVersion: n(m.toVersion), forced: this.dialect.codec.fromBool(m.forced), at: this.dialect.codec.fromTime(m.at) });
    }
    const standings = new Map<string, { onTop: boolean; undoneBy: UndoneBy | null }>();
    for (const t of targets) {
      const k = key(t.node, t.partition);
      standings.set(k, versionStanding(t.of, t.found, links.get(k) ?? new Map(), moves.get(k) ?? []));
    }
    return standings;
  }

  /** A page of the backfill's changes, each with its restore target (walked back past rolled-back versions). */
  private async changesPage(backfillId: string, options: ChangesOptions): Promise<ChangesPage> {
    const tables = { ledger: this.t('ledger'), pointers: this.t('partitions'), rollbacks: this.t('rollbacks') };
    const { sql, bindings } = changesQuery(tables, backfillId, options);
    const { walkBack, ...page } = changesFromRows(await this.read((s) => s.all<ChangeRow>(sql, bindings)), pageLimit(options.limit));
    if (walkBack.size === 0) return page;
    // Some targets were rolled back themselves: the published versions of those partitions, to walk further back.
    const pairs = [...walkBack].map((i) => [page.changes[i]!.node, page.changes[i]!.partition]);
    const links = await this.read((s) => s.all<LinkRow>(linksQuery(tables, this.dialect.jsonEach(':pairs')), { pairs: JSON.stringify(pairs) }));
    const byPartition = new Map<string, Map<number, VersionLink>>();
    for (const l of links) {
      const key = `${l.node}\u0000${l.partition}`;
      const versions = byPartition.get(key) ?? byPartition.set(key, new Map()).get(key)!;
      versions.set(Number(l.version), { previousVersion: l.previousVersion === null ? null : Number(l.previousVersion), checksum: l.checksum, backfillId: l.backfillId, rolledBack: Number(l.rolledBack) === 1 });
    }
    const changes = page.changes.map((change, i) => {
      if (!walkBack.has(i)) return change;
      const target = restoreTarget(backfillId, { version: change.previousVersion, checksum: change.previousChecksum }, byPartition.get(`${change.node}\u0000${change.partition}`) ?? new Map());
      return { ...change, previousVersion: target.version, previousChecksum: target.checksum };
    });
    return { changes, next: page.next };
  }

  /** The published version, who published it, and this rollback's earlier restore of the partition. */
  private async restoreState(s: Session, request: RestoreRequest): Promise<RestoreState> {
    const { node, partition } = request;
    const [current] = await s.all<Raw>(
      `SELECT p.version, ${movedBy(this.t('rollbacks'), 'p', 'l.backfill_id')} AS backfill_id FROM ${this.t('partitions')} p
       LEFT JOIN ${this.t('ledger')} l ON l.node = p.node AND l.partition = p.partition AND l.version = p.version
       WHERE p.node = :node AND p.partition = :partition`,
      { node, partition },
    );
    const [recorded] = await s.all<Raw>(
      `SELECT r.from_version, l.backfill_id, r.to_version, r.forced FROM ${this.t('rollbacks')} r
       LEFT JOIN ${this.t('ledger')} l ON l.node = r.node AND l.partition = r.partition AND l.version = r.from_version
       WHERE r.rollback_id = :rollback_id AND r.node = :node AND r.partition = :partition AND r.outcome IS NULL`,
      { rollback_id: request.rollbackId, node, partition },
    );
    const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    const found = n(current?.version);
    const standing = (await this.standings(s, [{ node, partition, of: request.from, found }])).get(`${node}\u0000${partition}`)!;
    return {
      ...standing,
      found,
      foundBackfillId: (current?.backfill_id as string | null | undefined) ?? null,
      recorded: recorded
        ? {
            fromVersion: n(recorded.from_version),
            fromBackfillId: (recorded.backfill_id as string | null) ?? null,
            toVersion: n(recorded.to_version),
            forced: this.dialect.codec.fromBool(recorded.forced),
          }
        : null,
    };
  }

  /** Recomputes the checksum of a stored version as publish did, and compares it with the ledger's. */
  private async verifyVersion(s: Session, node: string, partition: string, version: number): Promise<void> {
    const what = `version ${version} of ${node} ${partition}`;
    const [row] = await s.all<Raw>(
      `SELECT checksum, row_count, schema_hash, version_columns, version_kinds FROM ${this.t('ledger')} WHERE node = :node AND partition = :partition AND version = :version AND status = 'published'`,
      { node, partition, version },
    );
    if (!row) throw new ChecksumMismatchError(`${what} is not a published version in the ledger: there is no checksum to verify it by, so it was not restored`);
    const recorded = row.version_columns === null ? undefined : this.dialect.codec.fromJson<string[]>(row.version_columns);
    const kinds = row.version_kinds === null || row.version_kinds === undefined || !recorded ? undefined : this.dialect.codec.fromJson<ValueKind[]>(row.version_kinds);
    const columns = recorded ?? (await this.columnsFor(s, node, partition, version, row.schema_hash as string));
    if (!columns) {
      throw new ChecksumMismatchError(
        `${what}: cannot tell which columns it wrote (it was published before the ledger recorded them, and no set of columns matches its schema hash), so its checksum cannot be verified and it was not restored`,
      );
    }
    assertSameChecksum(what, { checksum: row.checksum as string, rowCount: Number(row.row_count) }, await this.summarize(s, node, partition, version, columns, kinds));
    await this.assertUnwrittenNull(s, what, node, partition, version, columns);
  }

  /**
   * The checksum covers the columns the version wrote. Every other column of the dataset (one a
   * later version added) held NULL in all of its rows when it was published, and still must:
   * the dataset's view shows those columns too, so a value given to them since would be
   * published again by the restore, unseen by the checksum.
   */
  private async assertUnwrittenNull(s: Session, what: string, node: string, partition: string, version: number, written: readonly string[]): Promise<void> {
    const wrote = new Set(written);
    const others = ((await s.columns(node)) ?? []).filter((c) => !wrote.has(c));
    if (others.length === 0) return;
    const counts = await this.valueCounts(s, node, partition, version, others);
    const filled = others.map((column, i) => ({ column, rows: counts[i]! })).filter((f) => f.rows > 0);
    if (filled.length === 0) return;
    const which = filled.map((f) => `column ${f.column} holds a value in ${f.rows} of its rows`).join(', ');
    throw new ChecksumMismatchError(
      `${what}: ${which}, but the version wrote no such column (its rows held NULL there when it was published): ` +
        'the stored version was changed since, so it was not restored. Find out what changed it before restoring anything there; nothing else of this partition was touched',
    );
  }

  /** The columns a version published before the ledger kept them wrote, from its values and its schema hash. */
  private async columnsFor(s: Session, node: string, partition: string, version: number, expected: string): Promise<string[] | undefined> {
    const names = (await s.columns(node)) ?? [];
    if (names.length === 0) return columnsFromSchemaHash(expected, [], new Set());
    const counts = await this.valueCounts(s, node, partition, version, names);
    return columnsFromSchemaHash(expected, names, new Set(names.filter((_, i) => counts[i]! > 0)));
  }

  /** How many of a version's rows hold a value (not NULL) in each of `columns`, in their order. */
  private async valueCounts(s: Session, node: string, partition: string, version: number, columns: readonly string[]): Promise<number[]> {
    const { from, params } = await this.versionFrom(s, node, partition, version);
    const [counts] = await s.all<Raw>(`SELECT ${columns.map((c, i) => `COUNT(${quoteIdent(c)}) AS c${i}`).join(', ')} FROM ${from}`, params);
    return columns.map((_, i) => Number(counts?.[`c${i}`] ?? 0));
  }

  async restore(request: RestoreRequest): Promise<RestoreOutcome> {
    assertDataset(request.node);
    const { node, partition, to } = request;
    return this.tx(
      async (s) => {
        await this.assertNotLeasedToOther(s, request);
        // Publishes of the partition wait for its lock; a staged publish locks the pointer row itself (publishRun).
        if (this.dialect.forUpdate) await s.all(`SELECT version FROM ${this.t('partitions')} WHERE node = :node AND partition = :partition${this.dialect.forUpdate}`, { node, partition });
        const decision = decideRestore(request, await this.restoreState(s, request));
        if (!decision.record) return decision.outcome;
        if (decision.move) {
          if (to !== null) await this.verifyVersion(s, node, partition, to);
          await this.point(s, node, partition, to);
        }
        // A partition left as it was is recorded too (not in the audit): the backfill's versions there count as rolled back.
        // Decided again by the same rollback, it replaces that record (a move is replayed, and never replaced).
        await s.run(
          `INSERT INTO ${this.t('rollbacks')} (rollback_id, backfill_id, node, partition, from_version, to_version, forced, "at", rolled_back_version, outcome)
           VALUES (:rollback_id, :backfill_id, :node, :partition, :from_version, :to_version, :forced, :at, :rolled_back_version, :outcome)
           ON CONFLICT (rollback_id, node, partition) DO UPDATE SET from_version = excluded.from_version, to_version = excluded.to_version,
             forced = excluded.forced, "at" = excluded."at", rolled_back_version = excluded.rolled_back_version, outcome = excluded.outcome`,
          {
            rollback_id: request.rollbackId,
            backfill_id: request.backfillId,
            node,
            partition,
            from_version: decision.outcome.found,
            to_version: decision.outcome.to,
            forced: this.dialect.codec.bool(decision.outcome.forced),
            at: new Date().toISOString(),
            rolled_back_version: request.from,
            outcome: decision.move ? null : decision.outcome.status,
          },
        );
        return decision.outcome;
      },
      // Publishes and restores of one partition take turns.
      { lock: partitionLock(node, partition) },
    );
  }

  /**
   * A dataset leased to another backfill is that backfill's to write (publishes of any other run
   * are refused): a rollback moves none of its pointers meanwhile, or the running backfill would
   * publish over what the rollback restored (and a later rollback of it bring back what this one undid).
   * Leases are released when their backfill ends, however it ends, so only a running backfill
   * (or one staged and waiting for its decision) blocks a rollback.
   */
  private async assertNotLeasedToOther(s: Session, request: RestoreRequest): Promise<void> {
    const { node, partition, backfillId } = request;
    const [held] = await s.all<Raw>(`SELECT backfill_id, run_key FROM ${this.t('leases')} WHERE node = :node${this.dialect.forShare}`, { node });
    if (!held || held.backfill_id === backfillId) return;
    const holder = String(held.backfill_id);
    throw new StaleRunError(leasedRollbackRefusal({ node, backfillId: holder, runKey: String(held.run_key) }, backfillId, `${node} ${partition} was not restored; what is restored already is skipped then`));
  }

  async rollbacks(filter: RollbackFilter): Promise<RollbackRecord[]> {
    const params = { rollback_id: filter.rollbackId, backfill_id: filter.backfillId, node: filter.node, partition: filter.partition };
    // The moves only: a restore that moved nothing is kept for changesBy, not for the audit.
    const where = whereEqual(params);
    const moved = `${where ? `${where} AND` : 'WHERE'} outcome IS NULL`;
    const rows = await this.read((s) => s.all<Raw>(`SELECT * FROM ${this.t('rollbacks')} ${moved} ORDER BY "at", node, partition`, params));
    return rows.map((r) => rollbackRecord(this.dialect.codec, r));
  }

  async leaseHolders(nodes: readonly string[]): Promise<LeaseHolder[]> {
    if (nodes.length === 0) return [];
    const rows = await this.read((s) =>
      s.all<Raw>(`SELECT node, backfill_id, run_key FROM ${this.t('leases')} WHERE node IN (SELECT j.value ->> 0 FROM ${this.dialect.jsonEach(':nodes')} j) ORDER BY node`, {
        nodes: JSON.stringify(nodes.map((n) => [n])),
      }),
    );
    return rows.map((r) => ({ node: String(r.node), backfillId: String(r.backfill_id), runKey: String(r.run_key) }));
  }

  async acquireDatasets(lease: DatasetLease): Promise<LeaseOutcome> {
    lease.nodes.forEach(assertDataset);
    return this.tx(
      async (s) => {
        const held = await s.all<Raw>(`SELECT node, backfill_id, run_key FROM ${this.t('leases')} WHERE node IN (SELECT j.value ->> 0 FROM ${this.dialect.jsonEach(':nodes')} j)`, {
          nodes: JSON.stringify(lease.nodes.map((n) => [n])),
        });
        // An earlier run of the same backfill has ended (a rerun starts only then; a resume keeps its run key): its leases pass on.
        const holders = held.filter((h) => h.backfill_id !== lease.backfillId).map((h) => ({ node: h.node as string, backfillId: h.backfill_id as string, runKey: h.run_key as string }));
        if (holders.length > 0) return { acquired: false, holders: holders.sort((a, b) => (a.node < b.node ? -1 : 1)) };
        for (const node of lease.nodes) {
          await s.run(
            `INSERT INTO ${this.t('leases')} (node, backfill_id, run_key, acquired_at) VALUES (:node, :backfill_id, :run_key, :at)
             ON CONFLICT (node) DO UPDATE SET backfill_id = excluded.backfill_id, run_key = excluded.run_key, acquired_at = excluded.acquired_at`,
            { node, backfill_id: lease.backfillId, run_key: lease.runKey, at: new Date().toISOString() },
          );
        }
        return { acquired: true };
      },
      { lock: 'backfill:leases' },
    );
  }

  async releaseDatasets(run: { backfillId: string; runKey: string }): Promise<void> {
    await this.tx((s) => s.run(`DELETE FROM ${this.t('leases')} WHERE backfill_id = :backfill_id AND run_key = :run_key`, { backfill_id: run.backfillId, run_key: run.runKey }), {
      lock: 'backfill:leases',
    });
  }

  async claimSignature(claim: SignatureClaim): Promise<SignatureHolder> {
    return this.tx(
      async (s) => {
        await s.run(
          `INSERT INTO ${this.t('signatures')} (signature_key, backfill_id, workflow_id, run_id, claimed_at) VALUES (:key, :backfill_id, :workflow_id, :run_id, :at)
           ON CONFLICT (signature_key) DO NOTHING`,
          { key: claim.key, backfill_id: claim.backfillId, workflow_id: claim.workflowId, run_id: claim.runId, at: new Date().toISOString() },
        );
        const [held] = await s.all<Raw>(`SELECT workflow_id, run_id, claimed_at FROM ${this.t('signatures')} WHERE signature_key = :key`, { key: claim.key });
        return { workflowId: String(held!.workflow_id), runId: String(held!.run_id), claimedAt: this.dialect.codec.fromTime(held!.claimed_at) };
      },
      { lock: 'backfill:signatures' },
    );
  }

  publishStaged(run: StagedRun): Promise<StagedOutcome> {
    return this.tx((s) => publishRun(s, this.dialect, run, new Date().toISOString()), { lock: stageLock(run.runKey) });
  }

  discardStaged(run: StagedRun, options: DiscardOptions = {}): Promise<StagedOutcome> {
    return this.tx((s) => discardRun(s, this.dialect, run, options), { lock: stageLock(run.runKey) });
  }

  diffStaged(run: StagedRun, options: DiffOptions = {}): Promise<DiffPage> {
    return this.read((s) => diffPage(s, this.dialect, run, options));
  }

  close(): Promise<void> {
    return this.dialect.close();
  }
}

/**
 * A value as every engine can store it alike: SQLite cannot hold NaN (it would make it NULL),
 * nor -0 in a REAL column (it makes it 0), and a Parquet file may not keep -0 beside a 0, so
 * no engine is given either.
 */
function storable(value: unknown): unknown {
  if (typeof value !== 'number') return value;
  if (Number.isNaN(value)) return null;
  return value === 0 ? 0 : value;
}
