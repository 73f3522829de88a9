/**
 * Benchmarks (`npm run bench [-- --only noop-10k,rate-20]`), on a fresh dev server and
 * worker processes of their own:
 *
 *   noop-1k, noop-10k, noop-100k   5 chained hourly nodes of `noop`: partitions per second,
 *                                  history events per partition, the largest history of any
 *                                  run, continue-as-new runs, the worker's resident memory
 *   noop-100k-batch10              the same 100,000 partitions, 10 per activity
 *   overhead                       one node of `noop` partitions at width 50, 10,000 unbatched and
 *                                  100,000 in batches of 50 and in `auto` batches (no batchSize
 *                                  in the spec), as a ratio to a bare Temporal sliding
 *                                  window of 10,000 no-op activities of the same width, each on a
 *                                  fresh dev server; also the worker's and the server's CPU per partition
 *   baseline                       the bare sliding window alone
 *   noop-10k-width50, noop-100k-width50-batch50, noop-100k-width50-auto
 *                                  the unbatched and the batched parts of `overhead` alone
 *   million                        1,000,000 `noop` partitions (10 nodes x 100,000 hours, window
 *                                  and lag mappings, 100 per activity): time, histories, memory
 *   rate-5, rate-20, rate-100      one node at a fixed rate for 35 s: the achieved rate over
 *                                  the 30 s after the first second, and the busiest 1 s window
 *   example-sqlite, example-postgres, example-lake
 *                                  the shop example (1,528 partitions) on each warehouse, with
 *                                  the CPU a partition of the worker, the Temporal server and a
 *                                  local PostgreSQL, the cores busy on average, and the load
 *                                  average when it ended (the machine may be shared)
 *   sql-100, sql-3000 (-postgres)  a SQL node reading its upstream partition, at 100 and 3,000
 *                                  partitions per node: its time per partition (flat when reads
 *                                  are scoped to the partitions a partition maps to)
 *   workers-1, workers-2, workers-4
 *                                  `sleep` partitions (250 ms, 30 s of ideal work) on 1, 2 and 4
 *                                  worker processes of 8 activity slots each: throughput against
 *                                  the ideal, where the time goes (dispatch, completion, idle slots)
 *   workers-1-batch1, workers-2-batch1, workers-4-batch1
 *                                  the same with one partition per activity
 *   cli                            how long the command line takes: `--version`, `plan` of the
 *                                  example, and `status` and `pause` of a running backfill, the
 *                                  median of 10 runs each, compiled (`npm run build`, run as an
 *                                  installed package runs it) and from the checkout (tsx)
 *
 * Results are printed and written to .backfill/bench/results.json.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { openWarehouse } from '../activities/warehouse/index.ts';
import type { Warehouse } from '../activities/warehouse/types.ts';
import { fingerprint } from '../client/demo.ts';
import { loadSpecFile } from '../client/spec-file.ts';
import { expandPlan } from '../core/plan.ts';
import { BackfillClient } from '../client/backfill-client.ts';
import { resolveSpec, type ResolvedSpec } from '../core/spec.ts';
import { TokenBucket } from '../core/pacing.ts';
import { DIST, build } from './build.ts';
import { startDevServer, stopProcess, type DevServer } from '../host/dev-server.ts';
import { createDatabase, dropDatabase, testPostgresUrl, withPostgres } from './postgres.ts';
import { WorkerProcess } from './worker-process.ts';
import { dispatchTimings, phases } from './dispatch-timings.ts';

const ROOT = new URL('..', import.meta.url).pathname;
/** Node options for the workers, e.g. BACKFILL_BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const WORKER_NODE_ARGS = process.env.BACKFILL_BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

type Sample = { at: number; rssMb: number };

/** The fields of /proc/<pid>/stat after the command's closing parenthesis (state is the first). */
function statFields(pid: number): string[] {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
}

/** Clock ticks (Linux's USER_HZ, 100 a second) in ms. */
const TICK_MS = 10;

/** CPU time (user + system, all threads) a process has used so far, in ms; 0 once it is gone. */
function cpuMs(pid: number | undefined): number {
  try {
    // utime and stime are the 14th and 15th fields of the line.
    const fields = statFields(pid!);
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/**
 * CPU time a local PostgreSQL server has used so far, in ms: its postmaster's own, the children
 * it has reaped (the backends of connections that closed), and the children still running.
 */
function postgresCpuMs(postmaster: number): number {
  const own = statFields(postmaster);
  let ms = (Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])) * TICK_MS;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = statFields(Number(entry));
      if (Number(fields[1]) === postmaster) ms += (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    } catch {
      // The process ended meanwhile: its time is in the postmaster's reaped children now.
    }
  }
  return ms;
}

/** The postmaster of the PostgreSQL at `url`, when it runs on this machine (else undefined). */
async function localPostmaster(url: string): Promise<number | undefined> {
  // Read while the connection is open: its backend ends with it.
  return withPostgres(url, async (c) => {
    const backend = Number((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    try {
      return Number(statFields(backend)[1]);
    } catch {
      return undefined;
    }
  });
}

/** All cores' busy and total time so far, in ms (/proc/stat: idle and iowait are the 4th and 5th). */
function machineCpuMs(): { busy: number; total: number } {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0) * TICK_MS;
  return { busy: total - (ticks[3]! + ticks[4]!) * TICK_MS, total };
}

/**
 * CPU per partition of the worker, the Temporal server and (on a local PostgreSQL warehouse) the
 * PostgreSQL server, and how many of the machine's cores were busy on average: on a machine
 * where they share a few cores, the sum, not the worker's part alone, sets the pace.
 */
function cpuMeter(env: Env, workerPid = env.workerPid) {
  const read = () => ({
    worker: cpuMs(workerPid),
    server: cpuMs(env.server.process.pid),
    postgres: env.postmaster === undefined ? 0 : postgresCpuMs(env.postmaster),
    machine: machineCpuMs(),
  });
  const before = read();
  return (units: number) => {
    const after = read();
    const per = (ms: number) => Number((ms / units).toFixed(2));
    return {
      workerMsPer: per(after.worker - before.worker),
      serverMsPer: per(after.server - before.server),
      ...(env.postmaster === undefined ? {} : { postgresMsPer: per(after.postgres - before.postgres) }),
      busyCores: Number((((after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total)) * cpus().length).toFixed(2)),
      cores: cpus().length,
    };
  };
}

/** Samples a worker process's resident memory every half second. */
class MemorySampler {
  readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly worker: WorkerProcess) {
    this.timer = setInterval(() => {
      const rss = worker.memoryMb('VmRSS');
      if (rss !== undefined) this.samples.push({ at: Date.now(), rssMb: rss });
    }, 500);
  }

  peakMb(): number {
    return this.worker.memoryMb('VmHWM') ?? Math.max(0, ...this.samples.map((s) => s.rssMb));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

type Env = {
  server: DevServer;
  client: BackfillClient;
  memory: MemorySampler;
  warehouse: Warehouse;
  dir: string;
  workerPid: number | undefined;
  /** The postmaster of a PostgreSQL warehouse on this machine, whose CPU the scenario counts too. */
  postmaster: number | undefined;
};

type EnvOptions = {
  /** Where partitions are written (default a SQLite file in the run's directory; a lake is a directory there). */
  warehouse?: 'sqlite' | 'postgres' | 'lake';
  workers?: number;
  maxConcurrentActivities?: number;
  transforms?: string[];
};

async function withEnvironment<T>(name: string, run: (env: Env) => Promise<T>, options: EnvOptions = {}): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `backfill-bench-${name}-`));
  let location = join(dir, 'warehouse.db');
  let database: string | undefined;
  let postmaster: number | undefined;
  if (options.warehouse === 'postgres') {
    database = `backfill_bench_${name.replaceAll('-', '_')}_${process.pid}`;
    await dropDatabase(database);
    await createDatabase(database);
    const url = new URL(testPostgresUrl());
    url.pathname = `/${database}`;
    location = url.toString();
    postmaster = await localPostmaster(location);
  }
  if (options.warehouse === 'lake') location = `lake://${join(dir, 'lake')}`;
  const server = await startDevServer({ dbFile: join(dir, 'temporal.db'), uiPort: null, logFile: join(dir, 'temporal.log') });
  const workers = Array.from(
    { length: options.workers ?? 1 },
    () =>
      new WorkerProcess({
        address: server.address,
        warehouse: location,
        ...(options.transforms ? { transforms: options.transforms } : {}),
        ...(options.maxConcurrentActivities !== undefined ? { maxConcurrentActivities: options.maxConcurrentActivities } : {}),
        nodeArgs: WORKER_NODE_ARGS,
      }),
  );
  await Promise.all(workers.map((w) => w.start()));
  const memory = new MemorySampler(workers[0]!);
  const client = await BackfillClient.connect({ address: server.address });
  const warehouse = openWarehouse(location, { inline: true });
  try {
    return await run({ server, client, memory, warehouse, dir, workerPid: workers[0]!.pid, postmaster });
  } finally {
    memory.stop();
    await client.close();
    await Promise.all(workers.map((w) => w.stop()));
    await server.stop();
    await warehouse.close();
    if (database) await dropDatabase(database);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A line on stderr, so that a long scenario shows where it is (and where it hangs, if it does). */
function progress(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

function hours(n: number): string {
  return new Date(Date.UTC(2020, 0, 1) + n * 3_600_000).toISOString();
}

function chainSpec(nodes: number, perNode: number, batchSize: number): ResolvedSpec {
  return resolveSpec({
    name: `noop-${nodes * perNode}`,
    partitions: { grain: 'hour', start: '2020-01-01', end: hours(perNode) },
    defaults: { concurrency: 50, batchSize },
    nodes: Array.from({ length: nodes }, (_, i) => ({ id: `n${i + 1}`, transform: 'noop', dependsOn: i > 0 ? [`n${i}`] : [] })),
  });
}

async function histories(client: BackfillClient, backfillId: string) {
  const runs: Array<{ workflowId: string; runId: string; events: number; status: string }> = [];
  for await (const execution of client.client.workflow.list({ query: `BackfillId = "${backfillId}"` })) {
    runs.push({ workflowId: execution.workflowId, runId: execution.runId, events: execution.historyLength, status: execution.status.name });
  }
  return runs;
}

/**
 * Workflow tasks that failed, by the runs of the parent and of the node workflows. Each makes the
 * worker replay the run's whole history; a refused continue-as-new (UnhandledCommand) is the usual one.
 */
async function failedWorkflowTasks(client: BackfillClient, backfillId: string, runs: Array<{ workflowId: string; runId: string }>) {
  const counts = { parent: 0, nodes: 0 };
  for (const { workflowId, runId } of runs) {
    const { events } = await client.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const failed = (events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).length;
    if (workflowId === `backfill/${backfillId}`) counts.parent += failed;
    else counts.nodes += failed;
  }
  return counts;
}

/** Runs `spec` to completion and measures it: throughput, history per partition and per run, worker memory. */
async function measure(name: string, env: Env, spec: ResolvedSpec) {
  const { client, memory } = env;
  const total = expandPlan(spec).totalPartitions;
  const began = Date.now();
  const cpu = cpuMeter(env);
  const { backfillId } = await client.start(spec);
  progress(`  ${name}: started ${backfillId}`);
  const outcome = await client.wait(backfillId);
  const seconds = (Date.now() - began) / 1000;
  const cpuPerPartition = cpu(total);
  progress(`  ${name}: ${outcome.state} in ${seconds.toFixed(1)} s`);
  if (outcome.state !== 'completed') throw new Error(`${name} ended ${outcome.state}`);
  // Visibility catches up with the last runs a moment after they close.
  let runs = await histories(client, backfillId);
  for (let i = 0; i < 50 && runs.some((r) => r.status === 'RUNNING'); i++) {
    await new Promise((r) => setTimeout(r, 200));
    runs = await histories(client, backfillId);
  }
  const events = runs.reduce((sum, r) => sum + r.events, 0);
  const rss = memory.samples.map((s) => s.rssMb);
  const quarter = (q: number) => rss[Math.min(rss.length - 1, Math.floor((rss.length - 1) * q))] ?? 0;
  const firstNode = spec.nodes[0]!.id;
  return {
    scenario: name,
    partitions: total,
    seconds: Number(seconds.toFixed(1)),
    partitionsPerSecond: Number((total / seconds).toFixed(1)),
    runs: runs.length,
    cpuMsPerPartition: cpuPerPartition,
    historyEventsPerPartition: Number((events / total).toFixed(2)),
    failedWorkflowTasks: await failedWorkflowTasks(client, backfillId, runs),
    largestHistory: Math.max(...runs.map((r) => r.events)),
    parentRuns: runs.filter((r) => r.workflowId === `backfill/${backfillId}`).length,
    // Events in each run of the parent and of the first node workflow.
    parentHistory: runs.filter((r) => r.workflowId === `backfill/${backfillId}`).map((r) => r.events),
    nodeHistory: runs.filter((r) => r.workflowId === `backfill/${backfillId}/${firstNode}`).map((r) => r.events),
    workerRssMb: { at25: Math.round(quarter(0.25)), at50: Math.round(quarter(0.5)), at75: Math.round(quarter(0.75)), end: Math.round(quarter(1)) },
    workerPeakRssMb: Math.round(memory.peakMb()),
  };
}

async function noopScenario(name: string, nodes: number, perNode: number, batchSize = 1) {
  return withEnvironment(name, (env) => measure(name, env, chainSpec(nodes, perNode, batchSize)));
}

/** The bare baseline on the environment's server: a sliding window of no-op activities, in a worker process of its own. */
async function baseline(env: Env, total: number, width: number) {
  const queue = `baseline-${process.pid}`;
  const worker = spawn('node', [...WORKER_NODE_ARGS, '--import', 'tsx', join(ROOT, 'scripts/baseline/worker.ts'), env.server.address, queue], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await new Promise<void>((ready, failed) => {
      let output = '';
      worker.stderr!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('worker polling')) ready();
      });
      worker.once('exit', (code) => failed(new Error(`the baseline worker exited (${code}): ${output}`)));
    });
    const began = Date.now();
    const cpu = cpuMeter(env, worker.pid);
    const workflowId = `baseline-${Date.now()}`;
    const handle = await env.client.client.workflow.start('slidingWindow', { taskQueue: queue, workflowId, args: [total, width] });
    progress(`  baseline: started ${workflowId}`);
    await handle.result();
    const cpuPerActivity = cpu(total);
    const seconds = (Date.now() - began) / 1000;
    progress(`  baseline: completed in ${seconds.toFixed(1)} s`);
    let events = 0;
    let runs = 0;
    for await (const run of env.client.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
      events += run.historyLength;
      runs++;
    }
    return { activitiesPerSecond: Number((total / seconds).toFixed(1)), seconds: Number(seconds.toFixed(1)), runs, cpuMsPerActivity: cpuPerActivity, historyEventsPerActivity: Number((events / total).toFixed(2)) };
  } finally {
    await stopProcess(worker);
  }
}

/** One node of `noop` partitions at width 50; without a batch size, the default (`auto`) sizes its batches. */
function oneNode(batchSize: number | undefined, partitions = 10_000): ResolvedSpec {
  return resolveSpec({
    name: `one-node-batch${batchSize ?? 'auto'}`,
    partitions: { grain: 'hour', start: '2020-01-01', end: hours(partitions) },
    defaults: { concurrency: 50, ...(batchSize !== undefined ? { batchSize } : {}) },
    nodes: [{ id: 'n1', transform: 'noop' }],
  });
}

/** Batches of 50 over 100,000 partitions: 10,000 would take 2 s, mostly the start of the backfill. */
function batch50() {
  return withEnvironment('overhead-batch50', (env) => measure('noop-100k-width50-batch50', env, oneNode(50, 100_000)));
}

/** The same 100,000 with no batch size in the spec: what `batchSize: auto` gives (issue 20's target: 15× the bare window). */
function batchAuto() {
  return withEnvironment('overhead-auto', (env) => measure('noop-100k-width50-auto', env, oneNode(undefined, 100_000)));
}

/**
 * One node of 10,000 `noop` partitions at width 50, unbatched, and of 100,000 in batches of 50 and
 * in batches `auto` sizes, against the
 * bare baseline on the same server build. Each measurement gets a fresh dev server: a server's
 * SQLite store slows it as it fills (seen: the baseline 10-25 % slower after one earlier run),
 * so sharing one would favour whichever runs first. The baseline and the unbatched backfill
 * alternate over `rounds`, and the ratio is of their mean throughputs.
 */
async function overheadScenario(rounds = 2) {
  const bare: Array<Awaited<ReturnType<typeof baseline>>> = [];
  const unbatched: Array<Awaited<ReturnType<typeof measure>>> = [];
  for (let round = 0; round < rounds; round++) {
    bare.push(await withEnvironment('overhead-baseline', (env) => baseline(env, 10_000, 50)));
    unbatched.push(await withEnvironment('overhead-unbatched', (env) => measure('noop-10k-width50', env, oneNode(1))));
  }
  const batched = await batch50();
  const auto = await batchAuto();
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const bareRate = mean(bare.map((b) => b.activitiesPerSecond));
  const unbatchedRate = mean(unbatched.map((u) => u.partitionsPerSecond));
  const last = unbatched[unbatched.length - 1]!;
  return {
    scenario: 'overhead',
    baseline: { activitiesPerSecond: Number(bareRate.toFixed(1)), rounds: bare.map((b) => b.activitiesPerSecond), cpuMsPerActivity: bare[bare.length - 1]!.cpuMsPerActivity, historyEventsPerActivity: bare[0]!.historyEventsPerActivity },
    unbatched: {
      partitionsPerSecond: Number(unbatchedRate.toFixed(1)),
      rounds: unbatched.map((u) => u.partitionsPerSecond),
      ratio: Number((unbatchedRate / bareRate).toFixed(2)),
      cpuMsPerPartition: last.cpuMsPerPartition,
      historyEventsPerPartition: last.historyEventsPerPartition,
      largestHistory: last.largestHistory,
    },
    batch50: { partitionsPerSecond: batched.partitionsPerSecond, ratio: Number((batched.partitionsPerSecond / bareRate).toFixed(2)), cpuMsPerPartition: batched.cpuMsPerPartition, historyEventsPerPartition: batched.historyEventsPerPartition, largestHistory: batched.largestHistory },
    auto: { partitionsPerSecond: auto.partitionsPerSecond, ratio: Number((auto.partitionsPerSecond / bareRate).toFixed(2)), cpuMsPerPartition: auto.cpuMsPerPartition, historyEventsPerPartition: auto.historyEventsPerPartition, largestHistory: auto.largestHistory },
  };
}

/** 1,000,000 `noop` partitions: 10 nodes of 100,000 hours, joined by window and lag mappings, 100 per activity. */
async function millionScenario() {
  const mappings = ['identity', 'window', { lag: { from: -23, to: 0 } }] as const;
  const spec = resolveSpec({
    name: 'million',
    partitions: { grain: 'hour', start: '2020-01-01', end: hours(100_000) },
    defaults: { concurrency: 20, batchSize: 100 },
    nodes: Array.from({ length: 10 }, (_, i) => ({
      id: `n${i + 1}`,
      transform: 'noop',
      dependsOn: i > 0 ? [{ node: `n${i}`, mapping: mappings[i % 3]! }] : [],
    })),
  });
  return withEnvironment('million', (env) => measure('million', env, spec));
}

async function rateScenario(rate: number, seconds = 35) {
  return withEnvironment(`rate-${rate}`, async ({ client, warehouse }) => {
    const partitions = Math.ceil(rate * (seconds + 5));
    const spec = resolveSpec({
      name: `rate-${rate}`,
      partitions: { grain: 'hour', start: '2020-01-01', end: hours(partitions) },
      defaults: { concurrency: 200, rate },
      nodes: [{ id: 'paced', transform: 'sleep' }],
    });
    const { backfillId } = await client.start(spec);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    await client.cancel(backfillId);
    await client.wait(backfillId);
    const starts = (await warehouse.ledger({ backfillId })).map((r) => Date.parse(r.startedAt)).sort((a, b) => a - b);
    const first = starts[0]!;
    // Steady state: the 30 s after the first second (which holds the initial full bucket).
    const from = first + 1000;
    const to = from + 30_000;
    const achieved = starts.filter((t) => t >= from && t < to).length / 30;
    let busiest = 0;
    for (let i = 0, j = 0; i < starts.length; i++) {
      while (starts[j]! < starts[i]! - 999) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    const burst = TokenBucket.defaultBurst(rate);
    return {
      scenario: `rate-${rate}`,
      target: rate,
      burst,
      achieved: Number(achieved.toFixed(3)),
      errorPercent: Number((((achieved - rate) / rate) * 100).toFixed(2)),
      busiestSecond: busiest,
      withinTarget: Math.abs(achieved - rate) / rate <= 0.03 && busiest <= rate + burst,
    };
  });
}

const EXAMPLE = join(ROOT, 'examples/shop/backfill.yaml');

/** The shop example on one warehouse: partitions per second, and its data fingerprint. */
async function exampleScenario(warehouse: 'sqlite' | 'postgres' | 'lake') {
  const { spec, transformModules } = await loadSpecFile(EXAMPLE);
  return withEnvironment(
    `example-${warehouse}`,
    async (env) => {
      const { client, warehouse: wh } = env;
      const began = Date.now();
      const cpu = cpuMeter(env);
      const { backfillId } = await client.start(spec);
      const outcome = await client.wait(backfillId);
      const seconds = (Date.now() - began) / 1000;
      const cpuPerPartition = cpu(expandPlan(spec).totalPartitions);
      if (outcome.state !== 'completed') throw new Error(`example-${warehouse} ended ${outcome.state}`);
      const published = (await wh.ledger({ backfillId })).filter((r) => r.status === 'published');
      const events = (await histories(client, backfillId)).reduce((sum, r) => sum + r.events, 0);
      return {
        scenario: `example-${warehouse}`,
        partitions: published.length,
        seconds: Number(seconds.toFixed(1)),
        partitionsPerSecond: Number((published.length / seconds).toFixed(1)),
        cpuMsPerPartition: cpuPerPartition,
        historyEventsPerPartition: Number((events / published.length).toFixed(2)),
        fingerprint: fingerprint(published),
        loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
      };
    },
    { warehouse, transforms: transformModules },
  );
}

/**
 * A SQL node that reads its upstream partition, at `perNode` hourly partitions per node: the
 * mean time its partitions take (from the ledger). Each upstream partition holds 200 rows.
 */
async function sqlScenario(perNode: number, warehouse: 'sqlite' | 'postgres') {
  const name = `sql-${perNode}${warehouse === 'postgres' ? '-postgres' : ''}`;
  return withEnvironment(
    name,
    async ({ client, warehouse: wh }) => {
      const spec = resolveSpec({
        name,
        partitions: { grain: 'hour', start: '2020-01-01', end: hours(perNode) },
        defaults: { concurrency: 8 },
        nodes: [
          {
            id: 'src',
            sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 200) SELECT :partition AS hour, n, n * 3 AS v FROM r',
          },
          { id: 'agg', dependsOn: ['src'], sql: 'SELECT :partition AS hour, COUNT(*) AS n, SUM(v) AS total FROM src' },
        ],
      });
      const { backfillId } = await client.start(spec);
      const outcome = await client.wait(backfillId);
      if (outcome.state !== 'completed') throw new Error(`${name} ended ${outcome.state}`);
      const agg = (await wh.ledger({ backfillId, node: 'agg' })).filter((r) => r.status === 'published');
      const durations = agg.map((r) => r.durationMs).sort((a, b) => a - b);
      const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
      return {
        scenario: name,
        partitionsPerNode: perNode,
        upstreamRows: perNode * 200,
        aggMsPerPartition: { mean: Number(mean.toFixed(2)), p50: durations[Math.floor(durations.length / 2)], p95: durations[Math.floor(durations.length * 0.95)] },
      };
    },
    { warehouse },
  );
}

/**
 * `sleep` partitions of 250 ms on `workers` worker processes of 8 activity slots each: 30 s of
 * work at the ideal pace (each slot always busy), so that the start and the end of the backfill
 * (about a second together, reported as `phases`) do not hide how throughput scales. `batchSize`
 * is the spec's (none: `auto`, the default); `timings` says where each activity's time went.
 */
async function workersScenario(workers: number, batchSize?: number) {
  const name = `workers-${workers}${batchSize === undefined ? '' : `-batch${batchSize}`}`;
  return withEnvironment(
    name,
    async (env) => {
      const { client } = env;
      const partitions = 960 * workers;
      const spec = resolveSpec({
        name,
        partitions: { grain: 'hour', start: '2020-01-01', end: hours(partitions) },
        defaults: { concurrency: 200, ...(batchSize === undefined ? {} : { batchSize }) },
        nodes: [{ id: 'work', transform: 'sleep', params: { ms: 250 } }],
      });
      const total = expandPlan(spec).totalPartitions;
      const load = loadavg().map((l) => Number(l.toFixed(2)));
      const began = Date.now();
      const cpu = cpuMeter(env);
      const { backfillId } = await client.start(spec);
      const outcome = await client.wait(backfillId);
      const ended = Date.now();
      const seconds = (ended - began) / 1000;
      if (outcome.state !== 'completed') throw new Error(`${name} ended ${outcome.state}`);
      const ideal = (workers * 8) / 0.25;
      const phase = await phases(client, backfillId, 'work', began, ended);
      const steady = total / (phase.activitiesMs / 1000);
      return {
        scenario: name,
        workers,
        slotsPerWorker: 8,
        partitions: total,
        seconds: Number(seconds.toFixed(1)),
        partitionsPerSecond: Number((total / seconds).toFixed(1)),
        idealPerSecond: ideal,
        ofIdeal: Number((total / seconds / ideal).toFixed(3)),
        // From the first activity's start to the last one's end: without the backfill's start and end.
        activitiesPerSecond: Number(steady.toFixed(1)),
        activitiesOfIdeal: Number((steady / ideal).toFixed(3)),
        cpuMsPerPartition: cpu(total),
        loadAverage: { atStart: load, atEnd: loadavg().map((l) => Number(l.toFixed(2))) },
        phases: phase,
        timings: await dispatchTimings(client, `backfill/${backfillId}/work`, 8),
      };
    },
    { workers, maxConcurrentActivities: 8 },
  );
}

type Timed = { wallMs: number; cpuMs: number };

/**
 * One run of a command: wall time from spawn to exit, and the CPU time (user and system) it used,
 * which a busy machine inflates less; fails unless it exits 0.
 */
function timeCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((done, failed) => {
    const began = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'cpu %U %S', process.execPath, ...argv], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', failed);
    child.once('exit', (code) => {
      const wallMs = Number(process.hrtime.bigint() - began) / 1e6;
      const cpu = /cpu (\d+\.\d+) (\d+\.\d+)\s*$/.exec(stderr);
      if (code === 0 && cpu) done({ wallMs, cpuMs: (Number(cpu[1]) + Number(cpu[2])) * 1000 });
      else failed(new Error(`node ${argv.join(' ')} exited with ${code}: ${stderr}`));
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return sorted.length % 2 === 1 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The median wall time (with the fastest and slowest) and CPU time of `runs` runs, after one that warms the caches (the file system's, tsx's). */
async function timeRuns(argv: string[], env: NodeJS.ProcessEnv, runs = 10) {
  await timeCommand(argv, env);
  const times: Timed[] = [];
  for (let i = 0; i < runs; i++) times.push(await timeCommand(argv, env));
  const wall = times.map((t) => t.wallMs);
  return {
    medianMs: Math.round(median(wall)),
    minMs: Math.round(Math.min(...wall)),
    maxMs: Math.round(Math.max(...wall)),
    cpuMedianMs: Math.round(median(times.map((t) => t.cpuMs))),
  };
}

/**
 * The package as npm installs it, for the compiled runs: its bin/backfill.js and package.json in a
 * directory without the sources, and dist/ (a link to the fresh build), so that the bin runs dist/.
 */
function installedLayout(): { dir: string; bin: string } {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-bench-installed-'));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(ROOT, 'bin/backfill.js'), join(dir, 'bin/backfill.js'));
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(DIST, join(dir, 'dist'));
  return { dir, bin: join(dir, 'bin/backfill.js') };
}

/**
 * How long the command line takes, as a user waits for it: `--version`, `plan` of the example, and
 * `status` and `pause` of a running backfill (one `sleep` node that outlasts the runs). Compiled
 * (`npm run build`, then the bin of an installed package) and from the checkout (bin/backfill.js
 * on the sources, through tsx). Targets: installed, `--version` under 150 ms and `status` under
 * 400 ms; from a checkout, under twice those.
 */
async function cliScenario() {
  progress('  cli: npm run build');
  await build();
  const installed = installedLayout();
  const load = loadavg().map((l) => Number(l.toFixed(2)));
  try {
    return await withEnvironment('cli', async ({ server, client }) => {
      const spec = resolveSpec({
        name: 'cli-bench',
        partitions: { grain: 'hour', start: '2020-01-01', end: hours(10_000) },
        defaults: { concurrency: 1 },
        nodes: [{ id: 'slow', transform: 'sleep', params: { ms: 60_000 } }],
      });
      const { backfillId } = await client.start(spec);
      const env = { ...process.env, TEMPORAL_ADDRESS: server.address, NO_COLOR: '1' };
      const variants = {
        compiled: { bin: installed.bin, example: join(DIST, 'examples/shop/backfill.yaml') },
        checkout: { bin: join(ROOT, 'bin/backfill.js'), example: EXAMPLE },
      };
      const results: Record<string, Record<string, Awaited<ReturnType<typeof timeRuns>>>> = {};
      for (const [variant, { bin, example }] of Object.entries(variants)) {
        results[variant] = {
          version: await timeRuns([bin, '--version'], env),
          plan: await timeRuns([bin, 'plan', example], env),
          status: await timeRuns([bin, 'status', backfillId], env),
          pause: await timeRuns([bin, 'pause', backfillId], env),
        };
        progress(`  cli: ${variant} ${JSON.stringify(results[variant])}`);
      }
      await client.cancel(backfillId);
      return {
        scenario: 'cli',
        ...results,
        targets: { compiled: { version: 150, status: 400 }, checkout: { version: 300, status: 800 } },
        loadAverageAtStart: load,
      };
    });
  } finally {
    rmSync(installed.dir, { recursive: true, force: true });
  }
}

const SCENARIOS: Record<string, () => Promise<Record<string, unknown>>> = {
  'noop-1k': () => noopScenario('noop-1k', 5, 200),
  'noop-10k': () => noopScenario('noop-10k', 5, 2000),
  'noop-100k': () => noopScenario('noop-100k', 5, 20_000),
  'noop-100k-batch10': () => noopScenario('noop-100k-batch10', 5, 20_000, 10),
  overhead: () => overheadScenario(),
  // The unbatched half of `overhead` alone, without the baseline: for profiling the worker.
  baseline: () => withEnvironment('baseline', async (env) => ({ scenario: 'baseline', ...(await baseline(env, 10_000, 50)) })),
  'noop-100k-width50-batch50': () => batch50(),
  'noop-100k-width50-auto': () => batchAuto(),
  'noop-10k-width50': () => withEnvironment('noop-10k-width50', (env) => measure('noop-10k-width50', env, oneNode(1))),
  million: () => millionScenario(),
  'rate-5': () => rateScenario(5),
  'rate-20': () => rateScenario(20),
  'rate-100': () => rateScenario(100),
  'example-sqlite': () => exampleScenario('sqlite'),
  'example-postgres': () => exampleScenario('postgres'),
  'example-lake': () => exampleScenario('lake'),
  'sql-100': () => sqlScenario(100, 'sqlite'),
  'sql-3000': () => sqlScenario(3000, 'sqlite'),
  'sql-100-postgres': () => sqlScenario(100, 'postgres'),
  'sql-3000-postgres': () => sqlScenario(3000, 'postgres'),
  'workers-1': () => workersScenario(1),
  'workers-2': () => workersScenario(2),
  'workers-4': () => workersScenario(4),
  // One partition per activity: what dispatching each partition costs.
  'workers-1-batch1': () => workersScenario(1, 1),
  'workers-2-batch1': () => workersScenario(2, 1),
  'workers-4-batch1': () => workersScenario(4, 1),
  cli: () => cliScenario(),
};

const { values } = parseArgs({ options: { only: { type: 'string' } } });
const chosen = values.only ? values.only.split(',') : Object.keys(SCENARIOS);
for (const name of chosen) if (!SCENARIOS[name]) throw new Error(`unknown scenario '${name}': choose from ${Object.keys(SCENARIOS).join(', ')}`);

const results: Array<Record<string, unknown>> = [];
for (const name of chosen) {
  process.stderr.write(`running ${name} ...\n`);
  const result = await SCENARIOS[name]!();
  results.push(result);
  process.stderr.write(`${JSON.stringify(result)}\n`);
}

const table = new Table({ head: ['scenario', 'result'], style: { head: [] } });
for (const r of results) {
  const { scenario, ...rest } = r;
  table.push([String(scenario), Object.entries(rest).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n')]);
}
process.stdout.write(`${table.toString()}\n`);
const out = join(ROOT, '.backfill/bench');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'results.json'), `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
