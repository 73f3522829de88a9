/**
 * Fix and go on: a backfill whose SQL is broken is fixed with a new spec and completes,
 * recomputing only what failed and what it blocked; a fix sent while it ran is what a later new
 * run goes on with; a cancelled backfill resumes and skips what it had published.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { NonRetryableError } from '../../activities/errors.ts';
import type { Transform } from '../../activities/transforms.ts';
import { renderRetried } from '../../client/commands/retry-failed.ts';
import { gatherReport } from '../../client/report/gather.ts';
import { renderMarkdown } from '../../client/report/markdown.ts';
import { describeChange } from '../../core/audit.ts';
import type { SpecInput } from '../../core/spec.ts';
import { Gate, connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('fix and go on', () => {
  let client: BackfillClient;
  let worker: TestWorker;
  const queue = uniqueQueue('fix');
  /** Holds the resumed backfill's partitions from 08:00 on until it has been cancelled. */
  const resumeGate = new Gate();
  /** Holds partitions from 02:00 on until new specs have been sent. */
  const keptGate = new Gate();
  /** Fails the hours in `params.bad`, and holds those from 02:00 on at keptGate. */
  const keptHeld: Transform = async ({ partition, params, signal }) => {
    if ((params.bad as string[]).includes(partition)) throw new NonRetryableError(`bug for ${partition}`);
    if (partition >= '2024-01-01T02') await keptGate.pass(signal);
  };
  /** By `params.gate`: holds the partitions that did not fail until the fix has been sent. */
  const fixGates = { retry: new Gate(), cancel: new Gate() };
  /** Fails the partitions listed in `params.bad` (the bug); a spec without them is the fix. */
  const picky: Transform = async ({ partition, params, signal }) => {
    if ((params.bad as string[]).includes(partition)) throw new NonRetryableError(`bug for ${partition}`);
    await fixGates[params.gate as keyof typeof fixGates].pass(signal);
  };
  /** One node of six hours (a dataset per gate) whose transform fails the hours in `bad`, the others held at the gate. */
  const bugged = (gate: keyof typeof fixGates, bad: string[]): SpecInput => ({
    name: `fix-then-${gate}`,
    partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-01T06' },
    defaults: { concurrency: 2, batchSize: 1, heartbeatTimeout: '2s' },
    nodes: [{ id: `fx_${gate}`, transform: 'picky', params: { gate, bad } }],
  });
  const hours = ['00', '01', '02', '03', '04', '05'].map((h) => `2024-01-01T${h}`);
  /** Starts a bugged backfill, waits for its first failure, and sends the fix while the rest waits at the gate. */
  const fixWhileRunning = async (gate: keyof typeof fixGates): Promise<string> => {
    const { backfillId } = await client.start(testSpec(queue, bugged(gate, [hours[0]!])), { taskQueue: queue, tuning: { reportIntervalMs: 100 } });
    await waitFor('the first partition to fail', async () => (await client.progress(backfillId)).nodes[0]!.failed === 1, 30_000);
    const { changed, resumed } = await client.resume(backfillId, { spec: testSpec(queue, bugged(gate, [])) });
    expect({ changed, resumed }).toEqual({ changed: [`fx_${gate}`], resumed: null });
    return backfillId;
  };
  /** The new run of the backfill started with the fix, and published every hour. */
  const expectFixedRun = async (backfillId: string, gate: keyof typeof fixGates) => {
    expect((await client.inputOf(backfillId))?.spec.nodes[0]!.params).toEqual({ gate, bad: [] });
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    const published = (await worker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published');
    expect(published.map((r) => r.partition).sort()).toEqual(hours);
  };

  beforeAll(async () => {
    client = await connectClient();
    worker = await startTestWorker({ queue, warehousePath: join(scratch('fix'), 'warehouse.db'), transforms: { held: resumeGate.holding('2024-01-01T08'), keptHeld, picky } });
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  const shop = (sql: string): SpecInput => ({
    name: 'fix',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    defaults: { concurrency: 4 },
    nodes: [
      { id: 'orders', sql: "SELECT :partition AS day, 3 AS n UNION ALL SELECT :partition, 4" },
      // Broken on the 5th and later: a column that does not exist.
      { id: 'daily', dependsOn: ['orders'], sql },
      { id: 'weekly', partitions: { grain: 'week' }, dependsOn: ['daily'], sql: 'SELECT :partition AS week, SUM(total) AS total FROM daily' },
    ],
  });
  const broken = "SELECT :partition AS day, CASE WHEN :partition < '2024-01-05' THEN SUM(n) ELSE SUM(nope) END AS total FROM orders";
  const fixed = 'SELECT :partition AS day, SUM(n) AS total FROM orders';

  it('retry-failed with a fixed SQL completes the backfill, recomputing only the failed and blocked partitions', async () => {
    const { backfillId } = await client.start(testSpec(queue, shop(broken)), { taskQueue: queue });
    const first = await client.wait(backfillId, 120_000);
    expect(first.state).toBe('completed_with_failures');
    // SQL errors are not retried: every day fails at once... on SQLite the whole statement is checked, so all fail.
    const failedBefore = first.progress!.failed;
    expect(failedBefore).toBeGreaterThan(0);
    const before = await worker.warehouse.ledger({ backfillId });
    const publishedBefore = before.filter((r) => r.status === 'published').length;

    const result = await client.retryFailed(backfillId, undefined, testSpec(queue, shop(fixed)));
    expect(result.changed).toEqual(['daily']);
    expect(result.retried).toBe(failedBefore);
    // Before, it said only the failed ones; the audit entry said a new run 'with' the plan's partitions.
    expect(first.progress!.blocked).toBeGreaterThan(0);
    expect(result.blocked).toBe(first.progress!.blocked);
    expect(renderRetried(backfillId, result)).toMatch(new RegExp(`^${backfillId} resumed in a new run to retry ${failedBefore} failed partitions and the ${first.progress!.blocked} blocked behind them\\n`));
    const second = await client.wait(backfillId, 120_000);
    expect(second.state).toBe('completed');
    const after = (await worker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published');
    // Only the failed partitions and those they blocked ran again: nothing published before ran twice.
    expect(after.length - publishedBefore).toBe(failedBefore + first.progress!.blocked);
    const keys = after.map((r) => `${r.node}/${r.partition}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(await worker.warehouse.query('SELECT COUNT(*) AS n, SUM(total) AS total FROM daily')).toEqual([{ n: 10, total: 70 }]);

    // Before, the report read the latest run's failures only, and said none: the first run's are there, fixed by the second.
    const report = await gatherReport(client, worker.warehouse, backfillId);
    expect(report.backfill.runs).toBe(2);
    expect(report.totals).toMatchObject({ failed: 0, publishedAfterFailing: failedBefore });
    const daily = report.nodes.find((n) => n.id === 'daily')!;
    expect(daily.failures).toEqual([]);
    // As the first run's progress said them, when they were still failures.
    const { message, type, examples } = first.progress!.nodes.find((n) => n.id === 'daily')!.failures[0]!;
    expect(message).toMatch(/nope/);
    expect(daily.fixedFailures).toEqual([{ message, type, failedInRuns: [1], publishedInRun: 2, partitions: failedBefore, examples }]);
    expect(renderMarkdown(report)).toContain(`| daily | failed (${type}) in run 1, published in run 2 | ${failedBefore} | ${examples.join(', ')} and ${failedBefore - 3} more |`);
  });

  // Before, the new run's audit entry was a plain `resume`: the retry and its new spec were nowhere in the trail.
  it('retry-failed --spec of an ended backfill is in its audit trail as a retry-failed, with the nodes the spec changed', async () => {
    const { backfillId } = await client.start(testSpec(queue, shop(broken)), { taskQueue: queue });
    expect((await client.wait(backfillId, 120_000)).state).toBe('completed_with_failures');
    await client.retryFailed(backfillId, 'daily', testSpec(queue, shop(fixed)), { reason: 'daily reads a column that exists now' });
    expect((await client.wait(backfillId, 120_000)).state).toBe('completed');
    const trail = await client.audit(backfillId);
    expect(trail.map((e) => e.action)).toEqual(['start', 'retry-failed']);
    expect(trail[1]).toMatchObject({ outcome: 'applied', reason: 'daily reads a column that exists now', details: { resumed: true, node: 'daily', specChanged: 'daily' } });
    expect(describeChange(trail[1]!)).toMatch(/^failed partitions of node daily and those blocked behind them run again in a new run \(of the backfill's \d+ partitions, the published ones skipped\), a new spec that changes daily($|, )/);
    // `backfill audit` prints it so.
    const printed = await runCli(['audit', backfillId]);
    expect(printed.stdout).toMatch(/retry-failed/);
  });

  // Before, the new run took the ended run's input, the spec from before the fix, and failed again.
  it('a fix sent to a running backfill (resume --spec) is what a later retry-failed runs with', async () => {
    const backfillId = await fixWhileRunning('retry');
    fixGates.retry.open();
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    expect((await client.retryFailed(backfillId)).retried).toBe(1);
    await expectFixedRun(backfillId, 'retry');
  });

  // Before, only a new run (of an ended backfill) warned; the running backfill went on silently.
  it('a new spec sent to a running backfill that changes what it published says those partitions keep the old output, and how to recompute them', async () => {
    const spec = (factor: number, bad = [hours[1]!]): SpecInput => ({
      name: 'kept-running',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-01T06' },
      defaults: { concurrency: 1, batchSize: 1 },
      nodes: [{ id: 'kept_hours', transform: 'keptHeld', params: { factor, bad } }],
    });
    const { backfillId } = await client.start(testSpec(queue, spec(1)), { taskQueue: queue, tuning: { reportIntervalMs: 100 } });
    await waitFor('one hour published, one failed', async () => {
      const { done, failed } = await client.progress(backfillId);
      return done === 1 && failed === 1;
    }, 30_000);
    // (The command line would refuse the test worker's own transform: the client's calls, and retry-failed's words.)
    const resumed = await client.resume(backfillId, { spec: testSpec(queue, spec(2)) });
    expect(resumed.keptOldOutput).toMatchObject({ nodes: [{ node: 'kept_hours', partitions: 1 }], running: true });
    const retried = await client.retryFailed(backfillId, undefined, testSpec(queue, spec(3, [])));
    expect(retried).toMatchObject({ retried: 1, keptOldOutput: { nodes: [{ node: 'kept_hours', partitions: 1 }], running: true } });
    const said = renderRetried(backfillId, retried, {}, 'fixed.yaml');
    expect(said).toContain('⚠ 1 published partition keeps what the old spec made (kept_hours 1): the backfill goes on with the new spec for what it has not published');
    expect(said).toContain(`backfill start fixed.yaml --id ${backfillId} --rerun --only-changed`);
    // A spec that changes nothing more says nothing.
    expect((await client.resume(backfillId, { spec: testSpec(queue, spec(3, [])) })).keptOldOutput).toBeUndefined();
    keptGate.open();
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
  });

  it('a fix sent to a running backfill that is then cancelled is what its resume runs with', async () => {
    const backfillId = await fixWhileRunning('cancel');
    await client.cancel(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
    fixGates.cancel.open();
    // Where a cancelled backfill stopped comes from the carry query, answered by replaying it.
    expect((await client.resume(backfillId)).resumed?.backfillId).toBe(backfillId);
    await expectFixedRun(backfillId, 'cancel');
  });

  it('a new spec that changes the partitions is refused, naming the difference, and nothing starts', async () => {
    const { backfillId } = await client.start(testSpec(queue, shop(broken)), { taskQueue: queue });
    await client.wait(backfillId, 120_000);
    const other = shop(fixed);
    other.partitions = { grain: 'day', start: '2024-01-01', end: '2024-01-12' };
    await expect(client.retryFailed(backfillId, undefined, testSpec(queue, other))).rejects.toThrow(/changes the partitions of 'orders'/);
    expect((await client.describe(backfillId)).status.name).toBe('COMPLETED');
  });

  it('a cancelled backfill resumes in a new run that skips every published partition', async () => {
    const slow: SpecInput = {
      name: 'resume',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-02' },
      // The first 8 hours run, the rest wait at the gate: with 200 ms partitions, a loaded machine
      // could finish all of them before the cancel landed. One partition per activity, so that a
      // held one does not hold back the commit of a batch; a short heartbeat timeout lets the cancel reach it.
      defaults: { concurrency: 2, batchSize: 1, heartbeatTimeout: '2s' },
      nodes: [{ id: 'work', transform: 'held' }],
    };
    const { backfillId } = await client.start(testSpec(queue, slow), { taskQueue: queue });
    await waitFor('a few partitions', async () => (await worker.warehouse.ledger({ backfillId })).length >= 6);
    await client.cancel(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
    const publishedAtCancel = (await worker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published').length;
    expect(publishedAtCancel).toBeGreaterThanOrEqual(6);
    expect(publishedAtCancel).toBeLessThanOrEqual(8);
    resumeGate.open();

    const resumed = await client.resume(backfillId);
    expect(resumed.resumed?.backfillId).toBe(backfillId);
    expect((await client.wait(backfillId, 120_000)).state).toBe('completed');
    const rows = (await worker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published');
    expect(rows).toHaveLength(24);
    // The published ones were not run again.
    expect(rows.filter((r) => r.executions > 1).length).toBeLessThanOrEqual(2);
  });
});
