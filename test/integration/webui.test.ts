/**
 * Watching a backfill in the Temporal Web UI: a dev server of its own with the UI on, a worker,
 * and a paced backfill that keeps running while headless Chromium looks at it. A visibility
 * query on BackfillId lists the parent and node workflows; each workflow's User Metadata tab
 * shows the summary and details fixed at its start and the current details the workflow keeps
 * up to date, with the text core/details.ts writes. BACKFILL_UPDATE_DOCS=1 writes the README's
 * screenshot to docs/images/webui.png.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { backfillSummary, describePartitions, nodeSummary, waitReasonText, type WaitReason } from '../../core/details.ts';
import { expandPlan } from '../../core/plan.ts';
import { startDevServer, type DevServer } from '../../host/dev-server.ts';
import type { WorkerProcess } from '../../scripts/worker-process.ts';
import { backfillWorkflowId, nodeWorkflowId } from '../../workflows/definitions.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, ROOT, connectClient, scratch, testSpec, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

const queue = uniqueQueue('webui');
// A day every two seconds per node: three months keep it running for three minutes, well beyond the
// test; a slow pace also keeps the histories, which the UI loads in full, short.
const SPEC = testSpec(queue, {
  name: 'webui',
  description: 'watched in the Temporal Web UI',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-04-01' },
  defaults: { rate: 0.5, concurrency: 2 },
  nodes: [
    { id: 'source', transform: 'sleep', params: { ms: 50 } },
    { id: 'daily', transform: 'sleep', dependsOn: ['source'] },
    { id: 'weekly', transform: 'sleep', partitions: { grain: 'week' }, dependsOn: ['daily'] },
  ],
});
const PLAN = expandPlan(SPEC);
const NODE = PLAN.byId.get('daily')!;
const REASONS = (['paused', 'throttled', 'rate', 'concurrency', 'upstream', null] as WaitReason[]).map((r) => waitReasonText(r, queue));
/** "12 of 195 partitions" (core/details.ts). */
const DONE = /([\d,]+) of ([\d,]+) partitions/;
const number = (text: string) => Number(text.replaceAll(',', ''));
/** How long a page may take to show something: the UI loads a workflow's whole history, slow on a busy machine. */
const UI_TIMEOUT = 20_000;

/**
 * Runs `check` until it holds, reloading the page between tries (what the UI shows is read once
 * per page load, and visibility is eventually consistent). `check` waits on locators with short
 * timeouts of its own.
 */
async function reloadUntil<T>(page: Page, what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  let first = true;
  return waitFor(
    `${what} in the Web UI`,
    async () => {
      if (!first) await page.reload();
      first = false;
      return check();
    },
    timeoutMs,
    500,
  );
}

/**
 * A section of a workflow's User Metadata tab ("Summary", "Details", "Current Details"): the UI
 * renders its markdown in an iframe of its own, next to the heading.
 */
function section(page: Page, heading: string): FrameLocator {
  return page
    .getByRole('heading', { name: heading, exact: true })
    .locator('xpath=ancestor::div[.//iframe][1]')
    .frameLocator('iframe');
}

/** The text a section renders, once it contains `expected`. */
async function sectionText(page: Page, heading: string, expected: string | RegExp, timeoutMs = UI_TIMEOUT): Promise<string> {
  const main = section(page, heading).locator('main').filter({ hasText: expected });
  await main.waitFor({ timeout: timeoutMs });
  return main.innerText();
}

/** Opens a workflow's User Metadata tab from its page. */
async function openUserMetadata(page: Page): Promise<void> {
  const tab = page.getByRole('tab', { name: 'User Metadata' });
  await tab.click({ timeout: UI_TIMEOUT });
  await page.waitForURL(/\/user-metadata$/, { timeout: UI_TIMEOUT });
}

describe('the Temporal Web UI', () => {
  let dir: string;
  let server: DevServer;
  let worker: WorkerProcess;
  let client: BackfillClient;
  let browser: Browser;
  let page: Page;
  const id = `webui-${Date.now()}`;

  beforeAll(async () => {
    dir = scratch('webui');
    // The suite's shared server runs headless (global-setup.ts): this one serves the UI.
    server = await startDevServer({ dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log') });
    worker = workerProcess({ address: server.address, queue, warehouse: join(dir, 'warehouse.db') });
    [browser] = await Promise.all([chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS }), worker.start()]);
    client = await connectClient(server.address);
    await client.start(SPEC, { id, taskQueue: queue });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });
  afterAll(async () => {
    if (client) {
      await client.cancel(id).catch(() => undefined);
      await client.wait(id, 30_000).catch(() => undefined);
      await client.close();
    }
    await browser?.close();
    await worker?.stop();
    await server?.stop();
  });

  it('lists the backfill and its node workflows for a BackfillId query', async () => {
    expect(server.uiUrl).not.toBeNull();
    const ids = [backfillWorkflowId(id), ...PLAN.nodes.map((n) => nodeWorkflowId(id, n.id))];
    await page.goto(`${server.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(`BackfillId="${id}"`)}`);
    const rows = page.getByRole('row').filter({ has: page.getByRole('link', { name: /^backfill\// }) });
    const row = (workflowId: string) => rows.filter({ has: page.getByRole('link', { name: workflowId, exact: true }) });
    await reloadUntil(page, `the ${ids.length} workflows of ${id}`, async () => {
      await Promise.all(ids.map((w) => row(w).waitFor({ timeout: 10_000 })));
      return (await rows.count()) === ids.length;
    });
    for (const w of ids) {
      await expect(row(w).getByText('Running', { exact: true }).count()).resolves.toBe(1);
    }
    await expect(row(backfillWorkflowId(id)).getByRole('link', { name: 'backfillWorkflow', exact: true }).count()).resolves.toBe(1);
    await expect(rows.filter({ has: page.getByRole('link', { name: 'nodeWorkflow', exact: true }) }).count()).resolves.toBe(PLAN.nodes.length);

    // The operator's way in: the parent's row.
    await row(backfillWorkflowId(id)).getByRole('link', { name: backfillWorkflowId(id), exact: true }).click();
    await page.getByRole('heading', { name: backfillWorkflowId(id), exact: true }).waitFor({ timeout: UI_TIMEOUT });
  });

  it("shows the backfill's summary, details and current details, which move while it runs", async () => {
    await page.goto(`${server.uiUrl}/namespaces/default/workflows/${encodeURIComponent(backfillWorkflowId(id))}`);
    await openUserMetadata(page);
    const summary = backfillSummary(PLAN);

    // Fixed at start (client/backfill-client.ts): the summary line, and a table of the datasets.
    expect((await sectionText(page, 'Summary', summary)).trim()).toBe(summary);
    const details = await sectionText(page, 'Details', SPEC.description!);
    expect(details).toContain(SPEC.name);
    for (const node of PLAN.nodes) {
      expect(details).toContain(node.id);
      expect(details).toContain(describePartitions(node.partitions));
    }
    // Each node workflow started with its own summary, listed among the events with metadata.
    for (const node of PLAN.nodes) {
      await page.getByText(nodeSummary(id, node.spec, node.partitions), { exact: true }).waitFor({ timeout: UI_TIMEOUT });
    }

    // Kept up to date by the workflow (workflows/backfill.ts): state, partitions done, a row per dataset.
    const current = async () => {
      const text = await sectionText(page, 'Current Details', DONE);
      expect(text).toContain(`${summary} · id ${id}`);
      expect(text).toMatch(/^running\b/m);
      for (const node of PLAN.nodes) expect(text).toMatch(new RegExp(`^${node.id}\\b`, 'm'));
      const [, done, total] = DONE.exec(text)!;
      expect(number(total!)).toBe(PLAN.totalPartitions);
      return number(done!);
    };
    const before = await reloadUntil(page, 'the current details of the backfill', current, 45_000);
    // The operator actions after the progress: here its start, by the test's client, with what it started.
    const actions = await sectionText(page, 'Current Details', DONE);
    expect(actions).toContain(`Recent actions (1 of 1; backfill audit ${id} lists them all)`);
    const who = client.identity.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&');
    expect(actions).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+start\\s+${who} \\(declared\\)\\s+—\\s+started with ${PLAN.totalPartitions} partitions$`, 'm'));
    // "Press R for freshness": the same page, newer details.
    await waitFor(
      'the current details to show more partitions done',
      async () => {
        await page.keyboard.press('r');
        return (await current()) > before;
      },
      30_000,
      1000,
    );

    // The README's picture; refreshed on request, so that a test run leaves the work tree as it was.
    const screenshot = process.env.BACKFILL_UPDATE_DOCS === '1' ? join(ROOT, 'docs/images/webui.png') : join(dir, 'webui.png');
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot });
    expect(statSync(screenshot).size).toBeGreaterThan(20_000);
  });

  it("shows a node workflow's summary, details and current details", async () => {
    await page.goto(`${server.uiUrl}/namespaces/default/workflows/${encodeURIComponent(nodeWorkflowId(id, NODE.id))}`);
    await page.getByRole('link', { name: backfillWorkflowId(id), exact: true }).waitFor({ timeout: UI_TIMEOUT });
    await openUserMetadata(page);
    const summary = nodeSummary(id, NODE.spec, NODE.partitions);

    // Fixed when the backfill started it (workflows/backfill.ts).
    expect((await sectionText(page, 'Summary', summary)).trim()).toBe(summary);
    const details = await sectionText(page, 'Details', describePartitions(NODE.partitions));
    expect(details).toContain(`${NODE.id}: ${NODE.spec.transform}, ${NODE.partitions.grain} partitions`);
    expect(details).toContain(queue);
    for (const dep of NODE.spec.dependsOn) expect(details).toContain(dep.node);

    // Kept up to date by the node workflow (workflows/node.ts): its counters and why it waits, if it does.
    const text = await reloadUntil(page, `the current details of ${NODE.id}`, () => sectionText(page, 'Current Details', summary), 45_000);
    for (const column of ['queued', 'running', 'done', 'rate', 'concurrency']) expect(text).toContain(column);
    expect(text).toContain(`${NODE.spec.rate}/s`);
    expect(REASONS.some((reason) => text.includes(reason)), text).toBe(true);
  });
});
