/**
 * The command line where it changes nothing or meets what it did not start: a control that asks
 * for what is in force, a backfill terminated through Temporal while a worker runs, a rollback
 * of an id no backfill ever had.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { Transform } from '../../activities/transforms.ts';
import type { SpecInput } from '../../core/spec.ts';
import { rollbackWorkflowId } from '../../core/rollback.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { Gate, connectClient, runCli, scratch, startTestWorker, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

/** Holds every partition until the test ends: the backfills stay running for as long as a test needs. */
const held = new Gate();
const transforms: Record<string, Transform> = {
  noop_held: async ({ partition, signal }) => {
    await held.pass(signal);
    return [{ partition }];
  },
};

describe('the command line where nothing changes', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('noops');
  const warehousePath = `${scratch('noops')}/warehouse.db`;
  const env = { BACKFILL_TASK_QUEUE: queue };
  const spec = (node: string) =>
    testSpec(queue, { name: node, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' }, nodes: [{ id: node, transform: 'noop_held', rate: 3 }] });

  beforeAll(async () => {
    worker = await startTestWorker({ queue, warehousePath, transforms });
    client = await connectClient();
  });
  afterAll(async () => {
    held.open();
    await client?.close();
    await worker?.stop();
  });

  it('pause, resume, set-rate and set-concurrency that ask for what is in force say so, with who set it, and exit 0', async () => {
    const { backfillId: id } = await client.start(spec('noop_ctl'), { taskQueue: queue });
    try {
      const first = await runCli(['pause', id, '--reason', 'source late'], env);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(`${id} paused: running partitions finish`);

      const again = await runCli(['pause', id], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(new RegExp(`^${id} was already paused \\(since \\d{4}-\\d\\d-\\d\\dT[^,]+, by [^ ]+ \\(declared\\): source late\\): nothing changed \\('backfill resume ${id}' goes on\\)`));
      const json = await runCli<{ paused: boolean; unchanged?: { by: string | null; reason: string | null } }>(['pause', id, '--json'], env);
      expect(json.json).toMatchObject({ paused: true, unchanged: { by: expect.stringMatching(/\(declared\)$/), reason: 'source late' } });

      const resumed = await runCli<{ state: { unchanged?: unknown } }>(['resume', id, '--json'], env);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.json?.state.unchanged).toBeUndefined();
      const notPaused = await runCli(['resume', id], env);
      expect(notPaused.code, notPaused.stderr).toBe(0);
      expect(notPaused.stdout).toMatch(new RegExp(`^${id} was not paused \\(since .+\\): nothing changed\n$`));

      // The node's rate from its spec: no control set it, so nothing says since when.
      const rate = await runCli(['set-rate', id, '3', '--node', 'noop_ctl'], env);
      expect(rate.code, rate.stderr).toBe(0);
      expect(rate.stdout).toContain(`${id}: node noop_ctl rate was already 3/s: nothing changed`);
      const raised = await runCli(['set-concurrency', id, '4', '--json'], env);
      expect(raised.json).not.toHaveProperty('unchanged');
      const same = await runCli<{ unchanged: { since: number | null } }>(['set-concurrency', id, '4', '--json'], env);
      expect(same.json?.unchanged.since).toEqual(expect.any(Number));
    } finally {
      await client.cancel(id);
    }
  }, 120_000);

  it('resume --spec of a running backfill that was not paused: the new spec changed a node, so the reply has no `unchanged`', async () => {
    // The built-in sleep (a spec file names a registered transform): long enough to be running still.
    const input = (ms: number) =>
      ({ name: 'noop_spec', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' }, nodes: [{ id: 'noop_spec', transform: 'sleep', params: { ms } }] }) satisfies SpecInput;
    const { backfillId: id } = await client.start(testSpec(queue, input(120_000)), { taskQueue: queue });
    try {
      const fixed = `${scratch('noops-spec')}/fixed.json`;
      writeFileSync(fixed, JSON.stringify({ ...input(120_001), defaults: { taskQueue: queue } }));
      const resumed = await runCli<{ changed: string[]; state: { paused: boolean; unchanged?: unknown } }>(['resume', id, '--spec', fixed, '--json'], env);
      expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
      expect(resumed.json?.changed).toEqual(['noop_spec']);
      expect(resumed.json?.state.paused).toBe(false);
      expect(resumed.json?.state).not.toHaveProperty('unchanged');
      const again = `${scratch('noops-spec')}/again.json`;
      writeFileSync(again, JSON.stringify({ ...input(120_002), defaults: { taskQueue: queue } }));
      const text = await runCli(['resume', id, '--spec', again], env);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toBe(`${id} resumed\n  new spec for: noop_spec\n`);
    } finally {
      await client.cancel(id);
    }
  }, 120_000);

  it('status, wait and report of a backfill terminated through Temporal while a worker runs say terminated, not failed', async () => {
    const { backfillId: id } = await client.start(spec('noop_term'), { taskQueue: queue });
    await waitFor('a partition to start', async () => (await client.progress(id)).running > 0, 60_000);
    const terminated = await temporal(['workflow', 'terminate', '--workflow-id', backfillWorkflowId(id), '--reason', 'by hand']);
    expect(terminated.code, terminated.stderr).toBe(0);

    const status = await runCli<{ state: string }>(['status', id, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.json?.state).toBe('terminated');
    const text = await runCli(['status', id]);
    expect(text.stdout).toContain('terminated (through Temporal: its cleanup did not run)');
    // The headline before terminated was its own state: `<id> failed · 0/4 done`.
    expect(text.stdout.split('\n').filter((line) => line.startsWith(`${id} failed`))).toEqual([]);

    const waited = await runCli<{ state: string }>(['wait', id, '--json']);
    expect(waited.code).toBe(3);
    expect(waited.json?.state).toBe('terminated');

    const report = await runCli<{ state: string }>(['report', id, '--output', `${scratch('noops-report')}/r.md`, '--warehouse', warehousePath, '--json']);
    expect(report.code, report.stdout).toBe(0);
    expect(report.json?.state).toBe('terminated');
  }, 120_000);

  it('rollback of an id no backfill ever had answers as every other command does, and the rollback that looked in the ledger ends cleanly', async () => {
    const id = `noop-nobody-${Date.now()}`;
    const status = await runCli(['status', id], env);
    const rolled = await runCli(['rollback', id], env);
    expect(rolled.code).not.toBe(0);
    expect(rolled.code).toBe(status.code);
    expect(rolled.stdout).toBe('');
    // Only the refusal: before, a paragraph on the retention and on workers with a policy came first.
    expect(rolled.stderr.trim().split('\n')).toHaveLength(1);
    expect(rolled.stderr).toContain(`no backfill with id '${id}' in namespace`);
    expect(rolled.stderr).toContain("the workers' ledger has no version of it: check the id");
    // Not failed: a mistyped id is no fault of the rollback (a failed workflow logs a warning with a stack trace on the worker).
    const description = await client.client.workflow.getHandle(rollbackWorkflowId(id)).describe();
    expect(description.status.name).toBe('COMPLETED');
  }, 120_000);
});
