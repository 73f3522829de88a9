/**
 * A retry budget stops a failing batch's retries, on a real server: before, Temporal retried a
 * failing batch to its last attempt, and its failed attempts were counted only then, so a new
 * user's budget of 3 stopped at 15. Now a retry whose failed attempts would spend what is left
 * runs nothing and gives its partitions back (workers/retry-budget.ts): they wait, not failed,
 * and run after `set-budget`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Transform } from '../../activities/transforms.ts';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const dir = scratch('retry-budget');
const queue = uniqueQueue('retry-budget');
/** Whether the source is broken: every partition's attempt fails while it is. */
let broken = true;
const transforms: Record<string, Transform> = {
  flaky: async () => {
    if (broken) throw new Error('the source is down');
  },
};
let worker: TestWorker;
let client: BackfillClient;

beforeAll(async () => {
  const policy = join(dir, 'backfill.policy.yaml');
  writeFileSync(policy, ['version: 1', 'budgets:', '  retries: { limit: 3, max: 100 }', ''].join('\n'));
  worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), policyFile: policy, transforms });
  client = await connectClient();
});

afterAll(async () => {
  await client?.close();
  await worker?.stop();
});

describe('a retry budget', () => {
  const MAX_ATTEMPTS = 6;
  const CONCURRENCY = 2;

  it("stops the retries of failing batches near its cap, leaves their partitions waiting (not failed), and set-budget runs them", async () => {
    const spec = testSpec(queue, {
      name: 'retry-budget',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-07' },
      defaults: { batchSize: 1, retry: { maxAttempts: MAX_ATTEMPTS, initialInterval: '300ms', backoffCoefficient: 1, maximumInterval: '300ms' } },
      nodes: [{ id: 'flaky', transform: 'flaky', concurrency: CONCURRENCY }],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 100 } });
    const held = await waitFor(
      'the retry budget to hold the backfill, with nothing running',
      async () => {
        const p = await client.progress(backfillId);
        return p.governance?.holds.some((h) => h.kind === 'budget') && p.running === 0 ? p : undefined;
      },
      60_000,
    );
    const retries = held.governance!.budgets.retries!;
    // Before, the first batch ran its 6 attempts before any counted: 6 and more. Now each batch
    // stops at the retry that would spend the budget, a batch or two past it at most.
    expect(retries.used).toBeGreaterThanOrEqual(3);
    expect(retries.used).toBeLessThanOrEqual(3 + CONCURRENCY);
    expect(retries.used).toBeLessThan(MAX_ATTEMPTS);
    // Its partitions wait: none failed for good.
    expect(held.failed).toBe(0);
    expect(held.done).toBe(0);

    // Nothing retries while held: the count stays.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await client.progress(backfillId)).governance!.budgets.retries!.used).toBe(retries.used);

    broken = false;
    await client.setBudget(backfillId, 'retries', 50);
    const outcome = await client.wait(backfillId, 60_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress).toMatchObject({ done: 6, failed: 0 });
    const ledger = await worker.warehouse.ledger({ backfillId });
    expect(ledger).toHaveLength(6);
    expect(ledger.every((r) => r.status === 'published' && r.executions === 1)).toBe(true);
  }, 120_000);

  it('a budget raised with set-budget carries over a cancel and a resume (the resumed run took the policy\'s 3 again, and was held at once)', async () => {
    broken = true;
    const spec = testSpec(queue, {
      name: 'retry-budget-resumed',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' },
      defaults: { batchSize: 1, retry: { maxAttempts: MAX_ATTEMPTS, initialInterval: '300ms', backoffCoefficient: 1, maximumInterval: '300ms' } },
      nodes: [{ id: 'flaky', transform: 'flaky', concurrency: CONCURRENCY }],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 100 } });
    await waitFor('the retry budget to hold the backfill', async () => (await client.progress(backfillId)).governance?.holds.some((h) => h.kind === 'budget') || undefined, 60_000);
    // Raised, and the run ended before it could use it.
    await client.setBudget(backfillId, 'retries', 60);
    await client.cancel(backfillId);
    expect((await client.wait(backfillId, 30_000)).state).toBe('cancelled');

    broken = false;
    await client.resume(backfillId);
    const outcome = await client.wait(backfillId, 60_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress).toMatchObject({ done: 4, failed: 0 });
    expect(outcome.progress?.governance?.budgets.retries).toMatchObject({ limit: 60 });
  }, 120_000);
});
