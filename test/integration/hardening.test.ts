/**
 * Hardening on a real server: a backfill ends whatever arrives while it is finishing, a
 * retry of one node after a cancel completes, and control messages sent with Temporal's own
 * CLI are applied as parsed or refused with a message.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { NonRetryableError } from '../../activities/errors.ts';
import type { Transform } from '../../activities/transforms.ts';
import { BackfillError } from '../../core/errors.ts';
import type { BackfillCarry } from '../../core/protocol.ts';
import { startByHand } from '../../scripts/hand-made-start.ts';
import type { SpecInput } from '../../core/spec.ts';
import { backfillWorkflowId, nodeWorkflowId, type ControlState } from '../../workflows/definitions.ts';
import { Gate, connectClient, scratch, startTestWorker, taskFailures, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

/** Keys the `fragile` transform fails on, until a test fixes the cause by removing them. */
const broken = new Set<string>();
/** Holds the busy node of the idle-lost test from 06:00 on until the idle node workflow has been terminated. */
const busyGate = new Gate();
const transforms: Record<string, Transform> = {
  held_busy: busyGate.holding('2024-01-01T06'),
  fragile: ({ node, partition }) => {
    if (broken.has(`${node}/${partition}`)) throw new NonRetryableError(`source data for ${partition} is corrupt`);
  },
  // Report progress in details shaped like the activity's checkpoint, then fail their first attempt.
  rows_progress: (ctx) => {
    ctx.heartbeat({ finished: 500 });
    if (ctx.attempt === 1) throw new Error('source API: 503');
    return [{ day: ctx.partition, n: 1 }];
  },
  files_progress: (ctx) => {
    ctx.heartbeat({ finished: ['part-0001.csv'] });
    if (ctx.attempt === 1) throw new Error('source API: 503');
    return [{ day: ctx.partition, n: 1 }];
  },
};

describe('hardening', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('hardening');

  beforeAll(async () => {
    worker = await startTestWorker({ queue, warehousePath: join(scratch('hardening'), 'warehouse.db'), transforms });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  const start = (spec: SpecInput, tuning = {}) => client.start(testSpec(queue, spec), { taskQueue: queue, tuning: { reportIntervalMs: 200, ...tuning } });

  it('replaceSpec (resume --spec) sent again and again while a backfill finishes is applied or refused, and the backfill ends', async () => {
    const nodes = Array.from({ length: 12 }, (_, i) => ({ id: `n${i}`, transform: 'sleep', params: { ms: 20 } }));
    const spec = (version: number): SpecInput => ({
      name: 'finishing',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-01T04' },
      defaults: { concurrency: 2 },
      nodes: nodes.map((n, i) => (i === 0 ? { ...n, params: { ...n.params, version } } : n)),
    });
    const { backfillId } = await start(spec(0));
    const parent = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
    const specs = [testSpec(queue, spec(1)), testSpec(queue, spec(2))];
    let closed = false;
    const outcomes = { applied: 0, refused: 0, other: [] as string[] };
    // Three senders, each alternating two versions of the spec, until the parent has closed.
    const sender = async (offset: number) => {
      for (let i = offset; !closed; i++) {
        try {
          await client.replaceSpec(backfillId, specs[i % 2]!);
          outcomes.applied++;
        } catch (error) {
          if (error instanceof BackfillError && (error.code === 'finishing' || error.code === 'not_running')) outcomes.refused++;
          else outcomes.other.push(`${String(error)} (${String((error as Error).cause)})`);
          if (error instanceof BackfillError && error.code === 'not_running') return;
        }
      }
    };
    const senders = [0, 1, 2].map((o) => sender(o));
    try {
      const outcome = await client.wait(backfillId, 60_000);
      expect(outcome.state).toBe('completed');
    } finally {
      closed = true;
      await Promise.all(senders);
    }
    expect(outcomes.other).toEqual([]);
    expect(outcomes.applied).toBeGreaterThan(0);
    expect((await parent.describe()).status.name).toBe('COMPLETED');
    // A workflow task may be refused by the server when an update races its completion
    // (UnhandledCommand: the update is asked for again); none may fail in the workflow's code.
    const failures: string[] = [];
    for await (const run of client.client.workflow.list({ query: `WorkflowId = "${backfillWorkflowId(backfillId)}"` })) {
      failures.push(...taskFailures((await client.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events ?? []));
    }
    expect(failures).toEqual([]);
  });

  for (const transform of ['rows_progress', 'files_progress']) {
    it(`${transform}: a transform's heartbeat details do not replace the checkpoint, and the retry after a transient failure publishes the partition`, async () => {
      const spec = testSpec(queue, {
        name: `hb-${transform}`,
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' },
        defaults: { retry: { maxAttempts: 3, initialInterval: '100ms', backoffCoefficient: 1 } },
        nodes: [{ id: transform, transform }],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 200 } });
      const outcome = await client.wait(backfillId, 60_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress!.nodes[0]).toMatchObject({ done: 1, failed: 0 });
      const ledger = await worker.warehouse.ledger({ backfillId });
      expect(ledger.map((r) => [r.partition, r.status, r.attempt])).toEqual([['2024-01-01', 'published', 2]]);
    });
  }

  it('a finish that cannot reach a terminated idle node workflow does not keep the backfill from ending', async () => {
    const { backfillId } = await start({
      name: 'idle-lost',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-01T12' },
      nodes: [
        { id: 'idle', transform: 'noop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' } },
        // Keeps the backfill from finishing until the idle node is lost: 12 partitions of 300 ms
        // (3.6 s) could all be done before a loaded machine got to the terminate.
        { id: 'busy', transform: 'held_busy', concurrency: 1 },
      ],
    });
    await waitFor('idle to be done', async () => (await client.progress(backfillId)).nodes.find((n) => n.id === 'idle')!.done === 1);
    await client.client.workflow.getHandle(nodeWorkflowId(backfillId, 'idle')).terminate('test: an idle node workflow is lost');
    busyGate.open();
    const outcome = await client.wait(backfillId, 60_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress).toMatchObject({ done: 13, failed: 0 });
  });

  /**
   * Starts the backfill workflow as Temporal's own CLI can, with a carry of the test's making
   * (no client check on the way), on a spec of one SQL node `id`: the failure it ends with.
   */
  async function startCarry(id: string, carry: Partial<BackfillCarry> | Record<string, unknown>) {
    const backfillId = `${id}-carry-${randomUUID().slice(0, 8)}`;
    const spec = testSpec(queue, { name: id, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' }, nodes: [{ id, sql: 'SELECT :partition AS day' }] });
    const handle = await startByHand(client.client, { backfillId, spec, taskQueue: queue, carry });
    return { backfillId, handle };
  }

  /** `startCarry`, then the failure the start ends with. */
  async function startWithCarry(id: string, carry: Partial<BackfillCarry> | Record<string, unknown>): Promise<{ backfillId: string; failure: unknown }> {
    const { backfillId, handle } = await startCarry(id, carry);
    const failure = await handle.result().then(
      (result: unknown) => new Error(`it ran: ${JSON.stringify((result as { state?: string }).state)}`),
      (error: unknown) => error,
    );
    return { backfillId, failure };
  }

  // Before, it computed every partition as a staged version, ended completed at once (the carry said published), and nothing published them.
  it('a start with a hand-made carry that says its staged versions were published, with partitions still to compute, is refused and stages nothing', async () => {
    const { backfillId, failure } = await startWithCarry('forged', { staged: { phase: 'published' } });
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'invalid_argument', message: expect.stringMatching(/the carry says the staged versions were published, but node 'forged' has 3 partitions still to compute/) });
    expect(await worker.warehouse.ledger({ backfillId })).toEqual([]);
  });

  // Before, the coordinator threw reading it (a RangeError), which failed every workflow task of the start, for ever.
  it('a start with a hand-made carry whose ranges cannot be read is refused, not retried for ever', async () => {
    const { backfillId, failure } = await startWithCarry('garbled', { readiness: { garbled: { done: '0' } } });
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'invalid_argument', message: expect.stringMatching(/the start's carry cannot be read \(.+\): a carry is what a backfill hands its next run/) });
    expect(await worker.warehouse.ledger({ backfillId })).toEqual([]);
  });

  // Before, no one looked at a carry's spec: the run went on with its input's, and a client could start a later run with it.
  it('a start with a hand-made carry whose spec is not a resolved spec is refused, naming the field, and writes nothing', async () => {
    const { backfillId, failure } = await startWithCarry('bad_spec', { spec: { name: 'x', nodes: 'all' } });
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'invalid_argument', message: expect.stringContaining("the start's carry cannot be read (carry.spec.transforms") });
    expect(await worker.warehouse.ledger({ backfillId })).toEqual([]);
  });

  // Before, each of these failed every workflow task of the start, for ever (limits a string: "Cannot create property 'rate'", a rate
  // that is a string: "r.toFixed is not a function", reports a string, a node's failures a number, a node's recheck a number).
  it('a start with a hand-made carry whose fields are not of their types is refused, naming the field, not retried for ever', async () => {
    const cases: [string, (node: string) => Record<string, unknown>, string][] = [
      ['limits', () => ({ limits: 'x' }), 'carry.limits must be object'],
      ['rate', () => ({ limits: { rate: 'fast', concurrency: null } }), 'carry.limits.rate must be a number of partitions per second above 0'],
      ['reports', () => ({ reports: 'x' }), 'carry.reports must be record'],
      ['failures', (node) => ({ failures: { [node]: 5 } }), 'carry.failures.shape_failures must be array'],
      ['recheck', (node) => ({ recheck: { [node]: 5 } }), 'carry.recheck.shape_recheck must be string'],
    ];
    await Promise.all(
      cases.map(async ([name, carry, problem]) => {
        const node = `shape_${name}`;
        const { handle } = await startCarry(node, carry(node));
        const failure = await Promise.race([
          handle.result().then(
            () => new Error('it ran'),
            (error: unknown) => error,
          ),
          new Promise((resolve) => setTimeout(() => resolve(new Error(`${name}: neither refused nor ended in 30 s`)), 30_000)),
        ]);
        expect(failure, name).toBeInstanceOf(WorkflowFailedError);
        expect((failure as WorkflowFailedError).cause, name).toMatchObject({ type: 'invalid_argument', message: expect.stringContaining(`the start's carry cannot be read (${problem})`) });
        await handle.terminate('test: done').catch(() => undefined);
      }),
    );
  }, 60_000);

  it('retry-failed --node after a cancel completes: the other nodes get back the partitions they held', async () => {
    broken.add('flaky/2024-01-02');
    const { backfillId } = await start({
      name: 'retry-node',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' },
      nodes: [
        { id: 'flaky', transform: 'fragile' },
        // 48 partitions one at a time take at least 12 s: under load, 16 of them were all done
        // before the cancel reached the node, and there was nothing left to give back.
        { id: 'slow', transform: 'sleep', params: { ms: 250 }, concurrency: 1, partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-03' } },
      ],
    });
    await waitFor('the failure and some slow partitions', async () => {
      const p = await client.progress(backfillId);
      const slow = p.nodes.find((n) => n.id === 'slow')!;
      return p.nodes.find((n) => n.id === 'flaky')!.failed === 1 && slow.done >= 2;
    });
    await client.cancel(backfillId);
    const cancelled = await client.wait(backfillId, 60_000);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.progress!.nodes.find((n) => n.id === 'slow')!.done).toBeLessThan(48);
    broken.delete('flaky/2024-01-02');
    const retried = await client.retryFailed(backfillId, 'flaky');
    expect(retried.retried).toBe(1);
    expect(retried.resumed?.backfillId).toBe(backfillId);
    const outcome = await client.wait(backfillId, 60_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress).toMatchObject({ done: 4 + 48, failed: 0 });
  });

  it('with 20 busy nodes reporting all the time, every parent run continues as new within a bounded number of events of its limit', async () => {
    const historyLimit = 150;
    const chains = 10;
    const nodes = Array.from({ length: chains }, (_, i) => [
      { id: `raw${i}`, transform: 'noop', concurrency: 2 },
      { id: `out${i}`, transform: 'noop', concurrency: 2, dependsOn: [`raw${i}`] },
    ]).flat();
    const { backfillId } = await start(
      // One partition per activity: a report per partition keeps the parent busy.
      { name: 'busy', partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-02' }, defaults: { batchSize: 1 }, nodes },
      { historyLimit, reportIntervalMs: 100 },
    );
    const outcome = await client.wait(backfillId, 170_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress!.done).toBe(2 * chains * 24);
    const lengths: number[] = [];
    for await (const run of client.client.workflow.list({ query: `WorkflowId = "${backfillWorkflowId(backfillId)}"` })) {
      lengths.push((await client.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events!.length);
    }
    process.stdout.write(`busy parent: ${lengths.length} runs, history lengths ${lengths.sort((a, b) => a - b).join(' ')}\n`);
    expect(lengths.length).toBeGreaterThanOrEqual(3);
    // Once a run is at its limit it sends nothing more: what follows is the signals in flight
    // landing (at most one per node) and the reports that arrive meanwhile.
    for (const length of lengths) expect(length).toBeLessThanOrEqual(historyLimit + 10 * nodes.length);
  });

  describe('control messages from Temporal CLI', () => {
    type Expect = { rate?: number | null; concurrency?: number | null; refused?: RegExp };
    const values = ['"unlimited"', '"7"', '-1', 'null', '"abc"'] as const;
    /** What each value means, for each message: the state after it, or a refusal. */
    const table: Record<'setRate' | 'setConcurrency', Record<'backfill' | 'node', Record<(typeof values)[number], Expect>>> = {
      setRate: {
        backfill: { '"unlimited"': { rate: null }, '"7"': { rate: 7 }, '-1': { refused: /above 0/ }, null: { rate: null }, '"abc"': { refused: /rate.*"abc"/ } },
        node: { '"unlimited"': { rate: null }, '"7"': { rate: 7 }, '-1': { refused: /above 0/ }, null: { rate: null }, '"abc"': { refused: /rate.*"abc"/ } },
      },
      setConcurrency: {
        backfill: {
          '"unlimited"': { concurrency: null },
          '"7"': { concurrency: 7 },
          '-1': { refused: /whole number from 1/ },
          null: { concurrency: null },
          '"abc"': { refused: /concurrency.*"abc"/ },
        },
        node: {
          '"unlimited"': { refused: /a node needs a concurrency/ },
          '"7"': { concurrency: 7 },
          '-1': { refused: /whole number from 1/ },
          null: { refused: /a node needs a concurrency/ },
          '"abc"': { refused: /concurrency.*"abc"/ },
        },
      },
    };
    const field = (name: 'setRate' | 'setConcurrency') => (name === 'setRate' ? 'rate' : 'concurrency');
    const current = (state: ControlState, name: 'setRate' | 'setConcurrency', scope: 'backfill' | 'node') =>
      scope === 'backfill' ? state[field(name)] : state.nodes.find((n) => n.id === 'work')![field(name)];

    for (const kind of ['update', 'signal'] as const) {
      it(`temporal workflow ${kind === 'update' ? 'update execute' : 'signal'}: every value is applied as parsed or refused, and the backfill completes`, async () => {
        const { backfillId } = await start({
          name: `cli-${kind}`,
          partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-02' },
          defaults: { concurrency: 2, rate: 4 },
          nodes: [
            { id: 'work', transform: 'sleep', params: { ms: 30 } },
            { id: 'after', transform: 'noop', dependsOn: ['work'] },
          ],
        });
        const workflowId = backfillWorkflowId(backfillId);
        // Paused while the messages arrive, so that it is still running for all of them. The
        // pause update is also a barrier: an update after a signal sees the state the signal left.
        const state = () => client.pause(backfillId);
        for (const name of ['setRate', 'setConcurrency'] as const) {
          for (const scope of ['backfill', 'node'] as const) {
            for (const value of values) {
              const expected = table[name][scope][value];
              const before = current(await state(), name, scope);
              const inputs = ['--input', value, ...(scope === 'node' ? ['--input', '"work"'] : [])];
              const what = `${kind} ${name} ${value}${scope === 'node' ? ' work' : ''}`;
              if (kind === 'update') {
                const result = await temporal(['workflow', 'update', 'execute', '--workflow-id', workflowId, '--name', name, ...inputs]);
                if (expected.refused) {
                  expect(result.code, `${what}: ${result.stdout}`).not.toBe(0);
                  expect((result.stderr + result.stdout).replaceAll('\\"', '"'), what).toMatch(expected.refused);
                } else {
                  expect(result.code, `${what}: ${result.stderr}`).toBe(0);
                }
              } else {
                const result = await temporal(['workflow', 'signal', '--workflow-id', workflowId, '--name', name, ...inputs]);
                expect(result.code, `${what}: ${result.stderr}`).toBe(0);
              }
              const after = current(await state(), name, scope);
              const wanted = expected.refused ? before : (expected as { rate?: number | null; concurrency?: number | null })[field(name)];
              expect(after, what).toBe(wanted);
            }
          }
        }
        if (kind === 'signal') {
          // The parent's internal report signal, sent by hand with junk: ignored, nothing breaks.
          for (const junk of ['{"node":"work","done":"q","failures":[],"stats":{}}', '{"node":"work","done":"r0,zz","failures":[],"stats":{}}', '"x"']) {
            const result = await temporal(['workflow', 'signal', '--workflow-id', workflowId, '--name', 'nodeReport', '--input', junk]);
            expect(result.code, result.stderr).toBe(0);
          }
          // A node workflow's order signal, sent by hand with junk: ignored (logged), the node carries on.
          // A spec of the node itself without its settings (seen: every workflow task of the node failed on its missing retry, for good).
          const junkOrders = [
            '"x"',
            '{"ready":"abc"}',
            '{"ready":"r0,zz"}',
            '{"settings":{"seq":99,"rate":-1,"burst":1,"concurrency":1,"paused":false}}',
            '{"node":{"id":"evil"}}',
            '{"node":{"id":"after","transform":"noop","params":{},"checks":[]}}',
            '{"finish":"yes"}',
          ];
          for (const junk of junkOrders) {
            const result = await temporal(['workflow', 'signal', '--workflow-id', nodeWorkflowId(backfillId, 'after'), '--name', 'nodeControl', '--input', junk]);
            expect(result.code, result.stderr).toBe(0);
          }
          expect((await client.progress(backfillId)).done).toBeLessThan(48);
        }
        // Sane limits again, then it runs to the end.
        await client.setRate(backfillId, null);
        await client.setRate(backfillId, null, 'work');
        await client.setConcurrency(backfillId, null);
        await client.setConcurrency(backfillId, 4, 'work');
        await client.resume(backfillId);
        const outcome = await client.wait(backfillId, 90_000);
        expect(outcome.state).toBe('completed');
        expect(outcome.progress).toMatchObject({ done: 48, failed: 0 });
        // Ignored, not half applied: no workflow task of the node workflows failed on the way.
        for (const node of ['work', 'after']) {
          const history = await client.client.workflow.getHandle(nodeWorkflowId(backfillId, node)).fetchHistory();
          expect(taskFailures(history.events ?? []), node).toEqual([]);
        }
      });
    }
  });
});
