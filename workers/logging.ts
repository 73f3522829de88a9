/**
 * Worker logs. By default the SDK's human-readable lines at WARN; with `--log-format json` (or
 * BACKFILL_LOG_FORMAT=json) one JSON object per line, at INFO unless BACKFILL_LOG_LEVEL says
 * otherwise. Either way every line goes through the Runtime logger: the activities' and
 * workflows' own, the SDK's, and the native core's (forwarded, see telemetry.ts).
 */
import type { LogLevel } from '@temporalio/common';
import { DefaultLogger, type ActivityInterceptorsFactory, type LogEntry, type Logger } from '@temporalio/worker';
import { BackfillError } from '../core/errors.ts';
import { isRunPartitionsInput, partitionAttributes } from '../activities/telemetry.ts';

export type LogFormat = 'text' | 'json';
export type LogSettings = { format: LogFormat; level: LogLevel };

const FORMATS: readonly LogFormat[] = ['text', 'json'];
const LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/** The format from --log-format, else $BACKFILL_LOG_FORMAT; the level from $BACKFILL_LOG_LEVEL. */
export function logSettings(flag?: string, env: NodeJS.ProcessEnv = process.env): LogSettings {
  const [format, source] = flag !== undefined ? [flag, '--log-format'] : [env.BACKFILL_LOG_FORMAT || 'text', 'BACKFILL_LOG_FORMAT'];
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw new BackfillError('invalid_argument', `${source} '${format}' is not a log format: use text (human-readable) or json (one object per line)`, 'log-format');
  }
  const level = (env.BACKFILL_LOG_LEVEL || (format === 'json' ? 'INFO' : 'WARN')).toUpperCase();
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new BackfillError('invalid_argument', `BACKFILL_LOG_LEVEL '${env.BACKFILL_LOG_LEVEL}' is not a log level: use one of ${LEVELS.join(', ')}`, 'log-level');
  }
  return { format: format as LogFormat, level: level as LogLevel };
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

export function createLogger(settings: LogSettings): Logger {
  if (settings.format === 'text') return new DefaultLogger(settings.level);
  return new DefaultLogger(settings.level, (entry) => void process.stderr.write(jsonLine(entry)));
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
