/**
 * Calibrates the estimate's orchestration model and checks the estimate against real runs,
 * on a dev server and a worker of its own (docs/estimate.md).
 *
 *   node --import tsx scripts/estimate-check.ts calibrate   # small runs; fits OverheadModel to them
 *   node --import tsx scripts/estimate-check.ts refit       # fits again to the runs calibrate saved (after a change to the model)
 *
 * `calibrate` runs a few small backfills that each stress one part of the model, then fits
 * the model's parameters so that simulating each run with its own ledger durations gives its
 * measured wall time (the parent workflow's start to close). Results go to
 * .backfill/estimate/<mode>.json. How close the estimate comes to real runs is
 * scripts/estimate-accuracy.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openWarehouse } from '../activities/warehouse/index.ts';
import { BackfillClient } from '../client/backfill-client.ts';
import { localConnection } from '../client/connection.ts';
import { estimateOptions, estimateReport, histories } from '../client/estimate.ts';
import { DEFAULT_OVERHEAD, type OverheadModel } from '../core/estimate.ts';
import { expandPlan } from '../core/plan.ts';
import { resolveSpec, type ResolvedSpec, type SpecInput } from '../core/spec.ts';
import { startDevServer } from '../host/dev-server.ts';
import { CODE_ROOT } from '../host/package.ts';
import { WorkerProcess } from './worker-process.ts';

const mode = process.argv[2];
if (mode !== 'calibrate' && mode !== 'refit') {
  process.stderr.write('usage: scripts/estimate-check.ts calibrate|refit (how close the estimate comes: scripts/estimate-accuracy.ts)\n');
  process.exit(2);
}
const out = join(CODE_ROOT, '.backfill/estimate');

const FITTED = ['startMs', 'activityMs', 'hopMs', 'activityCostMs', 'partitionCostMs', 'endMs'] as const;

type History = Awaited<ReturnType<typeof histories>>;
type SavedRun = { what: string; spec: ResolvedSpec; wallMs: number; durations: Record<string, { meanMs: number; byIndex: Array<number | null> }> };

/** A run's histories as JSON, and back. */
const saveHistory = (history: History): SavedRun['durations'] =>
  Object.fromEntries([...history].map(([id, h]) => [id, { meanMs: h.timing.meanMs, byIndex: Array.from(h.timing.byIndex ?? [], (v) => (Number.isNaN(v) ? null : v)) }]));
const loadHistory = (durations: SavedRun['durations']): History =>
  new Map(
    Object.entries(durations).map(([id, d]) => [
      id,
      { timing: { meanMs: d.meanMs, byIndex: Float64Array.from(d.byIndex, (v) => v ?? Number.NaN) }, rowsPerPartition: 0, source: { kind: 'assumed', why: 'saved' } },
    ]),
  );

if (mode === 'refit') {
  const saved = JSON.parse(readFileSync(join(out, 'calibrate.json'), 'utf8')) as { runs: SavedRun[] };
  const runs = saved.runs.map((r) => ({ ...r, history: loadHistory(r.durations) }));
  const fitted = await fit(runs);
  process.stdout.write(`${JSON.stringify({ fitted, runs: runs.map((r) => describeRun(r, fitted)) }, null, 2)}\n`);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'backfill-estimate-'));
const warehousePath = join(dir, 'warehouse.db');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

const server = await startDevServer({ dbFile: join(dir, 'temporal.db'), uiPort: null, logFile: join(dir, 'temporal.log') });
const worker = new WorkerProcess({ address: server.address, warehouse: warehousePath, transforms: [join(CODE_ROOT, 'examples/shop/transforms.ts')] });
await worker.start();
const client = await BackfillClient.connect({ settings: localConnection(server.address) });

/** Runs a backfill to its end; its wall time is the parent workflow's start to close. */
async function run(spec: ResolvedSpec, id: string): Promise<number> {
  const before = load();
  await client.start(spec, { id });
  const outcome = await client.wait(id, 30 * 60_000);
  if (outcome.state !== 'completed') throw new Error(`${id} ended ${outcome.state}`);
  const described = await client.describe(id);
  const wallMs = described.closeTime!.getTime() - described.startTime.getTime();
  process.stderr.write(`${id}: ${(wallMs / 1000).toFixed(1)} s (load ${before} → ${load()})\n`);
  return wallMs;
}

const sleepSpec = (name: string, nodes: SpecInput['nodes'], end = '2024-01-02', grain: 'hour' | 'day' = 'day') =>
  resolveSpec({ name, partitions: { grain, start: '2024-01-01', end }, nodes });

/** Calibration runs: each leans on one part of the model. */
const CALIBRATION: Array<{ what: string; spec: ResolvedSpec }> = [
  { what: 'start and end: one partition', spec: sleepSpec('one', [{ id: 'a', transform: 'sleep' }]) },
  {
    what: 'signal hops: a chain of five single partitions',
    spec: sleepSpec('chain', ['a', 'b', 'c', 'd', 'e'].map((id, i) => ({ id, transform: 'sleep', ...(i > 0 ? { dependsOn: [String.fromCharCode(96 + i)] } : {}) }))),
  },
  { what: 'activity overhead: 300 partitions of 100 ms, 10 at a time', spec: sleepSpec('slots', [{ id: 'a', transform: 'sleep', params: { ms: 100 }, concurrency: 10 }], '2024-01-13T12', 'hour') },
  { what: 'orchestration work per activity: 2,000 empty partitions, 100 at a time', spec: sleepSpec('capacity', [{ id: 'a', transform: 'sleep', concurrency: 100 }], '2024-03-24T08', 'hour') },
  {
    what: 'orchestration work per partition: 6,000 empty partitions in batches of 50',
    spec: sleepSpec('batches', [{ id: 'a', transform: 'sleep', concurrency: 20, batchSize: 50 }], '2024-09-07', 'hour'),
  },
  {
    what: 'reports: a chain of two nodes of 200 partitions',
    spec: sleepSpec('reports', [{ id: 'a', transform: 'sleep', params: { ms: 20 }, concurrency: 4 }, { id: 'b', transform: 'sleep', dependsOn: ['a'], concurrency: 4 }], '2024-01-09T08', 'hour'),
  },
];


/** Squared log error of the model over the runs (each simulated with its own durations). */
async function error(runs: ReadonlyArray<{ spec: ResolvedSpec; wallMs: number; history: Awaited<ReturnType<typeof histories>> }>, overhead: OverheadModel): Promise<number> {
  let sum = 0;
  for (const r of runs) {
    const plan = expandPlan(r.spec);
    const predicted = estimateReport(plan, r.history, { ...estimateOptions(r.spec, { estimate: true }), overhead, calibrate: false, warehouse: '', warehouseFound: true }).wallMs;
    sum += Math.log(Math.max(predicted, 1) / r.wallMs) ** 2;
  }
  return sum;
}

/** Coordinate search on a log scale: each parameter in turn, by shrinking factors. */
async function fit(runs: Parameters<typeof error>[0]): Promise<OverheadModel> {
  let best = { ...DEFAULT_OVERHEAD };
  let bestError = await error(runs, best);
  for (const factor of [2, 1.5, 1.2, 1.08, 1.03]) {
    for (let improved = true, rounds = 0; improved && rounds < 20; rounds++) {
      improved = false;
      for (const key of FITTED) {
        for (const f of [factor, 1 / factor]) {
          const candidate = { ...best, [key]: Math.max(0.05, best[key] * f) };
          const e = await error(runs, candidate);
          if (e < bestError - 1e-9) {
            best = candidate;
            bestError = e;
            improved = true;
          }
        }
      }
    }
  }
  const round = (v: number) => (v >= 10 ? Math.round(v) : Math.round(v * 100) / 100);
  return Object.fromEntries(Object.entries(best).map(([k, v]) => [k, round(v)])) as OverheadModel;
}

function describeRun(r: { what: string; spec: ResolvedSpec; wallMs: number; history: History }, fitted: OverheadModel) {
  const plan = expandPlan(r.spec);
  const predict = (overhead: OverheadModel) => estimateReport(plan, r.history, { ...estimateOptions(r.spec, { estimate: true }), overhead, calibrate: false, warehouse: '', warehouseFound: true }).wallMs;
  return { what: r.what, partitions: plan.totalPartitions, actualMs: r.wallMs, fittedMs: predict(fitted), defaultMs: predict(DEFAULT_OVERHEAD) };
}

const results: Record<string, unknown> = { mode, loadAtStart: load(), cpus: (await import('node:os')).cpus().length };
try {
  if (mode === 'calibrate') {
    const runs = [];
    for (const c of CALIBRATION) {
      const wallMs = await run(c.spec, `${c.spec.name}-${Date.now()}`);
      const warehouse = openWarehouse(warehousePath, { inline: true });
      const history = await histories(expandPlan(c.spec), warehouse, null).finally(() => warehouse.close());
      runs.push({ what: c.what, spec: c.spec, wallMs, history });
    }
    const fitted = await fit(runs);
    results.fitted = fitted;
    results.fit = runs.map((r) => describeRun(r, fitted));
    results.runs = runs.map((r): SavedRun => ({ what: r.what, spec: r.spec, wallMs: r.wallMs, durations: saveHistory(r.history) }));
  }
} finally {
  results.loadAtEnd = load();
  await client.close();
  await worker.stop();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, `${mode}.json`), `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`${JSON.stringify({ ...results, runs: undefined }, null, 2)}\n`);

