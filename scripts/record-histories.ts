/**
 * Records the event histories of representative backfills into test/replay/histories/<label>, for
 * the replay test: pause and resume, rate and concurrency changes, failures and
 * retry-failed, throttling, continue-as-new (batches landing before it, and slow ones carried),
 * a node workflow terminated and started again, an idle one lost before the end, a canary approved, and cancellation.
 *
 *   node --import tsx scripts/record-histories.ts core2-a [scenario,...]
 *
 * Keep the older labels of the current workflow core: the point of the files is that they
 * were made by older code. A change to workflow logic that cannot replay them must go behind
 * `patched()`; record a new label after such a change, so that the next one is checked against
 * it too. docs/workflow-versions.md says when patches and recordings are retired.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { BUILTIN_TRANSFORMS } from '../activities/transforms.ts';
import { SqliteWarehouse } from '../activities/warehouse/sqlite/sqlite-dialect.ts';
import { BackfillClient } from '../client/backfill-client.ts';
import { installRuntime } from '../client/local.ts';
import { resolveSpec, type SpecInput } from '../core/spec.ts';
import { createWorkers } from '../workers/worker.ts';
import type { Tuning } from '../core/protocol.ts';
import { backfillWorkflowId, nodeWorkflowId } from '../workflows/definitions.ts';
import { startDevServer } from '../host/dev-server.ts';

const label = process.argv[2];
/** Optionally, the scenarios to record (comma-separated): to add one to a recording without redoing the others. */
const only = process.argv[3]?.split(',');
if (!label || !/^[a-z0-9-]+$/.test(label)) throw new Error('give a label for this recording, e.g. v3 (kept beside the older ones)');
const OUT = new URL(`../test/replay/histories/${label}/`, import.meta.url).pathname;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Scenario = { spec: SpecInput; tuning?: Partial<Tuning>; drive(client: BackfillClient, id: string): Promise<void> };

const hourly = (hours: number) => ({ grain: 'hour' as const, start: '2024-01-01', end: new Date(Date.UTC(2024, 0, 1) + hours * 3_600_000).toISOString() });

const SCENARIOS: Record<string, Scenario> = {
  control: {
    spec: {
      name: 'control',
      partitions: hourly(60),
      defaults: { concurrency: 4, rate: 30 },
      nodes: [
        { id: 'a', transform: 'sleep', params: { ms: 20 } },
        { id: 'b', transform: 'noop', dependsOn: ['a'] },
        { id: 'daily', transform: 'noop', partitions: { grain: 'day' }, dependsOn: ['b'] },
      ],
    },
    async drive(client, id) {
      await pause(800);
      await client.pause(id);
      await pause(800);
      await client.resume(id);
      await client.setRate(id, 60, 'a');
      await client.setConcurrency(id, 2, 'b');
      await client.setRate(id, 100);
    },
  },
  'failure-retry': {
    spec: {
      name: 'failure-retry',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-15' },
      defaults: { concurrency: 3, retry: { maxAttempts: 2, initialInterval: '100ms' } },
      nodes: [
        { id: 'src', transform: 'sleep', params: { ms: 30, failKeys: ['2024-01-04'], failAttempts: 2 } },
        { id: 'dst', transform: 'noop', dependsOn: ['src'] },
        { id: 'slow', transform: 'sleep', params: { ms: 250 }, concurrency: 1 },
      ],
    },
    async drive(client, id) {
      for (let i = 0; i < 100 && (await client.progress(id)).failed === 0; i++) await pause(100);
      // The retry's activity starts counting attempts again, so it fails the same way: the
      // history holds a failure, a retry-failed and a second failure (completed_with_failures).
      await client.retryFailed(id);
    },
  },
  throttle: {
    spec: {
      name: 'throttle',
      partitions: hourly(40),
      defaults: { concurrency: 6, rate: 20 },
      nodes: [{ id: 'api', transform: 'sleep', params: { throttleRate: 0.2, throttleTimes: 2 } }],
    },
    async drive() {},
  },
  'continue-as-new': {
    tuning: { historyLimit: 150 },
    spec: {
      name: 'continue-as-new',
      partitions: hourly(120),
      defaults: { concurrency: 6, batchSize: 2 },
      nodes: [
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', mapping: { lag: { from: -2, to: 0 } } }] },
        { id: 'weekly', transform: 'noop', partitions: { grain: 'week' }, dependsOn: ['b'] },
      ],
    },
    async drive(client, id) {
      await pause(500);
      await client.setRate(id, 80, 'b');
    },
  },
  // The parent itself reaches its history limit while reports stream in: it stops sending and hands over its outbox.
  'parent-continue-as-new': {
    tuning: { historyLimit: 100 },
    spec: {
      name: 'parent-continue-as-new',
      partitions: hourly(48),
      defaults: { concurrency: 2 },
      nodes: [
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: ['a'] },
        { id: 'c', transform: 'noop' },
        { id: 'd', transform: 'noop', dependsOn: ['c'] },
      ],
    },
    async drive() {},
  },
  // Slow batches outlast the drain before continue-as-new: they are carried, not waited for.
  'continue-as-new-carry': {
    tuning: { historyLimit: 60, drainMs: 100 },
    spec: {
      name: 'continue-as-new-carry',
      partitions: hourly(24),
      defaults: { concurrency: 4 },
      nodes: [{ id: 'slow', transform: 'sleep', params: { ms: 600 } }],
    },
    async drive() {},
  },
  restart: {
    tuning: { probeIntervalMs: 1000 },
    spec: {
      name: 'restart',
      partitions: hourly(40),
      defaults: { concurrency: 2 },
      nodes: [
        { id: 'a', transform: 'sleep', params: { ms: 100 } },
        { id: 'b', transform: 'sleep', params: { ms: 50 }, dependsOn: ['a'] },
      ],
    },
    async drive(client, id) {
      await pause(1500);
      // The parent finds the node workflow gone and starts it again with what it held.
      await client.client.workflow.getHandle(nodeWorkflowId(id, 'b')).terminate('replay recording: a lost node workflow');
    },
  },
  // An idle node workflow is lost before the end: its finish cannot be delivered, and the backfill still ends.
  'lost-idle-node': {
    tuning: { probeIntervalMs: 1000 },
    spec: {
      name: 'lost-idle-node',
      partitions: hourly(12),
      nodes: [
        { id: 'idle', transform: 'noop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' } },
        { id: 'busy', transform: 'sleep', params: { ms: 150 }, concurrency: 1 },
      ],
    },
    async drive(client, id) {
      for (let i = 0; i < 100 && (await client.progress(id)).nodes.find((n) => n.id === 'idle')?.done !== 1; i++) await pause(100);
      await client.client.workflow.getHandle(nodeWorkflowId(id, 'idle')).terminate('replay recording: an idle node workflow is lost');
    },
  },
  // A canary: its slice runs staged and waits; the approval publishes it and the node workflows start again for the rest.
  canary: {
    spec: {
      name: 'canary',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
      defaults: { concurrency: 2 },
      canary: { partitions: 2, pick: 'spread' },
      nodes: [
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', mapping: { lag: { from: -1, to: 0 } } }] },
      ],
    },
    async drive(client, id) {
      for (let i = 0; i < 200 && (await client.progress(id)).state !== 'awaiting_canary'; i++) await pause(100);
      await client.approveCanary(id, 'replay recording: the canary looks right');
    },
  },
  cancel: {
    spec: {
      name: 'cancel',
      partitions: hourly(30),
      defaults: { concurrency: 3, heartbeatTimeout: '2s' },
      nodes: [{ id: 'long', transform: 'sleep', params: { ms: 30_000 } }],
    },
    async drive(client, id) {
      await pause(1500);
      await client.cancel(id);
    },
  },
};

installRuntime();
const dir = mkdtempSync(join(tmpdir(), 'backfill-record-'));
const server = await startDevServer({ dbFile: join(dir, 'temporal.db'), uiPort: null });
const connection = await NativeConnection.connect({ address: server.address });
const warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
const workers = await createWorkers({ connection, warehouse, transforms: BUILTIN_TRANSFORMS });
const running = workers.run();
const client = await BackfillClient.connect({ address: server.address });
try {
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    if (only && !only.includes(name)) continue;
    const { backfillId } = await client.start(resolveSpec(scenario.spec), {
      id: name,
      tuning: { reportIntervalMs: 200, ...scenario.tuning },
    });
    await scenario.drive(client, backfillId);
    // Generous: a busy machine slows the throttled scenario well past two minutes.
    const outcome = await client.wait(backfillId, 600_000);
    const target = join(OUT, name);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    let files = 0;
    // Every run of the parent and of each node workflow.
    const executions: Array<{ workflowId: string; runId: string }> = [];
    for await (const e of client.client.workflow.list({ query: `BackfillId = "${backfillId}"` })) executions.push(e);
    if (!executions.some((e) => e.workflowId === backfillWorkflowId(backfillId))) throw new Error(`${name}: the parent is missing from visibility`);
    for (const { workflowId, runId } of executions) {
      const history = await client.client.workflow.getHandle(workflowId, runId).fetchHistory();
      // Protobuf binary: exactly what the server sent, read back with History.decode.
      writeFileSync(join(target, `${workflowId.replaceAll('/', '_')}--${runId}.binpb`), proto.temporal.api.history.v1.History.encode(history).finish());
      files++;
    }
    process.stderr.write(`${name}: ${outcome.state}, ${files} histories\n`);
  }
} finally {
  await client.close();
  workers.shutdown();
  await running;
  await connection.close();
  await server.stop();
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
}
