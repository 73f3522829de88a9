/**
 * `--only-changed` end to end: the example (two weeks of it) runs once; run again with
 * --only-changed it recomputes nothing; after a parameter change to one node, only that node
 * and its downstream run.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { ChangeSummary } from '../../client/only-changed.ts';
import type { Started } from '../../client/backfill-client.ts';
import { EXAMPLE_TRANSFORMS, connectClient, exampleSpec, runCli, scratch, startTestWorker, uniqueQueue, type TestWorker } from './helpers.ts';

const RANGE = ['--from', '2024-01-01', '--to', '2024-01-15'];

describe('start --only-changed', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  let dir: string;
  const queue = uniqueQueue('only-changed');
  const env = { BACKFILL_TASK_QUEUE: queue };

  beforeAll(async () => {
    dir = scratch('only-changed');
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transformModules: [EXAMPLE_TRANSFORMS] });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  const warehouse = () => ['--warehouse', join(dir, 'warehouse.db')];
  const rowsByNode = async (backfillId: string) => {
    const counts: Record<string, number> = {};
    for (const row of await worker.warehouse.ledger({ backfillId })) counts[row.node] = (counts[row.node] ?? 0) + 1;
    return counts;
  };
  const toRun = (summary: ChangeSummary) => Object.fromEntries(summary.nodes.map((n) => [n.id, n.toRun]));
  async function startAndWait(spec: string, id: string, extra: string[] = []): Promise<Started & { onlyChanged?: ChangeSummary }> {
    const started = await runCli<Started & { onlyChanged?: ChangeSummary }>(['start', spec, '--id', id, ...RANGE, ...extra, '--json'], env);
    expect(started.code, started.stderr).toBe(0);
    expect((await client.wait(id, 120_000)).state).toBe('completed');
    return started.json!;
  }

  it('recomputes nothing when nothing changed, then only the changed node and its downstream', async () => {
    const spec = exampleSpec(dir, queue);
    const first = `oc-first-${Date.now()}`;
    await startAndWait(spec, first);
    expect(await rowsByNode(first)).toEqual({ orders_raw: 14, orders_clean: 14, daily_revenue: 14, revenue_7d: 14, weekly_revenue: 2, monthly_active_customers: 1 });

    const planned = await runCli<{ onlyChanged: ChangeSummary }>(['plan', spec, ...RANGE, '--only-changed', ...warehouse(), '--json']);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.json!.onlyChanged).toMatchObject({ totalToRun: 0, totalSkipped: 59 });

    const again = `oc-again-${Date.now()}`;
    const unchanged = await startAndWait(spec, again, ['--only-changed', ...warehouse()]);
    expect(unchanged.onlyChanged).toMatchObject({ totalToRun: 0 });
    expect(await rowsByNode(again)).toEqual({});
    const progress = await client.progress(again);
    expect(progress).toMatchObject({ state: 'completed', done: 59, total: 59, failed: 0 });

    // A parameter of daily_revenue changes (the SQL does not use it; the ledger sees the change all the same).
    const changed = exampleSpec(dir, queue, (yaml) => yaml.replace('  - id: daily_revenue\n', '  - id: daily_revenue\n    params: { minOrders: 1 }\n'));
    const human = await runCli(['plan', changed, ...RANGE, '--only-changed', ...warehouse()]);
    expect(human.stdout).toMatch(/only changed .*: 30 partitions run, 29 keep their published versions/);
    expect(human.stdout).toMatch(/daily_revenue .*14 spec changed/);
    const third = `oc-param-${Date.now()}`;
    const started = await startAndWait(changed, third, ['--only-changed', ...warehouse()]);
    expect(toRun(started.onlyChanged!)).toEqual({ orders_raw: 0, orders_clean: 0, daily_revenue: 14, revenue_7d: 14, weekly_revenue: 2, monthly_active_customers: 0 });
    expect(await rowsByNode(third)).toEqual({ daily_revenue: 14, revenue_7d: 14, weekly_revenue: 2 });
    const versions = await worker.warehouse.ledger({ backfillId: third, node: 'revenue_7d' });
    expect(versions.every((r) => r.version === 2 && r.previousVersion === 1)).toBe(true);
    // The audit trail says what the start was asked to run: its range, and what --only-changed kept.
    const audit = await runCli<{ entries: Array<{ action: string; details: Record<string, unknown> }> }>(['audit', third, '--json'], env);
    expect(audit.json!.entries.find((e) => e.action === 'start')!.details).toMatchObject({ from: '2024-01-01T00:00:00Z', to: '2024-01-15T00:00:00Z', onlyChangedKept: 29 });
    // The table wraps its cells: read as one line, borders out.
    expect((await runCli(['audit', third], env)).stdout.replace(/[│\s]+/g, ' ')).toContain('--from 2024-01-01T00:00:00Z --to 2024-01-15T00:00:00Z (end exclusive), --only-changed kept 29 unchanged partitions as published');
  });
});
