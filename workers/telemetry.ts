/**
 * The Temporal runtime of a worker process: its logger, the forwarding of the native core's
 * logs to it, and the Prometheus endpoint that serves the SDK's metrics and the `backfill_*`
 * ones (emitted through the SDK's metric meters). `Runtime.install` may run once per process,
 * so these settings are fixed for the life of the process.
 */
import { Runtime, type RuntimeOptions } from '@temporalio/worker';
import { BackfillError } from '../core/errors.ts';
import { DURATION_BUCKETS_SECONDS, PARTITION_METRICS } from '../core/metrics.ts';
import { settingsFromEnv } from '../host/settings.ts';
import { createLogger, logSettings, type LogSettings } from './logging.ts';

export type MetricsSettings = { host: string; port: number };
export type TelemetrySettings = {
  log: LogSettings;
  metrics?: MetricsSettings;
  /**
   * The signals on which the runtime shuts every worker down (default the SDK's: SIGINT, SIGTERM,
   * SIGQUIT, SIGUSR2). [] where the process stops its workers itself: `demo` cancels its backfill
   * first, which needs its worker.
   */
  shutdownSignals?: NodeJS.Signals[];
};

/** A --metrics-port value: a whole number from 1 to 65535. */
export function parseMetricsPort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new BackfillError('invalid_argument', `--metrics-port '${value}' is not a port: use a whole number from 1 to 65535 (e.g. 9464)`, 'metrics-port');
  }
  return port;
}

export function metricsUrl(metrics: MetricsSettings): string {
  const host = metrics.host === '0.0.0.0' || metrics.host === '::' ? 'localhost' : metrics.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${metrics.port}/metrics`;
}

export function runtimeOptions(settings: TelemetrySettings): RuntimeOptions {
  const { log, metrics } = settings;
  return {
    logger: createLogger(log),
    ...(settings.shutdownSignals !== undefined ? { shutdownSignals: settings.shutdownSignals } : {}),
    telemetryOptions: {
      logging: { filter: { core: log.level, other: 'ERROR' }, forward: {} },
      ...(metrics
        ? {
            metrics: {
              prometheus: {
                bindAddress: `${metrics.host.includes(':') ? `[${metrics.host}]` : metrics.host}:${metrics.port}`,
                histogramBucketOverrides: { [PARTITION_METRICS.duration]: DURATION_BUCKETS_SECONDS },
              },
            },
          }
        : {}),
    },
  };
}

function metricsFailure(metrics: MetricsSettings, error: unknown): BackfillError {
  const reason = error instanceof Error ? error.message : String(error);
  const where = `${metrics.host}:${metrics.port}`;
  if (/address already in use/i.test(reason)) {
    return new BackfillError(
      'invalid_argument',
      `cannot serve metrics on ${where}: the port is in use (another worker on this host?): choose another --metrics-port, or stop the process that holds it`,
      'metrics-port',
    );
  }
  return new BackfillError('invalid_argument', `cannot serve metrics on ${where} (${reason}): check --metrics-host and --metrics-port`, 'metrics-port');
}

let installed: string | undefined;

/** Text logs at $BACKFILL_LOG_LEVEL, else WARN; no metrics. */
export function defaultTelemetry(): TelemetrySettings {
  return { log: logSettings('text', settingsFromEnv().logLevel) };
}

/** Installs the runtime once; a second call must ask for the same settings (default: defaultTelemetry()). */
export function installRuntime(settings: TelemetrySettings = defaultTelemetry()): void {
  const key = JSON.stringify(settings);
  if (installed !== undefined) {
    if (installed === key) return;
    throw new Error(
      `the Temporal runtime of this process is already installed with ${installed}, not ${key}: log format, log level and metrics are set once per process`,
    );
  }
  try {
    Runtime.install(runtimeOptions(settings));
  } catch (error) {
    throw settings.metrics ? metricsFailure(settings.metrics, error) : error;
  }
  installed = key;
}
