/**
 * What lineage reads from the warehouse, through its public interface only: the datasets'
 * OpenLineage names, their columns as the warehouse knows them, and what one backfill run
 * published into each (rows, and the checks that warned), from the ledger a page at a time.
 */
import { hostname } from 'node:os';
import { countCheckFailures, postgresNamespace, sqliteNamespace, type DatasetName, type SchemaField } from '../../core/openlineage.ts';
import type { CheckInput } from '../../core/spec.ts';
import type { ChangeCursor, Warehouse } from '../warehouse/types.ts';

/** What a run did to one dataset, from the ledger rows of the versions it published. */
export type RunOutcome = {
  /** Partitions the run published, and their rows (each partition's newest version of the run). */
  partitions: number;
  rowCount: number;
  /** Partitions published with a warning, by the label of the check that warned. */
  warnings: Map<string, number>;
};

/** Partitions read from the ledger at a time: memory stays bounded whatever the size of the node. */
const PAGE = 500;

export class WarehouseFacts {
  private constructor(
    private readonly warehouse: Warehouse,
    private readonly namespace: string,
    /** The qualified name of a node's dataset without the node: `db.schema.` or `main.`. */
    private readonly prefix: string,
  ) {}

  /** Learns once where the warehouse's datasets live. */
  static async of(warehouse: Warehouse, host = hostname()): Promise<WarehouseFacts> {
    if (warehouse.kind === 'postgres') {
      const [row] = await warehouse.query('SELECT current_database() AS db, current_schema() AS schema');
      return new WarehouseFacts(warehouse, postgresNamespace(warehouse.location), `${String(row?.db)}.${String(row?.schema)}.`);
    }
    // SQLite: the file the connection has open (the location may be relative).
    const [row] = await warehouse.query("SELECT file FROM pragma_database_list WHERE name = 'main'");
    const file = typeof row?.file === 'string' && row.file.length > 0 ? row.file : warehouse.location;
    return new WarehouseFacts(warehouse, sqliteNamespace(host, file), 'main.');
  }

  dataset(node: string): DatasetName {
    return { namespace: this.namespace, name: `${this.prefix}${node}` };
  }

  /** The dataset's columns in order, or undefined when it does not exist yet. */
  async fields(node: string): Promise<SchemaField[] | undefined> {
    const sql =
      this.warehouse.kind === 'postgres'
        ? `SELECT column_name AS name, data_type AS type FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = :view ORDER BY ordinal_position`
        : 'SELECT name, type FROM pragma_table_info(:view) ORDER BY cid';
    const rows = await this.warehouse.query(sql, { view: node });
    if (rows.length === 0) return undefined;
    return rows.map((r) => (typeof r.type === 'string' && r.type.length > 0 ? { name: String(r.name), type: r.type.toUpperCase() } : { name: String(r.name) }));
  }

  /** What the run published into `node`, a page of the ledger at a time. */
  async runOutcome(backfillId: string, runKey: string, node: string, checks: readonly CheckInput[]): Promise<RunOutcome> {
    const outcome: RunOutcome = { partitions: 0, rowCount: 0, warnings: new Map() };
    let after: ChangeCursor | undefined;
    do {
      const page = await this.warehouse.changesBy(backfillId, { node, limit: PAGE, ...(after ? { after } : {}) });
      const rows = await this.warehouse.ledgerVersions(node, page.changes.map((c) => [c.partition, c.version] as const));
      for (const row of rows) {
        if (row.runKey !== runKey || row.status !== 'published') continue;
        outcome.partitions++;
        outcome.rowCount += row.rowCount ?? 0;
        if (row.warnings.length > 0) countCheckFailures(checks, row.warnings.map((message) => ({ message, partitions: 1 })), outcome.warnings);
      }
      after = page.next ?? undefined;
    } while (after);
    return outcome;
  }
}
