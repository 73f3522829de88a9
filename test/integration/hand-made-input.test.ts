/**
 * What a caller who skips the backfill client can send, on a real server: a start's input made
 * by hand (as `temporal workflow start` can) and decisions sent as raw updates. Each is refused
 * with a message naming the problem; none wedges the run or forges the audit trail.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { CORE_GENERATION, DEFAULT_TUNING, type BackfillInput, type NodeInput } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { BACKFILL_ID, backfillWorkflowId, nodeWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('hand-made input', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('hand-made-input');

  beforeAll(async () => {
    worker = await startTestWorker({ queue, warehousePath: join(scratch('hand-made-input'), 'warehouse.db') });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  /** Starts the backfill workflow as Temporal's own CLI can, with `extra` laid over a well-formed input. */
  async function startByHand(name: string, extra: Record<string, unknown>) {
    const backfillId = `${name}-${randomUUID().slice(0, 8)}`;
    const spec = testSpec(queue, { name, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: name.replaceAll('-', '_'), sql: 'SELECT :partition AS day' }] });
    const input = { core: CORE_GENERATION, backfillId, spec, range: {}, ...extra } as BackfillInput;
    const handle = await client.client.workflow.start('backfillWorkflow', {
      taskQueue: queue,
      workflowId: backfillWorkflowId(backfillId),
      args: [input],
      typedSearchAttributes: [{ key: BACKFILL_ID, value: backfillId }],
    });
    return { backfillId, handle, node: name.replaceAll('-', '_') };
  }

  /** The start's outcome within 30 s: its failure, or an error saying it ran or hung. */
  async function outcome(handle: { result(): Promise<unknown> }): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        handle.result().then(
          (result: unknown) => new Error(`it ran: ${JSON.stringify((result as { state?: string }).state)}`),
          (error: unknown) => error,
        ),
        new Promise((resolve) => (timer = setTimeout(() => resolve(new Error('neither refused nor ended in 30 s')), 30_000))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  // Before, tuning went unread to the workflows: a report interval that is no duration failed every workflow task of
  // the node workflows (the backfill never ended), a history limit of 0 made every run continue as new at once, for ever.
  it('a start whose tuning is out of bounds is refused, naming the field, and starts no node workflow', async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['report-interval', { reportIntervalMs: 'soon' }, /tuning\.reportIntervalMs/],
      ['history-limit', { historyLimit: 0 }, /tuning\.historyLimit/],
      ['restarts', { maxNodeRestarts: -5 }, /tuning\.maxNodeRestarts/],
      ['unknown-field', { speed: 'max' }, /tuning.*speed/],
    ];
    await Promise.all(
      cases.map(async ([name, tuning, problem]) => {
        const { handle, backfillId, node } = await startByHand(`tuning-${name}`, { tuning });
        const failure = await outcome(handle);
        try {
          expect(failure, name).toBeInstanceOf(WorkflowFailedError);
          expect((failure as WorkflowFailedError).cause, name).toMatchObject({ type: 'invalid_argument', message: expect.stringMatching(problem) });
          await expect(client.client.workflow.getHandle(nodeWorkflowId(backfillId, node)).describe(), name).rejects.toThrow(/not found/i);
        } finally {
          await handle.terminate('test: done').catch(() => undefined);
          await client.client.workflow.getHandle(nodeWorkflowId(backfillId, node)).terminate('test: done').catch(() => undefined);
        }
      }),
    );
  }, 60_000);

  // Before, a node workflow started by hand (its backfill always sends tuning within bounds) read its tuning as it
  // came: a report interval that is no duration, or no tuning at all, failed every workflow task of it, for ever.
  it('a node workflow started by hand with tuning out of bounds is refused, naming the field, not retried for ever', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['report-interval', { ...DEFAULT_TUNING, reportIntervalMs: 'soon' }, /^the node workflow's tuning\.reportIntervalMs must be number/],
      ['none', undefined, /^the node workflow's tuning is required/],
    ];
    await Promise.all(
      cases.map(async ([name, tuning, problem]) => {
        const backfillId = `node-tuning-${name}-${randomUUID().slice(0, 8)}`;
        const spec = testSpec(queue, { name: `node-tuning-${name}`, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'by_hand', transform: 'noop' }] });
        const input = {
          core: CORE_GENERATION,
          backfillId,
          parentWorkflowId: backfillWorkflowId(backfillId),
          runKey: 'by-hand',
          node: spec.nodes[0]!,
          upstream: {},
          range: {},
          settings: { seq: 1, rate: null, burst: 1, concurrency: 1, paused: false },
          ready: RangeSet.of([0, 2]).toJSON(),
          tuning,
        } as NodeInput;
        const handle = await client.client.workflow.start('nodeWorkflow', { taskQueue: queue, workflowId: nodeWorkflowId(backfillId, 'by_hand'), args: [input] });
        try {
          const failure = await outcome(handle);
          expect(failure, name).toBeInstanceOf(WorkflowFailedError);
          expect((failure as WorkflowFailedError).cause, name).toMatchObject({ type: 'invalid_argument', message: expect.stringMatching(problem) });
        } finally {
          await handle.terminate('test: done').catch(() => undefined);
        }
      }),
    );
  }, 60_000);

  // Before, `{ by: 'policy' }` was recorded as the policy's own entry ("the policy" in audit and status), and
  // `{ by: 'canary.auto' }` as the canary's automatic decision.
  it("a staged decision sent by hand as 'policy' or 'canary.auto' is refused, and the audit trail keeps who really decided", async () => {
    const spec = testSpec(queue, { name: 'staged-by', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'staged_by', sql: 'SELECT :partition AS day' }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue, stage: true, tuning: { reportIntervalMs: 100 } });
    await waitFor('every partition to be staged', async () => (await client.progress(backfillId)).state === 'staged', 60_000, 100);
    const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
    for (const [name, by] of [['publish', 'policy'], ['discard', ' Policy '], ['publish', 'canary.auto']] as const) {
      const refused = await handle.executeUpdate(name, { args: [{ by, reason: 'forged' }] }).then(
        () => new Error('applied'),
        (error: unknown) => (error as Error).cause,
      );
      expect(refused, `${name} by ${by}`).toMatchObject({ type: 'invalid_argument', message: expect.stringMatching(/^by '.+' is reserved/) });
    }
    expect((await client.progress(backfillId)).state).toBe('staged');
    await handle.executeUpdate('publish', { args: [{ by: 'alice@example.com', reason: 'checked the diff' }] });
    expect(((await handle.result()) as { state: string }).state).toBe('completed');
    const decisions = (await client.audit(backfillId)).filter((e) => e.action === 'publish' || e.action === 'discard');
    expect(decisions.map((e) => [e.action, e.identity, e.verified, e.outcome])).toEqual([['publish', 'alice@example.com', false, 'applied']]);
  });

  // Before, a start's reason and identity were kept whole (a control's are held to 2000 and 200 characters): in the
  // governance state, the audit trail (which keeps its newest entry whatever its size), the memo and every continue-as-new.
  it('a start whose reason or identity is longer than a control may send is refused, and its refusal keeps only their beginnings', async () => {
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['long-reason', { reason: 'r'.repeat(200_000) }, /the start's reason is longer than 2000 characters \(200000\)/],
      ['long-identity', { identity: 'i'.repeat(5_000) }, /the start's identity is longer than 200 characters \(5000\)/],
    ];
    await Promise.all(
      cases.map(async ([name, governance, problem]) => {
        const { handle } = await startByHand(name, { governance });
        const failure = await outcome(handle);
        expect(failure, name).toBeInstanceOf(WorkflowFailedError);
        expect((failure as WorkflowFailedError).cause, name).toMatchObject({ type: 'policy_violation', message: expect.stringMatching(problem) });
        const audit = (await handle.describe()).memo?.audit as { identity: string; reason: string | null; outcome: string };
        expect(audit.outcome).toBe('refused');
        expect(audit.identity.length, name).toBeLessThanOrEqual(201);
        expect((audit.reason ?? '').length, name).toBeLessThanOrEqual(2001);
      }),
    );
  });

  // Before, a report's stats and running total were kept as sent, extra fields and all, in every carry and progress query.
  it('a nodeReport signal sent by hand with extra fields is kept as a report, and the backfill completes', async () => {
    const spec = testSpec(queue, { name: 'report-junk', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' }, nodes: [{ id: 'report_junk', transform: 'noop' }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 100 } });
    await client.pause(backfillId);
    const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
    const junk = 'x'.repeat(300_000);
    const stats = { running: 0, rate: null, concurrency: 1, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null, junk };
    const total = { failedAttempts: 0, partitionSeconds: 0, rows: 0, reported: 0, junk };
    await handle.signal('nodeReport', { node: 'report_junk', done: '', failures: [{ message: 'forged', type: junk, ranges: '' }], stats, total, junk });
    const carry = await handle.query<{ reports: Record<string, unknown>; spentTotals?: Record<string, unknown> }>('carry');
    expect(JSON.stringify(carry).length).toBeLessThan(50_000);
    expect(carry.reports.report_junk).not.toHaveProperty('junk');
    await client.resume(backfillId);
    const outcome = await client.wait(backfillId, 60_000);
    expect(outcome.state).toBe('completed');
  });

  // Before, a signal that came while the policy judged the start (here: with the start itself) was dropped, with
  // only a warning in the worker's log: a pause sent with `temporal workflow signal` right after the start was lost.
  it('a pause signal that arrives with the start waits for the judgement, then pauses the backfill and is audited', async () => {
    const backfillId = `early-pause-${randomUUID().slice(0, 8)}`;
    const spec = testSpec(queue, { name: 'early-pause', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'early_pause', sql: 'SELECT :partition AS day' }] });
    const input: BackfillInput = { core: CORE_GENERATION, backfillId, spec, range: {}, tuning: { reportIntervalMs: 100 } };
    await client.client.workflow.signalWithStart('backfillWorkflow', {
      taskQueue: queue,
      workflowId: backfillWorkflowId(backfillId),
      args: [input],
      typedSearchAttributes: [{ key: BACKFILL_ID, value: backfillId }],
      signal: 'pause',
      signalArgs: [{ reason: 'hold it', identity: 'ops@example.com' }],
    });
    await waitFor('the pause to be applied', async () => (await client.progress(backfillId)).paused, 30_000, 100);
    const pauses = (await client.audit(backfillId)).filter((e) => e.action === 'pause');
    expect(pauses.map((e) => [e.identity, e.reason, e.outcome])).toEqual([['ops@example.com', 'hold it', 'applied']]);
    expect((await client.progress(backfillId)).done).toBe(0);
    // The workflow's own check, for a caller of Temporal's CLI: a rate slower than one partition a day (a pause by another name) is refused.
    const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
    await expect(handle.executeUpdate('setRate', { args: [1e-9, null, { reason: 'crawl' }] })).rejects.toMatchObject({ cause: { message: expect.stringMatching(/slower than one partition a day/) } });
    expect((await client.audit(backfillId)).filter((e) => e.action === 'set-rate')).toEqual([]);
    await client.resume(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
  });

  it('a signal that arrives with a start the policy refuses is dropped, and the refusal ends the start at once', async () => {
    const backfillId = `early-refused-${randomUUID().slice(0, 8)}`;
    const spec = testSpec(queue, { name: 'early-refused', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'early_refused', sql: 'SELECT :partition AS day' }] });
    const input: BackfillInput = { core: CORE_GENERATION, backfillId, spec, range: {}, governance: { identity: 'policy' } };
    const handle = await client.client.workflow.signalWithStart('backfillWorkflow', {
      taskQueue: queue,
      workflowId: backfillWorkflowId(backfillId),
      args: [input],
      typedSearchAttributes: [{ key: BACKFILL_ID, value: backfillId }],
      signal: 'setRate',
      signalArgs: [5, null, { reason: 'slower' }],
    });
    const failure = await outcome(handle);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'policy_violation', message: expect.stringMatching(/is reserved for what the policy does by itself/) });
  });

  // Before, a spec that is not one, a rate that is a string, a concurrency of -3 or a skip that is no range set failed
  // every workflow task of the start, for ever (it hung as running); a range bound that is no instant
  // failed the start after its datasets were leased, saying 'partition index 0 is outside 0..NaN'.
  it('a start whose spec, range, limits or skip is not one is refused, naming the field, not retried for ever', async () => {
    const good = testSpec(queue, { name: 'x', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'x', transform: 'noop' }] });
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['spec-nodes', { spec: { ...good, nodes: 'all' } }, /^the start's spec\.nodes must be array/],
      ['spec-missing', { spec: undefined }, /^the start's spec is required/],
      ['spec-node', { spec: { ...good, nodes: [{ id: 'x' }] } }, /^the start's spec\.nodes\[0\]/],
      ['range-date', { range: { from: 'yesterday' } }, /^the start's range\.from must be number/],
      ['limits-rate', { limits: { rate: 'fast' } }, /^the start's limits\.rate/],
      ['limits-concurrency', { limits: { concurrency: -3 } }, /^the start's limits\.concurrency must be a whole number from 1/],
      ['skip', { skip: { x: 'garbage' } }, /^the start's skip\.x is not a range set/],
    ];
    await Promise.all(
      cases.map(async ([name, extra, problem]) => {
        const { handle, backfillId } = await startByHand(`bad-${name}`, extra);
        const failure = await outcome(handle);
        await handle.terminate('test: done').catch(() => undefined);
        expect(failure, name).toBeInstanceOf(WorkflowFailedError);
        expect((failure as WorkflowFailedError).cause, name).toMatchObject({ type: 'invalid_argument', message: expect.stringMatching(problem) });
        expect(await worker.warehouse.ledger({ backfillId }), name).toEqual([]);
        // status says why (it said only that it ended failed).
        await expect(client.status(backfillId), name).rejects.toMatchObject({ code: 'not_running', message: expect.stringContaining(`backfill '${backfillId}' failed: the start's`) });
        // So do wait and start --watch.
        expect(await client.wait(backfillId), name).toMatchObject({ state: 'failed', failure: expect.stringContaining("the start's") });
      }),
    );
  }, 60_000);

  // Before, it ran as the named backfill under a workflow id its status never looks at: node workflows, ledger rows and versions were that backfill's.
  it("an unsigned start under another workflow id than its backfill's is refused, and runs nothing of that backfill", async () => {
    const victim = `victim-${randomUUID().slice(0, 8)}`;
    const spec = testSpec(queue, { name: 'victim', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'victim', sql: 'SELECT :partition AS day' }] });
    const input: BackfillInput = { core: CORE_GENERATION, backfillId: victim, spec, range: {} };
    const handle = await client.client.workflow.start('backfillWorkflow', { taskQueue: queue, workflowId: backfillWorkflowId(`hidden-${victim}`), args: [input] });
    const failure = await outcome(handle);
    await handle.terminate('test: done').catch(() => undefined);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({
      type: 'invalid_argument',
      message: expect.stringContaining(`this workflow's id is 'backfill/hidden-${victim}', but its input is of backfill '${victim}', whose workflow id is 'backfill/${victim}'`),
    });
    await expect(client.client.workflow.getHandle(nodeWorkflowId(victim, 'victim')).describe()).rejects.toThrow(/not found/i);
    expect(await worker.warehouse.ledger({ backfillId: victim })).toEqual([]);
  });

  // Before, Temporal's cron started the same input again as a run continued from the last, which is not judged again: the
  // first run was judged (and refused, or not), every later one went on unjudged, leasing and publishing.
  it('a start on a Temporal cron schedule is refused at every run: none goes on unjudged', async () => {
    const backfillId = `cron-${randomUUID().slice(0, 8)}`;
    const spec = testSpec(queue, { name: 'cron', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'cron_node', sql: 'SELECT :partition AS day' }] });
    const input: BackfillInput = { core: CORE_GENERATION, backfillId, spec, range: {} };
    const workflowId = backfillWorkflowId(backfillId);
    const handle = await client.client.workflow.start('backfillWorkflow', { taskQueue: queue, workflowId, args: [input], cronSchedule: '@every 1s', typedSearchAttributes: [{ key: BACKFILL_ID, value: backfillId }] });
    const failed: string[] = [];
    try {
      // Its first two runs, each closed failed (a run after the first would otherwise run, and then complete or hang).
      await waitFor('two runs of the schedule to end', async () => {
        failed.length = 0;
        for await (const run of client.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) if (run.status.name === 'FAILED') failed.push(run.runId);
        return failed.length >= 2;
      }, 30_000, 200);
    } finally {
      await handle.terminate('test: done').catch(() => undefined);
    }
    for (const runId of failed.slice(0, 2)) {
      // A cron run's failure names the next run, so the SDK's result() reads it as continued: its history says why it failed.
      const history = await client.client.workflow.getHandle(workflowId, runId).fetchHistory();
      const failure = history.events?.find((e) => e.workflowExecutionFailedEventAttributes)?.workflowExecutionFailedEventAttributes?.failure;
      expect(failure?.applicationFailureInfo?.type).toBe('invalid_argument');
      expect(failure?.message).toContain("this run was started by a Temporal cron schedule '@every 1s'");
    }
    await expect(client.client.workflow.getHandle(nodeWorkflowId(backfillId, 'cron_node')).describe()).rejects.toThrow(/not found/i);
    expect(await worker.warehouse.ledger({ backfillId })).toEqual([]);
  });

  // The workflow refuses such a start once it exists: the client refuses it first, so that its id is not taken by a failed run.
  it('the client refuses a start whose reason is longer than a start may have, before any workflow is created', async () => {
    const backfillId = `long-by-client-${randomUUID().slice(0, 8)}`;
    const spec = testSpec(queue, { name: 'long-by-client', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'long_by_client', sql: 'SELECT :partition AS day' }] });
    const error = await client.start(spec, { id: backfillId, taskQueue: queue, reason: 'r'.repeat(2_001) }).then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'invalid_argument', message: "the start's reason is longer than 2000 characters (2001): keep it short" });
    await expect(client.client.workflow.getHandle(backfillWorkflowId(backfillId)).describe()).rejects.toThrow(/not found/i);
  });

  it('a start with sane tuning runs to the end', async () => {
    const { handle } = await startByHand('tuning-sane', { tuning: { reportIntervalMs: 100, historyLimit: 500, probeIntervalMs: 1000, maxNodeRestarts: 0, drainMs: 100 } });
    const result = (await handle.result()) as { state: string };
    expect(result.state).toBe('completed');
  });
});
