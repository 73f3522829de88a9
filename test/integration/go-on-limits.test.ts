/**
 * resume and retry-failed --rate / --concurrency: the new run of an ended backfill goes on under
 * the limits the operator gives (an overloaded warehouse is retried gently), judged by the
 * policy's caps as a start's are; a backfill that still runs is refused them, naming set-rate.
 * A new run refused at admission ran nothing: the next plain resume or retry-failed goes on from
 * the run before it (its limits, its failures), not from what the refused run was given.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NonRetryableError } from '../../activities/errors.ts';
import type { Transform } from '../../activities/transforms.ts';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { BackfillError } from '../../core/errors.ts';
import type { SpecInput } from '../../core/spec.ts';
import { Gate, connectClient, refusal, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('resume and retry-failed with --rate and --concurrency', () => {
  let client: BackfillClient;
  let worker: TestWorker;
  const queue = uniqueQueue('go-on-limits');
  /** Holds the partitions of `params.gate` until it opens. */
  const gates = { resume: new Gate(), refused: new Gate() };
  /** The hours that fail (the warehouse overloaded) until the test heals them; `params.fails: 'again'` fails its own. */
  const failing = new Set(['2024-01-01T01', '2024-01-01T03']);
  const failingAgain = new Set(['2024-01-01T02', '2024-01-01T04']);
  const failingOnceMore = new Set(['2024-01-01T00', '2024-01-01T05']);
  const overloaded: Transform = async ({ partition, params, signal }) => {
    const hours = params.fails === 'again' ? failingAgain : params.fails === 'once more' ? failingOnceMore : failing;
    if (params.gate === undefined && hours.has(partition)) throw new NonRetryableError(`warehouse overloaded at ${partition}`);
    if (params.gate !== undefined) await gates[params.gate as keyof typeof gates].pass(signal);
  };
  const spec = (node: string, params: Record<string, unknown> = {}): SpecInput => ({
    name: `go-on-${node}`,
    partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-01T06' },
    defaults: { concurrency: 4, batchSize: 1, heartbeatTimeout: '2s' },
    nodes: [{ id: node, transform: 'overloaded', params }],
  });

  beforeAll(async () => {
    const dir = scratch('go-on-limits');
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, 'version: 1\ncaps:\n  backfill: { rate: 20, concurrency: 4 }\n');
    client = await connectClient();
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transforms: { overloaded }, policyFile });
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('retry-failed --rate --concurrency of a backfill that ended with failures runs the new run under them', async () => {
    const { backfillId } = await client.start(testSpec(queue, spec('golimits_retry')), { taskQueue: queue, limits: { rate: 10, concurrency: 3 }, tuning: { reportIntervalMs: 100 } });
    const first = await client.wait(backfillId, 60_000);
    expect(first.state).toBe('completed_with_failures');
    expect(first.progress).toMatchObject({ failed: 2, rate: 10, concurrency: 3 });
    failing.clear();

    const retried = await runCli(['retry-failed', backfillId, '--rate', '5', '--concurrency', '2']);
    expect(retried.stderr).toBe('');
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain(`${backfillId} resumed in a new run to retry 2 failed partitions\n  new run's limits: rate 5/s, concurrency 2\n`);
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    // Before, the new run went on with the ended run's 10/s and 3 at once: retry-failed had no --rate or --concurrency.
    const status = await runCli<{ state: string; rate: number; concurrency: number; nodes: Array<{ concurrency: number }> }>(['status', backfillId, '--json']);
    expect(status.json).toMatchObject({ state: 'completed', rate: 5, concurrency: 2, nodes: [{ concurrency: 2 }] });
    // The new run's start is in the audit trail as the retry it was, with the limits it was given.
    const trail = await client.audit(backfillId);
    expect(trail.map((e) => e.action)).toEqual(['start', 'retry-failed']);
    expect(trail[1]!.details).toMatchObject({ rate: 5, concurrency: 2 });
    // The first start's own limits too (they were not recorded).
    expect(trail[0]!.details).toMatchObject({ resumed: false, rate: 10, concurrency: 3 });
  }, 60_000);

  it("resume --rate is refused for a running backfill, naming set-rate; of an ended one the policy's cap judges it, and the new run goes on under what it admitted", async () => {
    const { backfillId } = await client.start(testSpec(queue, spec('golimits_resume', { gate: 'resume' })), { taskQueue: queue, limits: { rate: 10, concurrency: 3 }, tuning: { reportIntervalMs: 100 } });
    await waitFor('partitions at the gate', async () => (await client.progress(backfillId)).running > 0, 30_000);

    // Still running: its limits change with set-rate and set-concurrency, and nothing was sent.
    const running = (await refusal(client.resume(backfillId, { limits: { rate: 5, concurrency: 2 } }))) as BackfillError;
    expect(running.code).toBe('invalid_argument');
    expect(running.message).toContain(`backfill '${backfillId}' is still running, and nothing was changed`);
    expect(running.message).toContain(`backfill set-rate ${backfillId} 5 and backfill set-concurrency ${backfillId} 2, then send resume without them`);
    expect(await client.progress(backfillId)).toMatchObject({ state: 'running', rate: 10, concurrency: 3 });

    await client.cancel(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
    const ledger = (await worker.warehouse.ledger({ backfillId })).length;

    // Over the policy's cap: refused at the new run's admission, naming the rule and the way under it; nothing ran.
    const over = await runCli<{ error: { code: string; message: string } }>(['resume', backfillId, '--rate', '50', '--json']);
    expect(over.code).not.toBe(0);
    expect(over.json?.error.code).toBe('policy_violation');
    expect(over.json?.error.message).toContain(
      "caps.backfill.rate: the backfill's rate 50/s is above the policy's cap of 20/s: a resume goes on with the limits of the run it follows (a spec's limits do not replace them) unless it is given its own: backfill resume <this backfill's id> --rate 20 (or less)",
    );
    expect((await worker.warehouse.ledger({ backfillId })).length).toBe(ledger);

    // Within the caps: the new run goes on under them.
    gates.resume.open();
    const resumed = await client.resume(backfillId, { limits: { rate: 20, concurrency: 4 } });
    expect(resumed.resumed?.backfillId).toBe(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    expect(await client.progress(backfillId)).toMatchObject({ state: 'completed', done: 6, rate: 20, concurrency: 4 });
    const audited = await runCli<{ entries: Array<{ action: string; outcome: string; details: Record<string, unknown> }> }>(['audit', backfillId, '--json']);
    expect(audited.json?.entries.find((e) => e.action === 'resume' && e.outcome === 'applied')?.details).toMatchObject({ resumed: true, rate: 20, concurrency: 4 });
  }, 90_000);

  it('a plain resume after one the policy refused goes on with the limits of the last admitted run, not the refused ones', async () => {
    const { backfillId } = await client.start(testSpec(queue, spec('golimits_refused', { gate: 'refused' })), { taskQueue: queue, limits: { rate: 10, concurrency: 3 }, tuning: { reportIntervalMs: 100 } });
    await waitFor('partitions at the gate', async () => (await client.progress(backfillId)).running > 0, 30_000);
    await client.cancel(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');

    const over = await runCli<{ error: { code: string; message: string } }>(['resume', backfillId, '--rate', '100', '--json']);
    expect(over.code).not.toBe(0);
    expect(over.json?.error.code).toBe('policy_violation');
    expect(over.json?.error.message).toContain("the backfill's rate 100/s is above the policy's cap of 20/s");

    // Before, the new run's carry came from the refused run, which held rate 100: refused again.
    gates.refused.open();
    const plain = await runCli(['resume', backfillId]);
    expect(plain.stderr).toBe('');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain(`${backfillId} resumed in a new run; published partitions are skipped`);
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    expect(await client.progress(backfillId)).toMatchObject({ state: 'completed', done: 6, rate: 10, concurrency: 3 });
    expect((await client.audit(backfillId)).map((e) => [e.action, e.outcome])).toEqual([
      ['start', 'applied'],
      ['cancel', 'applied'],
      ['resume', 'refused'],
      ['resume', 'applied'],
    ]);
  }, 90_000);

  it('a plain retry-failed after one the policy refused retries the failures of the run before it', async () => {
    const { backfillId } = await client.start(testSpec(queue, spec('golimits_retry_again', { fails: 'again' })), { taskQueue: queue, limits: { rate: 10, concurrency: 3 }, tuning: { reportIntervalMs: 100 } });
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    failingAgain.clear();

    const over = await runCli<{ error: { code: string; message: string } }>(['retry-failed', backfillId, '--rate', '100', '--json']);
    expect(over.code).not.toBe(0);
    expect(over.json?.error.code).toBe('policy_violation');

    // Before, it looked at the refused run, which ran nothing: "0 failed partitions", and refused again for its rate.
    const plain = await runCli(['retry-failed', backfillId]);
    expect(plain.stderr).toBe('');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain(`${backfillId} resumed in a new run to retry 2 failed partitions`);
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    expect(await client.progress(backfillId)).toMatchObject({ state: 'completed', done: 6, failed: 0, rate: 10, concurrency: 3 });
  }, 90_000);

  it('a retry-failed with limits within the caps after one the policy refused counts and retries the failures of the run before it', async () => {
    const { backfillId } = await client.start(testSpec(queue, spec('golimits_retry_within', { fails: 'once more' })), { taskQueue: queue, limits: { rate: 10, concurrency: 3 }, tuning: { reportIntervalMs: 100 } });
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    failingOnceMore.clear();
    expect((await runCli(['retry-failed', backfillId, '--rate', '100'])).code).not.toBe(0);

    // Before, it counted the failures of the refused run, which had handed them over: "to retry 0 failed partitions".
    const within = await runCli(['retry-failed', backfillId, '--rate', '20']);
    expect(within.stderr).toBe('');
    expect(within.stdout).toContain(`${backfillId} resumed in a new run to retry 2 failed partitions\n  new run's limits: rate 20/s\n`);
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    expect(await client.progress(backfillId)).toMatchObject({ state: 'completed', done: 6, failed: 0, rate: 20, concurrency: 3 });
  }, 90_000);
});
