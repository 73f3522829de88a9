/**
 * Staged versions, written once for every dialect over its Session: what a run staged, read
 * before the published pointers (`stagedVersions`), published in one set of statements
 * (`publishRun`), dropped (`discardRun`), and compared with the published versions
 * (`diffPage`). Only portable SQL: correlated subqueries, `INSERT ... SELECT ... ON
 * CONFLICT`, `EXCEPT`, `INTERSECT` and a `DELETE` with an alias; numeric columns are told
 * from the values themselves, so a dialect supplies nothing beyond its Session.
 */
import { addDiffs, emptyDiff, withCopies, type ColumnChange, type DiffSummary, type ColumnStats, type PartitionDiff } from '../../core/diff.ts';
import { DEFAULT_CHANGES_PAGE, pageConditions, pageLimit } from './changes.ts';
import type { ValueKind } from './checksum.ts';
import { versionSelect, type Dialect, type Session } from './dialect.ts';
import { columnMatches } from './column-match.ts';
import { PARTITION_COLUMN, VERSION_COLUMN, quoteIdent } from './sql.ts';
import { SqlError, StaleRunError, type DiffOptions, type DiffPage, type DiscardOptions, type StagedOutcome, type StagedRun } from './types.ts';
import { shellWord } from '../../core/shell-word.ts';

type Tables = { ledger: string; pointers: string; leases: string };

export function tablesOf(dialect: Dialect): Tables {
  return { ledger: dialect.table('ledger'), pointers: dialect.table('partitions'), leases: dialect.table('leases') };
}

/** The lock every change to a run's staged versions takes: a publish and a discard of one run take turns. */
export const stageLock = (runKey: string) => `backfill:stage:${runKey}`;

/** The rows of one run (its key and its backfill both match), of the table aliased `alias`. */
const ofRun = (alias = '') => `${alias}run_key = :run_key AND ${alias}backfill_id = :backfill_id`;
const RUN = ofRun();
const runParams = (run: StagedRun) => ({ run_key: run.runKey, backfill_id: run.backfillId });

/** Versions `runKey` staged of `node`'s partitions that `where` (over `partition`) selects, by partition. */
export async function stagedVersions(s: Session, ledger: string, node: string, where: string, params: Record<string, unknown>, runKey: string): Promise<Map<string, number>> {
  const rows = await s.all<{ partition: string; version: number }>(
    `SELECT partition, version FROM ${ledger} WHERE run_key = :run_key AND node = :node AND status = 'staged'${where}`,
    { ...params, node, run_key: runKey },
  );
  return new Map(rows.map((r) => [r.partition, Number(r.version)]));
}

/** Per node, how many of the run's ledger rows have `status` (and, for what an earlier call did, were written staged). */
async function countByNode(s: Session, dialect: Dialect, run: StagedRun, status: string): Promise<Array<{ node: string; versions: number }>> {
  const ledger = dialect.table('ledger');
  const rows = await s.all<{ node: string; n: number }>(
    `SELECT node, COUNT(*) AS n FROM ${ledger} WHERE ${RUN} AND status = :status AND staged = :staged GROUP BY node ORDER BY node`,
    { ...runParams(run), status, staged: dialect.codec.bool(true) },
  );
  return rows.map((r) => ({ node: r.node, versions: Number(r.n) }));
}

const total = (nodes: ReadonlyArray<{ versions: number }>) => nodes.reduce((sum, n) => sum + n.versions, 0);

/**
 * Publishes every version the run staged: each one's `previous_version` becomes the version
 * published now, its pointer moves, and its status becomes `published`. The caller holds
 * `stageLock` in one transaction, so a reader sees all of it or none.
 */
export async function publishRun(s: Session, dialect: Dialect, run: StagedRun, at: string): Promise<StagedOutcome> {
  const { ledger, pointers, leases } = tablesOf(dialect);
  const params = runParams(run);
  const [held] = await s.all<{ node: string; backfill_id: string; run_key: string }>(
    `SELECT le.node, le.backfill_id, le.run_key FROM ${leases} le
     WHERE le.run_key <> :run_key AND EXISTS (SELECT 1 FROM ${ledger} l WHERE l.node = le.node AND ${ofRun('l.')} AND l.status = 'staged')
     ORDER BY le.node LIMIT 1${dialect.forShare}`,
    params,
  );
  if (held) {
    throw new StaleRunError(
      `dataset ${held.node} is leased to run ${held.run_key} of backfill '${held.backfill_id}', not to run ${run.runKey} of '${run.backfillId}': ` +
        'its staged versions were not published (nothing was); publish them while their backfill holds its datasets',
    );
  }
  const nodes = (await s.all<{ node: string; n: number }>(`SELECT node, COUNT(*) AS n FROM ${ledger} WHERE ${RUN} AND status = 'staged' GROUP BY node ORDER BY node`, params)).map((r) => ({
    node: r.node,
    versions: Number(r.n),
  }));
  const before = total(await countByNode(s, dialect, run, 'published'));
  if (nodes.length === 0) return { versions: 0, before, nodes: [] };
  // The pointers about to move are locked before they are read: a restore of one of them (which
  // locks it too) commits before, and is replaced as what it restored, or waits and finds this run's version.
  if (dialect.forUpdate) {
    await s.all(
      `SELECT COUNT(*) AS n FROM (SELECT p.node FROM ${pointers} p
       WHERE EXISTS (SELECT 1 FROM ${ledger} l WHERE l.node = p.node AND l.partition = p.partition AND ${ofRun('l.')} AND l.status = 'staged')${dialect.forUpdate}) locked`,
      params,
    );
  }
  await s.run(
    `UPDATE ${ledger} AS l SET previous_version = (SELECT p.version FROM ${pointers} p WHERE p.node = l.node AND p.partition = l.partition)
     WHERE ${ofRun('l.')} AND l.status = 'staged'`,
    params,
  );
  // A run stages one version per partition (a retry finds it); the newest wins should there be more.
  if (s.pointed) {
    const moves = await s.all<{ node: string; partition: string; version: number }>(
      `SELECT node, partition, MAX(version) AS version FROM ${ledger} WHERE ${RUN} AND status = 'staged' GROUP BY node, partition`,
      params,
    );
    for (const m of moves) await s.pointed(m.node, m.partition, Number(m.version));
  }
  await s.run(
    `INSERT INTO ${pointers} (node, partition, version, published_at)
     SELECT node, partition, MAX(version), :at FROM ${ledger} WHERE ${RUN} AND status = 'staged' GROUP BY node, partition
     ON CONFLICT (node, partition) DO UPDATE SET version = excluded.version, published_at = excluded.published_at`,
    { ...params, at },
  );
  await s.run(`UPDATE ${ledger} SET status = 'published' WHERE ${RUN} AND status = 'staged'`, params);
  return { versions: total(nodes), before, nodes };
}

/** Drops every version the run staged: its rows are deleted, its ledger row says `discarded`. The caller holds `stageLock`. */
export async function discardRun(s: Session, dialect: Dialect, run: StagedRun, options: DiscardOptions = {}): Promise<StagedOutcome> {
  const { ledger, leases } = tablesOf(dialect);
  const params = runParams(run);
  if (options.ended) {
    const [held] = await s.all<{ node: string }>(`SELECT node FROM ${leases} WHERE ${RUN} ORDER BY node LIMIT 1${dialect.forShare}`, params);
    if (held) {
      throw new StaleRunError(
        `run ${run.runKey} of backfill '${run.backfillId}' still leases dataset ${held.node}: it is running, so it decides on its staged versions itself ` +
          `(nothing was dropped); discard through it with backfill discard ${shellWord(run.backfillId)}`,
      );
    }
  }
  const nodes = (await s.all<{ node: string; n: number }>(`SELECT node, COUNT(*) AS n FROM ${ledger} WHERE ${RUN} AND status = 'staged' GROUP BY node ORDER BY node`, params)).map((r) => ({
    node: r.node,
    versions: Number(r.n),
  }));
  const before = total(await countByNode(s, dialect, run, 'discarded'));
  for (const { node } of nodes) {
    if (s.dropVersions) {
      const versions = await s.all<{ partition: string; version: number }>(
        `SELECT partition, version FROM ${ledger} WHERE node = :node AND ${RUN} AND status = 'staged'`,
        { ...params, node },
      );
      await s.dropVersions(node, versions.map((v) => [v.partition, Number(v.version)] as const));
      continue;
    }
    await s.run(
      `DELETE FROM ${dialect.versionsTable(node)} AS v WHERE EXISTS (
         SELECT 1 FROM ${ledger} l WHERE l.node = :node AND ${ofRun('l.')} AND l.status = 'staged'
         AND l.partition = v.${PARTITION_COLUMN} AND l.version = v.${VERSION_COLUMN})`,
      { ...params, node },
    );
  }
  await s.run(`UPDATE ${ledger} SET status = 'discarded' WHERE ${RUN} AND status = 'staged'`, params);
  return { versions: total(nodes), before, nodes };
}

/** One staged version and the version published now. */
type StagedRow = { node: string; partition: string; version: number; published: number | null; rows_after: number; rows_before: number | null };

/** A column's numbers, as they stream: null once a value is not a number. */
class ColumnTally {
  stats: ColumnStats | null = null;
  numeric = true;

  add(value: unknown, kind: ValueKind | undefined): void {
    if (value === null || value === undefined || !this.numeric) return;
    let n: number;
    if (typeof value === 'number') n = value;
    else if (typeof value === 'bigint') n = Number(value);
    else if (typeof value === 'string' && kind === 'number') n = Number(value);
    else {
      this.numeric = false;
      return;
    }
    if (Number.isNaN(n)) return;
    this.stats = this.stats === null ? { sum: n, min: n, max: n } : { sum: this.stats.sum + n, min: Math.min(this.stats.min, n), max: Math.max(this.stats.max, n) };
  }
}

/** Per column, the sum, minimum and maximum of one version (a column with any value that is not a number is left out). */
async function columnTallies(s: Session, dialect: Dialect, node: string, columns: readonly string[], partition: string, version: number | null): Promise<ColumnTally[]> {
  const tallies = columns.map(() => new ColumnTally());
  if (version === null || columns.length === 0) return tallies;
  await s.stream(
    `SELECT ${columns.map(quoteIdent).join(', ')} FROM (${await versionSelect(s, dialect, node, partition, version)}) AS v`,
    {},
    (rows, kinds) => {
      for (const row of rows) for (let i = 0; i < tallies.length; i++) tallies[i]!.add(row[i], kinds[i]);
    },
  );
  return tallies;
}

function numericChanges(columns: readonly string[], before: readonly ColumnTally[], after: readonly ColumnTally[]): ColumnChange[] {
  const out: ColumnChange[] = [];
  columns.forEach((column, i) => {
    const b = before[i]!;
    const a = after[i]!;
    if (!b.numeric || !a.numeric || (b.stats === null && a.stats === null)) return;
    out.push({ column, before: b.stats, after: a.stats });
  });
  return out;
}

/**
 * A node's key columns as the dataset spells them (null: no key), each matched in any case
 * (`columnMatches`), as a check's columns are; a key column the dataset lacks, or one that
 * matches two of its columns, is an SqlError naming the fix.
 */
function keyColumns(node: string, key: readonly string[] | undefined, columns: readonly string[]): string[] | null {
  if (key === undefined) return null;
  const missing: string[] = [];
  const resolved: string[] = [];
  for (const name of key) {
    const matches = columnMatches(name, columns);
    if (matches.length > 1) {
      throw new SqlError(`key column ${name} of node ${node} matches the dataset's columns ${matches.join(' and ')}, whose names differ only in case: name one of them in the node's key exactly as the dataset does`);
    }
    if (matches[0] === undefined) missing.push(name);
    else resolved.push(matches[0]);
  }
  if (missing.length > 0) {
    throw new SqlError(
      `key column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of node ${node} ${missing.length > 1 ? 'are' : 'is'} not in the dataset (its columns: ${columns.join(', ') || 'none'}): fix the node's key in the spec`,
    );
  }
  return resolved;
}

/** Added, removed and changed rows (or keys) of one partition, in one statement of set operations. */
async function countDifferences(s: Session, dialect: Dialect, columns: readonly string[], key: readonly string[] | null, row: StagedRow): Promise<{ added: number; removed: number; changed: number }> {
  const all = columns.length > 0 ? columns.map(quoteIdent).join(', ') : `${PARTITION_COLUMN}`;
  const stagedRows = await versionSelect(s, dialect, row.node, row.partition, row.version);
  // No published version: the staged one's columns, without rows.
  const relation = {
    staged: `SELECT ${all} FROM (${stagedRows}) AS v`,
    published: row.published === null ? `SELECT ${all} FROM (${stagedRows}) AS v WHERE 1 = 0` : `SELECT ${all} FROM (${await versionSelect(s, dialect, row.node, row.partition, row.published)}) AS v`,
  };
  const k = key && key.length > 0 ? key.map(quoteIdent).join(', ') : null;
  const sql = k
    ? `WITH s AS (${relation.staged}), p AS (${relation.published})
       SELECT (SELECT COUNT(*) FROM (SELECT ${k} FROM s EXCEPT SELECT ${k} FROM p) a) AS added,
              (SELECT COUNT(*) FROM (SELECT ${k} FROM p EXCEPT SELECT ${k} FROM s) r) AS removed,
              (SELECT COUNT(*) FROM (SELECT ${k} FROM (SELECT * FROM s EXCEPT SELECT * FROM p) x INTERSECT SELECT ${k} FROM p) c) AS changed`
    : `WITH s AS (${relation.staged}), p AS (${relation.published})
       SELECT (SELECT COUNT(*) FROM (SELECT * FROM s EXCEPT SELECT * FROM p) a) AS added,
              (SELECT COUNT(*) FROM (SELECT * FROM p EXCEPT SELECT * FROM s) r) AS removed,
              0 AS changed`;
  const [counts] = await s.all<{ added: number; removed: number; changed: number }>(sql);
  return { added: Number(counts!.added), removed: Number(counts!.removed), changed: Number(counts!.changed) };
}

/** A page of the run's staged versions against the published versions (or, `of: 'published'`, its published staged versions against those they replaced), in node and partition order. */
export async function diffPage(s: Session, dialect: Dialect, run: StagedRun, options: DiffOptions = {}): Promise<DiffPage> {
  const { ledger, pointers } = tablesOf(dialect);
  const limit = pageLimit(options.limit ?? DEFAULT_CHANGES_PAGE);
  const published = options.of === 'published';
  if (options.of !== undefined && options.of !== 'staged' && !published) throw new RangeError(`diffStaged: of must be 'staged' or 'published' (got ${String(options.of)})`);
  // Staged: against the version published now. Published: against the version the publish replaced.
  const params: Record<string, unknown> = { ...runParams(run), page_limit: limit, ...(published ? { staged: dialect.codec.bool(true) } : {}) };
  const where = [`${ofRun('l.')}`, published ? `l.status = 'published' AND l.staged = :staged` : `l.status = 'staged'`, ...pageConditions('l.', options, params)];
  const before = published ? 'l.previous_version' : 'p.version';
  const rows = await s.all<StagedRow>(
    `SELECT l.node AS "node", l.partition AS "partition", l.version AS "version", ${before} AS "published", l.row_count AS "rows_after", pl.row_count AS "rows_before"
     FROM ${ledger} l${published ? '' : ` LEFT JOIN ${pointers} p ON p.node = l.node AND p.partition = l.partition`}
     LEFT JOIN ${ledger} pl ON pl.node = l.node AND pl.partition = l.partition AND pl.version = ${before}
     WHERE ${where.join(' AND ')} ORDER BY l.node, l.partition LIMIT :page_limit`,
    params,
  );
  const columnsOf = new Map<string, string[]>();
  const partitions: PartitionDiff[] = [];
  for (const raw of rows) {
    const row: StagedRow = { ...raw, version: Number(raw.version), published: raw.published === null ? null : Number(raw.published) };
    let columns = columnsOf.get(row.node);
    if (!columns) columnsOf.set(row.node, (columns = (await s.columns(row.node)) ?? []));
    const key = keyColumns(row.node, options.keys?.[row.node], columns);
    const counts = await countDifferences(s, dialect, columns, key, row);
    // Key columns identify rows (`key` lists them): an id or a grouping key that is a number is no measure to sum.
    const measures = columns.filter((c) => !(key ?? []).includes(c));
    const [before, after] = [await columnTallies(s, dialect, row.node, measures, row.partition, row.published), await columnTallies(s, dialect, row.node, measures, row.partition, row.version)];
    partitions.push({
      node: row.node,
      partition: row.partition,
      stagedVersion: row.version,
      publishedVersion: row.published,
      ...withCopies({ rowsBefore: row.published === null ? 0 : Number(row.rows_before ?? 0), rowsAfter: Number(row.rows_after ?? 0), ...counts }),
      key: key ? [...key] : null,
      columns: numericChanges(measures, before, after),
    });
  }
  const last = partitions[partitions.length - 1];
  return { partitions, next: partitions.length === limit && last ? { node: last.node, partition: last.partition } : null };
}

/** Every page of the run's diff, added up (the workflow's summary, and `diff`'s totals); `each` sees every page's partitions. */
export async function diffSummary(
  diff: (options: DiffOptions) => Promise<DiffPage>,
  keys: DiffOptions['keys'],
  of?: DiffOptions['of'],
  each?: (partitions: readonly PartitionDiff[]) => void,
): Promise<DiffSummary> {
  let summary = emptyDiff();
  let after: DiffOptions['after'];
  do {
    const page = await diff({ ...(keys ? { keys } : {}), ...(of ? { of } : {}), ...(after ? { after } : {}) });
    each?.(page.partitions);
    summary = addDiffs(summary, page.partitions);
    after = page.next ?? undefined;
  } while (after);
  return summary;
}
