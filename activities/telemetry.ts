/**
 * What the partition activity tells operators: `backfill_*` metrics through the activity's
 * metric meter (so they come out of the worker's Prometheus endpoint, next to the SDK's own),
 * and log lines through the activity's logger (so they carry the SDK's activity attributes and
 * go wherever the worker's logs go, JSON or text).
 *
 * Labels: `node`, plus what the SDK's activity meter adds (`namespace`, `taskQueue`,
 * `activityType`). Not the backfill id: a worker lives through many backfills and the
 * exporter keeps every series it has seen, so per-backfill series would grow without bound.
 */
import type { Context } from '@temporalio/activity';
import type { MetricCounter, MetricHistogram } from '@temporalio/common';
import { PARTITION_METRICS as METRICS } from '../core/metrics.ts';
import type { PartitionResult, PartitionTask, RunPartitionsInput } from '../core/protocol.ts';

/** `partition` is the key, or `first..last` for a batch (whose lines about one partition name it). */
export function partitionAttributes(input: RunPartitionsInput): Record<string, string | number> {
  const first = input.partitions[0]?.key ?? '';
  const last = input.partitions[input.partitions.length - 1]?.key ?? '';
  return {
    backfillId: input.backfillId,
    node: input.node.id,
    partition: first === last ? first : `${first}..${last}`,
    ...(input.partitions.length > 1 ? { partitions: input.partitions.length } : {}),
  };
}

/** Whether an activity argument is the partition activity's input (the clock activity has none). */
export function isRunPartitionsInput(value: unknown): value is RunPartitionsInput {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<RunPartitionsInput>;
  return typeof candidate.backfillId === 'string' && typeof candidate.node?.id === 'string' && Array.isArray(candidate.partitions);
}

export class PartitionTelemetry {
  private meters: { completed: MetricCounter; failures: MetricCounter; duration: MetricHistogram; rows: MetricCounter; throttles: MetricCounter } | undefined;

  constructor(
    private readonly ctx: Context,
    private readonly input: RunPartitionsInput,
  ) {}

  /** Made on first use: an activity that records nothing (a dry run) pays nothing. */
  private get metrics() {
    if (!this.meters) {
      const meter = this.ctx.metricMeter.withTags({ node: this.input.node.id });
      this.meters = {
        completed: meter.createCounter(METRICS.completed, '', 'Partitions published (or found published by an earlier attempt)'),
        failures: meter.createCounter(METRICS.failed, '', 'Failed partition attempts; final="true" when the partition will not be retried'),
        duration: meter.createHistogram(METRICS.duration, 'float', 's', 'Time from the start of a partition to its publication'),
        rows: meter.createCounter(METRICS.rows, '', 'Rows of the partition versions published'),
        throttles: meter.createCounter(METRICS.throttles, '', 'Times a downstream system throttled a partition (ThrottledError)'),
      };
    }
    return this.meters;
  }

  private attributes(key: string): Record<string, string | number> {
    return { backfillId: this.input.backfillId, node: this.input.node.id, partition: key };
  }

  published(result: PartitionResult): void {
    const seconds = Math.max(0, result.finishedAt - result.startedAt) / 1000;
    this.metrics.completed.add(1);
    this.metrics.rows.add(result.rowCount);
    this.metrics.duration.record(seconds);
    this.ctx.log.info('partition published', { ...this.attributes(result.key), version: result.version, rows: result.rowCount, durationMs: Math.round(seconds * 1000) });
  }

  /** A retry after a crash that followed the commit: the partition is there, nothing was written now. */
  foundPublished(result: PartitionResult): void {
    this.metrics.completed.add(1);
    this.ctx.log.info('partition already published by an earlier attempt', { ...this.attributes(result.key), version: result.version });
  }

  failed(task: PartitionTask, error: unknown, type: string, nonRetryable: boolean): void {
    const final = nonRetryable || this.ctx.info.attempt >= this.input.maxAttempts;
    this.metrics.failures.add(1, { type, final: String(final) });
    const message = error instanceof Error ? error.message : String(error);
    const meta = { ...this.attributes(task.key), errorType: type, error: message, willRetry: !final };
    // A retry is routine (the SDK warns about every failed attempt anyway); a partition lost for good is not.
    if (final) this.ctx.log.error('partition failed', meta);
    else this.ctx.log.info('partition failed, will retry', meta);
  }

  throttled(task: PartitionTask, message: string): void {
    this.metrics.throttles.add(1);
    this.ctx.log.warn('partition throttled by the downstream system', { ...this.attributes(task.key), error: message });
  }
}
