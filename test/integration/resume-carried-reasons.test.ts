/**
 * A resume under `reasons.required: [cancel, set-rate, resume]` of a backfill whose node rate an
 * operator set (with reasons): before, the carried node rates were judged again as set-rates with
 * no reason, so every resume was refused ("set-rate needs a reason") whatever its own reason, and
 * the refused run made the backfill read `failed`. Now they meet the caps only, and a refused
 * resume leaves the backfill as it ended.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Transform } from '../../activities/transforms.ts';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { BackfillError } from '../../core/errors.ts';
import type { SpecInput } from '../../core/spec.ts';
import { Gate, connectClient, refusal, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('a resume of a cancelled backfill whose node rates were set, under required reasons', () => {
  let client: BackfillClient;
  let worker: TestWorker;
  const queue = uniqueQueue('carried-reasons');
  const gate = new Gate();
  const gated: Transform = async ({ signal }) => { await gate.pass(signal); };
  const spec: SpecInput = {
    name: 'carried-reasons',
    partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-01T04' },
    defaults: { concurrency: 2, batchSize: 1, heartbeatTimeout: '2s' },
    nodes: [{ id: 'raw', transform: 'gated' }],
  };
  beforeAll(async () => {
    const dir = scratch('carried-reasons');
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, 'version: 1\nreasons:\n  required: [cancel, set-rate, resume]\n  minLength: 5\n');
    client = await connectClient();
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transforms: { gated }, policyFile });
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('a resume with a reason goes on with the node rates set (with reasons) on the cancelled run; a refused one leaves it cancelled', async () => {
    const { backfillId } = await client.start(testSpec(queue, spec), { taskQueue: queue, id: `carried-reasons-${Date.now()}`, tuning: { reportIntervalMs: 100 } });
    await waitFor('running', async () => (await client.progress(backfillId)).running > 0, 30_000);
    await client.setRate(backfillId, 5, 'raw', { reason: 'slow the source down' });
    await client.setRate(backfillId, 4, 'raw', { reason: 'slower still please' });
    await client.cancel(backfillId, { reason: 'pausing for the night' });
    expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');

    // Refused for its own missing reason (resume is required): the backfill stays cancelled.
    const refused = (await refusal(client.resume(backfillId))) as BackfillError;
    expect(refused.code).toBe('policy_violation');
    expect(refused.message).toContain('resume needs a reason');
    expect(refused.message).not.toContain('set-rate needs a reason');
    const status = await runCli<{ state: string }>(['status', backfillId, '--json']);
    expect(status.json?.state).toBe('cancelled');
    expect((await client.progress(backfillId)).state).toBe('cancelled');
    const ctl = (await refusal(client.setRate(backfillId, 3, 'raw', { reason: 'while ended' }))) as BackfillError;
    expect(ctl.message).toContain('it ended cancelled');

    gate.open();
    const resumed = await client.resume(backfillId, { reason: 'going on after cancel' });
    expect(resumed.resumed?.backfillId).toBe(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    expect((await client.progress(backfillId)).nodes[0]).toMatchObject({ rate: 4 });
  }, 120_000);
});
