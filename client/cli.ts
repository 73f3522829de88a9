#!/usr/bin/env node
/** The `backfill` command line. Every command takes --json for machine-readable output. */
import { isIP } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import { BackfillError } from '../core/errors.ts';
import { parseConcurrency, parseRate } from '../core/limits.ts';
import { expandPlan, planSummary } from '../core/plan.ts';
import type { ControlState } from '../core/coordinator.ts';
import { parseRange } from '../core/spec.ts';
import { backfillHome } from '../scripts/temporal-cli.ts';
import { BackfillClient, type Started, type Status } from './backfill-client.ts';
import { describeConnection, resolveConnection, type ConnectionOverrides } from './connection.ts';
import { parseDurationFlag } from './duration-flag.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';
import { BackfillCommand, topLevelHelpText } from './help.ts';
import { EXAMPLE_SPEC, EXAMPLE_TRANSFORMS, parseQueues, portOr, startLocal, startWorker, transformModules } from './local.ts';
import { ProgressView, headline, renderChanges, renderFailures, renderLineage, renderPlan, renderStatus } from './render.ts';
import { renderRestores, renderRollback } from './render-rollback.ts';
import { openWarehouse } from '../activities/warehouse/index.ts';
import { skipOf } from '../core/only-changed.ts';
import type { Plan } from '../core/plan.ts';
import { codeVersion } from '../workers/worker.ts';
import { changeSummary, changedPartitions, type ChangeSummary, type Changes } from './only-changed.ts';
import type { DatasetWriter } from './dataset-writers.ts';
import { gatherReport } from './report/gather.ts';
import { formatOfPath, renderReport, reportFormat } from './report/render.ts';
import { PROJECT_SPEC, loadSpecFile, projectSpec, specTransformModules } from './spec-file.ts';
import { runDemo } from './demo.ts';
import { DEFAULT_WORKER_SLOTS, checkEstimateFlags, estimateOptions, estimatePlan, type EstimateFlags } from './estimate.ts';
import { renderEstimate } from './render-estimate.ts';
import { explainPlan } from '../core/explain.ts';
import { summaryGraph } from './graph/model.ts';
import { checkPictureFlags, drawGraph, graphFormat, type GraphFormat } from './graph/render.ts';
import { explainDocument, renderExplain } from './render-explain.ts';
import { scaffold, type InitResult } from './init.ts';
import { packageJson } from '../scripts/package.ts';
import { announce, logSettings } from '../workers/logging.ts';
import { metricsUrl, parseMetricsPort, type TelemetrySettings } from '../workers/telemetry.ts';

type Json = { json?: boolean };

export { EXIT, exitCodeFor } from './exit-codes.ts';

function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

function positiveInteger(label: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${label} must be a whole number above 0 (got '${value}')`);
    return n;
  };
}

function positiveNumber(label: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${label} must be a number above 0 (got '${value}')`);
    return n;
  };
}

/** --address, --namespace and --profile, which win over Temporal's environment configuration. */
function globals(command: Command): ConnectionOverrides {
  const { address, namespace, profile } = command.optsWithGlobals<ConnectionOverrides>();
  return {
    ...(address !== undefined ? { address } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    ...(profile !== undefined ? { profile } : {}),
  };
}

async function connect(command: Command): Promise<BackfillClient> {
  return BackfillClient.connect(globals(command));
}

async function withClient<T>(command: Command, run: (client: BackfillClient) => Promise<T>): Promise<T> {
  const client = await connect(command);
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

/** Polls status until the backfill ends; draws bars (and stalls) unless --json. */
/** How long `--watch` rides out a Temporal server that does not answer (a restart) before it gives up. */
const WATCH_PATIENCE_MS = 120_000;

export async function watch(client: BackfillClient, backfillId: string, json: boolean | undefined, intervalMs = 1000): Promise<Status> {
  const view = json ? undefined : new ProgressView();
  let unanswered: number | null = null;
  try {
    for (;;) {
      let progress: Status;
      try {
        progress = await client.status(backfillId);
        unanswered = null;
      } catch (error) {
        // A BackfillError is an answer (not found, no worker); anything else is the connection: look again.
        if (error instanceof BackfillError) throw error;
        unanswered ??= Date.now();
        if (Date.now() - unanswered > WATCH_PATIENCE_MS) throw error;
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      view?.update(progress);
      if (progress.state !== 'running') return progress;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  } finally {
    view?.stop();
  }
}

export type TelemetryFlags = { metricsPort?: string; metricsHost: string; logFormat?: string };

/** --metrics-port, --metrics-host and --log-format (over $BACKFILL_LOG_FORMAT and $BACKFILL_LOG_LEVEL). */
export function telemetryFrom(flags: TelemetryFlags): TelemetrySettings {
  const log = logSettings(flags.logFormat);
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
async function serve(flags: TelemetryFlags, run: (telemetry: TelemetrySettings) => Promise<void>): Promise<void> {
  const log = logSettings(flags.logFormat);
  try {
    await run(telemetryFrom(flags));
  } catch (error) {
    if (log.format !== 'json') throw error;
    const failure = error instanceof BackfillError ? error.toJSON() : { code: 'failed', message: error instanceof Error ? error.message : String(error) };
    announce(log, failure.message, { code: failure.code, ...('path' in failure ? { path: failure.path } : {}) }, 'ERROR');
    process.exitCode = EXIT.error;
  }
}

function announceMetrics(telemetry: TelemetrySettings): void {
  if (telemetry.metrics) announce(telemetry.log, `metrics: ${metricsUrl(telemetry.metrics)}`, { metricsUrl: metricsUrl(telemetry.metrics) });
}

const METRICS_PORT_HELP = 'serve Prometheus metrics (the SDK\'s and backfill_*) on this port, at /metrics';
const LOG_FORMAT_HELP = "log lines as 'text' (default) or 'json' (one object per line, INFO and up unless $BACKFILL_LOG_LEVEL says otherwise; default $BACKFILL_LOG_FORMAT)";

type OnlyChanged = { onlyChanged?: boolean; warehouse?: string; codeVersion?: string };

const WAREHOUSE_HELP = 'warehouse: a SQLite file or postgres:// URL (default $BACKFILL_WAREHOUSE or .backfill/warehouse.db)';
const CODE_VERSION_HELP = "the workers' code version (default $BACKFILL_CODE_VERSION, else backfill@<package version>)";

/** --warehouse and --code-version serve --only-changed: alone, they would be ignored without a word. */
function checkOnlyChanged(options: OnlyChanged & { estimate?: boolean }): void {
  // --estimate reads the warehouse's ledger too.
  const given = [options.warehouse !== undefined && !options.estimate && '--warehouse', options.codeVersion !== undefined && '--code-version'].filter(Boolean);
  if (!options.onlyChanged && given.length > 0) {
    const what = given.length > 1 ? `${given.join(' and ')} only matter` : `${given[0]} only matters`;
    throw new BackfillError('invalid_argument', `${what} with --only-changed: add --only-changed, or leave ${given.length > 1 ? 'them' : 'it'} out`, 'only-changed');
  }
}

/** `--only-changed`: which partitions of the plan run again, from the warehouse's ledger. */
async function onlyChanged(plan: Plan, options: OnlyChanged): Promise<{ summary: ChangeSummary; skip: ReturnType<typeof skipOf>; changes: Changes }> {
  const warehouse = openWarehouse(options.warehouse, { inline: true });
  try {
    const version = options.codeVersion ?? codeVersion();
    const changes = await changedPartitions(plan, warehouse, version);
    return { summary: changeSummary(plan, changes, { warehouse: warehouse.location, codeVersion: version }), skip: skipOf(changes.decisions), changes };
  } finally {
    await warehouse.close();
  }
}

/** `--wait-for-datasets [timeout]`: true (as long as it takes) or a duration. */
function waitTimeout(value: string | true): { timeoutMs?: number } {
  if (value === true) return {};
  return { timeoutMs: parseDurationFlag('--wait-for-datasets', value, {}, 'or give no value to wait as long as it takes') };
}

/** How often `status --watch` looks: a duration from 100 ms to 10 minutes. */
const INTERVAL_BOUNDS = { minMs: 100, maxMs: 600_000 };

/**
 * The nodes a new backfill-wide limit leaves capped by their own lower one (a node never
 * exceeds its own rate or concurrency, whatever the backfill's): what set-rate and
 * set-concurrency without --node tell the operator.
 */
export function cappedByOwnLimit(state: ControlState, kind: 'rate' | 'concurrency'): Array<{ node: string; limit: number }> {
  const backfill = state[kind];
  return state.nodes.flatMap((n) => {
    const own = n[kind];
    return own !== null && (backfill === null || own < backfill) ? [{ node: n.id, limit: own }] : [];
  });
}

/** The line under set-rate's or set-concurrency's answer that names the nodes their own limit keeps lower. */
export function cappedLine(id: string, kind: 'rate' | 'concurrency', capped: ReadonlyArray<{ node: string; limit: number }>): string {
  if (capped.length === 0) return '';
  const unit = kind === 'rate' ? '/s' : '';
  const list = capped.map((c) => `${c.node} ${c.limit}${unit}`).join(', ');
  const command = kind === 'rate' ? 'set-rate' : 'set-concurrency';
  return `\n  capped lower by their own ${kind}: ${list} (raise one with 'backfill ${command} ${id} <${kind === 'rate' ? 'per-second' : 'n'}> --node <node>')`;
}

/** Tells on stderr which datasets a start waits for, and how far their writers are. */
function reportWaiting(client: BackfillClient): (writers: DatasetWriter[]) => Promise<void> {
  return async (writers) => {
    const lines = await Promise.all(
      writers.map(async (w) => {
        const progress = await client.progress(w.backfillId).then((p) => `${p.done}/${p.total} done${p.paused ? ', paused' : ''}`, () => 'progress unknown');
        return `  ${w.datasets.join(', ')}: written by ${w.backfillId} (${progress})`;
      }),
    );
    process.stderr.write(`waiting for datasets to be free:\n${lines.join('\n')}\n`);
  };
}

/** `dev`'s transforms when none are named: those of the project's spec (./backfill.yaml), else the example's. */
async function devTransforms(): Promise<string[]> {
  const spec = projectSpec();
  return spec ? specTransformModules(spec) : [EXAMPLE_TRANSFORMS];
}

function renderInit(result: InitResult): string {
  const where = relative(process.cwd(), result.dir);
  const kept = result.keptScripts.length > 0 ? ` (your scripts ${result.keptScripts.join(', ')} were kept)` : '';
  return [
    `created the pipeline ${pc.bold(result.name)} in ${result.dir}: ${result.written.filter((f) => f !== 'package.json').join(', ')}`,
    `package.json ${result.packageJson === 'updated' ? `gained the scripts and dependencies it lacked${kept}` : 'written'}`,
    '',
    'next:',
    ...(where === '' ? [] : [`  cd ${where}`]),
    '  npm install',
    '  npm run plan     validate the spec and preview its partitions',
    '  npm run demo     run it on a local Temporal dev server (Web UI on http://localhost:8233)',
  ].join('\n');
}

function waitForSignal(): Promise<void> {
  return new Promise((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

export function buildProgram(): Command {
  const program = new BackfillCommand()
    .name('backfill')
    .description('Durable, rate-limited backfills of partitioned datasets, on Temporal')
    .option('--address <host:port>', 'Temporal frontend (default $TEMPORAL_ADDRESS, the profile\'s address, or localhost:7233)')
    .option('--namespace <name>', 'Temporal namespace (default $TEMPORAL_NAMESPACE, the profile\'s namespace, or default)')
    .option('--profile <name>', 'profile of the Temporal config file ($TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml; default $TEMPORAL_PROFILE or default)')
    .version(packageJson().version)
    .addHelpText('after', topLevelHelpText())
    // Before any subcommand exists, so that each inherits it: a subcommand's usage error then
    // reaches main() too (JSON with --json, exit code 1) instead of exiting inside commander.
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(pc.red(text)) });

  program
    .command('init')
    .description(`scaffold a pipeline project: ${PROJECT_SPEC} with two datasets, transforms.ts, package.json with scripts, README.md, .gitignore`)
    .argument('[dir]', 'the directory (created if missing; default: the working directory)', '.')
    .option('--force', "write into a directory that is not empty: files of the same names are replaced; package.json only gains the scripts and dependencies it lacks")
    .option('--json', 'machine-readable output')
    .action((dir: string, options: Json & { force?: boolean }) => {
      const result = scaffold({ dir, force: options.force === true });
      print(options.json, result, () => renderInit(result));
    });

  program
    .command('plan')
    .description('validate a spec and preview its partitions, critical path and width; needs no server')
    .argument('<spec>', 'spec file (.yaml, .json or .ts)')
    .option('--from <date>', 'first partition time (inclusive, UTC)')
    .option('--to <date>', 'end of the range (exclusive, UTC)')
    .option('--only-changed', 'also count the partitions that would run with --only-changed (reads the warehouse\'s ledger)')
    .option('--warehouse <path>', WAREHOUSE_HELP)
    .option('--code-version <version>', CODE_VERSION_HELP)
    .option('--explain', 'say why each node is in the backfill: the range, what it waits on through which mapping, what it reads outside the range; with --only-changed, what changed')
    .option('--estimate', 'predict the wall time, each node\'s finish and the rows written, from the ledger of earlier backfills (writes nothing)')
    .option('--rate <per-second>', 'with --estimate: the backfill-wide rate start would be given', (v: string) => parseRate(v))
    .option('--concurrency <n>', 'with --estimate: the backfill-wide concurrency start would be given', (v: string) => parseConcurrency(v))
    .option('--queue-cap <queue=per-second...>', "with --estimate: a task queue's server-enforced activities per second (as the workers' --task-queue name=N)")
    .option('--worker-slots <n>', `with --estimate: activity slots of the workers per task queue (default ${DEFAULT_WORKER_SLOTS}, one worker)`, positiveInteger('--worker-slots'))
    .option('--assume <duration>', 'with --estimate: how long a partition of a node without history takes (default: nothing beyond orchestration)', (v: string) => parseDurationFlag('--assume', v, { minMs: 0 }))
    .option('--format <format>', 'draw the graph of datasets instead: svg, dot (Graphviz) or mermaid', graphFormat)
    .option('--json', 'machine-readable output')
    .action(async (file: string, options: Json & OnlyChanged & EstimateFlags & { from?: string; to?: string; explain?: boolean; format?: GraphFormat }) => {
      checkOnlyChanged(options);
      checkPictureFlags(options);
      checkEstimateFlags(options);
      const { spec } = await loadSpecFile(file);
      const range = parseRange(options.from, options.to);
      const plan = expandPlan(spec, range);
      const summary = planSummary(plan);
      if (options.format) return void process.stdout.write(await drawGraph(summaryGraph(summary), options.format));
      const changes = options.onlyChanged ? await onlyChanged(plan, options) : undefined;
      const estimate = options.estimate ? await estimatePlan(plan, estimateOptions(spec, options, changes?.skip)) : undefined;
      const explanation = options.explain ? explainPlan(plan, range, changes?.changes.decisions) : undefined;
      const result = { ...summary, ...(changes ? { onlyChanged: changes.summary } : {}), ...(explanation ? { explain: explainDocument(explanation, changes?.changes.details) } : {}), ...(estimate ? { estimate } : {}) };
      print(options.json, result, () =>
        [renderPlan(summary), ...(changes ? [renderChanges(changes.summary)] : []), ...(explanation ? [renderExplain(explanation, changes?.changes.details)] : []), ...(estimate ? [renderEstimate(estimate)] : [])].join('\n'),
      );
    });

  program
    .command('start')
    .description('start a backfill; prints its id and Web UI link')
    .argument('<spec>', 'spec file (.yaml, .json or .ts)')
    .option('--id <id>', 'backfill id (default: the spec name and the time)')
    .option('--from <date>', 'first partition time (inclusive, UTC)')
    .option('--to <date>', 'end of the range (exclusive, UTC)')
    .option('--rate <per-second>', 'backfill-wide rate limit, partitions per second', (v: string) => parseRate(v))
    .option('--concurrency <n>', 'backfill-wide limit on partitions running at once', (v: string) => parseConcurrency(v))
    .option('--rerun', 'run an id again whose earlier backfill has finished')
    .option('--attach', 'when a backfill with this id is already running, attach to it instead of failing')
    .option('--only-changed', 'run only the partitions whose spec, code or upstream versions changed since their published version, or that were never published')
    .option('--warehouse <path>', `with --only-changed, the ${WAREHOUSE_HELP}`)
    .option('--code-version <version>', `with --only-changed, ${CODE_VERSION_HELP}`)
    .option('--wait-for-datasets [timeout]', 'when running backfills write some of its datasets, wait until they are free (as long as it takes, or up to a duration such as 2h, or 600 for seconds) instead of failing; give it after the spec')
    .option('--watch', 'show live progress until it ends')
    .option('--json', 'machine-readable output')
    .action(async (file: string, options: Json & OnlyChanged & { id?: string; from?: string; to?: string; rate?: number | null; concurrency?: number | null; rerun?: boolean; attach?: boolean; watch?: boolean; waitForDatasets?: string | true }, command: Command) => {
      checkOnlyChanged(options);
      const { spec } = await loadSpecFile(file);
      const range = parseRange(options.from, options.to);
      const wait = options.waitForDatasets === undefined ? undefined : waitTimeout(options.waitForDatasets);
      const changes = options.onlyChanged ? await onlyChanged(expandPlan(spec, range), options) : undefined;
      await withClient(command, async (client) => {
        let started: Started & { attached?: boolean; onlyChanged?: ChangeSummary };
        try {
          started = await client.start(spec, {
            range,
            ...(options.id !== undefined ? { id: options.id } : {}),
            ...(options.rerun ? { rerun: true } : {}),
            limits: {
              ...(options.rate !== undefined ? { rate: options.rate } : {}),
              ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
            },
            ...(changes ? { skip: changes.skip } : {}),
            ...(wait ? { waitForDatasets: { ...wait, onWait: reportWaiting(client) } } : {}),
          });
          if (changes) started = { ...started, onlyChanged: changes.summary };
        } catch (error) {
          const running = options.attach && options.id !== undefined && error instanceof BackfillError && error.code === 'already_exists'
            ? await client.describe(options.id).then((d) => (d.status.name === 'RUNNING' ? d : undefined))
            : undefined;
          if (!running) throw error;
          started = { backfillId: options.id!, workflowId: running.workflowId, runId: running.runId, uiUrl: client.uiUrl(running.workflowId, running.runId), attached: true };
        }
        const verb = started.attached ? 'attached to' : 'started';
        const kept = started.onlyChanged ? `\n  only changed: ${started.onlyChanged.totalToRun} partitions run, ${started.onlyChanged.totalSkipped} keep their published versions` : '';
        print(options.json, started, () => `${verb} ${pc.bold(started.backfillId)}${kept}\n  web UI: ${started.uiUrl}\n  watch:  backfill status ${started.backfillId} --watch`);
        if (options.watch) {
          const final = await watch(client, started.backfillId, options.json);
          if (!options.json) process.stdout.write(`${[headline(final), ...renderFailures(final)].join('\n')}\n`);
          process.exitCode = exitCodeFor(final.state);
        }
      });
    });

  program
    .command('status')
    .description('per-node progress, throughput, ETA and failures')
    .argument('<id>', 'backfill id')
    .option('--watch', 'live progress bars until it ends')
    .option('--interval <duration>', 'refresh interval with --watch, e.g. 500ms or 5s (a bare number counts seconds; default 1s)', (v: string) => parseDurationFlag('--interval', v, INTERVAL_BOUNDS), 1000)
    .option('--json', 'machine-readable output')
    .action(async (id: string, options: Json & { watch?: boolean; interval: number }, command: Command) => {
      await withClient(command, async (client) => {
        if (options.watch) {
          const final = await watch(client, id, options.json, options.interval);
          print(options.json, final, () => renderStatus(final));
          return;
        }
        const status = await client.status(id);
        print(options.json, status, () => renderStatus(status));
      });
    });

  program
    .command('wait')
    .description('block until the backfill ends; exit 0 only if it completed')
    .argument('<id>', 'backfill id')
    .option('--timeout <duration>', 'give up (exit 1) after this long, e.g. 30m, 2h or 300 (a bare number counts seconds)', (v: string) => parseDurationFlag('--timeout', v))
    .option('--json', 'machine-readable output')
    .action(async (id: string, options: Json & { timeout?: number }, command: Command) => {
      const timeoutMs = options.timeout;
      await withClient(command, async (client) => {
        const outcome = await client.wait(id, timeoutMs);
        print(options.json, { backfillId: id, state: outcome.state, progress: outcome.progress }, () =>
          outcome.progress ? [headline(outcome.progress), ...renderFailures(outcome.progress)].join('\n') : `${id} ${outcome.state}`,
        );
        process.exitCode = exitCodeFor(outcome.state);
      });
    });

  const control = (name: string, description: string, run: (client: BackfillClient, id: string) => Promise<unknown>, human: (result: unknown, id: string) => string) =>
    program
      .command(name)
      .description(description)
      .argument('<id>', 'backfill id')
      .option('--json', 'machine-readable output')
      .action(async (id: string, options: Json, command: Command) => {
        await withClient(command, async (client) => {
          const result = await run(client, id);
          print(options.json, { backfillId: id, ...(typeof result === 'object' && result !== null ? result : {}) }, () => human(result, id));
        });
      });

  control('pause', 'start no new partitions (running ones finish)', (c, id) => c.pause(id), (_r, id) => `${id} paused: running partitions finish, no new ones start`);
  control(
    'cancel',
    'cancel the backfill; running partitions are cancelled cleanly',
    async (c, id) => {
      await c.cancel(id);
      return { cancelRequested: true };
    },
    (_r, id) => `${id}: cancellation requested (running partitions stop at their next heartbeat); 'backfill wait ${id}' waits for it`,
  );

  const changedLine = (changed: string[]) => (changed.length > 0 ? `\n  new spec for: ${changed.join(', ')}` : '');

  program
    .command('resume')
    .description('go on: un-pause a running backfill, or resume a cancelled or failed one in a new run that skips what is published')
    .argument('<id>', 'backfill id')
    .option('--spec <file>', 'go on with this spec (the same nodes and partitions; fixed transforms, SQL, parameters, checks or limits)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, options: Json & { spec?: string }, command: Command) => {
      const spec = options.spec !== undefined ? (await loadSpecFile(options.spec)).spec : undefined;
      await withClient(command, async (client) => {
        const result = await client.resume(id, spec ? { spec } : {});
        print(options.json, { backfillId: id, ...result }, () =>
          result.resumed
            ? `${id} resumed in a new run; published partitions are skipped${changedLine(result.changed)}\n  web UI: ${result.resumed.uiUrl}`
            : `${id} resumed${changedLine(result.changed)}`,
        );
      });
    });

  program
    .command('retry-failed')
    .description('run the failed partitions again, then the ones they blocked (of a running or an ended backfill)')
    .argument('<id>', 'backfill id')
    .option('--node <node>', 'only this node')
    .option('--spec <file>', 'retry with this spec (the same nodes and partitions; fixed transforms, SQL, parameters or checks)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, options: Json & { node?: string; spec?: string }, command: Command) => {
      const spec = options.spec !== undefined ? (await loadSpecFile(options.spec)).spec : undefined;
      await withClient(command, async (client) => {
        const result = await client.retryFailed(id, options.node, spec);
        print(options.json, { backfillId: id, ...result }, () =>
          result.resumed
            ? `${id} resumed in a new run to retry ${result.retried} failed partitions${changedLine(result.changed)}\n  web UI: ${result.resumed.uiUrl}`
            : `${id}: retrying ${result.retried} failed partitions${changedLine(result.changed)}`,
        );
      });
    });

  program
    .command('set-rate')
    .description("change the rate (partitions per second, or 'unlimited') of a running backfill or one node")
    .argument('<id>', 'backfill id')
    .argument('<per-second>', "partitions per second, or 'unlimited'")
    .option('--node <node>', 'only this node')
    .option('--json', 'machine-readable output')
    .action(async (id: string, value: string, options: Json & { node?: string }, command: Command) => {
      const rate = parseRate(value);
      await withClient(command, async (client) => {
        const state = await client.setRate(id, rate, options.node);
        // A node whose own rate is lower keeps it: name those, so that a raised backfill rate surprises nobody.
        const capped = options.node === undefined ? cappedByOwnLimit(state, 'rate') : [];
        const cappedByOwnRate = capped.map((c) => ({ node: c.node, rate: c.limit }));
        print(options.json, { backfillId: id, ...state, ...(options.node === undefined ? { cappedByOwnRate } : {}) }, () =>
          `${id}: ${options.node ? `node ${options.node}` : 'backfill'} rate is now ${rate === null ? 'unlimited' : `${rate}/s`}${cappedLine(id, 'rate', capped)}`,
        );
      });
    });

  program
    .command('set-concurrency')
    .description('change how many partitions run at once, for the backfill or one node')
    .argument('<id>', 'backfill id')
    .argument('<n>', "a whole number (or 'unlimited' for the backfill-wide limit)")
    .option('--node <node>', 'only this node')
    .option('--json', 'machine-readable output')
    .action(async (id: string, value: string, options: Json & { node?: string }, command: Command) => {
      const concurrency = parseConcurrency(value, options.node);
      await withClient(command, async (client) => {
        const state = await client.setConcurrency(id, concurrency, options.node);
        const capped = options.node === undefined ? cappedByOwnLimit(state, 'concurrency') : [];
        const cappedByOwnConcurrency = capped.map((c) => ({ node: c.node, concurrency: c.limit }));
        print(options.json, { backfillId: id, ...state, ...(options.node === undefined ? { cappedByOwnConcurrency } : {}) }, () =>
          `${id}: ${options.node ? `node ${options.node}` : 'backfill'} concurrency is now ${concurrency ?? 'unlimited'}${cappedLine(id, 'concurrency', capped)}`,
        );
      });
    });

  program
    .command('set-queue-rate')
    .description("cap activities started per second on a task queue, across all its workers (server-enforced); 'unlimited' removes the cap")
    .argument('<task-queue>', 'the activity task queue (a node\'s taskQueue)')
    .argument('<per-second>', "activities per second, or 'unlimited'")
    .option('--json', 'machine-readable output')
    .action(async (queue: string, value: string, options: Json, command: Command) => {
      const rate = parseRate(value);
      await withClient(command, async (client) => {
        const result = await client.setQueueRate(queue, rate);
        print(options.json, result, () => `task queue ${queue}: ${result.rate === null ? 'no server-side cap (workers\' own setting applies)' : `at most ${result.rate} activities/s across all workers`}`);
      });
    });

  program
    .command('lineage')
    .description('which backfill, transform, parameters, code and input versions made a partition, version by version')
    .argument('<node>', 'the node (dataset)')
    .argument('<partition>', 'the partition key, e.g. 2024-03-01')
    .option('--warehouse <path>', 'the warehouse: a SQLite file or a postgres:// URL (default $BACKFILL_WAREHOUSE or .backfill/warehouse.db)')
    .option('--json', 'machine-readable output')
    .action(async (node: string, partition: string, options: Json & { warehouse?: string }) => {
      const warehouse = openWarehouse(options.warehouse, { inline: true });
      try {
        const versions = await warehouse.ledger({ node, partition });
        if (versions.length === 0) {
          throw new BackfillError('not_found', `no version of ${node} ${partition} in the ledger of ${warehouse.location}: check the node id and the partition key (e.g. 2024-03-01, 2024-W09, 2024-03)`);
        }
        const rollbacks = await warehouse.rollbacks({ node, partition });
        print(options.json, { node, partition, current: versions.find((v) => v.current) ?? null, versions, rollbacks }, () =>
          [renderLineage(node, partition, versions), ...renderRestores(rollbacks)].join('\n'),
        );
      } finally {
        await warehouse.close();
      }
    });

  program
    .command('rollback')
    .description('restore every partition the backfill changed to its version before it (checksums verified); exits 2 if some were left alone')
    .argument('<id>', 'backfill id (it must have ended: cancel or wait for it first)')
    .option('--force', 'also restore partitions that a later backfill changed since, undoing those changes')
    .option('--json', 'machine-readable output')
    .action(async (id: string, options: Json & { force?: boolean }, command: Command) => {
      await withClient(command, async (client) => {
        const summary = await client.rollback(id, { force: options.force === true });
        print(options.json, summary, () => renderRollback(summary));
        if (summary.leftAlone > 0 && !summary.force) process.exitCode = EXIT.failures;
      });
    });

  program
    .command('report')
    .description('an audit report of what a backfill did: spec, plan, per-node figures, checks, changes and a timeline picture')
    .argument('<id>', 'backfill id')
    .option('--output <file>', "where to write it ('-' for stdout; default report-<id>.<format>)")
    .option('--format <format>', 'html (one self-contained file), json (the report model) or md (default: from --output, else html)')
    .option('--warehouse <path>', WAREHOUSE_HELP)
    .option('--json', 'print where it was written as JSON')
    .action(async (id: string, options: Json & { output?: string; format?: string; warehouse?: string }, command: Command) => {
      const format = options.format !== undefined ? reportFormat(options.format) : (formatOfPath(options.output ?? '') ?? 'html');
      const output = options.output ?? `report-${id}.${format}`;
      const warehouse = openWarehouse(options.warehouse, { inline: true });
      try {
        await withClient(command, async (client) => {
          const report = await gatherReport(client, warehouse, id);
          const text = await renderReport(report, format);
          if (output === '-') return void process.stdout.write(text);
          await writeFile(output, text);
          print(options.json, { backfillId: id, output, format, state: report.backfill.state, partitions: report.totals.partitions, published: report.totals.published }, () =>
            `wrote the ${format} report of ${id} (${report.backfill.state}, ${report.totals.published.toLocaleString('en-US')} partitions published) to ${output}`,
          );
        });
      } finally {
        await warehouse.close();
      }
    });

  program
    .command('setup')
    .description('register the search attributes BackfillId, BackfillNode and BackfillStatus on the namespace (an admin step, once per namespace)')
    .option('--json', 'machine-readable output')
    .action(async (options: Json, command: Command) => {
      await withClient(command, async (client) => {
        const result = await client.setup();
        print(options.json, result, () =>
          [
            `namespace ${result.namespace}:`,
            result.added.length > 0 ? `  added ${result.added.join(', ')}` : '  nothing to add',
            ...(result.existing.length > 0 ? [`  already registered: ${result.existing.join(', ')}`] : []),
          ].join('\n'),
        );
      });
    });

  program
    .command('worker')
    .description('run a worker against the Temporal server of $TEMPORAL_ADDRESS or the profile (default localhost:7233)')
    .option('--task-queue <queue...>', 'activity task queues to poll, as name or name=maxActivitiesPerSecond (default: backfill)')
    .option('--workflow-queue <queue>', 'the workflows task queue', 'backfill')
    .option('--no-workflows', 'poll activity queues only')
    .option('--transforms <module...>', 'modules that define transforms (default $BACKFILL_TRANSFORMS)')
    .option('--max-concurrent-activities <n>', 'partition activities this worker runs at once, per activity queue (default 200)', positiveInteger('--max-concurrent-activities'))
    .option('--warehouse <location>', 'the warehouse: a SQLite file or a postgres:// URL (default $BACKFILL_WAREHOUSE or .backfill/warehouse.db)')
    .option('--allow-fault-injection', "let the sleep transform's crashKeys and hangKeys kill or hang this worker (chaos drills only)")
    .option('--metrics-port <port>', METRICS_PORT_HELP)
    .option('--metrics-host <ip>', 'the address the metrics port listens on', '0.0.0.0')
    .option('--log-format <format>', LOG_FORMAT_HELP)
    .option('--json', 'print the worker\'s settings as JSON once it polls')
    .action(async (options: Json & TelemetryFlags & { taskQueue?: string[]; workflowQueue: string; workflows: boolean; transforms?: string[]; warehouse?: string; allowFaultInjection?: boolean; maxConcurrentActivities?: number }, command: Command) => {
      await serve(options, async (telemetry) => {
        const connection = resolveConnection(globals(command));
        const queues = parseQueues(options.taskQueue, options.workflowQueue, options.maxConcurrentActivities);
        const worker = await startWorker({
          connection,
          transforms: transformModules(options.transforms),
          queues,
          workflowQueue: options.workflowQueue,
          workflows: options.workflows,
          telemetry,
          ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
          ...(options.allowFaultInjection ? { allowFaultInjection: true } : {}),
        });
        const metrics = telemetry.metrics ? metricsUrl(telemetry.metrics) : null;
        if (options.json) {
          print(true, { address: connection.address, namespace: connection.namespace, workflowQueue: options.workflows ? options.workflowQueue : null, activityQueues: queues, warehouse: worker.warehouse.location, metricsUrl: metrics }, () => '');
        }
        announceMetrics(telemetry);
        announce(telemetry.log, `worker polling ${queues.map((q) => q.name).join(', ')} on ${describeConnection(connection)}; warehouse ${worker.warehouse.location}`, {
          taskQueues: queues.map((q) => q.name),
          workflowQueue: options.workflows ? options.workflowQueue : null,
          address: connection.address,
          namespace: connection.namespace,
          warehouse: worker.warehouse.location,
        });
        await Promise.race([worker.done, waitForSignal()]);
        await worker.stop();
      });
    });

  program
    .command('dev')
    .description('start the embedded Temporal dev server (Web UI on :8233) and a worker')
    .option('--no-worker', 'the server only')
    .option('--port <port>', 'gRPC port', positiveNumber('--port'), 7233)
    .option('--ui-port <port>', 'Web UI port', positiveNumber('--ui-port'), 8233)
    .option('--task-queue <queue...>', 'activity task queues to poll, as name or name=maxActivitiesPerSecond')
    .option('--transforms <module...>', `modules that define transforms (default $BACKFILL_TRANSFORMS, else those ./${PROJECT_SPEC} lists, else the example's)`)
    .option('--warehouse <path>', 'the warehouse: a SQLite file or a postgres:// URL')
    .option('--allow-fault-injection', "let the sleep transform's crashKeys and hangKeys kill or hang the worker (chaos drills only)")
    .option('--metrics-port <port>', `the worker: ${METRICS_PORT_HELP}`)
    .option('--metrics-host <ip>', 'the address the metrics port listens on', '127.0.0.1')
    .option('--log-format <format>', `the worker: ${LOG_FORMAT_HELP}`)
    .option('--json', 'print the addresses as JSON once ready')
    .action(async (options: Json & TelemetryFlags & { worker: boolean; port: number; uiPort: number; taskQueue?: string[]; transforms?: string[]; warehouse?: string; allowFaultInjection?: boolean }) => {
      await serve(options, async (telemetry) => {
        const named = transformModules(options.transforms);
        if (!options.worker && telemetry.metrics) {
          throw new BackfillError('invalid_argument', '--metrics-port serves the metrics of the worker, and --no-worker starts none: drop one of the two', 'metrics-port');
        }
        const stack = await startLocal({
          port: options.port,
          uiPort: options.uiPort,
          worker: options.worker,
          transforms: named.length > 0 ? named : await devTransforms(),
          queues: parseQueues(options.taskQueue, 'backfill'),
          telemetry,
          ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
          ...(options.allowFaultInjection ? { allowFaultInjection: true } : {}),
        });
        const metrics = stack.worker && telemetry.metrics ? metricsUrl(telemetry.metrics) : null;
        if (options.json) {
          print(true, { address: stack.address, uiUrl: stack.uiUrl, database: stack.server.options.dbFile, worker: stack.worker !== null, warehouse: stack.worker?.warehouse.location ?? null, metricsUrl: metrics }, () => '');
        }
        const lines = [
          `Temporal dev server on ${stack.address} (state in ${join(backfillHome(), 'temporal.db')})`,
          `Web UI: ${stack.uiUrl}`,
          stack.worker ? `worker running; warehouse ${stack.worker.warehouse.location}` : 'no worker (--no-worker)',
          ...(metrics ? [`metrics: ${metrics}`] : []),
          'Ctrl-C to stop',
        ];
        if (telemetry.log.format === 'json') {
          announce(telemetry.log, 'dev server ready', { address: stack.address, uiUrl: stack.uiUrl, worker: stack.worker !== null, warehouse: stack.worker?.warehouse.location ?? null, metricsUrl: metrics });
        } else {
          process.stderr.write(lines.join('\n') + '\n');
        }
        await Promise.race([waitForSignal(), stack.worker?.done ?? new Promise(() => undefined)]);
        await stack.stop();
      });
    });

  program
    .command('demo')
    .description(`all in one: a dev server, a worker and a backfill of ./${PROJECT_SPEC} (else the example) with live progress`)
    .option('--spec <file>', `the spec to run (default: ./${PROJECT_SPEC}, else the shop example)`)
    .option('--json', 'machine-readable output')
    .action(async (options: Json & { spec?: string }) => {
      const state = await runDemo({
        spec: options.spec ?? projectSpec() ?? EXAMPLE_SPEC,
        json: options.json,
        port: await portOr(7233),
        uiPort: await portOr(8233),
        startLocal,
        watch,
      });
      process.exitCode = exitCodeFor(state);
    });

  return program;
}

function reportError(error: unknown, json: boolean): void {
  const failure =
    error instanceof BackfillError
      ? error
      : new BackfillError('failed', error instanceof Error ? error.message : String(error));
  if (json) process.stdout.write(`${JSON.stringify({ error: failure.toJSON() }, null, 2)}\n`);
  else process.stderr.write(`${pc.red('error:')} ${failure.message}\n`);
}

export async function main(argv = process.argv): Promise<void> {
  const json = argv.includes('--json');
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
      process.exitCode = EXIT.ok;
      return;
    }
    if (typeof code === 'string' && code.startsWith('commander.')) {
      if (json) reportError(new BackfillError('invalid_argument', (error as Error).message.replace(/^error: /, '')), true);
      process.exitCode = EXIT.error;
      return;
    }
    reportError(error, json);
    process.exitCode = EXIT.error;
  }
}

if (process.argv[1]?.endsWith('client/cli.ts')) {
  await main();
  // gRPC handles can keep the process alive after the command is done.
  setTimeout(() => process.exit(), 100).unref();
}
