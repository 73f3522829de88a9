/**
 * The audit report end to end: ten days of the example run twice (the second time with a
 * parameter changed, throttled twice, and paused in the middle), then `backfill report`
 * writes HTML, JSON and Markdown; the HTML opens in headless Chromium, which finds the
 * timeline with a lane per node and the paused span, and the graph of datasets coloured by
 * outcome, and takes the README's screenshots (BACKFILL_UPDATE_DOCS=1 writes them to
 * docs/images/report.png and report-graph.png).
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThrottledError } from '../../activities/errors.ts';
import { loadTransforms, type Transform } from '../../activities/transforms.ts';
import { openWarehouse } from '../../activities/warehouse/index.ts';
import { BackfillClient, defaultIdentity, type Started } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import type { Report } from '../../client/report/model.ts';
import { nodeViewQuery, nodeWorkflowId } from '../../workflows/definitions.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, EXAMPLE_TRANSFORMS, Gate, ROOT, address, connectClient, exampleSpec, runCli, scratch, startTestWorker, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const NODES = ['orders_raw', 'orders_clean', 'daily_revenue', 'revenue_7d', 'weekly_revenue', 'monthly_active_customers'];
/** The downstream system says "slow down" the first time these days are generated. */
const THROTTLED_DAYS = new Set(['2024-01-03', '2024-01-04']);
/** The reported backfill's last two days of orders wait here until it is paused: it cannot end before the pause lands. */
const lastDays = new Gate();

describe('backfill report', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  let browser: Browser;
  let dir: string;
  const queue = uniqueQueue('report');
  const env = { BACKFILL_TASK_QUEUE: queue };

  beforeAll(async () => {
    dir = scratch('report');
    const example = await loadTransforms([EXAMPLE_TRANSFORMS]);
    const generate = example.get('generate_orders')!;
    // Orders come from a (simulated) API: a fifth of a second a day, and "slow down" on some days.
    const throttling: Transform = async (ctx) => {
      if (ctx.params.ordersPerDay === 240 && THROTTLED_DAYS.has(ctx.partition) && ctx.throttled === 0) throw new ThrottledError(`orders API: slow down (${ctx.partition})`);
      await delay(200, undefined, { signal: ctx.signal });
      if (ctx.params.ordersPerDay === 240 && ctx.partition >= '2024-01-09') await lastDays.pass(ctx.signal);
      return generate(ctx);
    };
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transformModules: [EXAMPLE_TRANSFORMS], transforms: { generate_orders: throttling } });
    client = await connectClient();
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await client?.close();
    await worker?.stop();
  });

  const warehouse = () => ['--warehouse', join(dir, 'warehouse.db')];
  const inflight = async (id: string) => {
    let total = 0;
    for (const node of NODES) total += (await client.client.workflow.getHandle(nodeWorkflowId(id, node)).query(nodeViewQuery)).inflightActivities;
    return total;
  };

  it('writes an HTML report whose timeline shows every node and the pause, and JSON and Markdown too', async () => {
    // The first backfill publishes the first five days; the reported one recomputes them with more orders, and five more.
    const before = `report-before-${Date.now()}`;
    const first = await runCli<Started>(['start', exampleSpec(dir, queue), '--id', before, '--from', '2024-01-01', '--to', '2024-01-06', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    expect((await client.wait(before, 120_000)).state).toBe('completed');
    // Against a warehouse the workers did not write: refused, rather than a report of 0 partitions published.
    const elsewhere = openWarehouse(join(dir, 'elsewhere.db'), { inline: true });
    await elsewhere.identity();
    await elsewhere.close();
    const wrong = await runCli<{ error: { code: string; message: string } }>(['report', before, '--output', join(dir, 'wrong.html'), '--warehouse', join(dir, 'elsewhere.db'), '--json'], env);
    expect(wrong.code).toBe(1);
    expect(wrong.json!.error).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/published \d+ partitions, but the ledger of .*elsewhere\.db has no row of it: this is not the warehouse its workers wrote to/) });
    expect(() => statSync(join(dir, 'wrong.html'))).toThrow();
    // So is the preview of its rollback, which read "nothing to do" there; the real one then removed every partition.
    const preview = await runCli<{ error: { code: string; message: string; path: string } }>(['rollback', before, '--dry-run', '--warehouse', join(dir, 'elsewhere.db'), '--json'], env);
    expect(preview.code).toBe(1);
    expect(preview.json!.error).toMatchObject({ code: 'invalid_argument', path: 'warehouse', message: expect.stringMatching(/published \d+ partitions, but the ledger of .*elsewhere\.db has no row of it/) });
    const right = await runCli<{ removed: number; restored: number }>(['rollback', before, '--dry-run', ...warehouse(), '--json'], env);
    expect(right.code, right.stderr).toBe(0);
    expect(right.json!.removed + right.json!.restored).toBeGreaterThan(0);

    const spec = exampleSpec(dir, queue, (yaml) => yaml.replace('ordersPerDay: 200', 'ordersPerDay: 240'));
    const id = `report-${Date.now()}`;
    const started = await runCli<Started>(['start', spec, '--id', id, '--from', '2024-01-01', '--to', '2024-01-11', '--rate', '6', '--json'], env);
    expect(started.code, started.stderr + started.stdout).toBe(0);
    await waitFor('a third of the partitions', async () => (await worker.warehouse.ledger({ backfillId: id })).length >= 14, 120_000);
    expect((await client.pause(id)).paused).toBe(true);
    lastDays.open();
    await waitFor('running partitions to finish', async () => (await inflight(id)) === 0, 60_000);
    // An operator's pause of a couple of seconds: what the timeline must show.
    await delay(2000);
    expect((await client.resume(id)).state?.paused).toBe(false);
    expect((await client.wait(id, 120_000)).state).toBe('completed');

    const html = join(dir, 'report.html');
    const written = await runCli<{ output: string; format: string; state: string }>(['report', id, '--output', html, ...warehouse(), '--json'], env);
    expect(written.code, written.stderr).toBe(0);
    expect(written.json).toMatchObject({ output: html, format: 'html', state: 'completed' });

    const json = await runCli<Report>(['report', id, '--format', 'json', '--output', '-', ...warehouse()], env);
    expect(json.code, json.stderr).toBe(0);
    const report = json.json!;
    expect(report.backfill).toMatchObject({ id, state: 'completed', paused: false });
    expect(report.parameters).toMatchObject({ from: '2024-01-01T00:00:00.000Z', to: '2024-01-11T00:00:00.000Z', rate: 6 });
    expect(report.nodes.map((n) => n.id)).toEqual(NODES);
    expect(report.totals).toMatchObject({ partitions: 43, done: 43, failed: 0, blocked: 0, published: 43, throttles: 2 });
    const byId = Object.fromEntries(report.nodes.map((n) => [n.id, n]));
    expect(byId.orders_raw).toMatchObject({ done: 10, published: 10, throttles: 2, changes: { new: 5, changed: 5, unchanged: 0 } });
    expect(byId.orders_raw!.changes.rowsAfter).toBeGreaterThan(byId.orders_raw!.changes.rowsBefore);
    // Each node is compared with its own earlier versions, although the nodes share partition keys and version numbers.
    const earlier = await worker.warehouse.ledger({ backfillId: before });
    for (const node of ['orders_raw', 'orders_clean']) {
      const rowsBefore = earlier.filter((r) => r.node === node && r.status === 'published').reduce((sum, r) => sum + (r.rowCount ?? 0), 0);
      expect(rowsBefore, node).toBeGreaterThan(0);
      expect(byId[node]!.changes.rowsBefore, node).toBe(rowsBefore);
    }
    expect(byId.orders_raw!.durations!.p95Ms).toBeGreaterThanOrEqual(byId.orders_raw!.durations!.p50Ms);
    expect(report.timeline.detail).toBe('partitions');
    expect(report.timeline.marks).toHaveLength(43);
    expect(report.timeline.paused).toHaveLength(1);
    expect(report.timeline.paused[0]!.endMs - report.timeline.paused[0]!.startMs).toBeGreaterThanOrEqual(2000);
    expect(report.timeline.throttled.every((s) => s.node === 'orders_raw')).toBe(true);
    expect(report.timeline.throttled.reduce((sum, s) => sum + s.count, 0)).toBe(2);
    // Before, a span of one throttle read 0ms: the node's pace stays reduced for a while after it, as the paces it reported say.
    for (const span of report.timeline.throttled) expect(span.endMs).toBeGreaterThan(span.startMs);
    expect(report.plan).toMatchObject({ totalPartitions: 43, criticalPathLength: 4 });
    expect(report.plan.criticalPath).toHaveLength(4);

    const md = await runCli(['report', id, '--output', join(dir, 'report.md'), ...warehouse()], env);
    expect(md.code, md.stderr).toBe(0);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/^# Backfill report-\d+\n[\s\S]*\| paused \| all \|/);

    // The browser: nothing to fetch but the file itself; the timeline drawn with a lane per node.
    const page = await browser.newPage({ viewport: { width: 1180, height: 1000 } });
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(`file://${html}`);
    expect(requests).toEqual([`file://${html}`]);
    const timeline = page.locator('#timeline svg');
    await expect(timeline.count()).resolves.toBe(1);
    await expect(page.locator('#timeline g.role-mark.lanes path').count()).resolves.toBe(NODES.length);
    await expect(page.locator('#timeline g.role-mark.partitions path').count()).resolves.toBe(43);
    await expect(page.locator('#timeline g.role-mark.paused path').count()).resolves.toBe(1);
    await expect(page.locator('#timeline g.role-mark.throttled path').count()).resolves.toBeGreaterThanOrEqual(1);
    const labels = await page.locator('#timeline svg text').allTextContents();
    for (const node of NODES) expect(labels).toContain(node);
    const box = await timeline.boundingBox();
    expect(box!.width).toBeGreaterThan(600);
    await expect(page.locator('#nodes tbody tr').count()).resolves.toBe(NODES.length);
    // The spans' table under a heading that says what it lists (with none, its "None." was an orphan under the rate).
    await expect(page.locator('h3:text-is("Paused and throttled spans") + table#spans tbody tr').count()).resolves.toBeGreaterThanOrEqual(2);
    // The graph: a box per dataset, each coloured as completed, an arrow per dependency.
    await expect(page.locator('#graph svg g.node.dataset.outcome-completed').count()).resolves.toBe(NODES.length);
    await expect(page.locator('#graph svg g.edge.dependency').count()).resolves.toBe(5);
    const graphLabels = await page.locator('#graph svg text').allTextContents();
    for (const node of NODES) expect(graphLabels).toContain(node);
    expect(graphLabels).toContain('10/10 done');
    const graphShot = process.env.BACKFILL_UPDATE_DOCS === '1' ? join(ROOT, 'docs/images/report-graph.png') : join(dir, 'report-graph.png');
    await page.locator('#graph').screenshot({ path: graphShot });
    expect(statSync(graphShot).size).toBeGreaterThan(10_000);
    // The README's picture; refreshed on request, so that a test run leaves the work tree as it was.
    const screenshot = process.env.BACKFILL_UPDATE_DOCS === '1' ? join(ROOT, 'docs/images/report.png') : join(dir, 'report.png');
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot });
    expect(statSync(screenshot).size).toBeGreaterThan(20_000);
    await page.close();
  });

  it('lists both rate changes of a backfill, with identity and reason, in its table and on its timeline; the Web UI shows the recent ones', async () => {
    const id = `report-audit-${Date.now()}`;
    const started = await runCli<Started>(['start', exampleSpec(dir, queue), '--id', id, '--from', '2024-01-01', '--to', '2024-01-04', '--rate', '0.2', '--reason', 'reload the first days', '--json'], env);
    expect(started.code, started.stderr + started.stdout).toBe(0);
    await waitFor('the first partition', async () => (await worker.warehouse.ledger({ backfillId: id })).length >= 1, 60_000);
    // Slow enough (13 partitions at 0.2/s) to be running when the command line's process gets going on a busy machine.
    // One change through the command line (its identity is <user>@<host>), one through a client that names its sender.
    const lower = await runCli(['set-rate', id, '0.5', '--reason', 'the orders API | asked for <less>', '--json'], env);
    expect(lower.code, lower.stderr + lower.stdout).toBe(0);
    const oncall = await BackfillClient.connect({ settings: localConnection(address()), identity: 'bob@oncall' });
    try {
      await oncall.setRate(id, 8, undefined, { reason: 'incident 42 is over' });
    } finally {
      await oncall.close();
    }
    expect((await client.wait(id, 120_000)).state).toBe('completed');

    const json = await runCli<Report>(['report', id, '--format', 'json', '--output', '-', ...warehouse()], env);
    expect(json.code, json.stderr).toBe(0);
    const report = json.json!;
    const changes = report.actions.filter((a) => a.action === 'set-rate');
    expect(changes).toHaveLength(2);
    expect(changes[0]).toMatchObject({ identity: defaultIdentity(), verified: false, reason: 'the orders API | asked for <less>', outcome: 'applied', limitChange: true, change: 'rate 0.2/s → 0.5/s' });
    expect(changes[1]).toMatchObject({ identity: 'bob@oncall', verified: false, reason: 'incident 42 is over', outcome: 'applied', limitChange: true, change: 'rate 0.5/s → 8/s' });
    expect(report.actions[0]).toMatchObject({ action: 'start', reason: 'reload the first days', identity: defaultIdentity() });
    expect(report.timeline.limitChanges.map((c) => c.seq)).toEqual(changes.map((c) => c.seq));
    for (const c of report.timeline.limitChanges) {
      expect(c.atMs).toBeGreaterThanOrEqual(report.timeline.startMs);
      expect(c.atMs).toBeLessThanOrEqual(report.timeline.endMs);
    }

    const md = join(dir, 'report-audit.md');
    expect((await runCli(['report', id, '--output', md, ...warehouse()], env)).code).toBe(0);
    const markdown = readFileSync(md, 'utf8');
    expect(markdown).toContain('## Operator actions');
    expect(markdown).toContain(`| set-rate | ${defaultIdentity()} | declared by the client | the orders API \\| asked for \\<less\\> | rate 0.2/s → 0.5/s |`);
    expect(markdown).toContain('| set-rate | bob@oncall | declared by the client | incident 42 is over | rate 0.5/s → 8/s |');

    // In the browser: the table's rows, and a dashed line on the timeline for each change.
    const html = join(dir, 'report-audit.html');
    expect((await runCli(['report', id, '--output', html, ...warehouse()], env)).code).toBe(0);
    const page = await browser.newPage({ viewport: { width: 1180, height: 1000 } });
    await page.goto(`file://${html}`);
    const rows = await page.locator('#actions tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    const rateRows = rows.filter((r) => r[2] === 'set-rate');
    expect(rateRows.map((r) => r.slice(3))).toEqual([
      [defaultIdentity(), 'declared by the client', 'the orders API | asked for <less>', 'rate 0.2/s → 0.5/s'],
      ['bob@oncall', 'declared by the client', 'incident 42 is over', 'rate 0.5/s → 8/s'],
    ]);
    await expect(page.locator('#actions').isVisible()).resolves.toBe(true);
    await expect(page.locator('#timeline g.role-mark.limit-changes > *').count()).resolves.toBe(2);
    const labels = await page.locator('#timeline g.role-mark.limit-change-labels text').allTextContents();
    expect(labels).toEqual(changes.map((c) => `#${c.seq} ${c.change}`));
    await page.locator('#timeline').screenshot({ path: join(dir, 'report-audit-timeline.png') });
    await page.close();

    // The Web UI's current details: the newest actions, newest first, after the progress.
    const metadata = await client.client.workflow.getHandle(`backfill/${id}`).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    const details = metadata.currentDetails ?? '';
    expect(details).toContain('**Recent actions** (3 of 3;');
    expect(details.indexOf('bob@oncall')).toBeGreaterThan(details.indexOf('**Recent actions**'));
    expect(details.indexOf('incident 42 is over')).toBeLessThan(details.indexOf('the orders API \\| asked for \\<less\\>'));
  });

  it('names the problem for an unknown backfill and a bad format', async () => {
    const unknown = await runCli<{ error: { code: string; message: string } }>(['report', 'no-such-backfill', ...warehouse(), '--json'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.json!.error).toMatchObject({ code: 'not_found' });
    const format = await runCli<{ error: { code: string; message: string } }>(['report', 'whatever', '--format', 'pdf', '--json'], env);
    // commander holds --format to its choices, before anything connects.
    expect(format.code).toBe(1);
    expect(format.json!.error).toEqual({ code: 'invalid_argument', message: "option '--format <format>' argument 'pdf' is invalid. Allowed choices are html, json, md." });
  });
});
