/** `backfill worker`: a worker against the Temporal server of $TEMPORAL_ADDRESS or the profile. */
import { resolve as resolvePath } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { checkTaskQueue } from '../../core/task-queue.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { codeVersionOption, policyOption, policyPath, connectionFlags, jsonOption, logFormatOption, positiveInteger, transformsGiven, transformsOption, warehouseOption } from '../options.ts';
import { PROJECT_SPEC } from '../project.ts';
import { shutdownGraceOption, stoppedMessage, stoppingMessage } from '../worker-stop.ts';

export const METRICS_PORT_HELP = "serve Prometheus metrics (the SDK's and backfill_*) on this port, at /metrics";
export const LOG_FORMAT_HELP = "log lines as 'text' (default) or 'json' (one object per line, INFO and up unless $BACKFILL_LOG_LEVEL says otherwise)";

export function workerCommand() {
  return documented(new Command('worker'), HELP_GROUPS.infra, [
    ['backfill worker --transforms ./transforms.ts', "the workflows and the 'backfill' activity queue, with your transforms"],
    ['backfill worker --no-workflows --task-queue warehouse=20 --max-concurrent-activities 8', "only the 'warehouse' queue: 20 activities/s across all its workers, 8 at once on this one"],
    ['backfill worker --metrics-port 9464 --log-format json', 'Prometheus metrics on :9464/metrics, one JSON log line per event'],
  ])
    .description('run a worker against the Temporal server of $TEMPORAL_ADDRESS or the profile (default localhost:7233)')
    .option('--task-queue <queue...>', 'activity task queues to poll, as name or name=maxActivitiesPerSecond (default: backfill)')
    .option('--workflow-queue <queue>', 'the workflows task queue', 'backfill')
    .option('--no-workflows', 'poll activity queues only')
    .addOption(transformsOption(`modules that define transforms; without it, those ./${PROJECT_SPEC} lists, if there is one`))
    .option('--max-concurrent-activities <n>', 'partition activities this worker runs at once, per activity queue (default 200)', positiveInteger('--max-concurrent-activities'))
    .addOption(warehouseOption())
    .addOption(codeVersionOption())
    .addOption(policyOption())
    .addOption(shutdownGraceOption())
    .option('--allow-fault-injection', "let the sleep transform's crashKeys and hangKeys kill or hang this worker (chaos drills only)")
    .option('--metrics-port <port>', METRICS_PORT_HELP)
    .option('--metrics-host <ip>', 'the address the metrics port listens on', '0.0.0.0')
    .addOption(logFormatOption(LOG_FORMAT_HELP))
    .addOption(jsonOption("print the worker's settings as JSON once it polls"))
    .action(async (options, command) => {
      const [{ afterStart, endAfterStop, serve, announceMetrics, printStarted, stopOnFailure }, { settingsFromEnv }] = await Promise.all([import('../serve.ts'), import('../../host/settings.ts')]);
      const settings = settingsFromEnv();
      await serve(options, settings.logLevel, async (telemetry) => {
        const [{ describeConnection, resolveConnection }, { DEFAULT_TASK_QUEUE, parseQueues, startWorker }, { announce }, { metricsUrl }, { describeTransforms, workerTransforms }] = await Promise.all([
          import('../connection.ts'),
          import('../local.ts'),
          import('../../workers/logging.ts'),
          import('../../workers/telemetry.ts'),
          import('../spec-file.ts'),
        ]);
        const queues = parseQueues(options.taskQueue, DEFAULT_TASK_QUEUE, options.maxConcurrentActivities);
        if (options.workflows) checkTaskQueue(options.workflowQueue, '--workflow-queue', 'workflow-queue');
        // As `dev` does: in a project directory, the transforms its backfill.yaml lists.
        const transforms = await workerTransforms(transformsGiven(command, options.transforms));
        const connection = resolveConnection(connectionFlags(command));
        const worker = await startWorker({
          connection,
          transforms: transforms.modules,
          queues,
          workflowQueue: options.workflowQueue,
          workflows: options.workflows,
          telemetry,
          ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
          ...(options.codeVersion !== undefined ? { codeVersion: options.codeVersion } : {}),
          ...(options.policy !== undefined ? { policyFile: resolvePath(policyPath(options.policy)) } : {}),
          ...(settings.workflowBundle !== undefined ? { workflowBundle: settings.workflowBundle } : {}),
          ...(options.allowFaultInjection ? { allowFaultInjection: true } : {}),
          shutdownGraceMs: options.shutdownGrace,
        });
        // From here the workers poll: a failure of these steps stops them and closes what the start opened, as their own failure does.
        const started = async () => {
          const metrics = telemetry.metrics ? metricsUrl(telemetry.metrics) : null;
          if (options.json) {
            await printStarted({ address: connection.address, namespace: connection.namespace, workflowQueue: options.workflows ? options.workflowQueue : null, activityQueues: queues, warehouse: worker.warehouse.location, transforms, metricsUrl: metrics }, "the worker's settings");
          }
          announceMetrics(telemetry);
          const { policy, lineage } = worker.workers.described;
          // The policy binds what the workflow worker admits and changes; lineage leaves with the activities.
          const governs = options.workflows ? `; ${policy ?? 'no policy'}` : '';
          announce(telemetry.log, `worker polling ${queues.map((q) => q.name).join(', ')} on ${describeConnection(connection)}; warehouse ${worker.warehouse.location}; ${describeTransforms(transforms)}${governs}${lineage !== null ? `; ${lineage}` : ''}`, {
            taskQueues: queues.map((q) => q.name),
            workflowQueue: options.workflows ? options.workflowQueue : null,
            address: connection.address,
            namespace: connection.namespace,
            warehouse: worker.warehouse.location,
            transforms: transforms.modules,
            transformsFrom: transforms.from,
            policy,
            lineage,
          });
        };
        const signal = await stopOnFailure(afterStart(started, worker.done), () => worker.stop(), 'it (closing its connection and warehouse)', telemetry.log);
        if (signal) {
          const running = worker.workers.running();
          announce(telemetry.log, stoppingMessage(signal, options.shutdownGrace, running.length), { signal, shutdownGraceMs: options.shutdownGrace, running: running.length });
        }
        endAfterStop(await worker.stop(), telemetry.log);
        if (signal) {
          const ended = worker.workers.endedWhileStopping();
          announce(telemetry.log, stoppedMessage(signal, ended), { signal, ...ended });
        }
      });
    });
}
