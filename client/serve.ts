/** What the long-lived commands (worker, dev) share: their telemetry flags, and how they run and stop. */
import { isIP } from 'node:net';
import { BackfillError } from '../core/errors.ts';
import { EXIT } from './exit-codes.ts';
import { printJsonWhileServing } from './stdout.ts';
import { announce, logSettings, type LogSettings } from '../workers/logging.ts';
import type { WorkerStopped } from './local.ts';
import { metricsUrl, parseMetricsPort, type TelemetrySettings } from '../workers/telemetry.ts';

export type TelemetryFlags = { metricsPort?: string; metricsHost: string; logFormat?: string };

/** --metrics-port, --metrics-host and --log-format (or $BACKFILL_LOG_FORMAT), with the log level of the settings ($BACKFILL_LOG_LEVEL). */
export function telemetryFrom(flags: TelemetryFlags, logLevel?: string): TelemetrySettings {
  const log = logSettings(flags.logFormat, logLevel);
  if (flags.metricsPort === undefined) return { log };
  if (isIP(flags.metricsHost) === 0) {
    throw new BackfillError('invalid_argument', `--metrics-host '${flags.metricsHost}' is not an IP address: use e.g. 127.0.0.1 (this host only) or 0.0.0.0 (every interface)`, 'metrics-host');
  }
  return { log, metrics: { host: flags.metricsHost, port: parseMetricsPort(flags.metricsPort) } };
}

/**
 * Runs a long-lived command (worker, dev). With JSON logs, what stops it is a JSON line too,
 * so that a log pipeline never meets a line it cannot parse.
 */
export async function serve(flags: TelemetryFlags, logLevel: string | undefined, run: (telemetry: TelemetrySettings) => Promise<void>): Promise<void> {
  try {
    await run(telemetryFrom(flags, logLevel));
  } catch (error) {
    if (flags.logFormat !== 'json') throw error;
    const log = logSettings('json');
    const failure = error instanceof BackfillError ? error.toJSON() : { code: 'failed', message: error instanceof Error ? error.message : String(error) };
    announce(log, failure.message, { code: failure.code, ...('path' in failure ? { path: failure.path } : {}) }, 'ERROR');
    process.exitCode = EXIT.error;
  }
}

export function announceMetrics(telemetry: TelemetrySettings): void {
  if (telemetry.metrics) announce(telemetry.log, `metrics: ${metricsUrl(telemetry.metrics)}`, { metricsUrl: metricsUrl(telemetry.metrics) });
}

/**
 * The first SIGINT or SIGTERM, or null once `ended` (a worker that stopped on its own) has; it
 * fails as `ended` does. Both listeners go then, so that a second signal of either kind gets
 * Node's default: the process ends at once.
 */
export async function waitForSignal(ended: Promise<unknown> = new Promise(() => undefined)): Promise<NodeJS.Signals | null> {
  let stop: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((done) => (stop = done));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    return await Promise.race([signalled, ended.then(() => null)]);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** A step of afterStart that failed (`failure`): stopOnFailure says so, and ends with `failure` itself. */
class StartFailure extends Error {
  constructor(readonly failure: unknown) {
    super(failure instanceof Error ? failure.message : String(failure), { cause: failure });
  }
}

/**
 * The steps of a long-lived command between its workers' start and the wait for a signal
 * (printing its settings, announcing that it polls), then that wait. Pass it to stopOnFailure:
 * a step that fails then stops the workers and closes what the start opened, as the workers' own
 * failure does; else they would go on polling with the command failed, or end with the process
 * unclosed.
 */
export async function afterStart(steps: () => Promise<void>, ended?: Promise<unknown>): Promise<NodeJS.Signals | null> {
  // Listening first: a signal during the steps is not missed, and a failure of `ended` is heard.
  const waiting = waitForSignal(ended);
  try {
    await steps();
  } catch (error) {
    // Settles once the stop that follows has ended the workers.
    waiting.catch(() => undefined);
    throw new StartFailure(error);
  }
  return waiting;
}

/**
 * What a long-lived command prints on stdout with --json once it runs (`what`: its name in the
 * error). A write that fails (EPIPE: the reader of stdout went away) is a failure of its start.
 */
export async function printStarted(value: unknown, what: string): Promise<void> {
  try {
    await printJsonWhileServing(value);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const why = (error as NodeJS.ErrnoException).code === 'EPIPE' ? ' (whatever read stdout closed it)' : '';
    throw new BackfillError('failed', `could not print ${what} on stdout (--json): ${reason}${why}: keep stdout open while it runs (or send it to a file), or leave out --json`, 'json');
  }
}

/**
 * `waiting` (the wait for a signal or the worker's end, or afterStart), and when it fails (a
 * worker failed fatally: its native core, or a Worker's run(); or a step of afterStart), `stop`
 * of what the command started (`what`, for the message) before the failure ends the command:
 * else its connection and warehouse stay open, and the Temporal dev server of `dev` and `demo`
 * runs on, holding its lock. stderr says what failed: the worker, or the command's own step
 * (the worker was fine).
 */
export async function stopOnFailure<T>(waiting: Promise<T>, stop: () => Promise<WorkerStopped | null>, what: string, log: LogSettings): Promise<T> {
  try {
    return await waiting;
  } catch (thrown) {
    const error = thrown instanceof StartFailure ? thrown.failure : thrown;
    const failure = error instanceof Error ? error.message : String(error);
    const which = thrown instanceof StartFailure ? 'could not finish starting' : 'the worker failed';
    announce(log, `${which}: ${failure}; stopping ${what}`, { error: failure }, 'ERROR');
    try {
      const stopped = await stop();
      // The failure ends the command, not an expired grace that stop() may report with it.
      endAfterStop(stopped ? { ...stopped, expired: null } : null, log);
    } catch (stopError) {
      announce(log, `stopping ${what} failed too: ${stopError instanceof Error ? stopError.message : String(stopError)}`, {}, 'ERROR');
    }
    throw error;
  }
}

/**
 * The end of a long-lived command once its worker has stopped. Activities it abandoned fail the
 * command (exit 1, with the error that names them). A warehouse that did not close still runs a
 * statement of an abandoned transform, on a thread that Node would wait for at exit for ever
 * (SQLite's statements cannot be interrupted): the process then ends at once, by SIGKILL, once it
 * has said why.
 */
export function endAfterStop(stopped: WorkerStopped | null, log: LogSettings): void {
  if (!stopped) return;
  if (!stopped.warehouseClosed) {
    if (stopped.expired) announce(log, stopped.expired.message, { code: stopped.expired.code }, 'ERROR');
    announce(log, 'ending the process at once (SIGKILL), as it cannot exit while that statement runs: the database rolls back what the statement had not committed', {}, 'ERROR');
    process.kill(process.pid, 'SIGKILL');
  }
  if (stopped.expired) throw stopped.expired;
}

