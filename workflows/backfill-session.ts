/**
 * What a backfill does around its partitions, outside the coordinator: at the start of a run
 * that starts its node workflows it learns which warehouse its workers write to and leases
 * its datasets there (one writer per dataset, all or none; a partition activity of another
 * run key can then no longer publish them), and at its end it releases them. It also emits
 * the OpenLineage events of the backfill's run and of each node's run.
 *
 * Whether a backfill does either is decided once, by a patch at its first start, and carried
 * (`BackfillCarry.warehouse`, `.lineage`): a backfill started before these existed never
 * releases what it did not lease, nor ends a lineage run it never started.
 */
import { ApplicationFailure, log, patched, proxyActivities } from '@temporalio/workflow';
import { ACTIVITY_HEARTBEAT_TIMEOUT } from '../core/heartbeat.ts';
import { backfillEnded, backfillStarted, nodeEnded, nodeSettled, nodeStarted, type LineageBackfill } from '../core/lineage-calls.ts';
import type { BackfillCarry, BackfillResult, NodeProgress } from '../core/protocol.ts';
import type { PartitionRange, ResolvedNode } from '../core/spec.ts';
import { leftRunning, waitHint } from '../core/busy-datasets.ts';
import type { LineageActivities } from '../activities/lineage/activity.ts';
import type { WarehouseActivities } from '../activities/warehouse-activities.ts';
import { workflowTime } from './clock.ts';

/** Patch (docs/workflow-versions.md): a backfill records its warehouse's identity and leases its datasets. */
export const WAREHOUSE_LEASE = 'warehouse-lease';
/** Patch (docs/workflow-versions.md): a backfill emits OpenLineage events. */
export const OPENLINEAGE_EVENTS = 'openlineage-events';
/**
 * Patch (docs/workflow-versions.md): a backfill that fails before its node workflows start (a
 * refused lease, the wrong warehouse) ends no lineage run: none of them had a START.
 */
export const LINEAGE_ENDS_STARTED_RUNS = 'lineage-ends-started-runs';
/**
 * Patch (docs/workflow-versions.md): a retry in place starts again (same run id) the lineage
 * run of every node it hands partitions back to whose run had ended, so that it ends again.
 */
export const LINEAGE_RETRY_RESTARTS_RUNS = 'lineage-retry-restarts-runs';
/**
 * Patch (docs/workflow-versions.md): every failure of the backfill (an activity's, such as the
 * release of its leases; a node workflow that cannot be started again) cleans up as an
 * ApplicationFailure does: its node workflows are cancelled, its lineage runs end, its leases are
 * released. Before, only an ApplicationFailure (and a cancellation) did; any other failure failed
 * the backfill at once and left all three. Only a run that fails so asks, or whose end is
 * reached twice (a cancel during the release at its end): its lineage run ends once.
 */
export const EVERY_FAILURE_CLEANED = 'every-failure-cleaned';

export type SessionContext = {
  backfillId: string;
  runKey: string;
  startedAt: number;
  range: PartitionRange;
  /** Where these activities run: the task queue of the backfill's first node (its workers write to the backfill's warehouse). */
  taskQueue: string;
  nodes(): readonly ResolvedNode[];
  name: string;
  description?: string;
};

export class BackfillSession {
  /** The warehouse the backfill writes to; undefined: not recorded (a backfill started before it was). */
  private warehouse: { id: string; location: string } | undefined;
  /** Set when the backfill emits lineage: the nodes whose run's end was emitted. */
  private readonly lineageEnded: Set<string> | undefined;
  /** The lineage runs had their START (in this run, or in the one before a continue-as-new). */
  private runsStarted: boolean;
  /** Behind LINEAGE_ENDS_STARTED_RUNS: runs that never started are never ended. */
  private readonly endsStartedOnly: boolean;
  /** Behind LINEAGE_RETRY_RESTARTS_RUNS: a retry in place starts the ended runs of its nodes again. */
  private readonly retryRestarts: boolean;
  /** The backfill's run has ended: a cleanup after a failure that came once it had (its leases' release) ends nothing again. */
  private runEnded = false;
  /** Lineage events on their way: a run ends or continues as new only once they have landed. */
  private readonly emitting = new Set<Promise<unknown>>();
  private readonly warehouseActivities: WarehouseActivities;
  private readonly lineageActivities: LineageActivities;

  constructor(
    private readonly context: SessionContext,
    carry: Pick<BackfillCarry, 'warehouse' | 'lineage'> | undefined,
    starting: boolean,
  ) {
    this.warehouse = carry?.warehouse;
    // A run that starts the node workflows (a new backfill, or one resumed) starts every lineage
    // run afresh, and decides whether to emit at all; a run after continue-as-new carries both.
    const emits = starting ? carry?.lineage !== undefined || patched(OPENLINEAGE_EVENTS) : carry?.lineage !== undefined;
    this.lineageEnded = emits ? new Set(starting ? [] : carry?.lineage?.ended) : undefined;
    this.runsStarted = !starting;
    this.endsStartedOnly = emits && patched(LINEAGE_ENDS_STARTED_RUNS);
    this.retryRestarts = emits && patched(LINEAGE_RETRY_RESTARTS_RUNS);
    const options = { taskQueue: context.taskQueue, startToCloseTimeout: '1 minute', heartbeatTimeout: ACTIVITY_HEARTBEAT_TIMEOUT, retry: { maximumAttempts: 10, maximumInterval: '10 seconds' } } as const;
    this.warehouseActivities = proxyActivities<WarehouseActivities>({ ...options, summary: 'warehouse' });
    this.lineageActivities = proxyActivities<LineageActivities>({ ...options, summary: 'OpenLineage event', retry: { maximumAttempts: 3 } });
  }

  /** The identity node workflows hand their partitions, so that a worker of another warehouse refuses them. */
  get warehouseId(): string | undefined {
    return this.warehouse?.id;
  }

  /** Whether this run records the warehouse and leases the datasets: decided by a patch at a start, carried after. */
  get leasing(): boolean {
    return this.warehouse !== undefined || patched(WAREHOUSE_LEASE);
  }

  /**
   * At the start of a run that starts the node workflows (when `leasing`): which warehouse the
   * workers write to (a resumed backfill must find the one it started on), then the leases of
   * its datasets.
   */
  async begin(): Promise<void> {
    const found = await this.warehouseActivities.warehouseIdentity();
    if (this.warehouse !== undefined && this.warehouse.id !== found.id) {
      throw ApplicationFailure.nonRetryable(
        `backfill '${this.context.backfillId}' started on warehouse ${this.warehouse.location} (identity ${this.warehouse.id}), but the workers of task queue ` +
          `'${this.context.taskQueue}' write to ${found.location} (identity ${found.id}): run workers on the backfill's warehouse, then resume it`,
        'WrongWarehouse',
      );
    }
    this.warehouse = found;
    const nodes = this.context.nodes().map((n) => n.id);
    const lease = await this.warehouseActivities.acquireDatasets({ backfillId: this.context.backfillId, runKey: this.context.runKey, nodes });
    if (!lease.acquired) {
      const who = lease.holders.map((h) => `${h.node} by backfill '${h.backfillId}'`).join('; ');
      const first = lease.holders[0]?.backfillId ?? '';
      throw ApplicationFailure.create({
        message:
          `backfill '${this.context.backfillId}' would write datasets that another backfill writes in warehouse ${found.location} (${who}): one writer per dataset. ` +
          `Wait for it to end (${waitHint(first)}) or cancel it, then start this one again. If '${first}' has ended, ${leftRunning(first)}`,
        type: 'dataset_busy',
        nonRetryable: true,
      });
    }
  }

  /** Whether the backfill holds leases to release at its end (it recorded its warehouse). */
  get releases(): boolean {
    return this.warehouse !== undefined;
  }

  /** At the end of the backfill, whatever the end: the datasets are free for other backfills. */
  async release(): Promise<void> {
    if (this.warehouse === undefined) return;
    await this.warehouseActivities.releaseDatasets({ backfillId: this.context.backfillId, runKey: this.context.runKey });
  }

  private get lineageBackfill(): LineageBackfill {
    const { backfillId, runKey, startedAt, name, description, range } = this.context;
    return { backfillId, runKey, startedAt, spec: { name, ...(description !== undefined ? { description } : {}), nodes: [...this.context.nodes()] }, range };
  }

  private emit(input: Parameters<LineageActivities['emitLineage']>[0]): void {
    const sent: Promise<unknown> = this.lineageActivities.emitLineage(input).then(
      () => undefined,
      (error: unknown) => log.warn(`OpenLineage event not emitted: ${String(error)}`),
    );
    this.emitting.add(sent);
    void sent.finally(() => this.emitting.delete(sent));
  }

  /**
   * The backfill's run and every node's run START (the node workflows were just started); given
   * `only`, the nodes whose workflows started (others failed to): the rest never ran, so their
   * runs neither start nor end.
   */
  started(only?: readonly string[]): void {
    this.runsStarted = true;
    if (!this.lineageEnded) return;
    const backfill = this.lineageBackfill;
    const now = workflowTime();
    this.emit(backfillStarted(backfill, now));
    for (const node of this.context.nodes()) {
      if (only === undefined || only.includes(node.id)) this.emit(nodeStarted(backfill, node, now));
      else this.lineageEnded.add(node.id);
    }
  }

  /** Whether the backfill emits lineage. */
  get emitsLineage(): boolean {
    return this.lineageEnded !== undefined;
  }

  /** Whether the node's lineage run waits for its end (it has not ended). */
  awaitsEnd(id: string): boolean {
    return this.lineageEnded !== undefined && !this.lineageEnded.has(id);
  }

  /**
   * Ends the lineage run of every node that has settled (nothing of it pending or running): as
   * its progress says, or as `settled` says when given.
   */
  nodesSettled(progress: () => readonly NodeProgress[], settled?: (id: string) => boolean): void {
    if (!this.lineageEnded || this.lineageEnded.size === this.context.nodes().length) return;
    const backfill = this.lineageBackfill;
    for (const node of progress()) {
      if (this.lineageEnded.has(node.id) || !(settled ? settled(node.id) : nodeSettled(node))) continue;
      this.lineageEnded.add(node.id);
      this.emit(nodeEnded(backfill, this.context.nodes().find((n) => n.id === node.id)!, workflowTime(), node));
    }
  }

  /**
   * After a retry in place: the nodes given partitions to run again (no longer `settled`) whose
   * run had ended start it again, with the same run id; it ends again once they settle.
   */
  retried(settled: (id: string) => boolean): void {
    if (!this.lineageEnded || !this.retryRestarts) return;
    const backfill = this.lineageBackfill;
    const now = workflowTime();
    for (const node of this.context.nodes()) {
      if (!this.lineageEnded.has(node.id) || settled(node.id)) continue;
      this.lineageEnded.delete(node.id);
      this.emit(nodeStarted(backfill, node, now));
    }
  }

  /**
   * The backfill's end: the nodes not ended yet (cancelled: aborted), then the backfill's run;
   * `unpublished`: nothing the nodes wrote was published (a canary stopped by its slice).
   * `failedWith`: the backfill's run fails with this why, whatever `state` says of its nodes
   * (the release of its leases failed at its end).
   */
  ended(state: Exclude<BackfillResult['state'], 'discarded' | 'canary_failed'>, nodes: readonly NodeProgress[], why?: string, unpublished = false, failedWith?: string): void {
    if (!this.lineageEnded) return;
    // Refused before its node workflows started: no run of it had a START, so none ends.
    if (this.endsStartedOnly && !this.runsStarted) return;
    // A second end (a cancel during the release at the first): before the patch, its events were emitted again.
    if (this.runEnded && patched(EVERY_FAILURE_CLEANED)) return;
    this.runEnded = true;
    const backfill = this.lineageBackfill;
    const now = workflowTime();
    const cancelled = state === 'cancelled';
    for (const node of nodes) {
      if (this.lineageEnded.has(node.id)) continue;
      this.lineageEnded.add(node.id);
      this.emit(nodeEnded(backfill, this.context.nodes().find((n) => n.id === node.id)!, now, node, { cancelled, unpublished, ...(why !== undefined ? { why } : {}) }));
    }
    const failedPartitions = nodes.reduce((sum, n) => sum + n.failed, 0);
    const end = failedWith !== undefined ? { state: 'failed' as const, why: failedWith } : { state, failedPartitions, ...(why !== undefined ? { why } : {}) };
    this.emit(backfillEnded(backfill, now, end));
  }

  /** Lineage events on their way land first (before the run ends or continues as new). */
  async landed(): Promise<void> {
    while (this.emitting.size > 0) await Promise.all([...this.emitting]);
  }

  toCarry(): Pick<BackfillCarry, 'warehouse' | 'lineage'> {
    return {
      ...(this.warehouse !== undefined ? { warehouse: this.warehouse } : {}),
      ...(this.lineageEnded ? { lineage: { ended: [...this.lineageEnded] } } : {}),
    };
  }
}
