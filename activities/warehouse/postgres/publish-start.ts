/**
 * The one function backfill keeps in its PostgreSQL schema: the start of a publish in one
 * statement. It does what the protocol's `startPublish` would do in seven or more (lock the
 * partition, read its lease, this run's published or staged version, the newest and the
 * published version, pin the inputs into the scope table) and returns the datasets' columns
 * besides, so that the rest of a publish needs no catalogue reads.
 *
 * It decides nothing: the protocol (warehouse.ts) reads what it returns and decides, as it
 * does on every engine. It writes only the session's own temporary scope table and takes the
 * partition's advisory lock. It runs with the caller's rights (SECURITY INVOKER), with a
 * search_path of pg_catalog and pg_temp only, so that nothing of anyone else's can stand in for
 * what it names; EXECUTE is revoked from PUBLIC; and it refuses to run unless it is the whole
 * statement backfill sends (`current_query()`), so that spec SQL cannot call it, directly or
 * through a view or a function (the door refuses such calls too: spec-sql.ts). See "What spec
 * SQL can do" in docs/deploying.md.
 *
 * Its name carries a version: a release that changes what it takes or returns adds a new one,
 * so that workers of two releases on one warehouse never replace each other's. v1 found only
 * the run's published version, not its staged one (which a write without stage must promote,
 * as the protocol's own statements do): v2 returns either, the newest, and whether it is
 * staged. A warehouse keeps the v1 an earlier release made, for that release's workers.
 */
import type { PinnedInput, Published } from '../types.ts';
import type { PublishRequest, PublishStart } from '../dialect.ts';
import { quoteIdent, quoteLiteral } from '../sql.ts';

export const START_FUNCTION = 'publish_start_v2';

/** Columns of a dataset's versions table as the function reads them: [name, type], in table order. */
type ColumnPairs = Array<[name: string, type: string]>;

/** This run's version of the partition, as the function returns it. */
type StartPublished = Omit<Published, 'alreadyPublished' | 'staged'> & { staged: boolean };

/** What the function returns. */
export type StartRow = {
  lease: { backfillId: string; runKey: string } | null;
  /** The run's published or staged version (the newest). */
  already?: StartPublished | null;
  latest?: number;
  current?: number | null;
  /** Per input, in order: [partition, version] pairs. */
  pinned?: Array<Array<[string, number]>>;
  /** The dataset's and each upstream's columns (null: no versions table yet). */
  columns?: Record<string, ColumnPairs | null>;
};

/** The statement that calls it: the function checks that it is exactly this. */
export function startCall(schema: string): string {
  return `SELECT ${quoteIdent(schema)}.${START_FUNCTION}($1::jsonb) AS start`;
}

export function startSignature(schema: string): string {
  return `${quoteIdent(schema)}.${START_FUNCTION}(jsonb)`;
}

/** The function's body, in `schema`. */
export function startBody(schema: string): string {
  const s = quoteIdent(schema);
  const versionsTable = (node: string) => `to_regclass(format('%I.%I', ${quoteLiteral(schema)}, ${node} || '__versions'))`;
  const pin = (where: string) =>
    `SELECT COALESCE(jsonb_agg(jsonb_build_array(p.partition, p.version)), '[]'::jsonb) INTO versions FROM ${s}.partitions p WHERE p.node = input ->> 'node'${where};`;
  return `
DECLARE
  the_node text := request ->> 'node';
  the_partition text := request ->> 'partition';
  the_run text := request ->> 'runKey';
  held jsonb;
  already jsonb;
  latest integer;
  published integer;
  pinned jsonb := '[]'::jsonb;
  input jsonb;
  versions jsonb;
  columns jsonb;
BEGIN
  IF current_query() IS DISTINCT FROM ${quoteLiteral(startCall(schema))} THEN
    RAISE EXCEPTION '%.${START_FUNCTION}() is backfill''s own: it runs only as the statement backfill sends, never from other SQL', ${quoteLiteral(schema)}
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('backfill:partition:' || the_node || '/' || the_partition, 0));
  SELECT jsonb_build_object('backfillId', l.backfill_id, 'runKey', l.run_key) INTO held FROM ${s}.leases l WHERE l.node = the_node FOR SHARE;
  IF held IS NOT NULL AND held ->> 'runKey' IS DISTINCT FROM the_run THEN
    RETURN jsonb_build_object('lease', held);
  END IF;
  -- Each statement keeps the plan made on its first run in this connection (the function's
  -- plan_cache_mode). The ledger and the pointers grow as a backfill runs, so what reads them
  -- is planned without sequential scans: a plan made while they were nearly empty would
  -- otherwise scan them whole, and keep doing so as they grew. Their indexes serve every read.
  PERFORM set_config('enable_seqscan', 'off', true);
  SELECT (SELECT jsonb_build_object('version', l.version, 'previousVersion', l.previous_version, 'rowCount', l.row_count, 'checksum', l.checksum,
                                    'schemaHash', l.schema_hash, 'warnings', l.warnings, 'staged', l.status = 'staged')
            FROM ${s}.ledger l WHERE l.node = the_node AND l.partition = the_partition AND l.run_key = the_run AND l.status IN ('published', 'staged')
            ORDER BY l.version DESC LIMIT 1),
         (SELECT COALESCE(MAX(l.version), 0) FROM ${s}.ledger l WHERE l.node = the_node AND l.partition = the_partition),
         (SELECT p.version FROM ${s}.partitions p WHERE p.node = the_node AND p.partition = the_partition)
    INTO already, latest, published;
  IF already IS NOT NULL THEN
    RETURN jsonb_build_object('lease', held, 'already', already);
  END IF;
  -- Emptied whole: a scan of the table, not of its index (which also holds the rows this
  -- transaction's earlier publishes deleted).
  PERFORM set_config('enable_seqscan', 'on', true);
  DELETE FROM pg_temp.backfill_scope;
  PERFORM set_config('enable_seqscan', 'off', true);
  FOR input IN SELECT j.value FROM jsonb_array_elements(request -> 'inputs') j LOOP
    IF input ? 'versions' THEN
      versions := input -> 'versions';
    ELSIF COALESCE((input ->> 'all')::boolean, false) THEN
      ${pin('')}
    ELSIF input ? 'keys' THEN
      ${pin(" AND p.partition IN (SELECT jsonb_array_elements_text(input -> 'keys'))")}
    ELSE
      ${pin(" AND p.partition BETWEEN input ->> 'from' AND input ->> 'to'")}
    END IF;
    INSERT INTO pg_temp.backfill_scope (node, partition, version)
      SELECT input ->> 'node', v.value ->> 0, (v.value ->> 1)::integer FROM jsonb_array_elements(versions) v ON CONFLICT DO NOTHING;
    pinned := pinned || jsonb_build_array(versions);
  END LOOP;
  SELECT jsonb_object_agg(n.node, CASE WHEN ${versionsTable('n.node')} IS NULL THEN NULL ELSE COALESCE((
      SELECT jsonb_agg(jsonb_build_array(a.attname, format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum) FROM pg_attribute a
      WHERE a.attrelid = ${versionsTable('n.node')} AND a.attnum > 0 AND NOT a.attisdropped AND left(a.attname, 2) <> '__'), '[]'::jsonb) END)
    INTO columns
    FROM (SELECT the_node AS node UNION SELECT j.value ->> 'node' FROM jsonb_array_elements(request -> 'inputs') j) n;
  RETURN jsonb_build_object('lease', held, 'latest', latest, 'current', published, 'pinned', pinned, 'columns', columns);
END`;
}

export function startDdl(schema: string): string {
  return (
    `CREATE OR REPLACE FUNCTION ${startSignature(schema).replace('(jsonb)', '(request jsonb)')} RETURNS jsonb ` +
    `LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp ` +
    // One plan per statement and connection, not one per call (see the body).
    `SET plan_cache_mode = force_generic_plan ` +
    `AS $backfill$${startBody(schema)}$backfill$`
  );
}

/** The function's argument: pinned inputs travel with their versions, which it loads as they are. */
export function startArgument(request: PublishRequest): string {
  const inputs = request.pinned ? request.pinned.map((p) => ({ node: p.node, versions: p.versions })) : request.inputs;
  return JSON.stringify({ node: request.node, partition: request.partition, runKey: request.runKey, inputs });
}

/** What the protocol reads of the function's answer. */
export function publishStartOf(request: PublishRequest, row: StartRow): PublishStart {
  let already: Published | null = null;
  if (row.already) {
    // As the protocol's own read gives it: `staged` only when it is (a write without stage then promotes it).
    const { staged, ...rest } = row.already;
    already = { ...rest, version: Number(rest.version), rowCount: Number(rest.rowCount), ...(staged ? { staged: true } : {}) };
  }
  const pinned: PinnedInput[] = request.pinned
    ? [...request.pinned]
    : (row.pinned ?? []).map((versions, i) => ({ ...request.inputs[i]!, versions: versions.map(([partition, version]) => [partition, Number(version)] as [string, number]) }));
  return {
    lease: row.lease,
    already,
    latest: Number(row.latest ?? 0),
    current: row.current === undefined || row.current === null ? null : Number(row.current),
    pinned,
  };
}
