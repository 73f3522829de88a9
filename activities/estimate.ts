/**
 * `estimatePartitionSeconds`: the estimate the policy's approval threshold
 * (`approval.maxPartitionSeconds`) is held against, computed by the workers from the
 * warehouse's ledger of earlier runs (as `plan --estimate` does), never taken from the client:
 * a starter cannot make a large backfill look small. A node with no history whose duration
 * cannot be told (not `sleep` with its `ms`, not `noop`) makes the estimate unknown, and an
 * unknown estimate waits for an approval.
 */
import { partitionSeconds } from '../core/estimate.ts';
import { expandPlan } from '../core/plan.ts';
import type { RangesJSON } from '../core/ranges.ts';
import type { PartitionRange, ResolvedSpec } from '../core/spec.ts';
import { nodeHistory } from '../client/estimate.ts';
import type { Warehouse } from './warehouse/types.ts';
import { heartbeatingAll } from './heartbeating.ts';

export type EstimateInput = { spec: ResolvedSpec; range: PartitionRange; skip?: Record<string, RangesJSON> };

export type PartitionSecondsEstimate = {
  /** Null when some node's durations cannot be told (see `unknown`). */
  partitionSeconds: number | null;
  /** Nodes with no history and no known duration. */
  unknown: string[];
  /** Ledger rows the estimate rests on. */
  ledgerRows: number;
};

export function createEstimateActivities(deps: { warehouse: Pick<Warehouse, 'publishedRows'> }) {
  return heartbeatingAll({
    async estimatePartitionSeconds(input: EstimateInput): Promise<PartitionSecondsEstimate> {
      const plan = expandPlan(input.spec, input.range);
      const timings = new Map();
      const unknown: string[] = [];
      let ledgerRows = 0;
      for (const node of plan.nodes) {
        const history = nodeHistory(node, await deps.warehouse.publishedRows(node.id), null);
        if (history.source.kind === 'history') ledgerRows += history.source.ledgerRows;
        else if (history.rowsPerPartition === null) unknown.push(node.id);
        timings.set(node.id, history.timing);
      }
      return { partitionSeconds: unknown.length > 0 ? null : partitionSeconds(plan, timings, input.skip), unknown, ledgerRows };
    },
  });
}

export type EstimateActivities = ReturnType<typeof createEstimateActivities>;
