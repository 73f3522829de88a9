/**
 * What a backfill changed, as both warehouses read it: one portable query for a page of
 * partitions (named parameters, which SQLite binds itself and the PostgreSQL warehouse
 * numbers), and the walk from the backfill's newest version back to the version it replaced.
 */
import type { Change, ChangeCursor, ChangesOptions, ChangesPage } from './types.ts';

export const DEFAULT_CHANGES_PAGE = 500;
export const MAX_CHANGES_PAGE = 10_000;

/**
 * The conditions of one page of ledger rows in node, partition order: one node's only, and those
 * after the cursor (keyset paging); their parameters go into `params`. `alias` prefixes the
 * columns (`l.`).
 */
export function pageConditions(alias: string, options: { node?: string; after?: ChangeCursor | null }, params: Record<string, unknown>): string[] {
  const where: string[] = [];
  if (options.node !== undefined) {
    where.push(`${alias}node = :node`);
    params.node = options.node;
  }
  if (options.after) {
    where.push(`(${alias}node > :after_node OR (${alias}node = :after_node AND ${alias}partition > :after_partition))`);
    params.after_node = options.after.node;
    params.after_partition = options.after.partition;
  }
  return where;
}

/** One published ledger row of the backfill, with the rows it points at. */
export type ChangeRow = {
  node: string;
  partition: string;
  version: number;
  previousVersion: number | null;
  checksum: string;
  previousChecksum: string | null;
  currentVersion: number | null;
  currentBackfillId: string | null;
  /** 1 when the version it replaced belongs to a backfill rolled back in that partition since (see `rolledBack`). */
  previousRolledBack?: number | boolean | null;
};

type Tables = { ledger: string; pointers: string; rollbacks: string };

/**
 * Whether the ledger row aliased `alias` was rolled back: a rollback of its backfill undid the
 * partition's versions up to it or a later one (moving the pointer or, changed since, leaving it).
 * Rollbacks recorded before `rolled_back_version` was kept count by the version they moved from.
 */
export function rolledBack(rollbacks: string, alias: string): string {
  return `CASE WHEN EXISTS (SELECT 1 FROM ${rollbacks} r WHERE r.node = ${alias}.node AND r.partition = ${alias}.partition AND r.backfill_id = ${alias}.backfill_id
    AND COALESCE(r.rolled_back_version, r.from_version) >= ${alias}.version) THEN 1 ELSE 0 END`;
}

/**
 * Who last moved the pointer aliased `alias`: the newest rollback that moved it to its version
 * (as \`rollback <id>\`), else \`publisher\` (the backfill that published the version). A
 * version is published once, before any restore to it, so a restore to it is the later move.
 */
export function movedBy(rollbacks: string, alias: string, publisher: string): string {
  return `COALESCE((SELECT 'rollback ' || r.rollback_id FROM ${rollbacks} r WHERE r.node = ${alias}.node AND r.partition = ${alias}.partition
    AND r.to_version = ${alias}.version AND r.outcome IS NULL ORDER BY r."at" DESC, r.rollback_id DESC LIMIT 1), ${publisher})`;
}

/** A published version of a partition with what the walk back to a rollback's target needs (`linksQuery`). */
export type LinkRow = { node: string; partition: string; version: number; previousVersion: number | null; checksum: string | null; backfillId: string; rolledBack: number | boolean };

/** Every published version of the partitions given as a JSON array of [node, partition] (`pairs`, the dialect's jsonEach of it). */
export function linksQuery(tables: Tables, pairs: string): string {
  return `SELECT l.node AS "node", l.partition AS "partition", l.version AS "version", l.previous_version AS "previousVersion", l.checksum AS "checksum",
      l.backfill_id AS "backfillId", ${rolledBack(tables.rollbacks, 'l')} AS "rolledBack"
    FROM ${pairs} j CROSS JOIN ${tables.ledger} l
    WHERE l.node = (j.value ->> 0) AND l.partition = (j.value ->> 1) AND l.status = 'published'`;
}

/** A rollback's move of a partition's pointer (`movesQuery`), as the warehouse returns it. */
export type MoveRow = { node: string; partition: string; rollbackId: string; backfillId: string; fromVersion: number | null; toVersion: number | null; forced: unknown; at: unknown };

/** Every move the rollback audit holds of the partitions given as a JSON array of [node, partition] (`pairs`, the dialect's jsonEach of it). */
export function movesQuery(tables: Tables, pairs: string): string {
  return `SELECT r.node AS "node", r.partition AS "partition", r.rollback_id AS "rollbackId", r.backfill_id AS "backfillId", r.from_version AS "fromVersion",
      r.to_version AS "toVersion", r.forced AS "forced", r."at" AS "at"
    FROM ${pairs} j CROSS JOIN ${tables.rollbacks} r
    WHERE r.node = (j.value ->> 0) AND r.partition = (j.value ->> 1) AND r.outcome IS NULL`;
}

export function pageLimit(limit: number | undefined): number {
  const n = limit ?? DEFAULT_CHANGES_PAGE;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CHANGES_PAGE) {
    throw new RangeError(`changesBy: limit must be a whole number from 1 to ${MAX_CHANGES_PAGE} (got ${limit})`);
  }
  return n;
}

/**
 * The query of one page: every published ledger row of the backfill for the next `limit`
 * partitions (in node, partition order), each with the checksum of the version it replaced
 * and the partition's published version now.
 */
export function changesQuery(tables: Tables, backfillId: string, options: ChangesOptions): { sql: string; bindings: Record<string, string | number> } {
  const bindings: Record<string, string | number> = { backfill_id: backfillId, page_limit: pageLimit(options.limit) };
  const where = [`backfill_id = :backfill_id`, `status = 'published'`, ...pageConditions('', options, bindings)];
  const { ledger, pointers, rollbacks } = tables;
  const sql = `
    WITH page AS (
      SELECT DISTINCT node, partition FROM ${ledger} WHERE ${where.join(' AND ')}
      ORDER BY node, partition LIMIT :page_limit
    )
    SELECT l.node AS "node", l.partition AS "partition", l.version AS "version", l.previous_version AS "previousVersion",
      l.checksum AS "checksum", pl.checksum AS "previousChecksum", p.version AS "currentVersion", ${movedBy(rollbacks, 'p', 'cl.backfill_id')} AS "currentBackfillId",
      ${rolledBack(rollbacks, 'pl')} AS "previousRolledBack"
    FROM page
    JOIN ${ledger} l ON l.node = page.node AND l.partition = page.partition AND l.backfill_id = :backfill_id AND l.status = 'published'
    LEFT JOIN ${ledger} pl ON pl.node = l.node AND pl.partition = l.partition AND pl.version = l.previous_version
    LEFT JOIN ${pointers} p ON p.node = l.node AND p.partition = l.partition
    LEFT JOIN ${ledger} cl ON cl.node = p.node AND cl.partition = p.partition AND cl.version = p.version
    ORDER BY l.node, l.partition, l.version`;
  return { sql, bindings };
}

/**
 * One change per partition from its rows (sorted by node, partition, version). A backfill
 * run again publishes a partition more than once: the rollback target is what its first
 * publish of the latest unbroken run of its versions replaced, so a later backfill's
 * version in between is kept, and the backfill's own earlier versions are not. `walkBack`:
 * the changes (by index) whose target was rolled back since, to walk further back from
 * (`restoreTarget`).
 */
export function changesFromRows(rows: readonly ChangeRow[], limit: number): ChangesPage & { walkBack: Set<number> } {
  const walkBack = new Set<number>();
  const changes: Change[] = [];
  let at = 0;
  while (at < rows.length) {
    const first = rows[at]!;
    const byVersion = new Map<number, ChangeRow>();
    while (at < rows.length && rows[at]!.node === first.node && rows[at]!.partition === first.partition) {
      byVersion.set(rows[at]!.version, rows[at]!);
      at++;
    }
    const newest = rows[at - 1]!;
    let earliest = newest;
    for (let prev = earliest.previousVersion; prev !== null && byVersion.has(prev); prev = earliest.previousVersion) earliest = byVersion.get(prev)!;
    if (earliest.previousVersion !== null && Number(earliest.previousRolledBack ?? 0) === 1) walkBack.add(changes.length);
    changes.push({
      node: newest.node,
      partition: newest.partition,
      version: newest.version,
      checksum: newest.checksum,
      previousVersion: earliest.previousVersion,
      previousChecksum: earliest.previousVersion === null ? null : earliest.previousChecksum,
      currentVersion: newest.currentVersion,
      currentBackfillId: newest.currentVersion === null ? null : newest.currentBackfillId,
    });
  }
  const last = changes[changes.length - 1];
  const next: ChangeCursor | null = changes.length === limit && last ? { node: last.node, partition: last.partition } : null;
  return { changes, next, walkBack };
}
