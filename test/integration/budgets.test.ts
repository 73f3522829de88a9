/**
 * A cost budget and run windows end to end, on a real server and a real warehouse:
 *
 * - a backfill given a cost budget of half what it costs pauses within one batch of the cap,
 *   starts nothing while paused, goes on after `set-budget` (client library, then command
 *   line), and its ledger shows every partition once, with the cost it reported;
 * - a backfill whose run window closes while it runs starts no partition until the window
 *   opens again, says in `status` and the Web UI's current details when that is, and finishes
 *   on its own.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { LedgerRow } from '../../activities/warehouse/types.ts';
import type { Progress } from '../../core/protocol.ts';
import type { SpecInput } from '../../core/spec.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, runCli, scratch, startTestWorker, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const dir = scratch('budgets');
const queue = uniqueQueue('budgets');
let worker: TestWorker;
let client: BackfillClient;

beforeAll(async () => {
  const policy = join(dir, 'backfill.policy.yaml');
  writeFileSync(policy, ['version: 1', 'budgets:', '  cost: { metric: reported, unit: credits, limit: 1000000, max: 1000000 }', ''].join('\n'));
  worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), policyFile: policy });
  client = await connectClient();
});

afterAll(async () => {
  await client?.close();
  await worker?.stop();
});

const day = (i: number) => new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString().slice(0, 10);
const spec = (name: string, days: number, node: SpecInput['nodes'][number], windows?: SpecInput['windows']) =>
  testSpec(queue, { name, partitions: { grain: 'day', start: day(0), end: day(days) }, nodes: [node], ...(windows ? { windows } : {}) });

/** Every partition published exactly once: one version, one execution, in the given order of keys. */
function expectEachOnce(ledger: readonly LedgerRow[], partitions: number): void {
  expect(ledger).toHaveLength(partitions);
  expect(new Set(ledger.map((r) => r.partition)).size).toBe(partitions);
  expect(ledger.every((r) => r.status === 'published' && r.version === 1 && r.executions === 1)).toBe(true);
}

describe('a cost budget end to end', () => {
  const PER_PARTITION = 10;
  const PARTITIONS = 20;
  const CONCURRENCY = 2;
  /** What one batch of every running activity costs: the most a pause may land past the cap. */
  const ONE_BATCH = CONCURRENCY * 1 * PER_PARTITION;
  const cap = (PARTITIONS * PER_PARTITION) / 2;
  const backfillId = `cost-${queue}`;

  const budgetHold = async (atLeast: number): Promise<Progress | undefined> => {
    const p = await client.progress(backfillId);
    const cost = p.governance?.budgets.cost;
    return p.governance?.holds.some((h) => h.kind === 'budget') && p.running === 0 && cost && cost.used >= atLeast ? p : undefined;
  };

  it('with a budget of half what it costs, it pauses within one batch of the cap, naming the budget', async () => {
    const metered = spec('metered', PARTITIONS, { id: 'metered', transform: 'sleep', params: { ms: 200, cost: PER_PARTITION }, concurrency: CONCURRENCY, batchSize: 1 });
    await client.start(metered, { taskQueue: queue, id: backfillId, budgets: { cost: cap }, tuning: { reportIntervalMs: 250 } });
    const held = await waitFor('the cost budget to pause the backfill', () => budgetHold(cap), 60_000);
    expect(held).toMatchObject({ state: 'running', paused: true });
    const cost = held.governance!.budgets.cost!;
    expect(cost).toMatchObject({ limit: cap, unit: 'credits', reached: true });
    expect(cost.used).toBeLessThanOrEqual(cap + ONE_BATCH);
    expect(held.governance!.holds.find((h) => h.kind === 'budget')?.reason).toMatch(/the cost budget is spent: \d+ of 100 credits.*backfill set-budget <id> --cost/);
    // What the budget counted is what the ledger recorded, partition by partition.
    const ledger = await worker.warehouse.ledger({ backfillId });
    expect(ledger.map((r) => r.cost)).toEqual(ledger.map(() => PER_PARTITION));
    expect(ledger.length * PER_PARTITION).toBe(cost.used);
    expect(ledger.length).toBeLessThan(PARTITIONS);

    const status = await runCli(['status', backfillId]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/cost budget is spent/);
    // wait says once why it blocks, with the command that lets the backfill go on.
    const waited = await runCli(['wait', backfillId, '--timeout', '3s']);
    expect(waited.code).toBe(1);
    expect(waited.stderr.match(/is held/g)).toHaveLength(1);
    expect(waited.stderr).toContain(`${backfillId} is held, and starts no partition: the cost budget is spent: `);
    expect(waited.stderr).toContain(`backfill set-budget ${backfillId} --cost <more> to go on`);
  });

  it('starts nothing while paused', async () => {
    const before = (await worker.warehouse.ledger({ backfillId })).length;
    // Absence needs a span to be seen in: several report intervals and partition times.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const after = await client.progress(backfillId);
    expect(after).toMatchObject({ paused: true, running: 0, done: before });
    expect(await worker.warehouse.ledger({ backfillId })).toHaveLength(before);
  });

  it('refuses a junk or over-the-policy cost budget from the command line and from Temporal\'s CLI', async () => {
    const negative = await runCli(['set-budget', backfillId, '--cost', '-5', '--reason', 'nope']);
    expect(negative.code).not.toBe(0);
    expect(negative.stderr).toMatch(/--cost/);
    const tooMuch = await runCli(['set-budget', backfillId, '--cost', '2e6', '--reason', 'more than the policy allows']);
    expect(tooMuch.code).not.toBe(0);
    expect(tooMuch.stderr).toMatch(/budgets\.cost/);
    const update = (value: string) =>
      temporal(['workflow', 'update', 'execute', '--workflow-id', backfillWorkflowId(backfillId), '--name', 'setBudget', '--input', value, '--input', '{"reason":"from the raw CLI"}']);
    for (const junk of ['{"budget":"cost","limit":"lots"}', '{"budget":"cost","limit":1e400}', '{"budget":"dollars","limit":5}']) {
      const result = await update(junk);
      expect(result.code, junk).not.toBe(0);
      expect(result.stderr + result.stdout, junk).toMatch(/a budget change is/);
    }
    // Two budgets, the second refused: judged together first, so neither changes.
    const budgetsBefore = (await client.progress(backfillId)).governance?.budgets;
    const both = await runCli(['set-budget', backfillId, '--retries', '500', '--cost', '2e6', '--reason', 'the second is more than the policy allows']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/cost: .*budgets\.cost.*nothing was changed/);
    expect((await client.progress(backfillId)).governance?.budgets).toEqual(budgetsBefore);
    expect((await client.progress(backfillId)).governance?.budgets.cost).toMatchObject({ limit: cap });
  });

  it('set-budget lets it go on (client library, then command line), and the ledger shows no partition ran twice', async () => {
    const raised = cap + 5 * PER_PARTITION;
    await client.setBudget(backfillId, 'cost', raised, { reason: 'finance approved 50 more credits' });
    const again = await waitFor('the raised budget to be spent too', () => budgetHold(raised), 60_000);
    expect(again.governance!.budgets.cost!.used).toBeLessThanOrEqual(raised + ONE_BATCH);
    expect(again.done).toBeLessThan(PARTITIONS);

    // The cap in force asked again: nothing changes, and it says since when, by whom and why (still recorded, as asked).
    const same = await runCli<{ unchanged?: { since: number | null; by: string | null; reason: string | null }; budgets: { cost?: { limit: number } } }>(['set-budget', backfillId, '--cost', String(raised), '--json']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.json).toMatchObject({ unchanged: { since: expect.any(Number), by: expect.stringMatching(/ \(declared\)$/), reason: 'finance approved 50 more credits' }, budgets: { cost: { limit: raised } } });
    const sameText = await runCli(['set-budget', backfillId, '--cost', String(raised)]);
    expect(sameText.code, sameText.stderr).toBe(0);
    expect(sameText.stdout).toMatch(new RegExp(`^${backfillId}: cost budget was already ${raised} \\(since \\d{4}-\\d\\d-\\d\\dT[^,]+, by [^ ]+ \\(declared\\): finance approved 50 more credits\\): nothing changed\n  still held: the cost budget is spent`));
    expect((await client.progress(backfillId)).governance?.budgets.cost).toMatchObject({ limit: raised, reached: true });

    // Exactly what the backfill costs: the last partition spends the budget as it finishes the backfill.
    const cli = await runCli<{ unchanged?: unknown }>(['set-budget', backfillId, '--cost', String(PARTITIONS * PER_PARTITION), '--reason', 'finance approved the whole backfill', '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.json).not.toHaveProperty('unchanged');
    expect(cli.json).toMatchObject({ budgets: { cost: { limit: PARTITIONS * PER_PARTITION } } });
    const outcome = await client.wait(backfillId, 60_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress?.governance?.budgets.cost).toMatchObject({ used: PARTITIONS * PER_PARTITION, limit: PARTITIONS * PER_PARTITION, reached: true });
    const ledger = await worker.warehouse.ledger({ backfillId });
    expectEachOnce(ledger, PARTITIONS);
    expect(ledger.every((r) => r.cost === PER_PARTITION)).toBe(true);

    const audit = await runCli<{ entries: Array<{ action: string }> }>(['audit', backfillId, '--json']);
    expect(audit.code, audit.stderr).toBe(0);
    const actions = audit.json!.entries.filter((e) => e.action === 'set-budget' || e.action === 'budget-pause');
    // No pause for the spending that finished it: nothing was left to pause.
    // The two that asked for the cap in force are recorded too: the trail says who asked, even for nothing.
    expect(actions.map((e) => e.action)).toEqual(['budget-pause', 'set-budget', 'budget-pause', 'set-budget', 'set-budget', 'set-budget']);
  });
});

describe('run windows end to end', () => {
  const MINUTE = 60_000;
  const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
  const backfillId = `window-${queue}`;

  it('starts no partition while its window is closed, says when it opens, and finishes on its own after', async () => {
    // Windows have minute granularity: open from now to a minute boundary at least 8 s away,
    // closed for the minute after it, open again from then on.
    const now = Date.now();
    const close = Math.ceil((now + 8_000) / MINUTE) * MINUTE;
    const reopen = close + MINUTE;
    const windows: SpecInput['windows'] = {
      timeZone: 'UTC',
      allow: [
        { days: 'daily', from: hhmm(Math.floor(now / MINUTE) * MINUTE), to: hhmm(close) },
        { days: 'daily', from: hhmm(reopen), to: hhmm(reopen + 30 * MINUTE) },
      ],
      grace: '1m',
    };
    // Enough partitions of 1.5 s, two at a time, to outlast the first window.
    const partitions = 2 * Math.ceil((close - now) / 1500) + 4;
    const timed = spec('windowed', partitions, { id: 'windowed', transform: 'sleep', params: { ms: 1500 }, concurrency: 2, batchSize: 1 }, windows);
    await client.start(timed, { taskQueue: queue, id: backfillId, tuning: { reportIntervalMs: 250 } });

    const waiting = await waitFor(
      'the window to close',
      async () => {
        const p = await client.progress(backfillId);
        return p.state === 'waiting_for_window' && p.running === 0 ? p : undefined;
      },
      close - Date.now() + 30_000,
      250,
    );
    expect(Date.now()).toBeGreaterThanOrEqual(close);
    expect(waiting.governance?.window).toMatchObject({ open: false, opensAt: reopen });
    expect(waiting.done).toBeLessThan(partitions);
    const status = await runCli(['status', backfillId]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`outside the run windows \\(paused\\): next window opens \\w{3} ${hhmm(reopen)} UTC`));
    // The Web UI shows the workflow's current details (markdown: its parentheses escaped): they name the next opening too.
    const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
    await waitFor('the current details to name the next window', async () => {
      const metadata = await handle.query<{ currentDetails?: string | null }>('__temporal_workflow_metadata');
      return metadata.currentDetails?.includes(`Held: outside the run windows \\(paused\\): next window opens`) && metadata.currentDetails.includes(`${hhmm(reopen)} UTC`);
    }, 10_000);

    const outcome = await client.wait(backfillId, reopen - Date.now() + 90_000);
    expect(outcome.state).toBe('completed');
    const ledger = await worker.warehouse.ledger({ backfillId });
    expectEachOnce(ledger, partitions);
    const started = ledger.map((r) => Date.parse(r.startedAt));
    // Nothing started while the window was closed; partitions running at the close finished within the grace.
    expect(started.filter((t) => t >= close && t < reopen)).toEqual([]);
    expect(started.filter((t) => t < close).length).toBeGreaterThan(0);
    expect(started.filter((t) => t >= reopen).length).toBeGreaterThan(0);
  }, 240_000);
});
