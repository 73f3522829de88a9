/**
 * `plan --estimate --sample N` on a real server: it times N partitions per node as a staged
 * backfill on the workers, estimates from their durations (not the history's), says what it
 * sampled, and leaves every dataset as it was: the same rows in every view, the same published
 * versions, and the sampled versions discarded in the ledger. A bad N is refused before anything
 * starts.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient, Started } from '../../client/backfill-client.ts';
import { estimateOptions, estimatePlan } from '../../client/estimate.ts';
import { fingerprint } from '../../client/demo.ts';
import type { EstimateReport } from '../../client/estimate.ts';
import { expandPlan } from '../../core/plan.ts';
import { canonicalJson } from '../../core/canonical.ts';
import { BIN, EXAMPLE_TRANSFORMS, address, connectClient, exampleSpec, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

// Late January to early February: every node has at least 2 partitions (monthly: January and February).
const RANGE = ['--from', '2024-01-20', '--to', '2024-02-10'];
const NODES = ['orders_raw', 'orders_clean', 'daily_revenue', 'revenue_7d', 'weekly_revenue', 'monthly_active_customers'];

describe('plan --estimate --sample', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  let dir: string;
  let spec: string;
  const queue = uniqueQueue('sample');
  const env = { BACKFILL_TASK_QUEUE: queue };

  beforeAll(async () => {
    dir = scratch('estimate-sample');
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transformModules: [EXAMPLE_TRANSFORMS] });
    client = await connectClient();
    spec = exampleSpec(dir, queue);
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  const warehouse = () => ['--warehouse', join(dir, 'warehouse.db')];
  /** Per dataset: a hash of its view's rows and a fingerprint of its published versions' checksums. */
  async function fingerprints(): Promise<Record<string, { view: string; published: string }>> {
    const out: Record<string, { view: string; published: string }> = {};
    for (const node of NODES) {
      const rows = (await worker.warehouse.query(`SELECT * FROM ${node}`)).map((r) => canonicalJson(r)).sort();
      const published = (await worker.warehouse.ledger({ node })).filter((r) => r.status === 'published' && r.current);
      out[node] = { view: `${rows.length}:${fingerprint(rows.map((r, i) => ({ node, partition: String(i), checksum: r })))}`, published: `${published.length}:${fingerprint(published)}` };
    }
    return out;
  }

  it('times N partitions per node as a staged backfill, estimates from them, and changes no dataset', async () => {
    const first = `sample-history-${Date.now()}`;
    const started = await runCli<Started>(['start', spec, '--id', first, ...RANGE, '--json'], env);
    expect(started.code, started.stderr).toBe(0);
    expect((await client.wait(first, 180_000)).state).toBe('completed');
    const before = await fingerprints();
    const ledgerBefore = (await worker.warehouse.ledger({})).length;

    const sampled = await runCli<{ totalPartitions: number; estimate: EstimateReport }>(['plan', spec, ...RANGE, '--estimate', '--sample', '2', ...warehouse(), '--json'], env);
    expect(sampled.code, sampled.stderr).toBe(0);
    const estimate = sampled.json!.estimate;
    const sample = estimate.sample!;
    expect(sample).toMatchObject({ perNode: 2, failed: 0, discarded: 12, published: 0 });
    expect(sampled.stderr).toContain(`sampling 2 partitions per node as staged backfill ${sample.backfillId}`);
    expect(sample.partitions).toMatchObject({ orders_raw: ['2024-01-25', '2024-02-04'], weekly_revenue: expect.any(Array), monthly_active_customers: ['2024-01', '2024-02'] });
    // The sample's durations, though the node has history: each node says which partitions it timed.
    for (const node of estimate.nodes) {
      expect(node.source, node.id).toEqual({ kind: 'sample', backfillId: sample.backfillId, ledgerRows: 2, partitions: sample.partitions[node.id] });
    }
    expect(estimate.runs).toBe(sampled.json!.totalPartitions);
    expect(estimate.wallMs).toBeGreaterThan(0);

    // Nothing visible changed; the ledger has the sample's versions, discarded, and nothing else new.
    expect(await fingerprints()).toEqual(before);
    const rows = await worker.warehouse.ledger({ backfillId: sample.backfillId });
    expect(rows).toHaveLength(12);
    expect(new Set(rows.map((r) => r.status))).toEqual(new Set(['discarded']));
    expect(rows.every((r) => r.staged === true && !r.current)).toBe(true);
    expect(new Set(rows.map((r) => `${r.node}/${r.partition}`))).toEqual(new Set(Object.entries(sample.partitions).flatMap(([node, keys]) => keys.map((k) => `${node}/${k}`))));
    expect((await worker.warehouse.ledger({})).length).toBe(ledgerBefore + 12);
    expect((await client.progress(sample.backfillId)).state).toBe('discarded');

    // The text says it sampled, what, and that nothing was published.
    const text = await runCli(['plan', spec, ...RANGE, '--estimate', '--sample', '1', ...warehouse()], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/durations from a sample: 1 partition per node run as staged backfill sample-\S+ in .+, then discarded \(6 staged versions dropped, nothing published\)/);
    expect(text.stdout).toMatch(/orders_raw: sampled 1 partition \(2024-01-30\)/);
    expect(await fingerprints()).toEqual(before);
  }, 600_000);

  it('an interrupted sample is cancelled and what it staged is dropped', async () => {
    // A fast node stages its sample at once; a slow one keeps the sample running until the interrupt:
    // its partitions take a minute (cancelled at their next heartbeat). Two of 4 s were 8 s, which
    // could pass before a loaded machine staged the fast node's sample and the interrupt landed: the
    // sample then ended on its own, and the command printed its estimate instead of cancelling.
    const file = join(dir, 'interrupted.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'interrupted-sample',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' },
        defaults: { taskQueue: queue, heartbeatTimeout: '5s' },
        nodes: [
          { id: 'sample_fast', sql: 'SELECT :partition AS day, 1 AS v' },
          { id: 'sample_slow', transform: 'sleep', params: { ms: 60_000 }, concurrency: 1 },
        ],
      }),
    );
    const child = spawn('node', [BIN, 'plan', file, '--estimate', '--sample', '2', ...warehouse(), '--json'], { env: { ...process.env, ...env, TEMPORAL_ADDRESS: address(), NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor('the sample to start', async () => /as staged backfill (\S+)/.test(stderr), 60_000, 100);
    const id = /as staged backfill (\S+)/.exec(stderr)![1]!;
    await waitFor('the fast node to stage its sample', async () => (await worker.warehouse.ledger({ backfillId: id, node: 'sample_fast' })).filter((r) => r.status === 'staged').length === 2, 60_000, 200);
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toContain(`interrupted: cancelling the sample ${id}`);
    expect((await client.describe(id)).status.name).toBe('CANCELLED');
    const rows = await worker.warehouse.ledger({ backfillId: id });
    expect(rows.filter((r) => r.node === 'sample_fast')).toHaveLength(2);
    expect(new Set(rows.map((r) => r.status))).toEqual(new Set(['discarded']));
  }, 300_000);

  it('refuses a bad --sample before anything starts, naming the fix', async () => {
    const ledgerBefore = (await worker.warehouse.ledger({})).length;
    const workflows = async () => (await client.client.workflow.count(`TaskQueue = "${queue}"`)).count;
    const startedBefore = await workflows();
    const cases: Array<[string[], RegExp]> = [
      [['--estimate', '--sample', '0'], /--sample must be a whole number of partitions per node above 0 \(got '0'\)/],
      [['--estimate', '--sample', 'two'], /--sample must be a whole number/],
      [['--estimate', '--sample', '1.5'], /--sample must be a whole number/],
      [['--estimate', '--sample', '3'], /--sample 3 asks for more partitions per node than the plan has: monthly_active_customers has 2; use --sample 2 or less/],
      [['--sample', '2'], /--sample only matters with --estimate: add --estimate/],
    ];
    for (const [flags, message] of cases) {
      const refused = await runCli<{ error: { code: string; message: string } }>(['plan', spec, ...RANGE, ...flags, ...(flags.includes('--estimate') ? warehouse() : []), '--json'], env);
      expect(refused.code, flags.join(' ')).not.toBe(0);
      expect(refused.json?.error.code, flags.join(' ')).toBe('invalid_argument');
      expect(refused.json!.error.message).toMatch(message);
    }
    expect((await worker.warehouse.ledger({})).length).toBe(ledgerBefore);
    expect(await workflows()).toBe(startedBefore);
  });
});

/**
 * The estimate against the run it predicts, on a small spec: two nodes in a chain at different
 * speeds. The partitions' own time dominates (sleeps of 600 to 1,200 ms), so that the run the
 * history came from and the run predicted, seconds apart, see nearly the same machine even when
 * others load it; what orchestration costs on top is calibrated on the history run.
 *
 * The bound is ±35 %, not the ±25 % issue 18 asks of the example: CI runs two test files at once
 * on two cores, and a neighbour's busy spell during one run and not the other has moved the
 * orchestration's share by a third (predicted 9.8 s for a run of 7.5 s, with sleeps half as
 * long). A model that missed the concurrency or the pipelining would be off by 80 % or more. The
 * ±25 % on the example is measured on a quiet machine by scripts/estimate-accuracy.ts.
 */
describe('plan --estimate against the run it predicts', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  let dir: string;
  const queue = uniqueQueue('accuracy');

  beforeAll(async () => {
    dir = scratch('estimate-accuracy');
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db') });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  // Both runs are measured under whatever load the test file running beside this one puts on
  // the two cores: one retry measures both again (CI once saw a history run slowed by a
  // neighbour calibrate a prediction of 16.8 s for a run of 10.9 s). Each attempt writes
  // datasets of its own, so that it calibrates on its own history run only.
  it('predicts the wall time within ±35 % after one earlier run', { retry: 1, timeout: 600_000 }, async () => {
    const tag = Date.now().toString(36);
    const spec = testSpec(queue, {
      name: 'accuracy',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-02' },
      nodes: [
        { id: `acc_slow_${tag}`, transform: 'sleep', params: { ms: 1200 }, concurrency: 4 },
        { id: `acc_fast_${tag}`, transform: 'sleep', params: { ms: 600 }, concurrency: 2, dependsOn: [`acc_slow_${tag}`] },
      ],
    });
    const run = async (id: string) => {
      await client.start(spec, { id, taskQueue: queue });
      expect((await client.wait(id, 180_000)).state).toBe('completed');
      const described = await client.describe(id);
      return described.closeTime!.getTime() - described.startTime.getTime();
    };
    await run(`accuracy-history-${Date.now()}`);
    const estimate = await estimatePlan(expandPlan(spec), { ...estimateOptions(spec, { estimate: true }), warehouse: join(dir, 'warehouse.db') });
    expect(estimate.calibration).not.toBeNull();
    const actual = await run(`accuracy-${Date.now()}`);
    const error = (estimate.wallMs - actual) / actual;
    expect(Math.abs(error), `predicted ${estimate.wallMs} ms, the run took ${actual} ms`).toBeLessThanOrEqual(0.35);
  });
});
