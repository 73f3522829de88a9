/**
 * What lineage reads from the warehouse, through its public interface only: the datasets'
 * OpenLineage names and their columns, as the warehouse answers them itself
 * (`Warehouse.lineageDataset`, never spec SQL), and what one backfill run published into each
 * (rows, and the checks that warned), from the ledger a page at a time.
 */
import { countCheckFailures, locationNamespace, type LineageDataset } from '../../core/openlineage.ts';
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
  constructor(private readonly warehouse: Warehouse) {}

  /**
   * The node's dataset, with its columns once it exists. A warehouse that does not name its
   * datasets (an adapter without `lineageDataset`) still has them in every event: named after
   * its location, without a schema.
   */
  async dataset(node: string): Promise<LineageDataset> {
    const told = (await this.warehouse.lineageDataset?.(node)) ?? null;
    if (!told) return { namespace: locationNamespace(this.warehouse.kind, this.warehouse.location), name: node };
    return { namespace: told.namespace, name: told.name, ...(told.fields ? { fields: told.fields } : {}) };
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
