/**
 * A worker stopped while a backfill waits for an approval (its process lives on), and another
 * started on the same SQLite warehouse file, in the same process or in one of its own: the
 * stopped worker leaves no lock on the file, and the approved backfill runs to its end on the new
 * worker. The worker stops once nothing is in flight to it (`nothingInFlight`): stopped in the
 * instant the server hands it a task (here the lease, acquireDatasets), it drops the task, which
 * then waits, started and never finished, for its timeout (a minute then; its heartbeat timeout, 30 s,
 * now: dropped-warehouse-task.test.ts) before it runs again; that,
 * not the file, stalled approval-flood's cap test in two runs of five.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import { signSubject } from '../../client/sign.ts';
import { approveSignal, backfillWorkflowId } from '../../workflows/definitions.ts';
import { address, nothingInFlight, scratch, sshKeygen, startTestWorker, testSpec, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

const dir = scratch('worker-restart-sqlite');
const warehousePath = join(dir, 'warehouse.db');
const policyFile = join(dir, 'backfill.policy.yaml');
const bobKey = join(dir, 'bob_ed25519');
let alice: BackfillClient;

beforeAll(async () => {
  const bob = sshKeygen(bobKey, 'bob@example.com');
  writeFileSync(policyFile, ['version: 1', 'approval:', '  datasets: [protected_*]', '  allowedSigners:', `    - "${bob}"`, ''].join('\n'));
  alice = await BackfillClient.connect({ settings: localConnection(address()), identity: 'alice@example.com' });
});

afterAll(async () => {
  await alice?.close();
});

/** Whether another connection can write the file at once (no busy wait): nobody holds its write lock. */
function writableAtOnce(path: string): boolean {
  const db = new Database(path, { timeout: 0 });
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return true;
  } finally {
    db.close();
  }
}

/** A backfill of `node` waits for bob's approval; its worker stops; a worker comes back (`revive`); bob approves. */
async function stoppedAndRevived(name: string, node: string, revive: (queue: string) => Promise<{ stop(): Promise<void> }>): Promise<void> {
  const queue = uniqueQueue(name);
  const worker = await startTestWorker({ queue, warehousePath, policyFile });
  const spec = testSpec(queue, { name, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: node, transform: 'noop' }] });
  const { backfillId } = await alice.start(spec, { taskQueue: queue, id: `${name}-${queue}`, reason: 'finance restated Q1', admission: false });
  const handle = alice.client.workflow.getHandle(backfillWorkflowId(backfillId));
  let revived: { stop(): Promise<void> } | undefined;
  let stopped = false;
  try {
    // Until the worker's pollers reach the server, nobody judges the start.
    const admission = await waitFor('the start to be judged', () => alice.admission(backfillId, queue).then((a) => a ?? undefined), 30_000);
    expect(admission.state).toBe('awaiting_approval');
    const approval = await signSubject(
      { action: 'approve', backfillId, namespace: alice.namespace, planHash: admission.planHash!, reason: 'reviewed', signedAt: new Date().toISOString() },
      { keyFile: bobKey },
    );
    await waitFor('the backfill to hold no task of the worker (its datasets leased)', () => nothingInFlight(alice, handle.workflowId), 30_000);
    await worker.stop();
    stopped = true;
    expect(writableAtOnce(warehousePath)).toBe(true);

    revived = await revive(queue);
    await handle.signal(approveSignal, approval, { identity: 'bob@example.com' });
    const outcome = await alice.wait(backfillId, 30_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress).toMatchObject({ done: 2, failed: 0 });
  } finally {
    await handle.terminate('test over').catch(() => undefined);
    await revived?.stop();
    if (!stopped) await worker.stop();
  }
}

describe('a worker stopped and another started on the same SQLite warehouse file', () => {
  it('in the same process: the stopped one holds no lock, and the approved backfill leases its datasets and completes', async () => {
    await stoppedAndRevived('restart-in-process', 'protected_in_process', (queue) => startTestWorker({ queue, warehousePath, policyFile }));
  }, 120_000);

  it('in a process of its own: the approved backfill leases its datasets and completes', async () => {
    await stoppedAndRevived('restart-process', 'protected_process', async (queue) => {
      const revived = workerProcess({ address: address(), warehouse: warehousePath, queue, env: { BACKFILL_POLICY: policyFile } });
      await revived.start();
      return revived;
    });
  }, 120_000);
});
