/**
 * Foresight end to end: `plan --explain` counts what a run then executes (with and without
 * --only-changed), `plan --estimate` reads the ledger of the run before it, `status` gives the
 * estimate's ETA while a backfill runs, and `plan --format svg` draws a graph that headless
 * Chromium lays out with every label inside its box (BACKFILL_UPDATE_DOCS=1 writes the
 * screenshot to docs/images/plan-graph.png).
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient, Started, Status } from '../../client/backfill-client.ts';
import type { EstimateReport } from '../../client/estimate.ts';
import type { Explanation } from '../../core/explain.ts';
import { RunWindows } from '../../core/windows.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, EXAMPLE_TRANSFORMS, ROOT, connectClient, exampleSpec, runCli, scratch, startTestWorker, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const RANGE = ['--from', '2024-01-03', '--to', '2024-01-10'];

describe('plan --explain, --estimate and status ETA against real runs', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  let dir: string;
  const queue = uniqueQueue('foresight');
  const env = { BACKFILL_TASK_QUEUE: queue };

  beforeAll(async () => {
    dir = scratch('foresight');
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transformModules: [EXAMPLE_TRANSFORMS] });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  const warehouse = () => ['--warehouse', join(dir, 'warehouse.db')];
  const executed = async (backfillId: string) => (await worker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published').length;
  async function startAndWait(spec: string, id: string, extra: string[] = []): Promise<void> {
    const started = await runCli<Started>(['start', spec, '--id', id, ...RANGE, ...extra, '--json'], env);
    expect(started.code, started.stderr).toBe(0);
    expect((await client.wait(id, 180_000)).state).toBe('completed');
  }

  it("explains the partitions a run executes, and with --only-changed those a second run executes; the estimate reads the first run's ledger", async () => {
    const spec = exampleSpec(dir, queue);
    const explained = await runCli<{ totalPartitions: number; explain: Explanation }>(['plan', spec, ...RANGE, '--explain', '--json']);
    expect(explained.code, explained.stderr).toBe(0);
    const explain = explained.json!.explain;
    expect(explain.totalToRun).toBe(explained.json!.totalPartitions);
    expect(explain.nodes.find((n) => n.id === 'weekly_revenue')!.widened.partitions).toBe(2);

    const first = `foresight-first-${Date.now()}`;
    await startAndWait(spec, first);
    expect(await executed(first)).toBe(explain.totalToRun);
    for (const node of explain.nodes) {
      expect((await worker.warehouse.ledger({ backfillId: first, node: node.id })).length, node.id).toBe(node.partitions);
    }

    // daily_revenue's SQL changes: with --only-changed, it runs again, and what reads it.
    const changed = exampleSpec(dir, queue, (yaml) => yaml.replace('COUNT(DISTINCT customer_id) AS customers', 'COUNT(DISTINCT customer_id) AS customers, 1 AS version'));
    type Changed = { run: number; reasons: Record<string, number>; becauseOf: Array<{ node: string; partitions: number }>; details: { spec: { was: Array<{ value: string | null; partitions: number }> } } };
    const onlyChanged = await runCli<{ explain: Omit<Explanation, 'nodes'> & { nodes: Array<{ id: string; changed: Changed }> } }>([
      'plan', changed, ...RANGE, '--explain', '--only-changed', ...warehouse(), '--json',
    ]);
    expect(onlyChanged.code, onlyChanged.stderr).toBe(0);
    const again = onlyChanged.json!.explain;
    const node = (id: string) => again.nodes.find((n) => n.id === id)!.changed;
    expect(node('orders_raw')).toMatchObject({ run: 0 });
    expect(node('daily_revenue')).toMatchObject({ run: 7, reasons: { spec: 7 }, becauseOf: [] });
    expect(node('daily_revenue').details.spec.was).toEqual([{ value: expect.stringMatching(/^[0-9a-f]+$/), partitions: 7 }]);
    expect(node('revenue_7d')).toMatchObject({ run: 7, reasons: { upstream: 7 }, becauseOf: [{ node: 'daily_revenue', partitions: 7 }] });
    expect(node('weekly_revenue')).toMatchObject({ run: 2, becauseOf: [{ node: 'daily_revenue', partitions: 2 }] });
    expect(again.totalToRun).toBe(16);
    const second = `foresight-second-${Date.now()}`;
    await startAndWait(changed, second, ['--only-changed', ...warehouse()]);
    expect(await executed(second)).toBe(again.totalToRun);

    // The estimate: durations from the ledger's published versions (of both runs), the orchestration calibrated on the larger share.
    const estimated = await runCli<{ estimate: EstimateReport }>(['plan', spec, ...RANGE, '--estimate', ...warehouse(), '--json']);
    expect(estimated.code, estimated.stderr).toBe(0);
    const estimate = estimated.json!.estimate;
    expect(estimate).toMatchObject({ runs: explain.totalToRun, warehouseFound: true, assumed: [] });
    expect(estimate.calibration).toMatchObject({ backfillId: second, partitions: 16 });
    expect(estimate.wallMs).toBeGreaterThan(0);
    for (const n of estimate.nodes) {
      expect(n.source.kind, n.id).toBe('history');
      expect(n.finishMs!, n.id).toBeLessThanOrEqual(estimate.wallMs);
      expect(n.rows, n.id).toBeGreaterThan(0);
    }
    // Written nothing: the ledger holds the two runs' rows only.
    expect((await worker.warehouse.ledger({})).length).toBe(explain.totalToRun + again.totalToRun);
  }, 600_000);

  it("gives a running backfill's ETA from the estimate's model, and none to a node that is done", async () => {
    const spec = exampleSpec(dir, queue, (yaml) => yaml.replace('concurrency: 8', 'concurrency: 1\n  rate: 4'));
    const id = `foresight-eta-${Date.now()}`;
    const started = await runCli<Started>(['start', spec, '--id', id, '--from', '2024-02-01', '--to', '2024-02-15', '--json'], env);
    expect(started.code, started.stderr).toBe(0);
    const status = await waitFor(
      'a status with an ETA',
      async () => {
        const s = await client.status(id);
        return s.state === 'running' && s.done > 0 && s.etaSeconds !== null ? s : undefined;
      },
      120_000,
      500,
    );
    expect(status.etaSeconds).toBeGreaterThan(0);
    // The last node cannot end before the backfill does.
    for (const node of status.nodes) expect(node.etaSeconds ?? 0).toBeLessThanOrEqual(status.etaSeconds! + 0.05);
    const json = await runCli<Status>(['status', id, '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(json.json!.state === 'completed' || typeof json.json!.etaSeconds === 'number').toBe(true);
    await client.cancel(id);
    await client.wait(id, 60_000).catch(() => undefined);
  });
});

describe('plan --estimate of what it cannot simply run through', () => {
  const dir = scratch('foresight-limits');
  /** 744 hourly partitions of a second, one at a time, in a window open an hour a week (UTC), paused outside it. */
  const WINDOWS = { allow: [{ days: ['sun'], from: '01:00', to: '02:00' }] };
  const file = (extra: Record<string, unknown> = {}) => {
    const path = join(dir, `limits-${Object.keys(extra).join('-') || 'plain'}.json`);
    writeFileSync(path, JSON.stringify({ name: 'limits', partitions: { grain: 'hour', start: '2024-01-01', end: '2024-02-01' }, ...extra, nodes: [{ id: 'a', transform: 'sleep', params: { ms: 1000 }, concurrency: 1 }] }));
    return path;
  };

  it('follows the run windows from now, says a canary is left out, ends at a rate of one partition a day, refuses a slower one, and refuses an infinite --queue-cap', async () => {
    const asked = Date.now();
    const windowed = await runCli<{ estimate: EstimateReport }>(['plan', file({ windows: WINDOWS, canary: { partitions: 2 } }), '--estimate', '--json']);
    expect(windowed.code, windowed.stderr).toBe(0);
    const estimate = windowed.json!.estimate;
    expect(estimate.windows).toMatchObject({ schedules: 1 });
    expect(estimate).toMatchObject({ runs: 744, canary: true, warnings: [expect.stringMatching(/canary/)] });
    // Nothing starts before the window opens (unless it is open now): no longer 744 partitions of a second one after another (14m 24s).
    const state = RunWindows.parse(WINDOWS).at(asked);
    if (!state.open) {
      expect(estimate.nodes[0]!.firstStartMs!).toBeGreaterThanOrEqual(state.opensAt! - asked - 60_000);
      expect(estimate.wallMs).toBeGreaterThan(state.opensAt! - asked - 60_000 + 744 * 1000);
    }

    // The slowest rate a spec takes, one partition a day; a slower one is refused in the spec as on the command line, naming pause.
    const slow = await runCli<{ estimate: EstimateReport }>(['plan', file({ rate: 1 / 86_400 }), '--estimate', '--json'], {}, { timeoutMs: 60_000 });
    expect(slow.code, slow.stderr).toBe(0);
    expect(slow.json!.estimate.wallMs).toBeGreaterThan(743 * 86_400_000);
    const slower = await runCli<{ error: { code: string; message: string; path: string } }>(['plan', file({ rate: 1e-9 }), '--estimate', '--json']);
    expect(slower.code).not.toBe(0);
    expect(slower.json!.error).toMatchObject({ code: 'invalid_spec', path: 'rate', message: expect.stringContaining('slower than one partition a day') });
    const crawl = await runCli<{ error: { code: string; message: string } }>(['plan', file(), '--estimate', '--rate', '1e-9', '--json']);
    expect(crawl.code).not.toBe(0);
    expect(crawl.json!.error).toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('slower than one partition a day') });

    for (const cap of ['backfill=Infinity', 'backfill=1e400']) {
      const refused = await runCli<{ error: { code: string; message: string; path: string } }>(['plan', file(), '--estimate', '--queue-cap', cap, '--json']);
      expect(refused.code).not.toBe(0);
      expect(refused.json!.error).toMatchObject({ code: 'invalid_argument', path: 'queue-cap', message: expect.stringContaining(`--queue-cap '${cap}'`) });
    }
  }, 120_000);

  it("follows the policy's run windows with --policy (or $BACKFILL_POLICY), which only matters with --estimate", async () => {
    const policy = join(dir, 'backfill.policy.yaml');
    writeFileSync(policy, ['version: 1', 'windows:', '  allow:', "    - { days: [sun], from: '01:00', to: '02:00' }", ''].join('\n'));
    const none = ['--warehouse', join(dir, 'none.db')];
    for (const [args, env] of [[['--policy', policy], {}], [[], { BACKFILL_POLICY: policy }]] as const) {
      const asked = Date.now();
      const held = await runCli<{ estimate: EstimateReport }>(['plan', file(), '--estimate', ...none, ...args, '--json'], env);
      expect(held.code, held.stderr).toBe(0);
      expect(held.json!.estimate).toMatchObject({ windows: { schedules: 1, from: ['policy'] }, policy: { path: policy, windows: true } });
      const state = RunWindows.parse(WINDOWS).at(asked);
      if (!state.open) expect(held.json!.estimate.nodes[0]!.firstStartMs!).toBeGreaterThanOrEqual(state.opensAt! - asked - 60_000);
    }
    const text = await runCli(['plan', file(), '--estimate', ...none, '--policy', policy]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`policy ${policy}: its run windows are followed too`);
    // Given without --estimate it would mean nothing; the variable alone leaves a plain plan alone.
    const refused = await runCli<{ error: { code: string; message: string } }>(['plan', file(), '--policy', policy, '--json']);
    expect(refused.code).not.toBe(0);
    expect(refused.json!.error).toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('--policy only matters with --estimate') });
    const plain = await runCli(['plan', file(), '--json'], { BACKFILL_POLICY: policy });
    expect(plain.code, plain.stderr).toBe(0);
  }, 120_000);
});

describe('plan --format svg in Chromium', () => {
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = scratch('plan-graph');
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('draws a box per dataset, an arrow per dependency, every label inside its box and no two boxes overlapping', async () => {
    const drawn = await runCli(['plan', join(ROOT, 'examples/shop/backfill.yaml'), '--format', 'svg']);
    expect(drawn.code, drawn.stderr).toBe(0);
    const page = await browser.newPage({ viewport: { width: 1240, height: 300 } });
    await page.setContent(`<!doctype html><html><body style="margin:0;background:#fff">${drawn.stdout}</body></html>`);
    const boxes = page.locator('svg g.node.dataset');
    await expect(boxes.count()).resolves.toBe(6);
    await expect(page.locator('svg g.edge.dependency').count()).resolves.toBe(5);
    const rects = [];
    for (let i = 0; i < 6; i++) {
      const box = boxes.nth(i);
      const shape = (await box.locator('path').boundingBox())!;
      for (const text of await box.locator('text').all()) {
        const t = (await text.boundingBox())!;
        expect(t.x, await text.textContent() ?? '').toBeGreaterThanOrEqual(shape.x - 0.5);
        expect(t.x + t.width, await text.textContent() ?? '').toBeLessThanOrEqual(shape.x + shape.width + 0.5);
      }
      rects.push(shape);
    }
    for (let i = 0; i < rects.length; i++) {
      for (let j = i + 1; j < rects.length; j++) {
        const [a, b] = [rects[i]!, rects[j]!];
        const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;
        expect(apart, `boxes ${i} and ${j} overlap`).toBe(true);
      }
    }
    const labels = await page.locator('svg text').allTextContents();
    for (const name of ['orders_raw', 'monthly_active_customers', 'lag(-6..0)', 'month · 12 partitions']) expect(labels).toContain(name);
    const screenshot = process.env.BACKFILL_UPDATE_DOCS === '1' ? join(ROOT, 'docs/images/plan-graph.png') : join(dir, 'plan-graph.png');
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.locator('svg').first().screenshot({ path: screenshot });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
    await page.close();
  });
});
