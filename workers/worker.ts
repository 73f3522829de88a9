/**
 * Worker processes: one Temporal worker polls the workflow task queue (parent and node
 * workflows), and one more per activity task queue. A task queue stands for one protected
 * resource; its server-enforced rate (`maxTaskQueueActivitiesPerSecond`) must be the same
 * on every worker that polls it.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  GracefulShutdownPeriodExpiredError,
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type WorkflowBundleOption,
  type WorkflowBundleWithSourceMap,
  type WorkerOptions,
} from '@temporalio/worker';
import { IllegalStateError } from '@temporalio/common';
import { BackfillError } from '../core/errors.ts';
import { DEFAULT_TASK_QUEUE } from '../core/protocol.ts';
import { policyHolderIdentity, policyTaskQueue } from '../core/policy-pin.ts';
import { policyHolderPolls } from '../client/pollers.ts';
import { runsOfWorkflowId } from '../client/workflow-runs.ts';
import { createApprovalActivities } from '../activities/approval.ts';
import { createEstimateActivities } from '../activities/estimate.ts';
import { createPolicyActivities, readPolicyFile } from '../activities/policy.ts';
import { createRollbackActivities } from '../activities/rollback.ts';
import { createActivities } from '../activities/run-partitions.ts';
import { RetryBudgetGate, queryRetryBudget } from './retry-budget.ts';
import { createNodeOrdersActivities } from './node-orders.ts';
import { createLineageActivities, producerUri } from '../activities/lineage/activity.ts';
import { describeSettings, lineageSettingsFromEnv, type LineageSettings } from '../activities/lineage/config.ts';
import { withFaultInjection, type TransformRegistry } from '../activities/transforms.ts';
import type { Warehouse } from '../activities/warehouse/types.ts';
import { partitionLogAttributes } from './logging.ts';
import { ShutdownExpiredError, trackActivities, type EndedWhileStopping, type RunningActivity } from './in-flight.ts';
import { WORKFLOW_TRACING_MODULE, type Tracing } from './tracing.ts';
import { CODE_ROOT, FROM_SOURCES, codePath, defaultCodeVersion, packageJson } from '../host/package.ts';

export type QueueConfig = {
  name: string;
  /** Server-enforced cap on activities started per second across all workers of this queue. */
  maxActivitiesPerSecond?: number;
  /** Activities this worker runs at once on this queue. */
  maxConcurrent?: number;
};

export type WorkerConfig = {
  connection: NativeConnection;
  namespace?: string;
  /** The queue of the parent and node workflows. */
  workflowQueue?: string;
  /** Activity queues to poll; default: the workflow queue alone. */
  activityQueues?: QueueConfig[];
  /** Poll workflow tasks (default true); a worker may serve only activity queues. */
  workflows?: boolean;
  warehouse: Warehouse;
  transforms: TransformRegistry;
  /** Let the `sleep` transform's crashKeys and hangKeys kill or hang this process (default false: such partitions fail). */
  allowFaultInjection?: boolean;
  /** Recorded in the ledger (default backfill@<package version>; `backfill worker` takes --code-version or $BACKFILL_CODE_VERSION). */
  codeVersion?: string;
  /**
   * A prebuilt workflow bundle (tests and benchmarks build it once; `backfill worker` takes
   * $BACKFILL_WORKFLOW_BUNDLE), else the compiled package's own (`npm run build` makes them),
   * else bundled now.
   */
  workflowBundle?: WorkflowBundleOption;
  /** OpenTelemetry tracing (tracing.ts); a prebuilt bundle needs `bundleWorkflows({ tracing: true })` for workflow spans. */
  tracing?: Tracing;
  /** Where OpenLineage events go (activities/lineage/config.ts); default: from this process's environment. */
  lineage?: LineageSettings;
  /**
   * The policy file every backfill whose workflows this worker runs is judged by (`backfill
   * worker --policy`, $BACKFILL_POLICY). Every worker of the workflow task queue must be given
   * the same file: the backfill workflow reads it through an activity on the workflow task
   * queue's policy queue, which whichever workflow worker polls it first runs.
   */
  policyFile?: string;
  /** No warning without a policy: the caller says it its own way (`backfill dev`, among its ready lines). */
  quietWithoutPolicy?: boolean;
  /**
   * How long running activities get to finish once shutdown starts (default 0, the SDK's: they
   * are cancelled at once, and each attempt cut short counts against its partition's
   * retry.maxAttempts). Meanwhile a batch starts no new partition: it commits what it computed
   * and hands the rest back to its node, which runs them again without counting an attempt.
   */
  shutdownGraceMs?: number;
  /**
   * How long after the grace activities that ignore their cancellation (a transform that never
   * looks at its signal) are waited for (default SHUTDOWN_ABANDON_MS). Then the worker abandons
   * them: run() fails with a ShutdownExpiredError that names them, and the process can exit.
   */
  shutdownAbandonMs?: number;
};

/**
 * After the grace, cancelled activities get this long to stop before they are abandoned: enough
 * to roll back a transaction and report; with the default grace (20 s) still under the 30 s
 * Kubernetes gives a pod.
 */
export const SHUTDOWN_ABANDON_MS = 5_000;

export const workflowsPath = codePath('workflows/index');

/** The workflow bundles `npm run build` writes into dist/, without and with the tracing interceptors. */
export const PACKAGED_BUNDLES = { plain: 'workflow-bundle.js', tracing: 'workflow-bundle-tracing.js' } as const;

/** The compiled package's prebuilt bundle, so that a worker starts without webpack; none from the sources (it would be stale). */
export function packagedBundle(tracing: boolean): WorkflowBundleOption | undefined {
  if (FROM_SOURCES) return undefined;
  const file = join(CODE_ROOT, tracing ? PACKAGED_BUNDLES.tracing : PACKAGED_BUNDLES.plain);
  return existsSync(file) ? { codePath: file } : undefined;
}

/**
 * Bundles the workflow code (webpack); a few seconds, so callers that start many workers reuse it.
 * With `tracing`, the bundle holds the OpenTelemetry workflow interceptors too.
 */
export function bundleWorkflows(options: { tracing?: boolean } = {}): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath,
    logger: quietBundlerLogger,
    ...(options.tracing ? { workflowInterceptorModules: [WORKFLOW_TRACING_MODULE] } : {}),
  });
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

export type BackfillWorkers = {
  workers: Worker[];
  /** Runs until shutdown() (or a fatal error); resolves when every worker has stopped. */
  run(): Promise<void>;
  /**
   * Stops polling; running partitions get the shutdown grace to finish, and batches start no new
   * partition. Activities still running SHUTDOWN_ABANDON_MS after the grace are abandoned: run()
   * then fails with a ShutdownExpiredError naming them.
   */
  shutdown(): void;
  /** The activities running now (partitions, and the rest), oldest first. */
  running(): RunningActivity[];
  /** Partition activities that ended since shutdown(): finished, or handed back to the server. */
  endedWhileStopping(): EndedWhileStopping;
  /** What governs and follows its work, for its start-up line: the policy it enforces (null: none), and where lineage goes (null: off). */
  described: { policy: string | null; lineage: string | null };
};

export async function createWorkers(config: WorkerConfig): Promise<BackfillWorkers> {
  const namespace = config.namespace ?? 'default';
  const workflowQueue = config.workflowQueue ?? DEFAULT_TASK_QUEUE;
  const activityQueues = config.activityQueues ?? [{ name: workflowQueue }];
  // A bad lineage configuration stops the worker here, with the fix, before it takes any work.
  const lineage = config.lineage ?? lineageSettingsFromEnv();
  if (lineage.enabled) Runtime.instance().logger.info(describeSettings(lineage));
  const stopping = new AbortController();
  const activities = {
    ...createActivities({
      warehouse: config.warehouse,
      transforms: withFaultInjection(config.transforms, config.allowFaultInjection === true),
      codeVersion: config.codeVersion ?? defaultCodeVersion(),
      stopping: stopping.signal,
      retryBudget: new RetryBudgetGate(queryRetryBudget(config.connection, namespace)),
    }),
    ...createRollbackActivities({ warehouse: config.warehouse }),
    ...createLineageActivities({
      warehouse: config.warehouse,
      settings: lineage,
      producer: producerUri(packageJson().name, packageJson().version),
      engineVersion: packageJson().version,
    }),
  };
  // A policy the worker cannot read stops it here, with the field and the fix, before it takes any work.
  let policyText: string | null = null;
  if (config.policyFile !== undefined) {
    const loaded = await readPolicyFile(config.policyFile);
    policyText = `policy ${loaded.path} (${loaded.hash})`;
    Runtime.instance().logger.info(policyText);
  } else if (config.workflows !== false && config.quietWithoutPolicy !== true) {
    // A start is judged by whichever workflow worker takes its first task: one without the policy admits it unjudged.
    Runtime.instance().logger.warn(
      `no policy (--policy or BACKFILL_POLICY): the backfills this worker starts running are not governed; if other workers of workflow queue '${workflowQueue}' have a policy, give this one the same file, or it admits what they would refuse`,
    );
  }
  // The policy, the trusted estimate and signature checks run on the workflow queue's policy
  // queue (policyTaskQueue, workflows/governance.ts), which only workflow workers poll: the
  // workers that run the workflows judge them, never an activity-only worker of some other team's
  // queue. A workflow worker without a policy declines a pinned judgement, for another to take.
  // They stay local activities of the workflow worker too, for runs from before the patch
  // governance-activities-regular.
  const governance = {
    ...createPolicyActivities({
      policyFile: config.policyFile,
      // A worker without a policy passes a start on to the queue's workers that have one, if any polls.
      policyHolders: (queue) => policyHolderPolls(config.connection, namespace, queue),
    }),
    // A signed start is admitted once: the runs of its workflow id, through the worker's connection.
    ...createApprovalActivities({ listRuns: (workflowId) => runsOfWorkflowId(config.connection, namespace, workflowId) }),
    ...createEstimateActivities({ warehouse: config.warehouse }),
    // What a node workflow's parent says its settings and spec are: asked by the node, never taken from a signal.
    ...createNodeOrdersActivities(config.connection, namespace),
  };
  const { tracing } = config;
  const given = config.workflowBundle;
  const traced = tracing !== undefined;
  const bundle = config.workflows === false ? undefined : (given ?? packagedBundle(traced) ?? (await bundleWorkflows({ tracing: traced })));
  if (tracing && given && bundle) {
    Runtime.instance().logger.warn('tracing is on but the workflow bundle was built beforehand: its workflows make spans only if it was built with bundleWorkflows({ tracing: true })');
  }
  const inFlight = trackActivities(() => stopping.signal.aborted);
  const interceptors = { activity: [inFlight.interceptor, partitionLogAttributes, ...(tracing ? [tracing.activity] : [])] };
  const sinks = tracing?.sinks;
  const graceMs = config.shutdownGraceMs ?? 0;
  const abandonMs = config.shutdownAbandonMs ?? SHUTDOWN_ABANDON_MS;
  // shutdownGraceTime only cancels the activities still running then; Worker.run() waits for them
  // to end, for ever if one ignores its cancellation. shutdownForceTime ends that wait.
  const shutdown = { shutdownGraceTime: graceMs, shutdownForceTime: graceMs + abandonMs };
  const activityOptions = (queue: QueueConfig) => ({
    activities,
    interceptors,
    maxConcurrentActivityTaskExecutions: queue.maxConcurrent ?? 200,
    ...(queue.maxActivitiesPerSecond !== undefined ? { maxTaskQueueActivitiesPerSecond: queue.maxActivitiesPerSecond } : {}),
  });

  const workers: Worker[] = [];
  const sameQueue = activityQueues.find((q) => q.name === workflowQueue);
  try {
    if (bundle) {
      workers.push(
        await createWorker(workflowQueue, {
          connection: config.connection,
          namespace,
          taskQueue: workflowQueue,
          workflowBundle: bundle,
          ...(sinks ? { sinks } : {}),
          maxConcurrentWorkflowTaskExecutions: 40,
          maxCachedWorkflows: 400,
          ...shutdown,
          ...(sameQueue ? activityOptions(sameQueue) : { interceptors, enableNonLocalActivities: false }),
          activities: { ...(sameQueue ? activities : {}), ...governance },
        }),
      );
      // The governance activities (the policy's judgements, estimates, signature checks), on a queue of their own that only workflow workers poll.
      const policyQueue = policyTaskQueue(workflowQueue);
      // Polled with a marked identity where the worker has a policy: the pollers workers without one look for.
      const identity = config.policyFile !== undefined ? { identity: policyHolderIdentity(`${process.pid}@${hostname()}`) } : {};
      workers.push(await createWorker(policyQueue, { connection: config.connection, namespace, taskQueue: policyQueue, ...identity, ...shutdown, interceptors, activities: governance }));
    }
    for (const queue of activityQueues) {
      if (bundle && queue === sameQueue) continue;
      workers.push(await createWorker(queue.name, { connection: config.connection, namespace, taskQueue: queue.name, ...shutdown, ...activityOptions(queue) }));
    }
  } catch (error) {
    // Each Worker created holds the connection: until it is released, the caller cannot close it.
    await Promise.all(workers.map(release));
    throw error;
  }
  const stop = () => {
    stopping.abort();
    workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown());
  };
  return {
    workers,
    run: async () => {
      // One worker failing stops the others, and run() ends once all have: no worker is left
      // polling on a connection its caller is about to close.
      const ended = await Promise.allSettled(
        workers.map((w) =>
          w.run().catch((error: unknown) => {
            stop();
            throw error;
          }),
        ),
      );
      const failures = ended.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      if (failures.length === 0) return;
      // Past shutdownForceTime the SDK fails run() with GracefulShutdownPeriodExpiredError, or
      // with the IllegalStateError ("Worker still in use") that finalizing the worker then throws
      // over it, as activities still hold it: either way, those are abandoned.
      const abandoned = inFlight.running();
      if (failures.some((e) => e instanceof GracefulShutdownPeriodExpiredError || (abandoned.length > 0 && e instanceof IllegalStateError))) {
        throw new ShutdownExpiredError(abandoned, graceMs, abandonMs);
      }
      throw failures[0];
    },
    shutdown: stop,
    running: () => inFlight.running(),
    endedWhileStopping: () => inFlight.endedWhileStopping(),
    described: { policy: policyText, lineage: lineage.enabled ? describeSettings(lineage) : null },
  };
}

/** A Worker of `queue`; a failure names the queue. */
async function createWorker(queue: string, options: WorkerOptions): Promise<Worker> {
  try {
    return await Worker.create(options);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new BackfillError('failed', `could not start the worker of task queue '${queue}': ${reason}`);
  }
}

/**
 * Lets go of a Worker that was created but never run. The SDK offers no other way than to run it
 * and stop it at once (run() marks it running before it polls); it deregisters from its
 * connection and the native runtime as it ends.
 */
async function release(worker: Worker): Promise<void> {
  const ran = worker.run();
  worker.shutdown();
  await ran.catch(() => undefined);
}
