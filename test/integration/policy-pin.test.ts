/**
 * Workers of one workflow task queue given different policies (one none at all): a new run of a
 * backfill that ended (resume, retry-failed) is judged only by a worker with the policy its last
 * run was admitted under. A worker without it declines, retryably, naming the queue, both policies
 * and the fix (the Web UI shows it on the pending activity), and a worker with the policy takes it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NonRetryableError } from '../../activities/errors.ts';
import type { Transform } from '../../activities/transforms.ts';
import { readPolicyFile } from '../../activities/policy.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const transforms: Record<string, Transform> = {
  // One partition fails for good, so that the backfill ends completed_with_failures and can go on.
  flaky: async ({ partition }) => {
    if (partition === '2024-01-02') throw new NonRetryableError(`source data for ${partition} is corrupt`);
    return [{ day: partition }];
  },
};

const dir = scratch('policy-pin');
const queue = uniqueQueue('policy-pin');
const warehousePath = join(dir, 'warehouse.db');
const running: TestWorker[] = [];
const start = async (policyFile?: string) => {
  const worker = await startTestWorker({ queue, warehousePath, transforms, ...(policyFile !== undefined ? { policyFile } : {}) });
  running.push(worker);
  return worker;
};
const stop = async (worker: TestWorker) => {
  running.splice(running.indexOf(worker), 1);
  await worker.stop();
};

afterAll(async () => {
  for (const worker of [...running]) await worker.stop();
});

describe('a policy pinned by the admission', () => {
  it('a resume that a worker without the policy takes waits, saying why, for a worker with it', async () => {
    const policyFile = join(dir, 'backfill.policy.yaml');
    writeFileSync(policyFile, 'version: 1\ncaps:\n  backfill: { rate: 100 }\n');
    const { hash } = await readPolicyFile(policyFile);
    const client = await connectClient();
    try {
      const spec = testSpec(queue, { name: 'pinned', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' }, nodes: [{ id: 'orders', transform: 'flaky', retry: { maxAttempts: 1 } }] });
      const governed = await start(policyFile);
      const { backfillId } = await client.start(spec, { id: `pinned-${queue}`, taskQueue: queue });
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
      await stop(governed);

      // Only a worker without the policy polls the queue: it must not judge the new run.
      await start();
      const resumed = client.resume(backfillId);
      const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
      const declined = await waitFor('the worker without the policy to decline the judgement', async () => {
        const d = await handle.describe();
        return d.raw.pendingActivities?.find((a) => a.lastFailure?.applicationFailureInfo?.type === 'PolicyMismatch')?.lastFailure?.message ?? undefined;
      });
      expect(declined).toContain(`workflow task queue '${queue}' has no policy`);
      expect(declined).toContain(`was admitted under policy ${hash}`);
      expect(declined).toContain('Give this worker the same --policy file');
      // Nothing was admitted meanwhile.
      expect((await handle.describe()).memo?.governance).toBeUndefined();

      // A worker with the policy joins: it takes the judgement, and the new run is admitted under that policy.
      await start(policyFile);
      const outcome = await resumed;
      expect(outcome.resumed?.admission?.policy?.hash).toBe(hash);
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    } finally {
      await client.close();
    }
  }, 240_000);
});
