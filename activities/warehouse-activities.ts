/**
 * Activities about the warehouse itself, for the backfill workflow: which warehouse a worker
 * writes to (a backfill records it at start, and partitions refuse another), and the dataset
 * leases that make one writer per dataset atomic.
 */
import type { DatasetLease, LeaseOutcome, Warehouse } from './warehouse/types.ts';

export function createWarehouseActivities(deps: { warehouse: Warehouse }) {
  const { warehouse } = deps;
  return {
    /** The identity and location (without a password) of this worker's warehouse. */
    async warehouseIdentity(): Promise<{ id: string; location: string }> {
      return { id: await warehouse.identity(), location: warehouse.location };
    },
    /** Leases the datasets to the run, all or none; refused, it names the runs that hold them. */
    acquireDatasets(lease: DatasetLease): Promise<LeaseOutcome> {
      return warehouse.acquireDatasets(lease);
    },
    releaseDatasets(run: { backfillId: string; runKey: string }): Promise<void> {
      return warehouse.releaseDatasets(run);
    },
  };
}

export type WarehouseActivities = ReturnType<typeof createWarehouseActivities>;
