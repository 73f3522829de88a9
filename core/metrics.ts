/**
 * Names of the `backfill_*` Prometheus metrics, shared by the code that emits them, the
 * worker's exporter settings and the Grafana dashboard (deploy/grafana/backfill.json).
 *
 * All go through the SDK's metric meters, so they carry the meter's own labels too:
 * `namespace`, `taskQueue` and `activityType` (activity) or `workflowType` (workflow).
 */

/** Emitted by the partition activity, labelled `node` (failures also `type` and `final`). */
export const PARTITION_METRICS = {
  completed: 'backfill_partitions_completed',
  failed: 'backfill_partitions_failed',
  duration: 'backfill_partition_duration_seconds',
  rows: 'backfill_rows_written',
  throttles: 'backfill_throttle_events',
} as const;

/**
 * Gauges for the node workflows to set through the workflow `metricMeter`, labelled `node` and
 * `task_queue` (the node's activity queue); not the backfill id, for the reason the partition
 * metrics leave it out (activities/telemetry.ts):
 * - rate: the node's current pace in partitions per second (after throttling), 0 when unlimited
 *   (SDK gauges take no negative values, and a throttled pace never reaches 0);
 * - concurrency: the node's current concurrency cap.
 * The exporter keeps a series at its last value: a node that ends sets its concurrency to 0.
 */
export const NODE_GAUGES = {
  rate: 'backfill_node_rate',
  concurrency: 'backfill_node_concurrency',
} as const;

/** Partition durations, from a fast SQL partition to an hour-long one (the SDK's defaults are for milliseconds). */
export const DURATION_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
