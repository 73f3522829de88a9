/**
 * Quality gates that stop part of a backfill: a check downstream catches what an upstream check
 * let through, and the published upstream partitions are what is wrong. The hint says so and
 * names the command that recomputes them; retry-failed with a fixed spec warns that published
 * partitions keep the old SQL's rows, and that command then puts the data right; status says
 * the datasets disagree; publish of a staged run with failures refuses without --partial.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { renderRetried } from '../../client/commands/retry-failed.ts';
import { renderEnd } from '../../client/render.ts';
import { retryFailedHint } from '../../core/retry-hint.ts';
import type { SpecInput } from '../../core/spec.ts';
import { connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('quality gates that fail downstream of published data', () => {
  let client: BackfillClient;
  let worker: TestWorker;
  const queue = uniqueQueue('gates');
  const dir = scratch('gates');
  const warehousePath = join(dir, 'warehouse.db');

  /** Two orders a day, of amounts that differ by day; from the 6th on one is large, so that doubling it trips clean's own check. */
  const RAW = "SELECT :partition AS day, 1 AS id, 100 + 10 * CAST(substr(:partition, 9, 2) AS INTEGER) AS amount UNION ALL SELECT :partition, 2, CASE WHEN :partition >= '2024-01-06' THEN 9000 ELSE 200 END";
  const GOOD = 'SELECT day, id, amount FROM raw';
  const BAD = 'SELECT day, id, amount * 2 AS amount FROM raw';
  const spec = (name: string, cleanSql: string, checks: boolean): SpecInput => ({
    name,
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    defaults: { concurrency: 4 },
    nodes: [
      { id: 'raw', sql: RAW },
      { id: 'clean', dependsOn: ['raw'], sql: cleanSql, ...(checks ? { checks: [{ name: 'no huge amounts', type: 'sql' as const, sql: 'SELECT * FROM {{this}} WHERE amount > 10000' }] } : {}) },
      {
        id: 'daily',
        dependsOn: ['clean'],
        sql: 'SELECT :partition AS day, SUM(amount) AS revenue FROM clean',
        ...(checks ? { checks: [{ type: 'drift' as const, metric: { sum: 'revenue' }, maxChangePercent: 50 }] } : {}),
      },
    ],
  });
  /** The same spec as a file the command line reads. */
  const specFile = (name: string, cleanSql: string): string => {
    const path = join(dir, `${name}.yaml`);
    const node = (id: string, sql: string, dependsOn?: string) => `  - id: ${id}\n${dependsOn ? `    dependsOn: [${dependsOn}]\n` : ''}    sql: "${sql}"\n`;
    writeFileSync(
      path,
      `name: ${name}\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-11 }\ndefaults: { concurrency: 4, taskQueue: ${queue} }\nnodes:\n` +
        node('raw', RAW) +
        node('clean', cleanSql, 'raw') +
        node('daily', 'SELECT :partition AS day, SUM(amount) AS revenue FROM clean', 'clean'),
    );
    return path;
  };
  const totals = async () => ({
    clean: await worker.warehouse.query('SELECT COUNT(*) AS n, SUM(amount) AS amount FROM clean'),
    daily: await worker.warehouse.query('SELECT COUNT(*) AS n, SUM(revenue) AS revenue FROM daily'),
  });

  beforeAll(async () => {
    client = await connectClient();
    worker = await startTestWorker({ queue, warehousePath });
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('says the published upstream may be what is wrong, warns at retry-failed --spec, and its command puts the data right', async () => {
    const good = await client.start(testSpec(queue, spec('gates-good', GOOD, false)), { taskQueue: queue });
    expect((await client.wait(good.backfillId, 120_000)).state).toBe('completed');
    const right = await totals();

    const bad = await client.start(testSpec(queue, spec('gates-bad', BAD, true)), { taskQueue: queue });
    const ended = await client.wait(bad.backfillId, 120_000);
    expect(ended.state).toBe('completed_with_failures');
    const progress = ended.progress!;
    const counts = Object.fromEntries(progress.nodes.map((n) => [n.id, [n.done, n.failed, n.blocked]]));
    // Days 1-5 of clean pass their check doubled and are published; daily's drift check catches them.
    expect(counts).toEqual({ raw: [10, 0, 0], clean: [5, 5, 0], daily: [0, 5, 5] });
    const hint = retryFailedHint(progress)!;
    expect(hint).toContain('daily failed a check on data this backfill published upstream (raw 10, clean 5)');
    expect(hint).toContain(`'backfill start <spec> --id ${bad.backfillId} --rerun --only-changed' (same --from/--to)`);
    const printed = renderEnd(progress);
    expect(printed).toContain(`datasets may disagree: this backfill published raw 10, clean 5, but the failed or blocked partitions of clean 5, daily 10 keep their older versions`);
    // Daily's five drift messages differ only by their figures: one line, not five.
    const dailyLines = printed.split('\n').filter((l) => l.includes('✗ daily'));
    expect(dailyLines).toHaveLength(1);
    expect(dailyLines[0]).toMatch(/✗ daily: 5 failed \(2024-01-0\d, 2024-01-0\d, 2024-01-0\d and 2 more\): .*went from .* \(and 4 more like it with other figures\)$/);
    expect(printed).toContain('1 violating row');
    expect(printed).not.toContain('1 violating rows');

    // The user fixes the SQL (and drops the checks), as the trial did.
    const fixedPath = specFile('gates-fixed', GOOD);
    const retried = await client.retryFailed(bad.backfillId, undefined, testSpec(queue, spec('gates-bad', GOOD, false)));
    expect(retried.keptOldOutput).toEqual({ nodes: [{ node: 'clean', partitions: 5 }], range: {} });
    const said = renderRetried(bad.backfillId, retried, {}, fixedPath);
    const command = `backfill start ${fixedPath} --id ${bad.backfillId} --rerun --only-changed`;
    expect(said).toContain(`⚠ 5 published partitions keep what the old spec made (clean 5)`);
    expect(said).toContain(command);
    expect((await client.wait(bad.backfillId, 120_000)).state).toBe('completed');
    // Completed, and still wrong: days 1-5 of clean kept the doubled amounts, and daily was made from them.
    expect(await totals()).not.toEqual(right);

    // The command the warning names recomputes them, and what reads them.
    const args = command.split(' ').slice(1);
    const rerun = await runCli<{ backfillId: string }>([...args, '--warehouse', warehousePath, '--json'], { BACKFILL_TASK_QUEUE: queue });
    expect(rerun.code, rerun.stderr + rerun.stdout).toBe(0);
    expect((await client.wait(bad.backfillId, 120_000)).state).toBe('completed');
    expect(await totals()).toEqual(right);
  });

  it('publish of a staged run with failures refuses without --partial; with it, status says the datasets disagree', async () => {
    // After the test above, whose data is right: daily's drift check compares with it, and fails days 1-5 again.
    const { backfillId } = await client.start(testSpec(queue, spec('gates-stage', BAD, true)), { taskQueue: queue, stage: true });
    await waitFor('every partition to be staged', async () => (await client.progress(backfillId)).state === 'staged', 120_000, 200);
    const refused = await runCli<{ error: { code: string; message: string } }>(['publish', backfillId, '--json'], { BACKFILL_TASK_QUEUE: queue });
    expect(refused.code).toBe(1);
    expect(refused.json?.error.code).toBe('invalid_argument');
    expect(refused.json?.error.message).toMatch(/^nothing was published: 15 partitions are not staged \(clean 5, daily 10\): .*what they read \(raw 10, clean 5\), so the datasets would disagree\. Publish anyway with 'backfill publish \S+ --partial'/);
    const beforePublish = await worker.warehouse.ledger({ backfillId });
    expect(beforePublish.filter((r) => r.status === 'published')).toEqual([]);
    expect((await client.progress(backfillId)).state).toBe('staged');

    const published = await runCli(['publish', backfillId, '--partial'], { BACKFILL_TASK_QUEUE: queue });
    expect(published.code, published.stderr).toBe(0);
    expect(published.stderr).toMatch(/not staged/);
    await waitFor('the publish to end the backfill', async () => (await client.progress(backfillId)).state === 'completed_with_failures', 60_000, 200);
    const status = await runCli(['status', backfillId], { BACKFILL_TASK_QUEUE: queue });
    expect(status.stdout).toMatch(/⚠ datasets may disagree: this backfill published raw 10, clean 5, but the failed or blocked partitions of clean 5, daily 10 keep their older versions/);
  });
});
