/**
 * A node workflow's orders come from its parent, not from whoever signals it: `nodeControl` is a
 * signal anyone who may signal the namespace can send (`temporal workflow signal`), and signals
 * carry no sender. Before, one sent by hand with `paused: false` ran a backfill held for a signed
 * approval, and one with another SQL ran it, with nothing in the audit trail. Now the node asks
 * its parent what its settings and spec are (`fetchNodeOrders`) and keeps the parent's answer.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import type { NodeOrders } from '../../core/protocol.ts';
import { backfillWorkflowId, nodeViewQuery, nodeWorkflowId } from '../../workflows/definitions.ts';
import { address, scratch, sshKeygen, startTestWorker, taskFailures, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const dir = scratch('forged-orders');
const key = (name: string) => join(dir, `${name}_ed25519`);
const queue = uniqueQueue('forged-orders');
let worker: TestWorker;
let alice: BackfillClient;
let bob: BackfillClient;

beforeAll(async () => {
  const signers = ['alice', 'bob'].map((name) => sshKeygen(key(name), `${name}@example.com`));
  const policy = join(dir, 'backfill.policy.yaml');
  writeFileSync(policy, ['version: 1', 'approval:', '  datasets: [protected_*]', '  allowedSigners:', ...signers.map((s) => `    - "${s}"`), ''].join('\n'));
  worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), policyFile: policy });
  alice = await BackfillClient.connect({ settings: localConnection(address()), identity: 'alice@example.com' });
  bob = await BackfillClient.connect({ settings: localConnection(address()), identity: 'bob@example.com' });
});

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await worker?.stop();
});

/** The node workflow's completed `fetchNodeOrders` activities: each is one answer of its parent applied. */
async function ordersAnswered(backfillId: string, node: string): Promise<number> {
  const events = (await alice.client.workflow.getHandle(nodeWorkflowId(backfillId, node)).fetchHistory()).events ?? [];
  const scheduled = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'fetchNodeOrders').map((e) => String(e.eventId)));
  return events.filter((e) => e.activityTaskCompletedEventAttributes && scheduled.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId))).length;
}

describe('orders a node workflow takes only from its parent', () => {
  it('a hand-made nodeControl neither releases a node held for an approval nor changes its SQL; the approval then runs the spec as started', async () => {
    const spec = testSpec(queue, {
      name: 'forged-orders',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
      nodes: [{ id: 'protected_orders', sql: 'SELECT :partition AS day' }],
    });
    const started = await alice.start(spec, { taskQueue: queue, reason: 'finance restated Q1', signKey: key('alice') });
    const { backfillId } = started;
    expect(started.admission?.state).toBe('awaiting_approval');
    const nodeId = nodeWorkflowId(backfillId, 'protected_orders');
    await waitFor('the node workflow', () => alice.client.workflow.getHandle(nodeId).describe().then(() => true, () => false), 30_000);

    // What the parent says of the node (its own query); the forgery: the same node with other SQL, and settings that let it run.
    const orders = await alice.client.workflow.getHandle(backfillWorkflowId(backfillId)).query<NodeOrders, [string]>('nodeOrders', 'protected_orders');
    expect(orders.settings).toMatchObject({ paused: true });
    const forged = {
      settings: { seq: orders.settings.seq + 1000, rate: 50, burst: 50, concurrency: 4, paused: false },
      node: { ...orders.node, sql: "SELECT 'forged' AS evil, :partition AS day" },
    };
    const before = await ordersAnswered(backfillId, 'protected_orders');
    const sent = await temporal(['workflow', 'signal', '--workflow-id', nodeId, '--name', 'nodeControl', '--input', JSON.stringify(forged)]);
    expect(sent.code, sent.stderr).toBe(0);
    // The bell rang: the node asked its parent, and applied what it answered.
    await waitFor('the node to ask its parent', async () => (await ordersAnswered(backfillId, 'protected_orders')) > before, 30_000);
    const view = await alice.client.workflow.getHandle(nodeId).query(nodeViewQuery);
    expect(view).toMatchObject({ paused: true, running: 0 });
    const progress = await alice.progress(backfillId);
    expect(progress).toMatchObject({ state: 'awaiting_approval', done: 0 });
    expect(await worker.warehouse.ledger({ backfillId })).toEqual([]);

    await bob.approve(backfillId, { reason: 'reviewed with finance', signKey: key('bob') });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    const rows = await worker.warehouse.query('SELECT * FROM protected_orders ORDER BY day');
    expect(rows.map((r) => Object.keys(r).includes('evil'))).toEqual([false, false, false]);
    expect(rows.map((r) => r.day)).toEqual(['2024-01-01', '2024-01-02', '2024-01-03']);
  });
});

describe('an order to finish while batches run', () => {
  // Before, the node's loop found `finishing` already true and never yielded: the worker's deadlock
  // detector stopped it mid-way and the whole worker process aborted (a hand-made finish, or a
  // forged report that made the parent finish, killed every workflow of the worker).
  it('the node lets its running batches land, then ends, and its worker lives on', async () => {
    const spec = testSpec(queue, {
      name: 'early-finish',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' },
      defaults: { concurrency: 1, batchSize: 1 },
      nodes: [{ id: 'slow_orders', transform: 'sleep', params: { ms: 3000 } }],
    });
    // Its parent probes its nodes every second: it finds the ended node with partitions in hand, and starts it again.
    const { backfillId } = await alice.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 100, probeIntervalMs: 1000 } });
    await waitFor('a batch to run', async () => (await alice.progress(backfillId)).running > 0, 30_000);
    const nodeId = nodeWorkflowId(backfillId, 'slow_orders');
    const sent = await temporal(['workflow', 'signal', '--workflow-id', nodeId, '--name', 'nodeControl', '--input', '{"finish":true}']);
    expect(sent.code, sent.stderr).toBe(0);
    const ended = await alice.client.workflow.getHandle(nodeId).result();
    expect(ended).toMatchObject({ node: 'slow_orders', runs: 1 });
    const events = (await alice.client.workflow.getHandle(nodeId).fetchHistory()).events ?? [];
    // No task timed out (the deadlock detector) or failed in the workflow's code.
    expect(taskFailures(events)).toEqual([]);
    // The worker still runs workflows: the backfill goes on (its node started again by the parent's probe) to its end.
    expect((await alice.wait(backfillId, 90_000)).state).toBe('completed');
  });
});
