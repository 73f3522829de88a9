/**
 * Fault drills on real processes: kill -9 the worker at random moments, stop and restart
 * the Temporal server, crash and hang a transform, and hand state over through
 * continue-as-new while control signals keep arriving.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillClient } from '../../client/backfill-client.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { ResolvedSpec } from '../../core/spec.ts';
import { RangeSet } from '../../core/ranges.ts';
import { expandPlan } from '../../core/plan.ts';
import { startDevServer, freePort } from '../../host/dev-server.ts';
import {
  backfillWorkflowId,
  partitionsQuery,
  pauseSignal,
  resumeSignal,
  setConcurrencySignal,
  setRateSignal,
} from '../../workflows/definitions.ts';
import { Gate, ROOT, address, connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

const SHOP_TRANSFORMS = join(ROOT, 'examples/shop/transforms.ts');

/** The example's first three datasets over `days` days, paced so that a run takes a while (null: unpaced). */
function shopSpec(queue: string, days: number, rate: number | null): ResolvedSpec {
  const example = readFileSync(join(ROOT, 'examples/shop/backfill.yaml'), 'utf8');
  const sql = (node: string) => new RegExp(`- id: ${node}[\\s\\S]*?sql: \\|\\n([\\s\\S]*?)\\n    checks:`).exec(example)![1]!;
  const end = new Date(Date.UTC(2024, 0, 1 + days)).toISOString().slice(0, 10);
  return testSpec(queue, {
    name: 'shop-drill',
    partitions: { grain: 'day', start: '2024-01-01', end },
    defaults: { concurrency: 4, rate, heartbeatTimeout: '2s', retry: { initialInterval: '200ms', maximumInterval: '1s' } },
    nodes: [
      { id: 'orders_raw', transform: 'generate_orders', params: { ordersPerDay: 50 } },
      { id: 'orders_clean', dependsOn: ['orders_raw'], sql: sql('orders_clean') },
      { id: 'daily_revenue', dependsOn: ['orders_clean'], sql: sql('daily_revenue') },
    ],
  });
}

async function checksums(warehouse: SqliteWarehouse, backfillId: string): Promise<Map<string, string | null>> {
  return new Map((await warehouse.ledger({ backfillId })).map((r) => [`${r.node}/${r.partition}`, r.checksum]));
}

/** A worker process that allows fault injection (crashes, hangs), on its own queue and SQLite warehouse. */
function faultInjectionWorker(name: string) {
  const queue = uniqueQueue(name);
  const warehousePath = join(scratch(name), 'warehouse.db');
  return { queue, worker: workerProcess({ address: address(), queue, warehouse: warehousePath, allowFaultInjection: true }), warehouse: new SqliteWarehouse(warehousePath) };
}

describe('durability', () => {
  let client: BackfillClient;
  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
  });

  it('kill -9 of the worker at random moments: the backfill completes, nothing that completed runs again, checksums match a clean run', async () => {
    const queue = uniqueQueue('kill');
    const dir = scratch('kill');
    const warehousePath = join(dir, 'warehouse.db');
    const worker = workerProcess({ address: address(), queue, warehouse: warehousePath, transforms: [SHOP_TRANSFORMS] });
    const warehouse = new SqliteWarehouse(warehousePath);
    try {
      await worker.start();
      const spec = shopSpec(queue, 90, 15);
      const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 300 } });
      const parent = client.client.workflow.getHandle(backfillWorkflowId(backfillId));

      // What the backfill had recorded as done just before each kill.
      const doneBeforeKills = new Map<string, RangeSet>();
      const delays: number[] = [];
      for (let kill = 0; kill < 3; kill++) {
        const wait = 1000 + Math.floor(Math.random() * 2500);
        delays.push(wait);
        await delay(wait);
        // A worker started again a moment ago may not poll yet: the server then refuses queries at once ("no poller seen").
        const sets = await waitFor('the restarted worker to answer a query', () => parent.query(partitionsQuery), 60_000, 200);
        for (const [node, { done }] of Object.entries(sets)) {
          doneBeforeKills.set(node, (doneBeforeKills.get(node) ?? new RangeSet()).addAll(RangeSet.fromJSON(done)));
        }
        await worker.kill();
        await delay(300);
        await worker.start();
      }
      const outcome = await client.wait(backfillId, 240_000);
      expect(outcome.state, `kills after ${delays.join(', ')} ms`).toBe('completed');
      const plan = expandPlan(spec);
      expect(outcome.progress!.done).toBe(plan.totalPartitions);

      const rows = await warehouse.ledger({ backfillId });
      expect(new Set(rows.map((r) => `${r.node}/${r.partition}`)).size).toBe(plan.totalPartitions);
      const executions = new Map(rows.map((r) => [`${r.node}/${r.partition}`, r.executions]));
      let protectedPartitions = 0;
      for (const [node, done] of doneBeforeKills) {
        for (const index of done) {
          const key = `${node}/${plan.byId.get(node)!.partitions.key(index)}`;
          expect(executions.get(key), `${key} completed before a kill and ran again`).toBe(1);
          protectedPartitions++;
        }
      }
      expect(protectedPartitions).toBeGreaterThan(0);

      // The same backfill, undisturbed (and unpaced: the pace only gave the kills time), writes the same data.
      const clean = await client.start(shopSpec(queue, 90, null), { taskQueue: queue });
      expect((await client.wait(clean.backfillId, 240_000)).state).toBe('completed');
      expect(await checksums(warehouse, backfillId)).toEqual(await checksums(warehouse, clean.backfillId));
    } finally {
      await worker.stop();
      await warehouse.close();
    }
  });

  it('the Temporal server stops and restarts on its SQLite file mid-backfill: it resumes and completes with the same result', async () => {
    const dir = scratch('server-restart');
    const dbFile = join(dir, 'temporal.db');
    const port = await freePort();
    let server = await startDevServer({ dbFile, port, uiPort: null, logFile: join(dir, 'temporal.log') });
    const queue = uniqueQueue('restart');
    const warehousePath = join(dir, 'warehouse.db');
    const worker = workerProcess({ address: server.address, queue, warehouse: warehousePath, transforms: [SHOP_TRANSFORMS] });
    const warehouse = new SqliteWarehouse(warehousePath);
    let own: BackfillClient | undefined;
    try {
      await worker.start();
      own = await BackfillClient.connect({ address: server.address });
      // At 6 partitions a second a node takes 10 s at least: the server stops well before the end
      // (at 15, 20 done left some 3 s, and a loaded machine could finish before the stop).
      const spec = shopSpec(queue, 60, 6);
      const { backfillId } = await own.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 300 } });
      await waitFor('some partitions done', async () => (await warehouse.ledger({ backfillId })).length >= 20);
      await server.stop();
      const before = (await warehouse.ledger({ backfillId })).length;
      await delay(1000);
      server = await startDevServer({ dbFile, port, uiPort: null, logFile: join(dir, 'temporal.log') });
      // A supervisor would restart a worker that gave up while the server was away.
      if (!worker.running) await worker.start();
      const progress = await waitFor(
        'the backfill to complete after the restart',
        async () => {
          const p = await own!.progress(backfillId);
          return p.state === 'completed' ? p : undefined;
        },
        240_000,
        500,
      );
      expect(progress.done).toBe(expandPlan(spec).totalPartitions);
      expect(before).toBeLessThan(progress.done);

      // Unpaced: the pace only gave the restart time.
      const clean = await own.start(shopSpec(queue, 60, null), { taskQueue: queue });
      expect((await own.wait(clean.backfillId, 240_000)).state).toBe('completed');
      expect(await checksums(warehouse, backfillId)).toEqual(await checksums(warehouse, clean.backfillId));
    } finally {
      await own?.close();
      await worker.stop();
      await server.stop();
      await warehouse.close();
    }
  });

  it('a transform that crashes the worker or hangs is brought back by heartbeat and start-to-close timeouts', async () => {
    const { queue, worker, warehouse } = faultInjectionWorker('crash');
    try {
      await worker.start();
      const spec = testSpec(queue, {
        name: 'crash',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-21' },
        // One partition per activity: a batch's time limit is `timeout` times its partitions,
        // and the bound below is for one.
        defaults: { concurrency: 2, heartbeatTimeout: '2s', timeout: '3s', retry: { initialInterval: '200ms' }, batchSize: 1 },
        nodes: [
          { id: 'crashy', transform: 'sleep', params: { ms: 50, crashKeys: ['2024-01-05'] } },
          { id: 'hangy', transform: 'sleep', params: { ms: 50, hangKeys: ['2024-01-07'] } },
        ],
      });
      const startedAt = Date.now();
      const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 300 } });
      // The crash takes the worker down; a supervisor restarts it.
      await waitFor('the crash', () => !worker.running, 60_000, 50);
      const crashedAt = Date.now();
      await worker.start();
      const outcome = await client.wait(backfillId, 120_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress!.done).toBe(40);

      const rows = await warehouse.ledger({ backfillId });
      const crashed = rows.find((r) => r.node === 'crashy' && r.partition === '2024-01-05')!;
      const hung = rows.find((r) => r.node === 'hangy' && r.partition === '2024-01-07')!;
      // Both came back on a later attempt, within a bounded time: the heartbeat timeout (2 s) for
      // the crash, the start-to-close timeout (3 s) for the hang, plus retry backoff and a restart.
      // The bounds leave room for a machine running other test files at once (a load of 15 on 2
      // cores took longer than 20 s); without the timeouts neither would come back at all.
      expect(crashed.attempt).toBeGreaterThan(1);
      expect(hung.attempt).toBeGreaterThanOrEqual(2);
      expect(Date.parse(crashed.finishedAt) - crashedAt).toBeLessThan(45_000);
      expect(Date.parse(hung.finishedAt) - startedAt).toBeLessThan(60_000);
    } finally {
      await worker.stop();
      await warehouse.close();
    }
  });

  it('in a batch, a partition that hangs is timed out by its own timeout, not the batch\'s', async () => {
    const { queue, worker, warehouse } = faultInjectionWorker('hang-batch');
    try {
      await worker.start();
      const spec = testSpec(queue, {
        name: 'hang-batch',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-31' },
        // One batch of 30: the activity's limit is 30 × 3 s = 90 s, the partition's 3 s.
        defaults: { concurrency: 1, heartbeatTimeout: '2s', timeout: '3s', retry: { initialInterval: '200ms' }, batchSize: 30 },
        nodes: [{ id: 'hangy', transform: 'sleep', params: { ms: 10, hangKeys: ['2024-01-03'] } }],
      });
      const startedAt = Date.now();
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      const outcome = await client.wait(backfillId, 80_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress!.done).toBe(30);
      const rows = await warehouse.ledger({ backfillId });
      const hung = rows.find((r) => r.partition === '2024-01-03')!;
      expect(hung.attempt).toBe(2);
      // Well inside the batch's 90 s: its own 3 s, the retry's backoff and the rest of the batch.
      expect(Date.parse(hung.finishedAt) - startedAt).toBeLessThan(45_000);
      // The partitions the hung attempt had finished were not run again.
      expect(rows.filter((r) => r.partition < '2024-01-03').every((r) => r.attempt === 1 && r.executions === 1)).toBe(true);
    } finally {
      await worker.stop();
      await warehouse.close();
    }
  });

  it('continue-as-new hands over the state while control signals keep arriving; none is lost', async () => {
    const queue = uniqueQueue('handover');
    const worker = await startTestWorker({ queue, warehousePath: join(scratch('handover'), 'warehouse.db') });
    try {
      const spec = testSpec(queue, {
        name: 'handover',
        partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-11' },
        // One partition per activity: the many events that make each run continue as new.
        defaults: { concurrency: 8, rate: 60, batchSize: 1 },
        nodes: [
          // Slower than the signals below (240 partitions: 12 s at least), so that `a` is still running when its last setRate comes.
          { id: 'a', transform: 'noop', rate: 20 },
          { id: 'b', transform: 'noop', dependsOn: ['a'] },
          { id: 'c', transform: 'noop', partitions: { grain: 'day' }, dependsOn: ['b'] },
        ],
      });
      // A tiny history limit: every workflow continues as new every few dozen events.
      const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { historyLimit: 200, reportIntervalMs: 200 } });
      const parent = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
      for (let i = 0; i < 30; i++) {
        if (i % 3 === 0) await parent.signal(pauseSignal);
        else if (i % 3 === 1) await parent.signal(resumeSignal);
        else await parent.signal(setRateSignal, 10 + i, 'b');
        await delay(60);
      }
      await parent.signal(pauseSignal);
      await waitFor('the pause to apply', async () => (await client.progress(backfillId)).paused, 30_000, 100);
      const aDone = (await client.progress(backfillId)).nodes.find((n) => n.id === 'a')!.done;
      expect(aDone, "node a finished before its last setRate: the test's premise").toBeLessThan(240);
      await parent.signal(setRateSignal, 77, 'a');
      await parent.signal(setConcurrencySignal, 5, 'b');
      await parent.signal(resumeSignal);

      const outcome = await client.wait(backfillId, 180_000);
      expect(outcome.state).toBe('completed');
      const progress = outcome.progress!;
      expect(progress).toMatchObject({ done: 490, paused: false });
      const nodes = Object.fromEntries(progress.nodes.map((n) => [n.id, n]));
      expect(nodes.a).toMatchObject({ rate: 77 });
      // The last setRate for b was at i = 29.
      expect(nodes.b).toMatchObject({ rate: 39, concurrency: 5 });

      const runs = new Map<string, number>();
      const continued: Array<{ workflowId: string; runId: string }> = [];
      for await (const execution of client.client.workflow.list({ query: `BackfillId = "${backfillId}"` })) {
        runs.set(execution.workflowId, (runs.get(execution.workflowId) ?? 0) + 1);
        if (execution.status.name === 'CONTINUED_AS_NEW' && execution.type === 'nodeWorkflow') continued.push(execution);
      }
      expect(runs.get(`backfill/${backfillId}`)).toBeGreaterThanOrEqual(2);
      expect(runs.get(`backfill/${backfillId}/a`)).toBeGreaterThan(2);
      expect(runs.get(`backfill/${backfillId}/b`)).toBeGreaterThan(2);
      // No node run continues as new with a report still leaving: the server drops a signal
      // initiated in the closing workflow task, and the parent would never count its news.
      for (const { workflowId, runId } of continued) {
        const events = (await client.client.workflow.getHandle(workflowId, runId).fetchHistory()).events!;
        const beforeLast = events[events.length - 2]!;
        expect(beforeLast.signalExternalWorkflowExecutionInitiatedEventAttributes, `${workflowId} ${runId}`).toBeFalsy();
      }
    } finally {
      await worker.stop();
    }
  });
  it('a busy node lets its batches land before it continues as new: the server does not refuse the hand-over and make the worker replay the run', async () => {
    const queue = uniqueQueue('drain');
    const worker = await startTestWorker({ queue, warehousePath: join(scratch('drain'), 'warehouse.db') });
    try {
      // Fast partitions, many in flight: completions arrive all the time.
      const spec = testSpec(queue, {
        name: 'drain',
        partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-26' },
        defaults: { concurrency: 20, batchSize: 1 },
        nodes: [{ id: 'a', transform: 'noop' }],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { historyLimit: 300 } });
      const outcome = await client.wait(backfillId, 180_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress).toMatchObject({ done: 600 });
      const nodeRuns: Array<{ workflowId: string; runId: string }> = [];
      for await (const execution of client.client.workflow.list({ query: `BackfillId = "${backfillId}" AND WorkflowType = "nodeWorkflow"` })) nodeRuns.push(execution);
      expect(nodeRuns.length).toBeGreaterThanOrEqual(4);
      // A continue-as-new whose workflow task saw a new event fails as UnhandledCommand, and the
      // worker replays the whole run. Carrying 20 busy batches did that 3-4 times a run; after
      // letting them land, only a timer that fires in that very task could: a race that is rare
      // on a quiet machine and less rare on a loaded one, but never once in every run.
      let refused = 0;
      for (const { workflowId, runId } of nodeRuns) {
        for (const event of (await client.client.workflow.getHandle(workflowId, runId).fetchHistory()).events!) {
          if (event.workflowTaskFailedEventAttributes?.failure?.message === 'UnhandledCommand') refused++;
        }
      }
      expect(refused).toBeLessThan(nodeRuns.length);
    } finally {
      await worker.stop();
    }
  });
  it('a node workflow that is terminated mid-run is started again with what it held: the backfill completes, each partition published once', async () => {
    const queue = uniqueQueue('lost-node');
    const dir = scratch('lost-node');
    // b's last hour waits at the gate until b's workflow is terminated: with 200 ms sleeps, a
    // loaded machine could finish b before the terminate reached it, and there was nothing to lose.
    // One partition only: b does not start its partitions in key order, and four held ones took
    // every slot it has.
    const gate = new Gate();
    const worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transforms: { held: gate.holding('2024-01-02T23') } });
    try {
      const spec = testSpec(queue, {
        name: 'lost-node',
        partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-03' },
        defaults: { concurrency: 4 },
        nodes: [
          { id: 'a', transform: 'sleep', params: { ms: 30 } },
          // One partition per activity: a batch with a held partition would commit none of the others.
          { id: 'b', transform: 'held', batchSize: 1, dependsOn: ['a'] },
        ],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { probeIntervalMs: 1000, reportIntervalMs: 200 } });
      const ledger = () => worker.warehouse.ledger({ backfillId });
      await waitFor('b to be under way', async () => (await ledger()).filter((r) => r.node === 'b').length >= 5);
      await client.client.workflow.getHandle(`backfill/${backfillId}/b`).terminate('test: a lost node workflow');
      // The held activities of the terminated run finish now, publishing what it will never report.
      gate.open();
      const outcome = await client.wait(backfillId, 120_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress!.done).toBe(96);
      const rows = (await ledger()).filter((r) => r.status === 'published');
      // Partitions the terminated run had published but not reported are found, not written again.
      expect(rows).toHaveLength(96);
      // Visibility catches up with the last run a moment after it closes.
      const runs = await waitFor('the runs of b to be listed closed', async () => {
        const statuses: string[] = [];
        for await (const e of client.client.workflow.list({ query: `WorkflowId = "backfill/${backfillId}/b"` })) statuses.push(e.status.name);
        return statuses.includes('RUNNING') ? false : statuses.sort();
      }, 10_000);
      expect(runs).toEqual(['COMPLETED', 'TERMINATED']);
    } finally {
      await worker.stop();
    }
  });

  it('node workflows left by a terminated parent do not block --rerun: they are cancelled first', async () => {
    const queue = uniqueQueue('orphans');
    // Partitions from 02:00 wait at the gate until the rerun has started: with 500 ms sleeps, a
    // loaded machine could end the backfill before the terminate, and leave no orphan to cancel.
    const gate = new Gate();
    const worker = await startTestWorker({ queue, warehousePath: join(scratch('orphans'), 'warehouse.db'), transforms: { held: gate.holding('2024-01-01T02') } });
    try {
      const spec = testSpec(queue, {
        name: 'orphans',
        partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-02' },
        // One partition per activity, so that a held one holds back no other's commit; the cancel reaches a held one at its next heartbeat.
        defaults: { concurrency: 2, batchSize: 1, heartbeatTimeout: '2s' },
        nodes: [{ id: 'slow', transform: 'held' }],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      await waitFor('the first partition', async () => (await worker.warehouse.ledger({ backfillId })).length > 0);
      await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).terminate('test: the parent is gone');
      const rerun = await client.start(spec, { id: backfillId, taskQueue: queue, rerun: true });
      gate.open();
      expect(rerun.backfillId).toBe(backfillId);
      expect((await client.wait(backfillId, 120_000)).state).toBe('completed');
    } finally {
      await worker.stop();
    }
  });
});
