/**
 * An approval whose verification fails for good (patch approval-failure-waits): the workflow
 * workflow workers have a `verifySignature` activity that fails on every attempt (a
 * worker that cannot check signatures), so the activity fails for good after its retries. An
 * `approve` signal sent with Temporal's CLI is logged and recorded as refused, and an `approve`
 * update is refused naming the cause; the backfill still waits, and once the workers are whole
 * again a good approval releases it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { NativeConnection, Worker } from '@temporalio/worker';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import { installRuntime } from '../../client/local.ts';
import { signSubject } from '../../client/sign.ts';
import { createPolicyActivities } from '../../activities/policy.ts';
import { BackfillError } from '../../core/errors.ts';
import { policyTaskQueue } from '../../core/policy-pin.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { address, refusal, scratch, sshKeygen, startTestWorker, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const dir = scratch('approval-failure');
const key = (name: string) => join(dir, `${name}_ed25519`);
const principal = (name: string) => `${name}@example.com`;
const queue = uniqueQueue('approval-failure');
const policyFile = join(dir, 'backfill.policy.yaml');
let alice: BackfillClient;
let bob: BackfillClient;
let good: TestWorker | undefined;

beforeAll(async () => {
  const signers = [sshKeygen(key('alice'), principal('alice')), sshKeygen(key('bob'), principal('bob'))];
  writeFileSync(policyFile, ['version: 1', 'approval:', '  datasets: [protected_*]', '  allowedSigners:', ...signers.map((s) => `    - "${s}"`), ''].join('\n'));
  alice = await BackfillClient.connect({ settings: localConnection(address()), identity: principal('alice') });
  bob = await BackfillClient.connect({ settings: localConnection(address()), identity: principal('bob') });
});

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await good?.stop();
});

/** A workflow worker (the real workflows, the real policy) whose signature check fails, every time. */
async function workerThatCannotVerify(): Promise<{ stop(): Promise<void> }> {
  process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
  installRuntime();
  const connection = await NativeConnection.connect({ address: address() });
  const activities = {
    ...createPolicyActivities({ policyFile }),
    verifySignature: async () => {
      throw new Error('this worker cannot check signatures');
    },
  };
  // The workflows, and the governance activities on the policy queue (patch governance-activities-regular).
  const workers = [
    await Worker.create({ connection, taskQueue: queue, workflowBundle: { codePath: inject('workflowBundlePath') }, activities, enableNonLocalActivities: false }),
    await Worker.create({ connection, taskQueue: policyTaskQueue(queue), activities }),
  ];
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    stop: async () => {
      workers.forEach((w) => w.shutdown());
      await running;
      await connection.close();
    },
  };
}

describe('an approval the workers cannot verify', () => {
  it('is refused and recorded, by signal or update; the backfill still waits, and a good approval later releases it', async () => {
    const broken = await workerThatCannotVerify();
    let backfillId: string;
    let planHash: string;
    try {
      const spec = testSpec(queue, { name: 'approval-failure', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'protected_orders', transform: 'noop' }] });
      const started = await alice.start(spec, { taskQueue: queue, id: `approval-failure-${queue}`, reason: 'finance restated Q1' });
      backfillId = started.backfillId;
      expect(started.admission?.state).toBe('awaiting_approval');
      planHash = started.admission!.planHash!;
      const workflowId = backfillWorkflowId(backfillId);

      // A signed approval sent as a signal with Temporal's own CLI: fire-and-forget.
      const signed = await signSubject({ action: 'approve', backfillId, namespace: 'default', planHash, reason: 'reviewed with finance', signedAt: new Date().toISOString() }, { keyFile: key('bob') });
      const sent = await temporal(['workflow', 'signal', '--workflow-id', workflowId, '--name', 'approve', '--input', JSON.stringify(signed), '--input', JSON.stringify({ identity: principal('bob') })]);
      expect(sent.code, sent.stderr).toBe(0);
      // Its verification is retried a few times (a few seconds), then it is recorded as refused; or, without the fix, the backfill fails.
      const closed = async () => (await alice.client.workflow.getHandle(workflowId).describe()).status.name !== 'RUNNING';
      const approvals = async () => (await alice.audit(backfillId)).filter((e) => e.action === 'approve');
      await waitFor('the approve signal to be refused (or the backfill to end)', async () => (await closed()) || (await approvals()).length > 0, 30_000);
      expect(await closed()).toBe(false);
      expect((await alice.progress(backfillId)).state).toBe('awaiting_approval');

      // The same approval as an update: a refusal that names the cause.
      const refused = await refusal(bob.approve(backfillId, { reason: 'reviewed with finance', signKey: key('bob') }));
      expect(refused).toBeInstanceOf(BackfillError);
      expect((refused as BackfillError).code).toBe('approval_refused');
      expect(refused.message).toMatch(/^the approval is refused \(not_verified\): the workflow workers could not verify its signature \(the verifySignature activity failed: this worker cannot check signatures\)/);
      expect(refused.message).toMatch(/nothing was approved and the backfill still waits/);
      expect(await closed()).toBe(false);
      expect((await alice.progress(backfillId)).state).toBe('awaiting_approval');

      const audit = await approvals();
      expect(audit.map((e) => [e.outcome, e.identity, e.verified, e.details?.code])).toEqual([
        ['refused', principal('bob'), false, 'not_verified'],
        ['refused', principal('bob'), false, 'not_verified'],
      ]);
      expect(String(audit[0]!.details?.why)).toMatch(/verifySignature activity failed: this worker cannot check signatures/);
    } finally {
      await broken.stop();
    }

    // Whole workers again: a good approval releases the backfill, which completes.
    good = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), policyFile });
    const approved = await bob.approve(backfillId, { reason: 'reviewed with finance', signKey: key('bob') });
    expect(approved.approver).toBe(principal('bob'));
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    const outcomes = (await alice.audit(backfillId)).filter((e) => e.action === 'approve').map((e) => [e.outcome, e.details?.code ?? null]);
    expect(outcomes).toEqual([
      ['refused', 'not_verified'],
      ['refused', 'not_verified'],
      ['applied', null],
    ]);
  }, 90_000);
});
