/**
 * Activities about the warehouse itself, for the backfill workflow: which warehouse a worker
 * writes to (a backfill records it at start, and partitions refuse another), and the dataset
 * leases that make one writer per dataset atomic, and a staged backfill's publish and discard.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { canaryDiffOf, type CanaryDiff } from '../core/canary.ts';
import { diffKeys } from '../core/diff-keys.ts';
import { PARTITION_FAILURES } from '../core/protocol.ts';
import { diffSummary } from './warehouse/staging.ts';
import type { ClaimOutcome } from '../core/signature-claim.ts';
import { ClaimsUnsupportedError, StaleRunError, type SignatureClaim, type DatasetLease, type LeaseOutcome, type StagedOutcome, type StagedRun, type Warehouse } from './warehouse/types.ts';
import { heartbeatingAll } from './heartbeating.ts';

/** A refusal that will not heal by retrying (another run leases a dataset) fails the activity for good. */
async function refusingStale<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof StaleRunError) throw ApplicationFailure.nonRetryable(error.message, PARTITION_FAILURES.staleRun);
    throw error;
  }
}

export function createWarehouseActivities(deps: { warehouse: Warehouse }) {
  const { warehouse } = deps;
  return heartbeatingAll({
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
    /**
     * A signed start's claim (core/signature-claim.ts), by the workflow that admitted it: the run
     * that holds the signature, or that this warehouse keeps no claims. `warehouseId`: the
     * warehouse a resumed backfill started on, where its claims are; a worker on another refuses
     * (for good: the claim there would not count).
     */
    async claimSignature(claim: SignatureClaim & { warehouseId?: string }): Promise<ClaimOutcome> {
      const { warehouseId, ...rest } = claim;
      if (warehouseId !== undefined) {
        const id = await warehouse.identity();
        if (id !== warehouseId) {
          throw ApplicationFailure.nonRetryable(`they write to warehouse ${warehouse.location} (identity ${id}), not the backfill's (identity ${warehouseId})`, 'WrongWarehouse');
        }
      }
      if (!warehouse.claimSignature) return { claimed: false, unsupported: `the warehouse ${warehouse.location} (${warehouse.kind}) keeps no signature claims` };
      try {
        const holder = await warehouse.claimSignature(rest);
        // Whose it is, decided here: a reset run replays this answer under a run id of its own.
        return { claimed: true, holder, mine: holder.workflowId === rest.workflowId && holder.runId === rest.runId };
      } catch (error) {
        if (error instanceof ClaimsUnsupportedError) return { claimed: false, unsupported: error.message };
        throw error;
      }
    },
    /** Publishes every version the run staged, in one transaction (a staged backfill's publish). */
    publishStaged(run: StagedRun): Promise<StagedOutcome> {
      return refusingStale(() => warehouse.publishStaged(run));
    },
    /** Drops every version the run staged (a staged backfill's discard). */
    discardStaged(run: StagedRun): Promise<StagedOutcome> {
      return refusingStale(() => warehouse.discardStaged(run));
    },
    /** Drops every version an ended run staged (it was cancelled or failed while staging); refused while the run still leases a dataset. */
    discardEndedRun(run: StagedRun): Promise<StagedOutcome> {
      return refusingStale(() => warehouse.discardStaged(run, { ended: true }));
    },
    /**
     * What the run's staged versions change, counted per dataset (a canary's slice, for status and
     * canary.auto), by the key columns the nodes declare. The nodes come from the workflow's input,
     * which anyone may write: their keys are parsed again (`diffKeys`).
     */
    async diffStagedCounts(run: StagedRun, nodes: ReadonlyArray<{ id: string; key?: unknown }> = []): Promise<CanaryDiff> {
      let keys: Record<string, string[]>;
      try {
        keys = diffKeys(nodes);
      } catch (error) {
        // The same input fails every attempt.
        throw ApplicationFailure.nonRetryable(error instanceof Error ? error.message : String(error), 'invalid_spec');
      }
      return canaryDiffOf(await diffSummary((page) => warehouse.diffStaged(run, page), Object.keys(keys).length > 0 ? keys : undefined));
    },
  });
}

export type WarehouseActivities = ReturnType<typeof createWarehouseActivities>;
