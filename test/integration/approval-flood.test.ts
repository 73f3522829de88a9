/**
 * A flood of bad approvals sent as signals (patch approval-floods-bounded), on a real server:
 * anyone who can signal the workflow sends a hundred well-formed approvals that are refused (a
 * text changed after it was signed, a key the policy does not list, the starter's own), four
 * distinct ones and copies of them. Each distinct one costs one `verifySignature` activity, the
 * copies none; they are recorded on the refused signals' schedule (the first ten, then a few);
 * a valid approval after them lets the backfill run to its end. One that comes while five wait to
 * be verified is refused unchecked and recorded (patch approval-cap-audited).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import { signSubject } from '../../client/sign.ts';
import { approveSignal, backfillWorkflowId } from '../../workflows/definitions.ts';
import { address, nothingInFlight, scratch, sshKeygen, startTestWorker, testSpec, uniqueQueue, waitFor, workerProcess, type TestWorker } from './helpers.ts';

const dir = scratch('approval-flood');
const key = (name: string) => join(dir, `${name}_ed25519`);
const principal = (name: string) => `${name}@example.com`;
const queue = uniqueQueue('approval-flood');
const policyFile = join(dir, 'backfill.policy.yaml');
let alice: BackfillClient;
let worker: TestWorker;

beforeAll(async () => {
  const signers = [sshKeygen(key('alice'), principal('alice')), sshKeygen(key('bob'), principal('bob'))];
  sshKeygen(key('mallory'), principal('mallory'));
  writeFileSync(policyFile, ['version: 1', 'approval:', '  datasets: [protected_*]', '  allowedSigners:', ...signers.map((s) => `    - "${s}"`), ''].join('\n'));
  worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), policyFile });
  alice = await BackfillClient.connect({ settings: localConnection(address()), identity: principal('alice') });
});

afterAll(async () => {
  await alice?.close();
  await worker?.stop();
});

/** How many `verifySignature` activities a history ran (patch governance-activities-regular; local ones before, whose markers name the activity). */
function verifications(events: ReadonlyArray<{ activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null; markerRecordedEventAttributes?: { markerName?: string | null; details?: Record<string, { payloads?: Array<{ data?: Uint8Array | null }> | null }> | null } | null }>): number {
  const decoder = new TextDecoder();
  return events.filter((e) => {
    if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'verifySignature') return true;
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName !== 'core_local_activity') return false;
    return Object.values(marker.details ?? {}).some((d) => (d.payloads ?? []).some((p) => decoder.decode(p.data ?? new Uint8Array()).includes('"verifySignature"')));
  }).length;
}

/** A backfill named `name` waiting for an approval, and what the tests send it and read of it. */
async function awaitingApproval(name: string) {
  const spec = testSpec(queue, { name, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'protected_orders', transform: 'noop' }] });
  const started = await alice.start(spec, { taskQueue: queue, id: `${name}-${queue}`, reason: 'finance restated Q1' });
  const { backfillId } = started;
  expect(started.admission?.state).toBe('awaiting_approval');
  const planHash = started.admission!.planHash!;
  const handle = alice.client.workflow.getHandle(backfillWorkflowId(backfillId));
  const sign = (who: string, reason: string) => signSubject({ action: 'approve', backfillId, namespace: 'default', planHash, reason, signedAt: new Date().toISOString() }, { keyFile: key(who) });
  /** Bob's approval with its text changed after he signed it: a bad signature. */
  const tampered = async (reason: string) => {
    const signed = await sign('bob', reason);
    return { text: signed.text.replace(reason, 'nobody reviewed it'), signature: signed.signature };
  };
  const refused = async () => (await alice.audit(backfillId)).filter((e) => e.action === 'approve' && e.outcome === 'refused');
  return { backfillId, handle, sign, tampered, refused };
}

describe('a flood of bad approvals sent as signals', () => {
  it('costs one verification per distinct approval, is audited on the refused signals\' schedule, and a valid approval then lets the backfill run', async () => {
    const { backfillId, handle, sign, tampered, refused } = await awaitingApproval('approval-flood');
    const bad = [await tampered('reviewed with finance'), await tampered('reviewed twice'), await sign('mallory', 'let me in'), await sign('alice', 'my own')];

    for (const approval of bad) await handle.signal(approveSignal, approval, { identity: principal('mallory') });
    await waitFor('the four distinct bad approvals to be refused', async () => (await refused()).length === bad.length, 20_000);
    // 96 copies of them: refused at once, none checked again.
    for (let i = bad.length; i < 100; i++) await handle.signal(approveSignal, bad[i % bad.length]!, { identity: principal('mallory') });
    const good = await sign('bob', 'reviewed with finance');
    await handle.signal(approveSignal, good, { identity: principal('bob') });
    expect((await alice.wait(backfillId, 30_000)).state).toBe('completed');

    const entries = await refused();
    expect(entries.map((e) => e.details.refusedSignal)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 18, 26, 42, 74]);
    expect(entries.slice(0, 4).map((e) => e.details.code)).toEqual(['bad_signature', 'bad_signature', 'unknown_signer', 'self_approval']);
    expect(entries.slice(4).every((e) => e.details.repeated === true && e.details.signal === 'approve')).toBe(true);
    expect(entries.at(-1)!.details.unrecorded).toBe(74 - entries.length);
    const approvals = (await alice.audit(backfillId)).filter((e) => e.action === 'approve' && e.outcome === 'applied');
    expect(approvals.map((e) => [e.identity, e.verified])).toEqual([[principal('bob'), true]]);

    const history = await handle.fetchHistory();
    expect(verifications(history.events ?? [])).toBe(bad.length + 1);
  }, 60_000);

  it('copies sent together wait for the check of the first and are refused without one of their own', async () => {
    const { backfillId, handle, sign, refused } = await awaitingApproval('approval-flood-together');
    const [mine, mallory] = [await sign('alice', 'my own'), await sign('mallory', 'let me in')];
    // No wait between them: the workflow receives them together, or while the first is checked.
    await Promise.all([mine, mallory, mallory, mallory].map((approval) => handle.signal(approveSignal, approval, { identity: principal('mallory') })));
    await waitFor('the four bad approvals to be refused', async () => (await refused()).length === 4, 20_000);
    const entries = await refused();
    expect(entries.filter((e) => e.details.repeated === true).map((e) => e.details.code)).toEqual(['unknown_signer', 'unknown_signer']);
    expect(verifications((await handle.fetchHistory()).events ?? [])).toBe(2);
    await alice.cancel(backfillId, { reason: 'test over' });
    expect((await alice.wait(backfillId, 30_000)).state).toBe('cancelled');
  }, 60_000);

  it('an approval signalled while five wait to be verified is refused unchecked and recorded, a valid one too, not dropped (patch approval-cap-audited)', async () => {
    const { backfillId, handle, sign, tampered, refused } = await awaitingApproval('approval-flood-cap');
    const bad = await Promise.all(['one', 'two', 'three', 'four', 'five'].map((n) => tampered(`reviewed ${n}`)));
    const good = await sign('bob', 'reviewed with finance');
    // Sent while no worker runs: the next workflow task delivers them together, in order, so the
    // five bad ones wait to be verified (the first being checked) when the valid one comes. The
    // worker stops once it holds nothing of the backfill (its datasets leased): a task handed to it
    // as it stops is lost until its timeout (the lease's, a minute), and the backfill waits as long.
    await waitFor('the backfill to hold no task of the worker', () => nothingInFlight(alice, handle.workflowId), 30_000);
    await worker.stop();
    const revived = workerProcess({ address: address(), warehouse: join(dir, 'warehouse.db'), queue, env: { BACKFILL_POLICY: policyFile } });
    try {
      for (const approval of bad) await handle.signal(approveSignal, approval, { identity: principal('mallory') });
      await handle.signal(approveSignal, good, { identity: principal('bob') });
      await revived.start();

      await waitFor('the five bad approvals and the one at the cap to be refused', async () => (await refused()).length === bad.length + 1, 30_000);
      const entries = await refused();
      const atCap = entries.filter((e) => e.details.code === 'approval_refused');
      expect(atCap).toHaveLength(1);
      expect(atCap[0]!).toMatchObject({ identity: principal('bob'), details: { signal: 'approve' } });
      expect(JSON.stringify(atCap[0]!)).toMatch(/5 approvals wait to be verified already, so this one was not checked/);
      expect(entries.filter((e) => e.details.code === 'bad_signature')).toHaveLength(bad.length);
      expect((await alice.status(backfillId)).state).toBe('awaiting_approval');
      // Told it was not checked, bob sends it again: it is, and the backfill runs to its end.
      await handle.signal(approveSignal, good, { identity: principal('bob') });
      expect((await alice.wait(backfillId, 30_000)).state).toBe('completed');
      const applied = (await alice.audit(backfillId)).filter((e) => e.action === 'approve' && e.outcome === 'applied');
      expect(applied.map((e) => [e.identity, e.verified])).toEqual([[principal('bob'), true]]);
      expect(verifications((await handle.fetchHistory()).events ?? [])).toBe(bad.length + 1);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
      await revived.stop();
      worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), policyFile });
    }
  }, 120_000);
});
