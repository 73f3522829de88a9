/**
 * Names of the `backfill_*` Prometheus metrics, shared by the code that emits them, the
 * worker's exporter settings and the Grafana dashboard (deploy/grafana/backfill.json).
 *
 * All go through the SDK's metric meters, so they carry the meter's own labels too:
 * `namespace`, `taskQueue` and `activityType` (activity) or `workflowType` (workflow).
 */

/**
 * Emitted by the partition activity, labelled `node` (failures also `type` and `final`).
 * `duration`: per published partition, its transform's time plus its share of the wall time of
 * the publish it was committed in (the batch's commit divided by its partitions), waiting for the
 * warehouse's writer included; the ledger's `duration_ms` (the report's durations) counts its
 * own statements and checks only, so the histogram reads higher where publishes queue (SQLite's
 * one writer).
 */
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

/**
 * Partition durations in seconds, from a millisecond SQL partition to an hour-long one (the SDK's
 * defaults are for milliseconds). Before, the smallest was 0.05 s: p50 and p95 of partitions of
 * 1–12 ms all read as "under 50 ms".
 */
export const DURATION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
