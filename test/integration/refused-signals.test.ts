/**
 * A control sent as a signal that the backfill refuses, on a real server: its sender hears
 * nothing, so the refusal is in the backfill's audit trail (`backfill audit`), who and why, cut
 * short; a valid signal still applies; a flood of refused ones leaves a bounded number of entries.
 * Before (patch refused-signals-audited), each was only a warning in the worker's log.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import type { Transform } from '../../activities/transforms.ts';
import { UNKNOWN_IDENTITY, type AuditEntry } from '../../core/audit.ts';
import { REFUSED_TEXT } from '../../core/refused-signals.ts';
import { backfillWorkflowId, pauseSignal, setRateSignal } from '../../workflows/definitions.ts';
import { Gate, address, endLeftRunning, runCli, scratch, startTestWorker, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

/** Partitions wait here until the test is done with the running backfill. */
const gate = new Gate();
const transforms: Record<string, Transform> = { held: async ({ signal }) => gate.pass(signal) };

const dir = scratch('refused-signals');
const queue = uniqueQueue('refused-signals');
let worker: TestWorker;
let client: BackfillClient;

beforeAll(async () => {
  const policy = join(dir, 'backfill.policy.yaml');
  writeFileSync(policy, ['version: 1', 'caps:', '  backfill: { rate: 100 }', 'reasons:', '  required: [pause, set-rate]', '  minLength: 5', ''].join('\n'));
  worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transforms, policyFile: policy });
  client = await BackfillClient.connect({ settings: localConnection(address()), identity: 'starter@example.com' });
});

/** The backfills the tests started: each test cancels its own, and the cancel ends once the gate opens. */
const startedIds: string[] = [];

afterAll(async () => {
  gate.open();
  if (client) {
    // While the worker still runs them: a cancelled backfill left for the shared dev server stays running.
    for (const backfillId of startedIds) await client.wait(backfillId, 60_000).catch(() => undefined);
    await endLeftRunning(client, [queue]);
  }
  await client?.close();
  await worker?.stop();
});

let serial = 0;
async function started(): Promise<string> {
  const spec = testSpec(queue, { name: `refused-signals-${++serial}`, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' }, nodes: [{ id: `held_${serial}`, transform: 'held' }] });
  const { backfillId } = await client.start(spec, { taskQueue: queue, id: `refused-signals-${serial}-${Date.now()}`, reason: 'restate January' });
  startedIds.push(backfillId);
  return backfillId;
}

const refusedOf = async (backfillId: string): Promise<AuditEntry[]> => (await client.audit(backfillId)).filter((e) => e.outcome === 'refused');

describe('refused control signals', () => {
  it("are in the backfill's audit trail with who and why, cut short; a valid signal still applies", async () => {
    const backfillId = await started();
    const workflowId = backfillWorkflowId(backfillId);
    const signal = async (name: string, ...inputs: string[]) => {
      const sent = await temporal(['workflow', 'signal', '--workflow-id', workflowId, '--name', name, ...inputs.flatMap((i) => ['--input', i])]);
      expect(sent.code, sent.stderr).toBe(0);
    };
    await signal('setRate', '5000', 'null', JSON.stringify({ identity: 'mallory@example.com', reason: 'because I can' }));
    await signal('pause');
    await signal('pause', '"junk"');
    await signal('pause', JSON.stringify({ identity: 'policy', reason: 'r'.repeat(5000) }));
    await signal('setRate', '50', 'null', JSON.stringify({ identity: 'ops@example.com', reason: 'the source is slow today' }));
    // No identity in the control, one given to Temporal's CLI: the server records it with the signal.
    const resumed = await temporal(['workflow', 'signal', '--workflow-id', workflowId, '--name', 'resume', '--identity', 'oncall@bastion']);
    expect(resumed.code, resumed.stderr).toBe(0);

    await waitFor('the valid setRate to be applied', async () => (await client.progress(backfillId)).rate === 50, 30_000);
    await waitFor('the resume to be recorded', async () => (await client.audit(backfillId)).some((e) => e.action === 'resume'), 30_000);
    const refused = await waitFor('four refused signals in the audit trail', async () => {
      const entries = await refusedOf(backfillId);
      return entries.length >= 4 ? entries : undefined;
    }, 30_000);
    // A control that named no one (or a reserved identity) is put down to the Temporal client identity the server recorded of its signal: Temporal's CLI sends temporal-cli:$USER@$HOST.
    const cliSender = expect.stringMatching(/^temporal-cli:.+@.+ \(from the signal: its Temporal client identity\)$/);
    expect(refused.map((e) => [e.action, e.identity, e.details.signal, e.details.code])).toEqual([
      ['set-rate', 'mallory@example.com', 'setRate', 'policy_violation'],
      ['pause', cliSender, 'pause', 'policy_violation'],
      ['pause', cliSender, 'pause', 'invalid_argument'],
      ['pause', cliSender, 'pause', 'invalid_argument'],
    ]);
    expect(refused.some((e) => e.identity === UNKNOWN_IDENTITY)).toBe(false);
    expect(refused[0]).toMatchObject({ reason: 'because I can', verified: false, details: { sent: '5000 null', why: expect.stringMatching(/caps\.backfill\.rate/) } });
    expect(String(refused[1]!.details.why)).toMatch(/pause needs a reason/);
    expect(String(refused[2]!.details.why)).toMatch(/\{ reason\?, identity\? \}/);
    // A reason too long for a control is kept as its beginning; the reserved identity is not taken.
    expect(refused[3]!.reason).toBe(`${'r'.repeat(REFUSED_TEXT.reason)}…`);
    expect(refused[3]!.details.why).toMatch(/longer than 2000 characters/);

    const applied = (await client.audit(backfillId)).filter((e) => e.outcome === 'applied').map((e) => [e.action, e.identity]);
    expect(applied).toEqual([
      ['start', 'starter@example.com'],
      ['set-rate', 'ops@example.com'],
      ['resume', 'oncall@bastion (from the signal: its Temporal client identity)'],
    ]);
    expect((await client.progress(backfillId)).paused).toBe(false);

    const human = await runCli(['audit', backfillId]);
    expect(human.code, human.stderr).toBe(0);
    // A table: cells wrap within their columns.
    expect(human.stdout).toMatch(/set-rate +│ mallory@example.com +│ because I can +│ refused: refused by the policy/);
    expect(human.stdout).toContain('(refused)');
    expect(human.stdout).toMatch(/\(a setRate/);
    await client.cancel(backfillId);
  });

  it('a payload nested far deeper than JSON.stringify can go is refused and recorded, cut short; the backfill goes on and takes the next signal', async () => {
    const backfillId = await started();
    const workflowId = backfillWorkflowId(backfillId);
    // Read by JSON.parse; JSON.stringify of it overflows the stack. Sent raw: the SDK's client would stringify it itself.
    const depth = 150_000;
    const deep = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const encoder = new TextEncoder();
    for (const signalName of ['setBudget', 'approve']) {
      await client.client.workflowService.signalWorkflowExecution({
        namespace: 'default',
        workflowExecution: { workflowId },
        signalName,
        identity: 'deep',
        input: { payloads: [{ metadata: { encoding: encoder.encode('json/plain') }, data: encoder.encode(deep) }] },
      });
    }
    await client.client.workflow.getHandle(workflowId).signal(setRateSignal, 30, null, { identity: 'ops@example.com', reason: 'after the deep ones' });
    await waitFor('the setRate after the deep signals to be applied', async () => (await client.progress(backfillId)).rate === 30, 30_000);
    const refused = await waitFor('both deep signals refused in the audit trail', async () => {
      const entries = await refusedOf(backfillId);
      return entries.length >= 2 ? entries : undefined;
    }, 30_000);
    expect(refused.map((e) => e.details.signal)).toEqual(['setBudget', 'approve']);
    for (const entry of refused) expect(String(entry.details.sent).length).toBeLessThanOrEqual(REFUSED_TEXT.sent + 1);
    const history = await client.client.workflow.getHandle(workflowId).fetchHistory();
    expect((history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes)).toEqual([]);
    await client.cancel(backfillId);
  });

  it('a flood of refused signals leaves the first 10 and a few more, each counting those not recorded', async () => {
    const backfillId = await started();
    const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
    for (let i = 0; i < 30; i++) await handle.signal(pauseSignal);
    // A valid signal after the flood: applied, and its entry comes after the refused ones.
    await handle.signal(setRateSignal, 20, null, { identity: 'ops@example.com', reason: 'after the flood' });
    await waitFor('the setRate after the flood to be applied', async () => (await client.progress(backfillId)).rate === 20, 30_000);
    const refused = await refusedOf(backfillId);
    expect(refused.map((e) => e.details.refusedSignal)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 18, 26]);
    expect(refused.at(-1)!.details.unrecorded).toBe(11);
    expect((await client.audit(backfillId)).at(-1)).toMatchObject({ action: 'set-rate', outcome: 'applied', reason: 'after the flood' });
    await client.cancel(backfillId);
  });
});
