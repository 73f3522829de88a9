/**
 * How close `plan --estimate` comes to the run it predicts (issue 18's "done when"), on a dev
 * server and a worker of its own and a fresh warehouse:
 *
 *   node --import tsx scripts/estimate-accuracy.ts [--warehouse sqlite|postgres] [--spec shop|speeds]... [--sample N]
 *
 * For the example (`examples/shop`, 1,528 partitions) and `examples/speeds` (10,088 `sleep`
 * partitions in five nodes that run at different speeds), in turn:
 *   1. `--sample N` (default 2): the estimate before any history, from N partitions per node
 *      timed as a staged backfill and discarded (0 skips it);
 *   2. a first run (the history);
 *   3. `plan --estimate` from that history;
 *   4. the run it predicts.
 * A run's wall time is its parent workflow's start to close, as the estimate's is. It prints
 * each pair of figures with the error and the load average around each run (the machine may be
 * shared: a run's speed follows the load), and writes them to .backfill/estimate/accuracy-<warehouse>.json.
 * To tell the model's error from the machine's drift between the two runs it also gives, per
 * run, the orchestration factor the run calibrates to and its partitions' own time, and the
 * estimate in hindsight: from the predicted run's own durations, calibrated on that run.
 * Needs PostgreSQL for --warehouse postgres ($BACKFILL_TEST_POSTGRES_URL).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { BackfillClient } from '../client/backfill-client.ts';
import { localConnection } from '../client/connection.ts';
import { runSample } from '../client/estimate-sample.ts';
import { estimateOptions, estimatePlan, estimateReport, nodeHistory, type EstimateReport } from '../client/estimate.ts';
import { openWarehouse } from '../activities/warehouse/index.ts';
import type { Plan } from '../core/plan.ts';
import { loadSpecFile } from '../client/spec-file.ts';
import { expandPlan } from '../core/plan.ts';
import { parseSample, sampleSelection } from '../core/sample.ts';
import type { ResolvedSpec } from '../core/spec.ts';
import { startDevServer } from '../host/dev-server.ts';
import { CODE_ROOT } from '../host/package.ts';
import { createDatabase, dropDatabase, testPostgresUrl } from './postgres.ts';
import { WorkerProcess } from './worker-process.ts';

const SPECS = { shop: 'examples/shop/backfill.yaml', speeds: 'examples/speeds/backfill.yaml' } as const;
type SpecName = keyof typeof SPECS;

const { values: args } = parseArgs({
  options: {
    warehouse: { type: 'string', default: 'sqlite' },
    spec: { type: 'string', multiple: true },
    sample: { type: 'string', default: '2' },
  },
});
if (args.warehouse !== 'sqlite' && args.warehouse !== 'postgres') throw new Error(`--warehouse is sqlite or postgres, not '${args.warehouse}'`);
const names = (args.spec ?? Object.keys(SPECS)) as SpecName[];
for (const name of names) if (!(name in SPECS)) throw new Error(`--spec is one of ${Object.keys(SPECS).join(', ')}, not '${name}'`);
const sampling = args.sample !== '0';

const load = () => loadavg()[0]!.toFixed(1);
const seconds = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(1)} s`);
const errorPercent = (predicted: number, actual: number) => Math.round(((predicted - actual) / actual) * 1000) / 10;
const signed = (p: number | null) => (p === null ? '–' : `${p > 0 ? '+' : ''}${p.toFixed(1)} %`);

const dir = mkdtempSync(join(tmpdir(), 'backfill-accuracy-'));
const database = `backfill_acc_${randomUUID().slice(0, 8)}`;
let location = join(dir, 'warehouse.db');
if (args.warehouse === 'postgres') {
  await createDatabase(database);
  const url = new URL(testPostgresUrl());
  url.pathname = `/${database}`;
  location = url.toString();
}

const server = await startDevServer({ dbFile: join(dir, 'temporal.db'), uiPort: null, logFile: join(dir, 'temporal.log') });
const worker = new WorkerProcess({ address: server.address, warehouse: location, transforms: [join(CODE_ROOT, 'examples/shop/transforms.ts')] });
let client: BackfillClient | undefined;

/** A run: its wall time, the load average before and after, and its partitions' own time (the ledger's durations summed). */
type Run = { id: string; wallMs: number; load: string; partitionSeconds?: number };
type Check = {
  spec: string;
  partitions: number;
  /** The estimate from the sample (its durations, the default orchestration costs). */
  sample: { perNode: number; backfillId: string; sampledInMs: number; predictedMs: number; errorPercent: number } | null;
  history: Run;
  predictedMs: number;
  calibration: EstimateReport['calibration'];
  actual: Run;
  errorPercent: number;
  /**
   * The model's own error, without the machine's drift between the runs: the same estimate made
   * afterwards from the predicted run's own durations and calibrated on that run itself.
   */
  hindsight: { predictedMs: number; errorPercent: number; factor: number | null };
  nodes: Array<{ id: string; predictedFinishMs: number | null; meanMs: number }>;
};

/** What a run's ledger rows say: its partitions' own time, and the estimate of it from its own durations, calibrated on itself. */
async function looking(plan: Plan, options: Parameters<typeof estimateReport>[2], id: string) {
  const warehouse = openWarehouse(location, { inline: true });
  try {
    const rows = await warehouse.ledger({ backfillId: id });
    const history = new Map(plan.nodes.map((n) => [n.id, nodeHistory(n, rows.filter((r) => r.node === n.id), null)]));
    return { partitionSeconds: Math.round(rows.reduce((sum, r) => sum + r.durationMs, 0) / 100) / 10, hindsight: estimateReport(plan, history, options) };
  } finally {
    await warehouse.close();
  }
}

/** Runs a backfill to its end: its wall time (the parent workflow's start to close) and the load average before and after. */
async function run(spec: ResolvedSpec, id: string): Promise<Run> {
  const before = load();
  await client!.start(spec, { id });
  const outcome = await client!.wait(id, 30 * 60_000);
  if (outcome.state !== 'completed') throw new Error(`${id} ended ${outcome.state}`);
  const described = await client!.describe(id);
  const wallMs = described.closeTime!.getTime() - described.startTime.getTime();
  const result = { id, wallMs, load: `${before} → ${load()}` };
  process.stderr.write(`${id}: ${seconds(wallMs)} (load ${result.load})\n`);
  return result;
}

const checks: Check[] = [];
const started = { at: new Date().toISOString(), load: loadavg().map((l) => l.toFixed(1)).join(' '), cpus: cpus().length };
try {
  await worker.start();
  client = await BackfillClient.connect({ settings: localConnection(server.address) });
  for (const name of names) {
    const { spec } = await loadSpecFile(join(CODE_ROOT, SPECS[name]));
    const plan = expandPlan(spec);
    const options = { ...estimateOptions(spec, { estimate: true }), warehouse: location };
    let sample: Check['sample'] = null;
    if (sampling) {
      const selection = sampleSelection(plan, parseSample(args.sample, plan));
      const sampled = await runSample(client, spec, selection, { log: (line) => process.stderr.write(`${line}\n`) });
      const estimate = await estimatePlan(plan, { ...options, sample: sampled });
      sample = {
        perNode: selection.perNode,
        backfillId: sampled.backfillId,
        sampledInMs: sampled.wallMs,
        predictedMs: estimate.wallMs,
        errorPercent: 0,
      };
    }
    const history = await run(spec, `${spec.name}-history-${Date.now()}`);
    const estimate = await estimatePlan(plan, options);
    process.stderr.write(`${spec.name}: the estimate from ${history.id} says ${seconds(estimate.wallMs)}${estimate.calibration ? ` (orchestration ×${estimate.calibration.factor})` : ''}\n`);
    const actual = await run(spec, `${spec.name}-${Date.now()}`);
    if (sample) sample.errorPercent = errorPercent(sample.predictedMs, actual.wallMs);
    const reportOptions = { ...options, warehouse: location, warehouseFound: true };
    history.partitionSeconds = (await looking(plan, reportOptions, history.id)).partitionSeconds;
    const after = await looking(plan, reportOptions, actual.id);
    actual.partitionSeconds = after.partitionSeconds;
    checks.push({
      spec: name,
      partitions: plan.totalPartitions,
      sample,
      history,
      predictedMs: estimate.wallMs,
      calibration: estimate.calibration,
      actual,
      errorPercent: errorPercent(estimate.wallMs, actual.wallMs),
      hindsight: { predictedMs: after.hindsight.wallMs, errorPercent: errorPercent(after.hindsight.wallMs, actual.wallMs), factor: after.hindsight.calibration?.factor ?? null },
      nodes: estimate.nodes.map((n) => ({ id: n.id, predictedFinishMs: n.finishMs, meanMs: n.meanMs })),
    });
  }
} finally {
  await client?.close();
  await worker.stop();
  await server.stop();
  if (args.warehouse === 'postgres') await dropDatabase(database);
  rmSync(dir, { recursive: true, force: true });
}

const table = new Table({
  head: ['spec', 'partitions', 'history run', 'estimate', 'actual run', 'error', 'orchestration ×, history → actual', 'partition time, history → actual', 'in hindsight', 'from a sample, before any run'],
  style: { head: [], border: [] },
});
for (const c of checks) {
  table.push([
    c.spec,
    c.partitions.toLocaleString('en-US'),
    `${seconds(c.history.wallMs)} (load ${c.history.load})`,
    seconds(c.predictedMs),
    `${seconds(c.actual.wallMs)} (load ${c.actual.load})`,
    signed(c.errorPercent),
    `${c.calibration?.factor ?? '–'} → ${c.hindsight.factor ?? '–'}`,
    `${c.history.partitionSeconds} s → ${c.actual.partitionSeconds} s`,
    `${seconds(c.hindsight.predictedMs)} (${signed(c.hindsight.errorPercent)})`,
    c.sample
      ? `${seconds(c.sample.predictedMs)} (${signed(c.sample.errorPercent)}; ${c.sample.perNode} per node timed in ${seconds(c.sample.sampledInMs)})`
      : '–',
  ]);
}
const results = { warehouse: args.warehouse, started, ended: { at: new Date().toISOString(), load: loadavg().map((l) => l.toFixed(1)).join(' ') }, checks };
const out = join(CODE_ROOT, '.backfill/estimate');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, `accuracy-${args.warehouse}.json`), `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`${table.toString()}\n${args.warehouse} warehouse, ${started.cpus} cores; load average ${started.load} at the start, ${results.ended.load} at the end\n`);
const off = checks.filter((c) => Math.abs(c.errorPercent) > 25);
if (off.length > 0) process.stdout.write(`off by more than 25 %: ${off.map((c) => `${c.spec} (${signed(c.errorPercent)})`).join(', ')}\n`);
process.exitCode = off.length > 0 ? 1 : 0;
