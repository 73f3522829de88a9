/**
 * Workers of one workflow task queue given different policies (one none at all): a new run of a
 * backfill that was admitted under a policy and ended (resume, retry-failed), its rollback and the
 * discard of what it staged are judged only by a worker with a policy. A worker without one
 * declines, retryably, naming the queue, the policy and the fix (the Web UI shows it on the
 * pending activity), and a worker with the policy takes it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WorkflowFailedError } from '@temporalio/client';
import { NonRetryableError } from '../../activities/errors.ts';
import type { Transform } from '../../activities/transforms.ts';
import { readPolicyFile } from '../../activities/policy.ts';
import type { BackfillError } from '../../core/errors.ts';
import { discardWorkflowId } from '../../core/staged.ts';
import { policyHolderPolls } from '../../client/pollers.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const transforms: Record<string, Transform> = {
  // One partition fails for good, so that the backfill ends completed_with_failures and can go on.
  flaky: async ({ partition }) => {
    if (partition === '2024-01-02') throw new NonRetryableError(`source data for ${partition} is corrupt`);
    return [{ day: partition }];
  },
  steady: ({ partition }) => [{ day: partition }],
};

const dir = scratch('policy-pin');
/** Each test's own queue and warehouse, and the workers it started (all stopped after it). */
let queue = '';
let warehousePath = '';
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

beforeEach(() => {
  queue = uniqueQueue('policy-pin');
  warehousePath = join(dir, `${queue}.db`);
});

afterEach(async () => {
  for (const worker of running.splice(0)) await worker.stop();
});

/** The policy hash the backfill's latest run was admitted under, once it has been (the memo the workflow writes). */
async function admittedUnder(client: Awaited<ReturnType<typeof connectClient>>, backfillId: string): Promise<string | null> {
  const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
  return await waitFor(
    'the new run to be admitted',
    async () => {
      const governance = (await handle.describe()).memo?.governance as { policy?: { hash?: string | null } | null; planHash?: string } | undefined;
      return governance?.planHash !== undefined ? { hash: governance.policy?.hash ?? null } : undefined;
    },
    120_000,
    250,
  ).then((admitted) => admitted.hash);
}

/**
 * A backfill `name` of one node (`transform`: 'flaky' fails one of its days for good, 'steady'
 * completes), run to its end by a worker given the policy `policyText` (which then still runs).
 */
async function endedUnderPolicy(client: Awaited<ReturnType<typeof connectClient>>, name: string, policyText: string, transform: 'flaky' | 'steady') {
  const policyFile = join(dir, `${name}.policy.yaml`);
  writeFileSync(policyFile, policyText);
  const { hash } = await readPolicyFile(policyFile);
  const end = transform === 'flaky' ? '2024-01-04' : '2024-01-03';
  const spec = testSpec(queue, { name, partitions: { grain: 'day', start: '2024-01-01', end }, nodes: [{ id: 'orders', transform, ...(transform === 'flaky' ? { retry: { maxAttempts: 1 } } : {}) }] });
  const governed = await start(policyFile);
  const { backfillId } = await client.start(spec, { id: `${name}-${queue}`, taskQueue: queue });
  expect((await client.wait(backfillId, 60_000)).state).toBe(transform === 'flaky' ? 'completed_with_failures' : 'completed');
  return { policyFile, hash, spec, backfillId, governed };
}

/** The message of the `PolicyMismatch` a worker without a policy declined a pending activity of `workflowId` with, once there is one. */
async function declined(client: Awaited<ReturnType<typeof connectClient>>, workflowId: string, what: string): Promise<string> {
  const handle = client.client.workflow.getHandle(workflowId);
  return await waitFor(`the worker without the policy to decline ${what}`, async () => {
    const d = await handle.describe();
    return d.raw.pendingActivities?.find((a) => a.lastFailure?.applicationFailureInfo?.type === 'PolicyMismatch')?.lastFailure?.message ?? undefined;
  });
}

describe('a first start where some workflow workers have a policy', () => {
  it('a start a worker without the policy takes is passed on, and judged by a worker with it', async () => {
    const client = await connectClient();
    try {
      const policyFile = join(dir, `first-${queue}.policy.yaml`);
      writeFileSync(policyFile, 'version: 1\nreasons:\n  required: [start]\n  minLength: 3\n');
      // A worker with the policy polls the queue's policy queue, marked as one; then it stops
      // (the server lists its poller a few minutes more): from now on a worker without it takes every start.
      const governed = await start(policyFile);
      await waitFor('the worker with the policy to poll the policy queue', async () => (await policyHolderPolls(client.connection, 'default', queue)) || undefined);
      await stop(governed);
      await start();

      const spec = testSpec(queue, { name: 'first', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'orders', transform: 'steady' }] });
      // The start says it waits, and why (it waited a minute without a word).
      const waits: Array<[string | undefined, string]> = [];
      const started = client.start(spec, { id: `first-${queue}`, taskQueue: queue, onAdmissionWait: (why, id) => waits.push([why, id]) }).then(
        () => null,
        (error: unknown) => error as BackfillError,
      );
      const message = await declined(client, backfillWorkflowId(`first-${queue}`), 'the start');
      expect(message).toContain(`workflow task queue '${queue}' has no policy`);
      await waitFor('the start to say it waits for the decision', async () => waits[0]);
      expect(waits).toHaveLength(1);
      expect(waits[0]![1]).toBe(`first-${queue}`);
      expect(message).toContain('but other workers of the queue have one');
      // Nothing ran meanwhile.
      expect((await client.client.workflow.getHandle(backfillWorkflowId(`first-${queue}`)).describe()).memo?.governance).toBeUndefined();

      // The worker with the policy comes back and judges: a start without a reason is refused.
      await start(policyFile);
      const refused = await started;
      expect(refused?.code).toBe('policy_violation');
      expect(refused?.message).toMatch(/reason/);
    } finally {
      await client.close();
    }
  }, 240_000);

  it('where no worker of the queue has a policy, a start is admitted as before', async () => {
    const client = await connectClient();
    try {
      await start();
      const spec = testSpec(queue, { name: 'ungoverned', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'orders', transform: 'steady' }] });
      const { backfillId } = await client.start(spec, { id: `ungoverned-${queue}`, taskQueue: queue });
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    } finally {
      await client.close();
    }
  }, 120_000);
});

describe('a policy pinned by the admission', () => {
  it('a resume that a worker without the policy takes waits, saying why, for a worker with it', async () => {
    const client = await connectClient();
    try {
      const { policyFile, hash, backfillId, governed } = await endedUnderPolicy(client, 'pinned', 'version: 1\ncaps:\n  backfill: { rate: 100 }\n', 'flaky');
      await stop(governed);

      // Only a worker without the policy polls the queue: it must not judge the new run.
      await start();
      const resumed = client.resume(backfillId);
      const message = await declined(client, backfillWorkflowId(backfillId), 'the judgement');
      expect(message).toContain(`workflow task queue '${queue}' has no policy`);
      expect(message).toContain(`was admitted under policy ${hash}`);
      expect(message).toContain('Give this worker the same --policy file');
      // backfill status says why it waits.
      expect((await client.status(backfillId)).judgement).toContain(`was admitted under policy ${hash}`);
      // Nothing was admitted meanwhile.
      expect((await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).describe()).memo?.governance).toBeUndefined();

      // A worker with the policy joins: it takes the judgement, and the new run is admitted under that policy.
      await start(policyFile);
      expect(await admittedUnder(client, backfillId)).toBe(hash);
      await resumed;
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    } finally {
      await client.close();
    }
  }, 240_000);

  it('a policy changed on purpose judges the resume of a backfill admitted under the old one', async () => {
    const client = await connectClient();
    try {
      const { policyFile, hash: before, spec, backfillId, governed } = await endedUnderPolicy(client, 'changed', 'version: 1\ncaps:\n  backfill: { rate: 100 }\n', 'flaky');
      await stop(governed);

      // Every worker of the queue gets the new file: the cap is lowered below the rate the backfill runs at.
      writeFileSync(policyFile, 'version: 1\ncaps:\n  backfill: { rate: 50 }\n');
      expect((await readPolicyFile(policyFile)).hash).not.toBe(before);
      await start(policyFile);
      // The new policy judges the new run (not a wait for a worker with the old one): its cap refuses the carried rate.
      const refused = await client.resume(backfillId).then(() => null, (error: unknown) => error as BackfillError);
      expect(refused?.message).toMatch(/the backfill's rate 100\/s is above the policy's cap of 50\/s/);
      // It names a way that works for a resume (its own --rate), not a start's flag.
      expect(refused?.message).not.toMatch(/start with --rate/);
      expect(refused?.message).toContain(`backfill resume <this backfill's id> --rate 50 (or less)`);
      // Status shows the ended run, which stands, and the refused one as a later run.
      const standing = await client.status(backfillId);
      expect(standing.refused).toMatch(/rate 100\/s is above the policy's cap of 50\/s/);
      expect(Date.parse(standing.refusedLater ?? '')).toBeGreaterThan(Date.now() - 120_000);
      // As it says, a spec's lower rate does not lower the carried one.
      await expect(client.resume(backfillId, { spec: { ...spec, rate: 40 } })).rejects.toThrow(/the backfill's rate 100\/s is above the policy's cap of 50\/s/);

      // Its advice followed: the backfill goes on, at the cap.
      await client.resume(backfillId, { limits: { rate: 50 } });
      expect(await admittedUnder(client, backfillId)).toBe((await readPolicyFile(policyFile)).hash);
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
      expect((await client.progress(backfillId)).rate).toBe(50);
    } finally {
      await client.close();
    }
  }, 240_000);

  it("a resume of an ended backfill meets the policy's rule for resume; refused, it hands on the pin and what was spent", async () => {
    const client = await connectClient();
    try {
      const policy = 'version: 1\nbudgets:\n  retries: { limit: 50, max: 100 }\nreasons:\n  required: [resume]\n  minLength: 3\n';
      const { policyFile, hash, backfillId, governed } = await endedUnderPolicy(client, 'reasons', policy, 'flaky');

      // reasons.required: [resume] binds a resume of a backfill that ended, as it binds one of a running backfill.
      const refused = await client.resume(backfillId).then(() => null, (error: unknown) => error as BackfillError);
      expect(refused?.code).toBe('policy_violation');
      expect(refused?.message).toMatch(/resume needs a reason/);

      // The refused run handed on the pin: with only a worker without the policy, the next resume waits for one with it.
      await stop(governed);
      await start();
      const resumed = client.resume(backfillId, { reason: 'source fixed' });
      await declined(client, backfillWorkflowId(backfillId), 'the judgement');
      await start(policyFile);
      expect(await admittedUnder(client, backfillId)).toBe(hash);
      await resumed;
      // And what was spent: the failed attempt of the first run still counts.
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
      const progress = await client.progress(backfillId);
      expect(progress.governance?.budgets.retries?.used).toBe(2);
    } finally {
      await client.close();
    }
  }, 240_000);

  it('the discard of what a cancelled staged backfill left waits for a worker with the policy', async () => {
    const client = await connectClient();
    try {
      const policyFile = join(dir, 'discarded.policy.yaml');
      writeFileSync(policyFile, 'version: 1\nreasons:\n  required: [discard]\n  minLength: 3\n');
      const { hash } = await readPolicyFile(policyFile);
      const governed = await start(policyFile);
      const spec = testSpec(queue, { name: 'discarded', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'orders', transform: 'steady' }] });
      const { backfillId } = await client.start(spec, { id: `discarded-${queue}`, taskQueue: queue, stage: true });
      await waitFor('its partitions to be staged', async () => (await client.progress(backfillId)).state === 'staged', 60_000, 200);
      await client.cancel(backfillId);
      expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
      await stop(governed);

      // A worker without the policy would drop the staged versions without the reason the policy asks for: it declines.
      const bare = await start();
      const discard = client.decideStaged(backfillId, 'discard').then(() => null, (error: unknown) => error as BackfillError);
      const message = await declined(client, discardWorkflowId(backfillId), 'the discard');
      expect(message).toContain(`was admitted under policy ${hash}`);
      expect(new Set((await bare.warehouse.ledger({ backfillId })).map((r) => r.status))).toEqual(new Set(['staged']));

      // The worker with the policy judges it: no reason, so the policy refuses the discard, and the versions stay staged.
      await start(policyFile);
      expect(await discard).toMatchObject({ code: 'policy_violation', message: expect.stringMatching(/discard needs a reason/) });
      expect(new Set((await bare.warehouse.ledger({ backfillId })).map((r) => r.status))).toEqual(new Set(['staged']));
    } finally {
      await client.close();
    }
  }, 240_000);

  it('a rollback of a backfill admitted under a policy waits for a worker with it', async () => {
    const client = await connectClient();
    try {
      const { policyFile, hash, backfillId, governed } = await endedUnderPolicy(client, 'rolled', 'version: 1\nreasons:\n  required: [rollback]\n  minLength: 3\n', 'steady');
      await stop(governed);

      // A worker without the policy would run it without the reason the policy asks for: it declines.
      await start();
      const { workflowId } = await client.startRollback(backfillId);
      const handle = client.client.workflow.getHandle(workflowId);
      const message = await declined(client, workflowId, 'the rollback');
      expect(message).toContain(`was admitted under policy ${hash}`);

      // The worker with the policy judges it: no reason, so the policy refuses the rollback.
      await start(policyFile);
      const failure = await handle.result().then(() => null, (error: unknown) => error as WorkflowFailedError);
      expect(failure?.cause?.message).toMatch(/rollback needs a reason/);
    } finally {
      await client.close();
    }
  }, 240_000);
});
