/**
 * What lineage reads from the warehouse, through its public interface only: the datasets'
 * OpenLineage names, their columns as the warehouse knows them, and what one backfill run
 * published into each (rows, and the checks' failures and warnings from the ledger).
 */
import { hostname } from 'node:os';
import { postgresNamespace, sqliteNamespace, type DatasetName, type SchemaField } from '../../core/openlineage.ts';
import type { Warehouse } from '../warehouse/types.ts';

/** What a run did to one dataset, from the ledger rows it wrote. */
export type RunOutcome = {
  /** Partitions the run published, and their rows (each partition's newest version of the run). */
  partitions: number;
  rowCount: number;
  /** Failed checks (`<label>: ...`) of every partition version the run wrote: errors that blocked it, warnings it was published with. */
  problems: string[];
};

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

  async runOutcome(backfillId: string, runKey: string, node: string): Promise<RunOutcome> {
    const rows = (await this.warehouse.ledger({ backfillId, node })).filter((r) => r.runKey === runKey);
    const published = new Map<string, number>();
    const problems: string[] = [];
    // Rows come newest version first within a partition.
    for (const row of rows) {
      if (row.status === 'published') {
        if (!published.has(row.partition)) published.set(row.partition, row.rowCount ?? 0);
        problems.push(...row.warnings);
      } else if (row.error) {
        problems.push(...row.error.split('; '));
      }
    }
    let rowCount = 0;
    for (const n of published.values()) rowCount += n;
    return { partitions: published.size, rowCount, problems };
  }
}
