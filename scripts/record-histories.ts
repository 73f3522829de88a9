/**
 * Records the event histories of representative backfills into test/replay/histories/<label>, for
 * the replay test: pause and resume, rate and concurrency changes, failures and
 * retry-failed, throttling, continue-as-new (batches landing before it, and slow ones carried),
 * a node workflow terminated and started again, an idle one lost before the end, cancellation,
 * a canary approved,
 * a backfill refused the datasets another one leases, staged backfills published and
 * discarded, and governance: a signed start that waits for an approval (a self-approval
 * refused), controls with reasons, a retry budget spent and raised, a run window that closes
 * and opens again, and a rollback refused for want of a reason and then run. Every worker
 * emits OpenLineage events (to a file).
 *
 *   node --import tsx scripts/record-histories.ts core2-a [scenario,...]
 *
 * A scenario with a `policy` runs on a task queue of its own, polled by workers given that
 * policy (the policy is the workers', not the backfill's). A full recording checks that every
 * patch in flight (docs/workflow-versions.md) left its marker in some history.
 *
 * Keep the older labels of the current workflow core: the point of the files is that they
 * were made by older code. A change to workflow logic that cannot replay them must go behind
 * `patched()`; record a new label after such a change, so that the next one is checked against
 * it too. docs/workflow-versions.md says when patches and recordings are retired.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import { ApplicationFailure } from '@temporalio/activity';
import { NativeConnection } from '@temporalio/worker';
import { WorkflowFailedError } from '@temporalio/client';
import { BUILTIN_TRANSFORMS } from '../activities/transforms.ts';
import { SqliteWarehouse } from '../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { LineageSettings } from '../activities/lineage/config.ts';
import { BackfillClient, type StartOptions } from '../client/backfill-client.ts';
import { installRuntime } from '../client/local.ts';
import type { PolicyInput } from '../core/policy.ts';
import { resolveSpec, type SpecInput } from '../core/spec.ts';
import { bundleWorkflows, createWorkers, type BackfillWorkers } from '../workers/worker.ts';
import { CORE_GENERATION, DEFAULT_TASK_QUEUE, type BackfillInput, type Tuning } from '../core/protocol.ts';
import { BACKFILL_ID, approveSignal, backfillWorkflowId, nodeWorkflowId } from '../workflows/definitions.ts';
import { signSubject } from '../client/sign.ts';
import { startByHand } from './hand-made-start.ts';
import { RangeSet } from '../core/ranges.ts';
import { policyHolderPolls } from '../client/pollers.ts';
import { WORKFLOW_IDS } from '../test/replay/workflow-ids.ts';
import { startDevServer } from '../host/dev-server.ts';

const label = process.argv[2];
/** Optionally, the scenarios to record (comma-separated): to add one to a recording without redoing the others. */
const only = process.argv[3]?.split(',');
if (!label || !/^[a-z0-9-]+$/.test(label)) throw new Error('give a label for this recording, e.g. v3 (kept beside the older ones)');
const ROOT = new URL('../', import.meta.url).pathname;
const OUT = join(ROOT, `test/replay/histories/${label}/`);
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it holds; fails after `timeoutMs` naming what it waited for. */
async function until(what: string, check: () => Promise<boolean | undefined>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await pause(100);
  }
}

/** Rejects unless `promise` is refused with a message matching `expected` (a refusal the history should hold). */
async function refused(promise: Promise<unknown>, expected: RegExp): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e as Error,
  );
  if (error === null) throw new Error(`expected a refusal matching ${expected}, but it was accepted`);
  if (!expected.test(String(error.message))) throw new Error(`expected a refusal matching ${expected}, got: ${error.message}`);
}

/** A well-formed approval of `id` signed by `keyFile` whose text was changed after it was signed: refused as `bad_signature`. */
async function tamperedApproval(client: BackfillClient, id: string, keyFile: string): Promise<{ text: string; signature: string }> {
  const planHash = (await client.progress(id)).governance!.planHash;
  const signed = await signSubject({ action: 'approve', backfillId: id, namespace: client.namespace, planHash, reason: 'reviewed with finance', signedAt: new Date().toISOString() }, { keyFile });
  return { text: signed.text.replace('reviewed with finance', 'reviewed by nobody'), signature: signed.signature };
}

/** The people of the governed scenarios: alice starts (and signs her start), bob approves. */
type Person = 'alice' | 'bob';
const PEOPLE: Person[] = ['alice', 'bob'];
const principal = (person: Person) => `${person}@example.com`;

type Context = {
  /** Each person's client (its identity is their principal). */
  as: Record<Person, BackfillClient>;
  /** Each person's private ssh-ed25519 key file. */
  key: Record<Person, string>;
  /** The recorder's options for a start (its tuning). */
  startOptions: Pick<StartOptions, 'tuning'>;
};

type Scenario = {
  spec: SpecInput;
  tuning?: Partial<Tuning>;
  /** The workers' policy: the scenario runs on a task queue of its own, polled by workers given it. `signers`: alice's and bob's allowed-signers lines. */
  policy?: (signers: string[]) => PolicyInput;
  /** Who starts it (default: the recorder's client). */
  starter?: Person;
  /** More start options (a reason, a signature, --stage). */
  start?: (ctx: Context) => Partial<StartOptions>;
  /** Before the start, once its workers run (to start at a chosen moment). */
  before?: () => Promise<void>;
  /** The operator's actions; it may start more backfills, whose histories are recorded too. */
  drive(client: BackfillClient, id: string, ctx: Context): Promise<void | { backfills: string[] }>;
};

const hourly = (hours: number) => ({ grain: 'hour' as const, start: '2024-01-01', end: new Date(Date.UTC(2024, 0, 1) + hours * 3_600_000).toISOString() });
const MINUTE = 60_000;
/** HH:MM (UTC) of an instant. */
const clock = (t: number) => new Date(t).toISOString().slice(11, 16);
/** The `windowed` scenario's window closes at this minute and opens again one minute later (set when its workers start). */
let windowClosesAt = 0;

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
  // A node paced on latency starts at one activity and doubles while its latencies stay under the target (patch latency-slow-start).
  'latency-paced': {
    spec: {
      name: 'latency-paced',
      partitions: hourly(60),
      defaults: { concurrency: 8 },
      nodes: [{ id: 'paced', transform: 'sleep', params: { latencyBase: 30, latencyCapacity: 1 }, pace: { latencyTarget: '100ms' } }],
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
      await until('the canary to wait for approval', async () => (await client.progress(id)).state === 'awaiting_canary');
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
  // Two backfills of one dataset: the second is refused the lease the first holds (dataset_busy) and fails before any node workflow starts.
  'dataset-busy': {
    spec: {
      name: 'dataset-busy',
      partitions: hourly(8),
      defaults: { concurrency: 1 },
      nodes: [{ id: 'leased', transform: 'sleep', params: { ms: 250 } }],
    },
    async drive(client, id, { startOptions }) {
      const second = `${id}-second`;
      // Past the client's own check (sharedDatasets), so that the workflow's lease refuses it.
      await client.start(resolveSpec({ ...SCENARIOS['dataset-busy']!.spec, name: second }), { ...startOptions, id: second, sharedDatasets: true });
      const failure = client.client.workflow.getHandle(backfillWorkflowId(second)).result();
      await refused(failure.catch((error: Error) => Promise.reject(error.cause ?? error)), /another backfill writes/);
      return { backfills: [second] };
    },
  },
  // Staged: every partition written as a staged version, then published at once (a reason, as its policy requires).
  'staged-publish': {
    policy: () => ({ version: 1, reasons: { required: ['start', 'publish', 'discard'], minLength: 5 } }),
    start: () => ({ stage: true, reason: 'restating January, to be checked first' }),
    spec: {
      name: 'staged-publish',
      partitions: hourly(12),
      defaults: { concurrency: 3 },
      nodes: [
        { id: 'staged_orders', transform: 'sleep', params: { ms: 20 } },
        { id: 'staged_revenue', transform: 'sleep', dependsOn: ['staged_orders'] },
      ],
    },
    async drive(client, id) {
      await until('every partition to be staged', async () => (await client.progress(id)).state === 'staged');
      await client.decideStaged(id, 'publish', 'diff reviewed with finance');
    },
  },
  // Staged, then discarded (no policy: an ungoverned decision).
  'staged-discard': {
    start: () => ({ stage: true }),
    spec: {
      name: 'staged-discard',
      partitions: hourly(8),
      defaults: { concurrency: 2 },
      nodes: [{ id: 'staged_draft', transform: 'sleep', params: { ms: 20 } }],
    },
    async drive(client, id) {
      await until('every partition to be staged', async () => (await client.progress(id)).state === 'staged');
      await client.decideStaged(id, 'discard');
    },
  },
  // Governance: a signed start waits for an approval (alice's own is refused, bob's releases it);
  // two partitions fail for good and spend the retry budget, which pauses the backfill; controls
  // with reasons; set-budget raises the budget and it ends with its failures.
  governed: {
    policy: (signers) => ({
      version: 1,
      approval: { datasets: ['protected_*'], allowedSigners: signers },
      budgets: { retries: { limit: 2, max: 10 } },
      reasons: { required: true, minLength: 5 },
    }),
    starter: 'alice',
    start: ({ key }) => ({ reason: 'finance restated January', signKey: key.alice }),
    spec: {
      name: 'governed',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-17' },
      nodes: [{ id: 'protected_orders', transform: 'sleep', concurrency: 1, params: { ms: 300, failKeys: ['2024-01-01', '2024-01-02'], permanent: true } }],
    },
    async drive(client, id, { as, key }) {
      await refused(as.alice.approve(id, { reason: 'approving my own backfill', signKey: key.alice }), /self_approval/);
      // Two copies of a tampered approval sent as signals: the first is checked and refused, the second refused again without its activity (approval-floods-bounded).
      const tampered = await tamperedApproval(client, id, key.bob);
      const handle = client.client.workflow.getHandle(backfillWorkflowId(id));
      const refusedCopies = async () => (await client.audit(id)).filter((e) => e.details.signal === 'approve');
      await handle.signal(approveSignal, tampered, { identity: principal('bob') });
      await until('the tampered approval to be refused', async () => (await refusedCopies()).length === 1);
      await handle.signal(approveSignal, tampered, { identity: principal('bob') });
      await until('its copy to be refused without a check', async () => (await refusedCopies()).some((e) => e.details.repeated === true));
      await as.bob.approve(id, { reason: 'reviewed with finance', signKey: key.bob });
      await until('the retry budget to pause it', async () => {
        const p = await client.progress(id);
        return p.governance?.holds.some((h) => h.kind === 'budget') && p.running === 0;
      });
      await as.bob.setRate(id, 20, undefined, { reason: 'gentler on the source' });
      await as.bob.pause(id, { reason: 'looking at the two failures' });
      await as.bob.resume(id, { reason: 'the failures are known' });
      await as.bob.setBudget(id, 'retries', 5, { reason: 'two corrupt days, known (INC-7)' });
    },
  },
  // A run window that closes while partitions run (stopped after the grace period) and opens a
  // minute later; a second backfill started while it is closed waits for it from its start.
  windowed: {
    policy: () => {
      // The next minute at least 20 s away: the start comes 8 s before it (before()).
      windowClosesAt = Math.ceil((Date.now() + 20_000) / MINUTE) * MINUTE;
      const allow = [
        { from: clock(windowClosesAt - 10 * MINUTE), to: clock(windowClosesAt) },
        { from: clock(windowClosesAt + MINUTE), to: clock(windowClosesAt + 30 * MINUTE) },
      ];
      return { version: 1, windows: { timeZone: 'UTC', allow, grace: '1s' } };
    },
    before: () => pause(Math.max(0, windowClosesAt - 8_000 - Date.now())),
    spec: {
      name: 'windowed',
      partitions: hourly(6),
      defaults: { concurrency: 2 },
      nodes: [{ id: 'nightly', transform: 'sleep', params: { ms: 5000 } }],
    },
    async drive(client, id, { startOptions }) {
      await until('the window to close', async () => (await client.progress(id)).state === 'waiting_for_window');
      const late = `${id}-late`;
      const started = await client.start(resolveSpec({ ...SCENARIOS.windowed!.spec, name: late, defaults: { concurrency: 2, taskQueue: queueOf('windowed') }, nodes: [{ id: 'nightly_late', transform: 'sleep', params: { ms: 50 } }] }), { ...startOptions, id: late, taskQueue: queueOf('windowed') });
      if (started.admission?.state !== 'waiting_for_window') throw new Error(`${late} should wait for the window from its start, but is ${started.admission?.state}`);
      await client.wait(late, 3 * MINUTE);
      return { backfills: [late] };
    },
  },
  // A resume of an ended backfill under a policy that wants a reason for a resume and a set-rate
  // (not for a start): refused without one, then judged (pinned: it was admitted under a policy),
  // its node's rate set with a reason on the run before judged by the caps only
  // (carried-overrides-caps-only), and run; its failure fails again.
  'governed-resume': {
    policy: () => ({ version: 1, reasons: { required: ['resume', 'set-rate'], minLength: 5 } }),
    spec: {
      name: 'governed-resume',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' },
      nodes: [{ id: 'resumed_orders', transform: 'sleep', concurrency: 1, params: { ms: 1000, failKeys: ['2024-01-02'], permanent: true } }],
    },
    async drive(client, id) {
      await client.setRate(id, 5, 'resumed_orders', { reason: 'gentler on the source' });
      await client.wait(id, 60_000);
      await refused(client.resume(id), /resume needs a reason/);
      await client.resume(id, { reason: 'the source of the 2nd is fixed' });
    },
  },
  // A second backfill whose node workflow cannot start (its id held by a workflow of another
  // kind): it starts its other node, then ends it, emits its lineage and fails.
  'node-start-taken': {
    spec: { name: 'node-start-taken', partitions: hourly(2), nodes: [{ id: 'untaken', transform: 'noop' }] },
    async drive(client, id, { startOptions }) {
      await client.wait(id, 60_000);
      const taken = `${id}-second`;
      // On a queue nobody polls, so it stays open while the backfill starts.
      const squatter = await client.client.workflow.start('squatter', { workflowId: nodeWorkflowId(taken, 'held'), taskQueue: 'record-nobody', args: [] });
      try {
        const spec = resolveSpec({ name: taken, partitions: hourly(2), nodes: [{ id: 'started', transform: 'sleep', params: { ms: 200 } }, { id: 'held', transform: 'noop' }] });
        await client.start(spec, { ...startOptions, id: taken });
        const outcome = await client.wait(taken, 60_000);
        if (outcome.state !== 'failed') throw new Error(`${taken} should fail (its node workflow's id is taken), but is ${outcome.state}`);
      } finally {
        await squatter.terminate('replay recording: the id is free again');
      }
      return { backfills: [taken] };
    },
  },
  // The release of its leases at its end fails once (an activity's failure, not one the workflow throws): it fails and cleans up, then a resume ends it.
  'release-fails': {
    spec: { name: 'release-fails', partitions: hourly(2), nodes: [{ id: 'released', transform: 'noop' }] },
    before: async () => void releaseFails.add('release-fails'),
    async drive(client, id) {
      const outcome = await client.wait(id, 60_000);
      if (outcome.state !== 'failed') throw new Error(`${id} should fail (its lease release failed), but is ${outcome.state}`);
      await client.resume(id);
      const resumed = await client.wait(id, 60_000);
      if (resumed.state !== 'completed') throw new Error(`${id} should complete once resumed, but is ${resumed.state}`);
    },
  },
  // A new spec that moves a node onto another task queue once its partitions are done: the backfill writes its nodes' queues to its memo again (node-queues-memo).
  'replaced-queue': {
    spec: {
      name: 'replaced-queue',
      partitions: hourly(2),
      nodes: [
        { id: 'moved', transform: 'noop' },
        { id: 'after', transform: 'sleep', params: { ms: 1500 }, dependsOn: ['moved'] },
      ],
    },
    async drive(client, id) {
      await until('the moved node to finish', async () => (await client.progress(id)).nodes.find((n) => n.id === 'moved')?.done === 2);
      const spec = SCENARIOS['replaced-queue']!.spec;
      const changed = await client.replaceSpec(id, resolveSpec({ ...spec, nodes: spec.nodes.map((n) => (n.id === 'moved' ? { ...n, taskQueue: 'record-moved' } : n)) }));
      if (changed.join() !== 'moved') throw new Error(`the new spec should change the node 'moved' only, but changed ${changed.join(', ') || 'none'}`);
      const outcome = await client.wait(id, 60_000);
      if (outcome.state !== 'completed') throw new Error(`replaced-queue should complete, but is ${outcome.state}`);
    },
  },
  // A start made by hand (Temporal's CLI, the SDK) whose carry holds a spec, as a run's end carries one: its shape is checked, and it runs.
  'carried-spec': {
    spec: { name: 'carried-spec', partitions: hourly(2), nodes: [{ id: 'carried', transform: 'noop' }] },
    async drive(client, id) {
      await client.wait(id, 60_000);
      const byHand = `${id}-by-hand`;
      const spec = resolveSpec({ name: byHand, partitions: hourly(2), nodes: [{ id: 'carried', transform: 'noop' }] });
      await startByHand(client.client, { backfillId: byHand, spec, taskQueue: DEFAULT_TASK_QUEUE, carry: { spec } });
      const outcome = await client.wait(byHand, 60_000);
      if (outcome.state !== 'completed') throw new Error(`${byHand} should complete (its carried spec is well-formed), but is ${outcome.state}`);
      return { backfills: [byHand] };
    },
  },
  // A start that a workflow worker without a policy takes while one with the policy polled the
  // queue lately: passed on to the policy queue, it waits for a worker with the policy, which admits it.
  'first-passed-on': {
    policy: () => ({ version: 1, reasons: { required: ['start'], minLength: 5 } }),
    start: () => ({ reason: 'a start the governed workers judge' }),
    spec: { name: 'first-passed-on', partitions: hourly(2), nodes: [{ id: 'governed', transform: 'noop' }] },
    async drive(client, id) {
      await client.wait(id, 60_000);
      const queue = `${queueOf('first-passed-on')}-mixed`;
      const policyFile = join(dir, 'first-passed-on.policy.yaml');
      const holder = async () => {
        const set = await workersOf({ workflowQueue: queue, policyFile });
        return { run: set.run(), set };
      };
      let governed = await holder();
      await until('the worker with the policy to poll the policy queue', () => policyHolderPolls(client.connection, 'default', queue));
      governed.set.shutdown();
      await governed.run;
      const bare = await workersOf({ workflowQueue: queue });
      const bareRun = bare.run();
      const passed = `${id}-mixed`;
      try {
        const spec = resolveSpec({ name: passed, defaults: { taskQueue: queue }, partitions: hourly(2), nodes: [{ id: 'mixed', transform: 'noop' }] });
        const started = client.start(spec, { id: passed, taskQueue: queue, reason: 'judged by a worker with the policy' });
        await until(`${passed}: its judgement passed on`, async () => {
          const d = await client.client.workflow.getHandle(backfillWorkflowId(passed)).describe().catch(() => undefined);
          return d?.raw.pendingActivities?.some((a) => a.lastFailure?.applicationFailureInfo?.type === 'PolicyMismatch') === true;
        });
        // One process cannot run two workers of one queue: the worker without the policy stops first.
        bare.shutdown();
        await bareRun;
        governed = await holder();
        await started;
        const outcome = await client.wait(passed, 60_000);
        if (outcome.state !== 'completed') throw new Error(`${passed} should complete once a worker with the policy admits it, but is ${outcome.state}`);
      } finally {
        governed.set.shutdown();
        bare.shutdown();
        await Promise.all([governed.run, bareRun]);
      }
      return { backfills: [passed] };
    },
  },
  // Starts made by hand (Temporal's CLI, the SDK) that the workflow refuses before anything runs: tuning out of bounds, a
  // reason longer than a control's, limits not of their shape, an unsigned start under another workflow id than its
  // backfill's; a node workflow started with no tuning; and a pause sent with a start (signal-with-start), which waits
  // for the judgement, then holds the run, and a control signal it refuses (recorded in its audit trail).
  'hand-made': {
    spec: { name: 'hand-made', partitions: hourly(2), nodes: [{ id: 'by_hand', transform: 'noop' }] },
    async drive(client, id) {
      await client.wait(id, 60_000);
      const spec = (name: string) => resolveSpec({ name, partitions: hourly(2), nodes: [{ id: 'by_hand', transform: 'noop' }] });
      const input = (backfillId: string, extra: Record<string, unknown> = {}) => ({ core: CORE_GENERATION, backfillId, spec: spec(backfillId), range: {}, ...extra }) as BackfillInput;
      const refusals: Array<[suffix: string, extra: Record<string, unknown>, type: string, inputOf?: string]> = [
        ['tuning', { tuning: { historyLimit: 0 } }, 'invalid_argument'],
        ['long-reason', { governance: { reason: 'r'.repeat(3_000) } }, 'policy_violation'],
        ['limits', { limits: { rate: 'fast' } }, 'invalid_argument'],
        // Its search attribute and workflow id are the listed backfill's (`…-hidden`); its input names another.
        ['hidden', {}, 'invalid_argument', `${id}-victim`],
      ];
      const refused: string[] = [];
      for (const [suffix, extra, type, inputOf] of refusals) {
        const listed = `${id}-${suffix}`;
        const handle = await client.client.workflow.start('backfillWorkflow', {
          taskQueue: DEFAULT_TASK_QUEUE,
          workflowId: backfillWorkflowId(listed),
          args: [input(inputOf ?? listed, extra)],
          typedSearchAttributes: [{ key: BACKFILL_ID, value: listed }],
        });
        const failure = await handle.result().then(() => null, (error: unknown) => error);
        const cause = failure instanceof WorkflowFailedError ? (failure.cause as { type?: string } | undefined) : undefined;
        if (cause?.type !== type) throw new Error(`${listed} should be refused at its start (${type}), but ${failure === null ? 'ran' : String(failure)}`);
        refused.push(listed);
      }
      // A node workflow started by hand with no tuning (its backfill always sends one) is refused, listed with a refused start's backfill.
      const nodeOf = refused[0]!;
      const node = await client.client.workflow.start('nodeWorkflow', {
        taskQueue: DEFAULT_TASK_QUEUE,
        workflowId: nodeWorkflowId(nodeOf, 'by_hand'),
        args: [
          {
            core: CORE_GENERATION,
            backfillId: nodeOf,
            parentWorkflowId: backfillWorkflowId(nodeOf),
            runKey: 'by-hand',
            node: spec(nodeOf).nodes[0]!,
            upstream: {},
            range: {},
            settings: { seq: 1, rate: null, burst: 1, concurrency: 1, paused: false },
            ready: RangeSet.of([0, 2]).toJSON(),
          },
        ],
        typedSearchAttributes: [{ key: BACKFILL_ID, value: nodeOf }],
      });
      const nodeFailure = await node.result().then(() => null, (error: unknown) => error);
      const nodeCause = nodeFailure instanceof WorkflowFailedError ? (nodeFailure.cause as { type?: string } | undefined) : undefined;
      if (nodeCause?.type !== 'invalid_argument') throw new Error(`the node workflow started by hand with no tuning should be refused (invalid_argument), but ${nodeFailure === null ? 'ran' : String(nodeFailure)}`);
      const paused = `${id}-early-pause`;
      await client.client.workflow.signalWithStart('backfillWorkflow', {
        taskQueue: DEFAULT_TASK_QUEUE,
        workflowId: backfillWorkflowId(paused),
        args: [input(paused, { tuning: { reportIntervalMs: 200 } })],
        typedSearchAttributes: [{ key: BACKFILL_ID, value: paused }],
        signal: 'pause',
        signalArgs: [{ reason: 'held from its start', identity: 'ops@example.com' }],
      });
      await until(`${paused}: paused once admitted`, async () => (await client.progress(paused)).paused);
      // A control signal it refuses (a rate that is no number) is recorded in its audit trail as refused.
      await client.client.workflow.getHandle(backfillWorkflowId(paused)).signal('setRate', 'fast', null, { identity: 'ops@example.com' });
      await until(`${paused}: the refused signal in its audit trail`, async () => (await client.audit(paused)).some((e) => e.outcome === 'refused' && e.action === 'set-rate'));
      await client.resume(paused);
      const outcome = await client.wait(paused, 60_000);
      if (outcome.state !== 'completed') throw new Error(`${paused} should complete once resumed, but is ${outcome.state}`);
      return { backfills: [...refused, paused] };
    },
  },
  // A rollback under a policy that wants a reason: refused without one (the rollback workflow fails), then run (continuing as new on the way).
  rollback: {
    policy: () => ({ version: 1, reasons: { required: ['start', 'rollback'], minLength: 5 } }),
    start: () => ({ reason: 'loading January, to roll it back' }),
    spec: {
      name: 'rollback',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-07' },
      nodes: [
        { id: 'rolled_orders', transform: 'sleep', params: { ms: 10 } },
        { id: 'rolled_revenue', transform: 'sleep', dependsOn: ['rolled_orders'] },
      ],
    },
    async drive(client, id) {
      await client.wait(id, 60_000);
      await refused(client.rollback(id), /rollback needs a reason/);
      await client.rollback(id, { reason: 'January was loaded twice', tuning: { batchSize: 2, historyLimit: 20 } });
    },
  },
};

/** The task queue of a scenario with a policy (its workers hold the policy). */
function queueOf(scenario: string): string {
  return `record-${scenario}`;
}

/** The patch ids a history's markers name (Temporal's patch markers). */
function patchesIn(history: proto.temporal.api.history.v1.IHistory): string[] {
  const ids: string[] = [];
  for (const event of history.events ?? []) {
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName !== 'core_patch') continue;
    const data = marker.details?.['patch-data']?.payloads?.[0]?.data;
    if (data) ids.push((JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id);
  }
  return ids;
}

/** The patches in flight, from docs/workflow-versions.md's table. */
function patchesInFlight(): string[] {
  const text = readFileSync(join(ROOT, 'docs/workflow-versions.md'), 'utf8');
  return [...text.matchAll(/^\| `([a-z0-9-]+)` \(`workflows\//gm)].map((m) => m[1]!);
}

installRuntime();
const dir = mkdtempSync(join(tmpdir(), 'backfill-record-'));
const server = await startDevServer({ dbFile: join(dir, 'temporal.db'), uiPort: null });
const connection = await NativeConnection.connect({ address: server.address });
const warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
/** Backfills whose next release of their leases fails (the `release-fails` scenario). */
const releaseFails = new Set<string>();
const release = warehouse.releaseDatasets.bind(warehouse);
warehouse.releaseDatasets = async (run) => {
  if (releaseFails.delete(run.backfillId)) throw ApplicationFailure.nonRetryable('the lease store cannot be reached (replay recording)', 'LeaseStoreDown');
  return release(run);
};
const lineageFile = join(dir, 'openlineage.jsonl');
const lineage: LineageSettings = { enabled: true, namespace: 'backfill', transport: { type: 'file', path: lineageFile, append: true }, source: 'record-histories' };
const workflowBundle = await bundleWorkflows();
const workersOf = (options: { workflowQueue?: string; policyFile?: string } = {}) =>
  createWorkers({ connection, warehouse, transforms: BUILTIN_TRANSFORMS, workflowBundle, lineage, ...options });
const workers = await workersOf();
const running = workers.run();
const client = await BackfillClient.connect({ address: server.address });

// alice's and bob's keys (ssh-keygen), their allowed-signers lines and their clients.
const key = {} as Record<Person, string>;
const as = {} as Record<Person, BackfillClient>;
const signers: string[] = [];
for (const person of PEOPLE) {
  key[person] = join(dir, `${person}_ed25519`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', principal(person), '-f', key[person]]);
  const [type, body] = readFileSync(`${key[person]}.pub`, 'utf8').trim().split(/\s+/);
  signers.push(`${principal(person)} ${type} ${body}`);
  as[person] = await BackfillClient.connect({ address: server.address, identity: principal(person) });
}

/** Workers that poll a scenario's own queue with its policy; stopped once it is recorded. */
async function governedWorkers(name: string, scenario: Scenario): Promise<{ queue: string; stop(): Promise<void> }> {
  const queue = queueOf(name);
  const policyFile = join(dir, `${name}.policy.yaml`);
  // JSON is YAML: the policy file as an operator would write it.
  writeFileSync(policyFile, JSON.stringify(scenario.policy!(signers), null, 2));
  const set: BackfillWorkers = await workersOf({ workflowQueue: queue, policyFile });
  const run = set.run();
  return {
    queue,
    stop: async () => {
      set.shutdown();
      await run;
    },
  };
}

const recorded = new Map<string, string[]>();
try {
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    if (only && !only.includes(name)) continue;
    const governed = scenario.policy ? await governedWorkers(name, scenario) : undefined;
    try {
      const tuning = { reportIntervalMs: 200, ...scenario.tuning };
      const ctx: Context = { as, key, startOptions: { tuning } };
      const starter = scenario.starter ? as[scenario.starter] : client;
      const spec = governed ? { ...scenario.spec, defaults: { ...scenario.spec.defaults, taskQueue: governed.queue } } : scenario.spec;
      await scenario.before?.();
      const { backfillId } = await starter.start(resolveSpec(spec), {
        id: name,
        tuning,
        ...(governed ? { taskQueue: governed.queue } : {}),
        ...scenario.start?.(ctx),
      });
      const more = (await scenario.drive(client, backfillId, ctx)) ?? { backfills: [] };
      // Generous: a busy machine slows the throttled scenario well past two minutes.
      const outcome = await client.wait(backfillId, 600_000);
      const target = join(OUT, name);
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target, { recursive: true });
      let files = 0;
      // Each file's workflow id, which replay gives its history: workflow code may read it (a signed start checks that it is its backfill's).
      const ids: Record<string, string> = {};
      for (const id of [backfillId, ...more.backfills]) {
        // Every run of the parent, of each node workflow and of a rollback, once all are closed (visibility lags a little).
        const executions: Array<{ workflowId: string; runId: string; status: { name: string } }> = [];
        await until(`${id}: every run closed and listed`, async () => {
          executions.length = 0;
          for await (const e of client.client.workflow.list({ query: `BackfillId = "${id}"` })) executions.push(e);
          return executions.some((e) => e.workflowId === backfillWorkflowId(id)) && executions.every((e) => e.status.name !== 'RUNNING');
        }, 30_000);
        for (const { workflowId, runId } of executions) {
          const history = await client.client.workflow.getHandle(workflowId, runId).fetchHistory();
          recorded.set(`${name}/${workflowId}/${runId}`, patchesIn(history));
          // Protobuf binary: exactly what the server sent, read back with History.decode.
          const file = `${workflowId.replaceAll('/', '_')}--${runId}.binpb`;
          writeFileSync(join(target, file), proto.temporal.api.history.v1.History.encode(history).finish());
          ids[file] = workflowId;
          files++;
        }
      }
      writeFileSync(join(target, WORKFLOW_IDS), `${JSON.stringify(ids, null, 2)}\n`);
      process.stderr.write(`${name}: ${outcome.state}, ${files} histories\n`);
    } finally {
      await governed?.stop();
    }
  }
  const events = existsSync(lineageFile) ? readFileSync(lineageFile, 'utf8').split('\n').filter(Boolean).length : 0;
  process.stderr.write(`OpenLineage: ${events} events written\n`);
  if (recorded.size > 0 && events === 0) throw new Error('no OpenLineage event was written: the recording does not exercise openlineage-events');
  if (!only) {
    const seen = new Set([...recorded.values()].flat());
    const missing = patchesInFlight().filter((p) => !seen.has(p));
    if (missing.length > 0) throw new Error(`no history of this recording exercises ${missing.join(', ')}: add a scenario that does (docs/workflow-versions.md)`);
    process.stderr.write(`every patch in flight is exercised: ${[...seen].sort().join(', ')}\n`);
  }
} finally {
  await client.close();
  for (const person of PEOPLE) await as[person]?.close();
  workers.shutdown();
  await running;
  await connection.close();
  await server.stop();
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
}
