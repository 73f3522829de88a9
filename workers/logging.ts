/**
 * Worker logs. By default the SDK's human-readable lines at WARN; with `--log-format json` (or
 * BACKFILL_LOG_FORMAT=json) one JSON object per line, at INFO unless BACKFILL_LOG_LEVEL says
 * otherwise (the command line reads both). Either way every line goes through the Runtime
 * logger: the activities' and workflows' own, the SDK's, and the native core's (forwarded, see
 * telemetry.ts).
 */
import { formatWithOptions } from 'node:util';
import type { LogLevel } from '@temporalio/common';
import { POLICY_REFUSAL } from '../core/policy.ts';
import { DefaultLogger, GracefulShutdownPeriodExpiredError, type ActivityInterceptorsFactory, type LogEntry, type LogMetadata, type Logger } from '@temporalio/worker';
import { BackfillError } from '../core/errors.ts';
import { isRunPartitionsInput, partitionAttributes } from '../activities/telemetry.ts';

export type LogFormat = 'text' | 'json';
export type LogSettings = { format: LogFormat; level: LogLevel };

const FORMATS: readonly LogFormat[] = ['text', 'json'];
const LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/**
 * Log settings from values: the format (--log-format or $BACKFILL_LOG_FORMAT, default text) and
 * the level ($BACKFILL_LOG_LEVEL, any case; default INFO for JSON, WARN for text).
 */
export function logSettings(format = 'text', level?: string): LogSettings {
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw new BackfillError('invalid_argument', `--log-format '${format}' is not a log format: use text (human-readable) or json (one object per line)`, 'log-format');
  }
  const upper = (level || (format === 'json' ? 'INFO' : 'WARN')).toUpperCase();
  if (!(LEVELS as readonly string[]).includes(upper)) {
    throw new BackfillError('invalid_argument', `BACKFILL_LOG_LEVEL '${level}' is not a log level: use one of ${LEVELS.join(', ')}`, 'log-level');
  }
  return { format: format as LogFormat, level: upper as LogLevel };
}

/** Attributes that are noise in a log line (the task token is an opaque credential-like blob). */
const DROPPED = new Set(['taskToken']);

/** JSON-safe: errors as name, message and type; bigints as strings; cycles cut. */
function plain(value: unknown, ancestors: object[]): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (ancestors.includes(value)) return '[circular]';
  const inner = [...ancestors, value];
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) {
    const { type, cause } = value as Error & { type?: unknown };
    return {
      name: value.name,
      message: value.message,
      ...(typeof type === 'string' ? { type } : {}),
      ...(cause !== undefined ? { cause: plain(cause, inner) } : {}),
    };
  }
  if (Array.isArray(value)) return value.map((item) => plain(item, inner));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item, inner)]));
}

/** One log entry as one line of JSON: timestamp, level and message first, then the attributes. */
export function jsonLine(entry: LogEntry): string {
  const record: Record<string, unknown> = {
    timestamp: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    level: entry.level,
    message: entry.message,
  };
  for (const [key, value] of Object.entries(entry.meta ?? {})) {
    if (DROPPED.has(key) || key in record) continue;
    record[key] = plain(value, []);
  }
  return `${JSON.stringify(record)}\n`;
}

/**
 * What the SDK says of every worker of a process that serves only activities: the activity
 * queues' workers and the policy queue's (`<workflow queue>.policy`) have no workflows on
 * purpose, so its warning would greet every `backfill worker` with a fault that is not one.
 */
const ACTIVITIES_ONLY = 'No workflows registered, not polling for workflow tasks';

/**
 * What the SDK logs, with a long stack, when a worker gives up at its shutdownForceTime.
 * createWorkers reports that itself (ShutdownExpiredError), naming each abandoned partition.
 */
function shutdownExpired(message: string, meta: LogMetadata | undefined): boolean {
  return message === 'Worker failed' && meta?.error instanceof GracefulShutdownPeriodExpiredError;
}

/**
 * A text line's attributes without the task token, and, for the SDK's "Activity failed" of a
 * partition activity (which logs the partition's failure itself: `partition failed`), its error
 * as one line: printed whole, the stack, the causes and the token made some sixty lines of one
 * failed partition. The JSON format keeps errors as name, message and type (`plain`) already.
 */
export function textMeta(message: string, meta: LogMetadata): LogMetadata {
  const { taskToken: _token, ...all } = meta;
  const rest = 'backfillId' in all ? withoutSdkContext(all) : all;
  const { error } = rest;
  if (message !== 'Activity failed' || !('backfillId' in rest) || !(error instanceof Error)) return rest;
  const { type } = error as Error & { type?: unknown };
  return { ...rest, error: `${error.name}${typeof type === 'string' && type !== error.name ? ` (${type})` : ''}: ${error.message}` };
}

/**
 * What the SDK adds to each line of an activity or workflow. On a line that names its backfill
 * (and node, partition), a terminal does without it: two such blocks of twenty lines for each
 * failed partition flooded `backfill dev`. The JSON format keeps it.
 */
const SDK_CONTEXT = new Set(['sdkComponent', 'isLocal', 'namespace', 'taskQueue', 'activityId', 'activityType', 'workflowId', 'workflowRunId', 'workflowType']);

function withoutSdkContext(meta: LogMetadata): LogMetadata {
  return Object.fromEntries(Object.entries(meta).filter(([key]) => !SDK_CONTEXT.has(key)));
}

/** A text entry on one line (an error's stack, for a fault the product does not log itself, still follows it). */
export function textLine(entry: LogEntry, colors = process.stderr.hasColors?.() ?? false): string {
  const at = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = entry.meta === undefined ? '' : ` ${formatWithOptions({ colors, breakLength: Infinity, compact: true }, entry.meta)}`;
  return `${at} [${entry.level}] ${entry.message}${meta}\n`;
}

/**
 * The SDK's "Workflow failed" of a backfill the policy refused to start, an outcome the starter
 * is told (`start` says why) and no fault: its error's message, to log on one line at INFO (the
 * SDK logs it at WARN with a stack); undefined for any other failure. Told by the message: the
 * error comes from the workflow thread as a plain Error, without its failure type.
 */
export function refusedWorkflow(message: string, meta: LogMetadata | undefined): string | undefined {
  if (message !== 'Workflow failed' || typeof meta?.error !== 'object' || meta.error === null) return undefined;
  const { message: text } = meta.error as { message?: unknown };
  return typeof text === 'string' && text.startsWith(POLICY_REFUSAL) ? text : undefined;
}

/** The SDK's logger, at the settings' level and format, without the warning `ACTIVITIES_ONLY` and the error `shutdownExpired`, and a refused start on one line. */
class WorkerLogger extends DefaultLogger {
  constructor(
    level: LogLevel,
    private readonly text: boolean,
    logFunction?: (entry: LogEntry) => void,
  ) {
    super(level, logFunction);
  }

  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (message === ACTIVITIES_ONLY || shutdownExpired(message, meta)) return;
    const refused = refusedWorkflow(message, meta);
    if (refused !== undefined && meta !== undefined) {
      const { error: _error, ...rest } = meta;
      const kept = this.text ? textMeta(message, rest) : rest;
      return super.log('INFO', 'workflow refused to start', { ...kept, refused });
    }
    super.log(level, message, this.text && meta !== undefined ? textMeta(message, meta) : meta);
  }
}

export function createLogger(settings: LogSettings): Logger {
  if (settings.format === 'text') return new WorkerLogger(settings.level, true, (entry) => void process.stderr.write(textLine(entry)));
  return new WorkerLogger(settings.level, false, (entry) => void process.stderr.write(jsonLine(entry)));
}

/**
 * A line the process always prints, whatever the level (that the worker polls, where it
 * listens, why it stopped): plain text, or a JSON line in the JSON format.
 */
export function announce(settings: LogSettings, message: string, meta: Record<string, unknown> = {}, level: LogLevel = 'INFO'): void {
  if (settings.format === 'text') {
    process.stderr.write(`${message}\n`);
    return;
  }
  process.stderr.write(jsonLine({ level, message, meta, timestampNanos: BigInt(Date.now()) * 1_000_000n }));
}

/**
 * Puts the backfill id, node and partition on every log line of a partition activity,
 * the SDK's own ("Activity failed") included; the SDK adds the attempt.
 */
export const partitionLogAttributes: ActivityInterceptorsFactory = () => {
  let attributes: Record<string, unknown> = {};
  return {
    inbound: {
      execute: (input, next) => {
        if (isRunPartitionsInput(input.args[0])) attributes = partitionAttributes(input.args[0]);
        return next(input);
      },
    },
    outbound: {
      getLogAttributes: (input, next) => next({ ...input, ...attributes }),
    },
  };
};
