/** The local stack of `backfill dev` and `backfill demo`: a dev server on a SQLite file and a worker. */
import { join, resolve } from 'node:path';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { openWarehouse, warehouseExists, type Warehouse } from '../activities/warehouse/index.ts';
import { loadTransforms } from '../activities/transforms.ts';
import { freePort, portFree, startDevServer, type DevServer } from '../host/dev-server.ts';
import { CODE_ROOT, codePath } from '../host/package.ts';
import { backfillHome } from '../host/settings.ts';
import { DEFAULT_TASK_QUEUE } from '../core/protocol.ts';
import { BackfillError } from '../core/errors.ts';
import { checkTaskQueue } from '../core/task-queue.ts';
import { SHUTDOWN_ABANDON_MS, createWorkers, type BackfillWorkers, type QueueConfig } from '../workers/worker.ts';
import { announce, createLogger } from '../workers/logging.ts';
import { ShutdownExpiredError } from '../workers/in-flight.ts';
import { DEFAULT_SHUTDOWN_GRACE_MS } from './worker-stop.ts';
import { defaultTelemetry, installRuntime, type TelemetrySettings } from '../workers/telemetry.ts';
import { startTracing, tracingRequested, type Tracing } from '../workers/tracing.ts';
import { checkNamespace, explainConnectionFailure, localConnection, type ConnectionSettings } from './connection.ts';
import { checkSearchAttributes } from './search-attributes.ts';

/** The shop example: `demo` runs it, and `dev` loads its transforms, where no project's spec says otherwise. Compiled, it is in dist/ (scripts/build.ts). */
export const EXAMPLE_SPEC = join(CODE_ROOT, 'examples/shop/backfill.yaml');
export const EXAMPLE_TRANSFORMS = codePath('examples/shop/transforms');

/** Quiet SDK logs (warnings and errors only) unless BACKFILL_LOG_LEVEL says otherwise; see workers/telemetry.ts. */
export { installRuntime };

export { DEFAULT_TASK_QUEUE };

/** Transform modules (from --transforms or $BACKFILL_TRANSFORMS), resolved from the working directory; none: `fallback`. */
export function transformModules(listed: readonly string[] | undefined, fallback: string[] = []): string[] {
  if (listed && listed.length > 0) return listed.map((m) => resolve(m));
  return fallback;
}

/** Parses `name` or `name=maxActivitiesPerSecond` task-queue flags; `maxConcurrent` caps this worker's activities on each. */
export function parseQueues(flags: string[] | undefined, fallback: string, maxConcurrent?: number): QueueConfig[] {
  const entries = flags && flags.length > 0 ? flags : [fallback];
  return entries.map((entry) => {
    const [name, perSecond, ...extra] = entry.split('=');
    if (!name || extra.length > 0) throw new BackfillError('invalid_argument', `--task-queue '${entry}': write name or name=maxActivitiesPerSecond (e.g. warehouse=20)`, 'task-queue');
    checkTaskQueue(name, '--task-queue', 'task-queue');
    const queue: QueueConfig = { name, ...(maxConcurrent !== undefined ? { maxConcurrent } : {}) };
    if (perSecond === undefined) return queue;
    const value = Number(perSecond);
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new BackfillError('invalid_argument', `--task-queue '${entry}': the rate after '=' must be a number above 0 (activities per second; leave out '=' for no cap)`, 'task-queue');
    }
    return { ...queue, maxActivitiesPerSecond: value };
  });
}

/**
 * The activity task queues a worker for `spec` polls: every one its nodes use, and the default
 * queue (the workflows' own) where they use none of it.
 */
export function specQueues(spec: { nodes: ReadonlyArray<{ taskQueue: string }> }): QueueConfig[] {
  return [...new Set([DEFAULT_TASK_QUEUE, ...spec.nodes.map((node) => node.taskQueue)])].map((name) => ({ name }));
}

export type WorkerProcessOptions = {
  /** From `resolveConnection` (Temporal's environment configuration), or `localConnection` for a dev server. */
  connection: ConnectionSettings;
  transforms: string[];
  queues: QueueConfig[];
  workflowQueue: string;
  workflows: boolean;
  warehouse?: string;
  /** Let the `sleep` transform's crashKeys and hangKeys kill or hang this process (chaos drills only). */
  allowFaultInjection?: boolean;
  /** Log format and level, Prometheus endpoint (default: text logs at $BACKFILL_LOG_LEVEL or WARN, no metrics). */
  telemetry?: TelemetrySettings;
  /** Recorded in the ledger (default backfill@<package version>). */
  codeVersion?: string;
  /** A prebuilt workflow bundle (default: the package's own, else bundled at start). */
  workflowBundle?: string;
  /** The policy file backfills are judged by (--policy, $BACKFILL_POLICY). */
  policyFile?: string;
  /** No warning from the worker when it has no policy (the caller says so its own way). */
  quietWithoutPolicy?: boolean;
  /** How long running partitions get to finish once the worker stops (--shutdown-grace; default 0: cancelled at once). */
  shutdownGraceMs?: number;
};

/** How a worker stopped. */
export type WorkerStopped = {
  /** Activities that ignored their cancellation past the grace and SHUTDOWN_ABANDON_MS: abandoned, their code still running in this process. */
  expired: ShutdownExpiredError | null;
  /**
   * False when the warehouse did not close within WAREHOUSE_CLOSE_MS: an abandoned transform
   * still runs a statement on it, and the process cannot exit normally (Node waits, at exit, for
   * the SQLite warehouse's thread to end its statement): see endAfterStop in serve.ts.
   */
  warehouseClosed: boolean;
};

export type RunningWorker = {
  workers: BackfillWorkers;
  warehouse: Warehouse;
  connection: NativeConnection;
  done: Promise<void>;
  /** Stops the worker (running partitions get the shutdown grace), then closes its connection and warehouse. */
  stop(): Promise<WorkerStopped>;
};

/** How long a stopping worker waits for its warehouse to close: an abandoned transform may hold it for ever. */
export const WAREHOUSE_CLOSE_MS = 2_000;

/** Closes `warehouse`, or gives up after `ms` (false): the process then exits with it open, and the database rolls back what was not committed. */
export async function closeWithin(warehouse: Warehouse, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((done) => (timer = setTimeout(() => done(false), ms)));
  try {
    return await Promise.race([warehouse.close().then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A worker connection that has answered, to a namespace that exists. */
export async function connectWorker(settings: ConnectionSettings): Promise<NativeConnection> {
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(settings.options);
  } catch (error) {
    throw await explainConnectionFailure(settings, error);
  }
  try {
    await checkNamespace(connection, settings);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}

/** Workers need no admin rights: they only warn when they can see that `backfill setup` is missing. */
async function warnOnMissingSearchAttributes(connection: NativeConnection, namespace: string): Promise<void> {
  const state = await checkSearchAttributes(connection, namespace).catch(() => null);
  const absent = [...(state?.missing ?? []), ...(state?.wrongType.map((w) => `${w.name} (${w.type}, not Keyword)`) ?? [])];
  if (absent.length === 0) return;
  Runtime.instance().logger.warn(
    `namespace ${namespace} lacks the search attributes ${absent.join(', ')}: no backfill can start there until an admin runs 'backfill setup' (on Temporal Cloud: tcld or the Cloud UI)`,
  );
}

/** How long a worker's start waits for its warehouse to answer before it goes on and lets the activities retry. */
const WAREHOUSE_CHECK_MS = 15_000;

/**
 * Refuses a warehouse that answers with an error (invalid_argument, naming it and the fix); one
 * that does not answer within WAREHOUSE_CHECK_MS is warned of, and the worker starts all the same
 * (a database still starting: the activities retry).
 */
async function usableWarehouse(warehouse: Warehouse, warn: (message: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const slow = new Promise<'slow'>((resolve) => {
    timer = setTimeout(() => resolve('slow'), WAREHOUSE_CHECK_MS);
  });
  const asked = warehouse.identity().then(() => 'ok' as const);
  // A refusal that comes after the wait has passed is the activities' to meet, not an unhandled rejection.
  asked.catch(() => undefined);
  try {
    const answer = await Promise.race([asked, slow]);
    if (answer === 'slow') warn(`the warehouse ${warehouse.location} did not answer within ${WAREHOUSE_CHECK_MS / 1000}s; the worker starts, and its activities retry until it does`);
  } catch (error) {
    throw new BackfillError(
      'invalid_argument',
      `the warehouse ${warehouse.location} cannot be used: ${error instanceof Error ? error.message : String(error)}: fix --warehouse (or $BACKFILL_WAREHOUSE), or make it reachable, then start the worker again`,
      'warehouse',
    );
  } finally {
    clearTimeout(timer);
  }
}

export async function startWorker(options: WorkerProcessOptions): Promise<RunningWorker> {
  const telemetry = options.telemetry ?? defaultTelemetry();
  // First, as it opens nothing: a module that does not load stops the worker before it connects.
  const transforms = await loadTransforms(options.transforms);
  // Not the runtime's logger: it buffers, and closes with the last connection, before the last flush.
  const warn = (message: string) => createLogger(telemetry.log).warn(message);
  const tracing = tracingRequested() ? await startTracing('backfill-worker', warn) : undefined;
  const { namespace } = options.connection;
  // What a failure of the start has to close, the last opened first. Once the connection closes,
  // the native runtime has nothing left and shuts down with it (its metrics port too).
  const opened: Array<() => Promise<unknown>> = [async () => tracing?.flush()];
  try {
    // Before connecting: a warehouse path this process cannot use (a lake's directory that is a
    // file, or that it may not read) is refused at once, not found by each activity's retries.
    warehouseExists(options.warehouse);
    const warehouse = openWarehouse(options.warehouse);
    opened.unshift(() => warehouse.close());
    // One it cannot use (no such database, a role refused) is told now, before connecting, not by each backfill's failure.
    if (options.queues.length > 0) await usableWarehouse(warehouse, warn);
    installRuntime(telemetry);
    const connection = await connectWorker(options.connection);
    opened.unshift(() => connection.close());
    await warnOnMissingSearchAttributes(connection, namespace);
    const workers = await createWorkers({
      connection,
      namespace,
      workflowQueue: options.workflowQueue,
      activityQueues: options.queues,
      workflows: options.workflows,
      warehouse,
      transforms,
      allowFaultInjection: options.allowFaultInjection ?? false,
      ...(options.codeVersion !== undefined ? { codeVersion: options.codeVersion } : {}),
      ...(options.workflowBundle !== undefined ? { workflowBundle: { codePath: options.workflowBundle } } : {}),
      ...(tracing ? { tracing } : {}),
      ...(options.policyFile !== undefined ? { policyFile: options.policyFile } : {}),
      ...(options.quietWithoutPolicy ? { quietWithoutPolicy: true } : {}),
      ...(options.shutdownGraceMs !== undefined ? { shutdownGraceMs: options.shutdownGraceMs } : {}),
    });
    const say = (message: string) => announce(telemetry.log, message, {}, 'WARN');
    return running({ workers, warehouse, connection, tracing, say, graceMs: options.shutdownGraceMs ?? 0 });
  } catch (error) {
    for (const close of opened) {
      // The start's failure is what the user must see; one of closing only goes with it.
      await close().catch((closeError: unknown) => warn(`while stopping the worker that failed to start: ${closeError instanceof Error ? closeError.message : String(closeError)}`));
    }
    throw error;
  }
}

/** A worker that has started: it runs until stop() (or a fatal failure: `done` rejects). */
function running(started: {
  workers: BackfillWorkers;
  warehouse: Warehouse;
  connection: NativeConnection;
  tracing: Tracing | undefined;
  say: (message: string) => void;
  graceMs: number;
}): RunningWorker {
  const { workers, warehouse, connection, tracing, say, graceMs } = started;
  const done = workers.run();
  let stopped: Promise<WorkerStopped> | undefined;
  return {
    workers,
    warehouse,
    connection,
    done,
    stop: () =>
      (stopped ??= (async () => {
        workers.shutdown();
        const graceOver = setTimeout(() => {
          const left = workers.running().length;
          if (left > 0 && graceMs > 0) say(`the ${graceMs / 1000} s shutdown grace is over: cancelling what still runs (${left}); it gets ${SHUTDOWN_ABANDON_MS / 1000} s more to stop`);
        }, graceMs);
        let failure: unknown;
        await done.catch((error: unknown) => void (failure = error));
        clearTimeout(graceOver);
        await connection.close();
        const warehouseClosed = await closeWithin(warehouse, WAREHOUSE_CLOSE_MS);
        if (!warehouseClosed) say(`the warehouse ${warehouse.location} did not close within ${WAREHOUSE_CLOSE_MS / 1000} s: an abandoned transform still runs a statement on it`);
        await tracing?.flush();
        return { expired: failure instanceof ShutdownExpiredError ? failure : null, warehouseClosed };
      })()),
  };
}

export type LocalStack = {
  server: DevServer;
  address: string;
  uiUrl: string | null;
  worker: RunningWorker | null;
  /** Stops the worker, then the dev server; how the worker stopped (null: there was none). */
  stop(): Promise<WorkerStopped | null>;
};

export type LocalOptions = {
  home?: string;
  dbFile?: string;
  port?: number;
  uiPort?: number | null;
  worker: boolean;
  transforms: string[];
  queues?: QueueConfig[];
  warehouse?: string;
  allowFaultInjection?: boolean;
  telemetry?: TelemetrySettings;
  codeVersion?: string;
  workflowBundle?: string;
  policyFile?: string;
  /** No warning from the worker when it has no policy: the caller says so its own way (`backfill dev`). */
  quietWithoutPolicy?: boolean;
  /** How long running partitions get to finish once the worker stops (default DEFAULT_SHUTDOWN_GRACE_MS, as `backfill worker`'s). */
  shutdownGraceMs?: number;
  /** Where the dev server's notes for the user go (default stderr). */
  log?: (line: string) => void;
};

/**
 * The dynamic config that turns on task-queue priority (the new matcher) and fairness on the
 * dev server (docs/deploying.md, "Priority and fairness between backfills").
 */
export const FAIRNESS_DYNAMIC_CONFIG = { 'matching.useNewMatcher': 'true', 'matching.enableFairness': 'true' } as const;

/** Uses `preferred` when it is free, else any free port. */
export async function portOr(preferred: number): Promise<number> {
  // Any failure to listen on it (in use or not) makes it one not to use.
  const free = await portFree('127.0.0.1', preferred).catch(() => false);
  return free ? preferred : freePort();
}

export async function startLocal(options: LocalOptions): Promise<LocalStack> {
  const home = options.home ?? backfillHome();
  const server = await startDevServer({
    dbFile: options.dbFile ?? join(home, 'temporal.db'),
    port: options.port ?? 7233,
    uiPort: options.uiPort === undefined ? 8233 : options.uiPort,
    logFile: join(home, 'temporal.log'),
    // start --priority and --fairness-weight work on the dev server as on a configured cluster.
    dynamicConfig: FAIRNESS_DYNAMIC_CONFIG,
    ...(options.log ? { log: options.log } : {}),
  });
  let worker: RunningWorker | null = null;
  try {
    if (options.worker) {
      worker = await startWorker({
        connection: localConnection(server.address),
        transforms: options.transforms,
        queues: options.queues ?? [{ name: DEFAULT_TASK_QUEUE }],
        workflowQueue: DEFAULT_TASK_QUEUE,
        workflows: true,
        ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
        ...(options.allowFaultInjection ? { allowFaultInjection: true } : {}),
        ...(options.telemetry ? { telemetry: options.telemetry } : {}),
        ...(options.codeVersion !== undefined ? { codeVersion: options.codeVersion } : {}),
        ...(options.workflowBundle !== undefined ? { workflowBundle: options.workflowBundle } : {}),
        ...(options.policyFile !== undefined ? { policyFile: options.policyFile } : {}),
        ...(options.quietWithoutPolicy ? { quietWithoutPolicy: true } : {}),
        shutdownGraceMs: options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
      });
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    server,
    address: server.address,
    uiUrl: server.uiUrl,
    worker,
    stop: async () => {
      try {
        return (await worker?.stop()) ?? null;
      } finally {
        await server.stop();
      }
    },
  };
}
