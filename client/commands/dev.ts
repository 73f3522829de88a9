/** `backfill dev`: the embedded Temporal dev server (Web UI on :8233) and a worker. */
import { join, resolve as resolvePath } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { BackfillError } from '../../core/errors.ts';
import { devPortClash, type DevPort } from '../../core/dev-ports.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { codeVersionOption, policyOption, policyPath, jsonOption, logFormatOption, port, transformsGiven, transformsOption, warehouseOption } from '../options.ts';
import { PROJECT_SPEC } from '../project.ts';
import { LOG_FORMAT_HELP, METRICS_PORT_HELP } from './worker.ts';
import type { QueueConfig } from '../../workers/worker.ts';
import { terminalText } from '../printable.ts';
import { shutdownGraceOption, stoppedMessage, stoppingMessage } from '../worker-stop.ts';

/**
 * `dev`'s activity queues when --task-queue names none: every one the nodes of the project's spec
 * (./backfill.yaml) use, else the default queue.
 */
async function devQueues(): Promise<QueueConfig[]> {
  const [{ loadSpecFile, projectSpec }, { specQueues }] = await Promise.all([import('../spec-file.ts'), import('../local.ts')]);
  const file = projectSpec();
  if (file === undefined) return specQueues({ nodes: [] });
  try {
    return specQueues((await loadSpecFile(file)).spec);
  } catch (error) {
    // A spec being edited should not keep the server from starting.
    process.stderr.write(`${terminalText(`${file}: ${error instanceof Error ? error.message : String(error)}`)}; the worker polls only the default task queue\n`);
    return specQueues({ nodes: [] });
  }
}

/** Said once, with the ready lines, where the worker runs without a policy. */
export const NO_POLICY = 'no policy: backfills run ungoverned (to judge them by one: backfill dev --policy <file>, see docs/governance.md)';

export function devCommand() {
  return documented(new Command('dev'), HELP_GROUPS.infra, [
    ['backfill dev', 'the Temporal dev server (Web UI on http://localhost:8233) and a worker with the example transforms'],
    ['backfill dev --transforms ./transforms.ts', 'with your transforms instead'],
    ['backfill dev --no-worker', 'the server only; run workers yourself'],
    ['backfill dev --port 7300 --ui-port 8300', 'on other ports: it prints the TEMPORAL_ADDRESS and BACKFILL_UI_URL for other terminals to export'],
  ])
    .description('start the embedded Temporal dev server (Web UI on :8233) and a worker')
    .option('--no-worker', 'the server only')
    .option('--port <port>', 'gRPC port', port('--port'), 7233)
    .option('--ui-port <port>', 'Web UI port', port('--ui-port'), 8233)
    .option('--task-queue <queue...>', `activity task queues to poll, as name or name=maxActivitiesPerSecond (default: those the nodes of ./${PROJECT_SPEC} use, and backfill)`)
    .addOption(transformsOption(`modules that define transforms (default: those ./${PROJECT_SPEC} lists, else the example's)`))
    .addOption(warehouseOption())
    .addOption(codeVersionOption())
    .addOption(policyOption())
    .addOption(shutdownGraceOption())
    .option('--allow-fault-injection', "let the sleep transform's crashKeys and hangKeys kill or hang the worker (chaos drills only)")
    .option('--metrics-port <port>', `the worker: ${METRICS_PORT_HELP}`)
    .option('--metrics-host <ip>', 'the address the metrics port listens on', '127.0.0.1')
    .addOption(logFormatOption(`the worker: ${LOG_FORMAT_HELP}`))
    .addOption(jsonOption('print the addresses as JSON once ready'))
    .action(async (options, command) => {
      const [{ afterStart, endAfterStop, printStarted, serve, stopOnFailure }, { settingsFromEnv }] = await Promise.all([import('../serve.ts'), import('../../host/settings.ts')]);
      const settings = settingsFromEnv();
      await serve(options, settings.logLevel, async (telemetry) => {
        // The dev server and its Web UI listen on 127.0.0.1; the worker's metrics port clashes with them there or on every interface.
        const metrics = options.worker && telemetry.metrics && ['127.0.0.1', '0.0.0.0', '::'].includes(telemetry.metrics.host) ? telemetry.metrics.port : undefined;
        const ports: DevPort[] = [
          { flag: '--port', port: options.port, defaulted: command.getOptionValueSource('port') === 'default' },
          { flag: '--ui-port', port: options.uiPort, defaulted: command.getOptionValueSource('uiPort') === 'default' },
          ...(metrics !== undefined ? [{ flag: '--metrics-port', port: metrics, defaulted: false }] : []),
        ];
        const clash = devPortClash(ports);
        if (clash !== null) throw new BackfillError('invalid_argument', clash);
        const [{ DEFAULT_TASK_QUEUE, EXAMPLE_TRANSFORMS, parseQueues, startLocal }, { announce }, { metricsUrl }, { devServerEnv, exportLines }, { workerTransforms }] = await Promise.all([
          import('../local.ts'),
          import('../../workers/logging.ts'),
          import('../../workers/telemetry.ts'),
          import('../dev-env.ts'),
          import('../spec-file.ts'),
        ]);
        const { modules } = await workerTransforms(transformsGiven(command, options.transforms), [EXAMPLE_TRANSFORMS]);
        if (!options.worker && telemetry.metrics) {
          throw new BackfillError('invalid_argument', '--metrics-port serves the metrics of the worker, and --no-worker starts none: drop one of the two', 'metrics-port');
        }
        const policyFile = options.policy !== undefined ? resolvePath(policyPath(options.policy)) : undefined;
        const stack = await startLocal({
          home: settings.home,
          port: options.port,
          uiPort: options.uiPort,
          worker: options.worker,
          transforms: modules,
          queues: options.taskQueue !== undefined ? parseQueues(options.taskQueue, DEFAULT_TASK_QUEUE) : await devQueues(),
          telemetry,
          ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
          ...(options.codeVersion !== undefined ? { codeVersion: options.codeVersion } : {}),
          // Dev says it its own way, once among its ready lines (in JSON: `policy: null`).
          ...(policyFile !== undefined ? { policyFile } : { quietWithoutPolicy: true }),
          ...(settings.workflowBundle !== undefined ? { workflowBundle: settings.workflowBundle } : {}),
          ...(options.allowFaultInjection ? { allowFaultInjection: true } : {}),
          shutdownGraceMs: options.shutdownGrace,
          log: (line) => announce(telemetry.log, line, {}, 'WARN'),
        });
        // From here the worker polls: a failure of these steps stops it and the dev server, as the worker's own failure does.
        const started = async () => {
          const metrics = stack.worker && telemetry.metrics ? metricsUrl(telemetry.metrics) : null;
          const env = devServerEnv(stack.address, stack.uiUrl);
          // The policy its worker judges by (null: none, NO_POLICY's line); no worker, none.
          const policy = stack.worker ? (policyFile ?? null) : null;
          if (options.json) {
            await printStarted({ address: stack.address, uiUrl: stack.uiUrl, database: stack.server.options.dbFile, worker: stack.worker !== null, warehouse: stack.worker?.warehouse.location ?? null, policy, metricsUrl: metrics, env }, 'the addresses');
          }
          const lines = [
            `Temporal dev server on ${stack.address} (state in ${join(settings.home, 'temporal.db')})`,
            `Web UI: ${stack.uiUrl}`,
            stack.worker ? `worker running; warehouse ${stack.worker.warehouse.location}` : 'no worker (--no-worker)',
            ...(stack.worker && policyFile === undefined ? [NO_POLICY] : []),
            ...(metrics ? [`metrics: ${metrics}`] : []),
            ...exportLines(env),
            'Ctrl-C to stop',
          ];
          if (telemetry.log.format === 'json') {
            announce(telemetry.log, 'dev server ready', { address: stack.address, uiUrl: stack.uiUrl, worker: stack.worker !== null, warehouse: stack.worker?.warehouse.location ?? null, policy, metricsUrl: metrics, env });
          } else {
            process.stderr.write(terminalText(lines.join('\n')) + '\n');
          }
        };
        const signal = await stopOnFailure(afterStart(started, stack.worker?.done), () => stack.stop(), 'it and the Temporal dev server (closing its connection and warehouse)', telemetry.log);
        if (signal && stack.worker) {
          const running = stack.worker.workers.running();
          announce(telemetry.log, stoppingMessage(signal, options.shutdownGrace, running.length), { signal, shutdownGraceMs: options.shutdownGrace, running: running.length });
        }
        endAfterStop(await stack.stop(), telemetry.log);
        if (signal && stack.worker) {
          const ended = stack.worker.workers.endedWhileStopping();
          announce(telemetry.log, stoppedMessage(signal, ended), { signal, ...ended });
        }
      });
    });
}
