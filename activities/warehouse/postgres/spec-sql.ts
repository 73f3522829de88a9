/**
 * Spec SQL as PostgreSQL's own parser (libpg-query) reads it: exactly one statement, a
 * query (SELECT, VALUES, WITH ... SELECT) with no data-modifying WITH, no SELECT INTO, no
 * row locks and no call of the functions that act outside the query; and the relations it
 * names, for the scope rules.
 */
import { parse } from 'libpg-query';
import { notASelect } from '../sql.ts';
import { SqlError, SqlRefusedError } from '../types.ts';

export type ParsedQuery = {
  /** The statement alone, without a trailing semicolon or comment. */
  text: string;
  /** Every relation it names (schema null when unqualified). */
  relations: Array<{ schema: string | null; name: string }>;
  /** The names its own WITH clauses define. */
  ctes: Set<string>;
  /** The functions it calls, unqualified and in lower case. */
  functions: Set<string>;
};

/**
 * Functions that act outside the query, by what they reach. It holds every function that
 * PostgreSQL 15 keeps from PUBLIC (a superuser role could still call them) and the ones that
 * change something beyond the statement; a test compares it with pg_proc.
 */
const ACTS_OUTSIDE = new RegExp(
  `^(${[
    // Settings, locks, other sessions.
    'set_config', 'setseed', 'pg_(try_)?advisory_.*', 'pg_terminate_backend', 'pg_cancel_backend', 'pg_notify',
    // The server's files, logs and configuration (adminpack's pg_file_* too).
    'pg_read_(binary_)?file.*', 'pg_ls_.*', 'pg_stat_file', 'pg_file_.*', 'pg_current_logfile', 'pg_config', 'pg_hba_file_rules',
    'pg_ident_file_mappings', 'pg_show_all_file_settings', 'pg_get_backend_memory_contexts', 'pg_get_shmem_allocations', 'lo_.*', 'lo(read|write)',
    // The server's state: configuration, logs, WAL, backups, recovery, statistics, upgrades.
    'pg_reload_conf', 'pg_rotate_logfile.*', 'pg_promote', 'pg_switch_wal', 'pg_backup_(start|stop)', 'pg_create_restore_point',
    'pg_wal_replay_(pause|resume)', 'pg_log_backend_memory_contexts', 'pg_stat_reset.*', 'pg_stat_have_stats', 'pg_stat_force_next_flush',
    'pg_import_system_collations', 'pg_nextoid', 'pg_stop_making_pinned_objects', 'binary_upgrade_.*', 'pg_extension_config_dump',
    // Replication: slots, origins, messages written to the WAL, snapshots handed to other sessions.
    'pg_(create|copy)_(logical|physical)_replication_slot', 'pg_drop_replication_slot', 'pg_replication_slot_advance', 'pg_logical_.*',
    'pg_(show_)?replication_origin_.*', 'pg_export_snapshot',
    // Indexes changed in place.
    'brin_(de)?summarize_.*', 'gin_clean_pending_list',
    // Sequences, other databases, SQL in a string, backfill's own (publish-start.ts).
    'nextval', 'setval', 'dblink.*', '(query|cursor|table|schema|database)_to_xml.*', 'ts_stat', 'ts_rewrite', 'publish_start_v\\d+',
  ].join('|')})$`,
);

/** Whether spec SQL may not call the function of this (unqualified) name. */
export const actsOutside = (name: string): boolean => ACTS_OUTSIDE.test(name.toLowerCase());

/** Functions that read the catalog's statistics, sizes or definitions, which span every partition of a table. */
const READS_CATALOG =
  /^(pg_stat_.*|pg_(total_)?relation_size|pg_(table|indexes|database|tablespace)_size|pg_relation_file(node|path)|pg_filenode_relation|pg_get_.*|pg_describe_object|pg_identify_object.*|pg_partition_.*|pg_sequence_.*|currval|lastval|(obj|col|shobj)_description|pg_lock_status|pg_blocking_pids)$/;

/** Whether spec SQL inside a partition may not call the function of this (unqualified) name. */
export const readsCatalog = (name: string): boolean => READS_CATALOG.test(name.toLowerCase());

type Node = Record<string, unknown>;

function walk(node: unknown, visit: (kind: string, value: Node) => void): void {
  if (Array.isArray(node)) for (const item of node) walk(item, visit);
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (/^[A-Z]/.test(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) visit(key, value as Node);
      walk(value, visit);
    }
  }
}

const shown = (sql: string) => sql.trim().slice(0, 300);

async function analyse(text: string, original: string): Promise<ParsedQuery> {
  let tree: { stmts?: Array<{ stmt: Node; stmt_location?: number; stmt_len?: number }> };
  try {
    tree = (await parse(text)) as typeof tree;
  } catch (error) {
    throw new SqlError(`${(error as Error).message} in SQL: ${shown(original)}`);
  }
  const statements = tree.stmts ?? [];
  if (statements.length !== 1) throw new SqlRefusedError(`spec SQL must be exactly one statement, and this is ${statements.length}: ${shown(original)}`);
  const [{ stmt, stmt_location: at = 0, stmt_len: length = 0 }] = statements as [(typeof statements)[number]];
  if (!('SelectStmt' in stmt)) throw new SqlRefusedError(notASelect(original));
  const relations: ParsedQuery['relations'] = [];
  const ctes = new Set<string>();
  const functions = new Set<string>();
  walk(stmt, (kind, value) => {
    if (kind === 'SelectStmt' && value.intoClause) throw new SqlRefusedError(`spec SQL may not create tables (SELECT ... INTO): ${shown(original)}`);
    if (kind === 'SelectStmt' && value.lockingClause) throw new SqlRefusedError(`spec SQL may not lock rows (FOR UPDATE, FOR SHARE): ${shown(original)}`);
    if (kind === 'CommonTableExpr') {
      ctes.add(value.ctename as string);
      if (!('SelectStmt' in (value.ctequery as Node))) throw new SqlRefusedError(`spec SQL may not change data in a WITH clause: ${shown(original)}`);
    }
    if (kind === 'FuncCall') {
      const name = ((value.funcname as Node[]).at(-1)?.String as Node | undefined)?.sval as string | undefined;
      if (name) functions.add(name.toLowerCase());
      if (name && actsOutside(name)) throw new SqlRefusedError(`spec SQL may not call ${name}(), which acts outside the query: ${shown(original)}`);
    }
    if (kind === 'RangeVar') relations.push({ schema: (value.schemaname as string | undefined) ?? null, name: value.relname as string });
  });
  // Locations count bytes: the statement alone drops a trailing semicolon and what follows it.
  const bytes = Buffer.from(text);
  return { text: length > 0 ? bytes.subarray(at, at + length).toString() : bytes.subarray(at).toString(), relations, ctes, functions };
}

const cache = new Map<string, Promise<ParsedQuery>>();

/** The parse of spec SQL (its `:name` parameters already numbered), or the reason it is refused. */
export function parseQuery(text: string, original: string): Promise<ParsedQuery> {
  let parsed = cache.get(text);
  if (!parsed) {
    if (cache.size >= 1000) cache.clear();
    parsed = analyse(text, original);
    cache.set(text, parsed);
  }
  return parsed;
}
