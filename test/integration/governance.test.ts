/**
 * Governance enforced on a real server, by workers given a policy file: a start the policy
 * refuses leaves nothing started; a backfill that needs an approval runs nothing until one
 * signed by an allowed signer arrives (self-approval, an unlisted key, a junk signature and
 * another plan's hash are refused); a spent retry budget stops new partitions until set-budget
 * raises it; a control without a reason is refused where the policy requires one; and
 * `backfill audit` lists every action with who and why. Temporal's own CLI meets the same rules.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import { signSubject } from '../../client/sign.ts';
import { NonRetryableError } from '../../activities/errors.ts';
import type { Transform } from '../../activities/transforms.ts';
import { planHash } from '../../core/approval.ts';
import type { AuditEntry } from '../../core/audit.ts';
import { BackfillError } from '../../core/errors.ts';
import { CORE_GENERATION, type BackfillCarry, type BackfillInput } from '../../core/protocol.ts';
import type { SpecInput } from '../../core/spec.ts';
import { priorityOfRuns } from '../../scripts/fairness/backfills.ts';
import { admissionUpdate, approveSignal, approveUpdate, backfillWorkflowId, carryQuery, nodeReportSignal, nodeWorkflowId } from '../../workflows/definitions.ts';
import { Gate, address, nothingInFlight, runCli, refusal, scratch, sshKeygen, startTestWorker, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

/** Keys the `spend` transform fails on (for good: one failed attempt each); the others take a while. */
const failing = new Set<string>();
/** Days from the 10th on wait here until the retry budget has paused the backfill: it cannot run out of work first. */
const afterBudget = new Gate();
const transforms: Record<string, Transform> = {
  spend: async ({ node, partition, signal }) => {
    if (failing.has(`${node}/${partition}`)) throw new NonRetryableError(`source data for ${partition} is corrupt`);
    if (partition >= '2024-01-10') await afterBudget.pass(signal);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 250);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  },
};

const dir = scratch('governance');
const key = (name: string) => join(dir, `${name}_ed25519`);
const principal = (name: string) => `${name}@example.com`;

const keygen = (name: string): string => sshKeygen(key(name), principal(name));

const queue = uniqueQueue('governance');
let worker: TestWorker;
/** alice starts backfills (and may not approve her own); bob approves; mallory's key is not listed. */
let alice: BackfillClient;
let bob: BackfillClient;

const REASON_REQUIRED = ['pause', 'resume', 'cancel', 'set-rate', 'set-budget', 'discard'];

beforeAll(async () => {
  const signers = [keygen('alice'), keygen('bob')];
  keygen('mallory');
  const policy = join(dir, 'backfill.policy.yaml');
  writeFileSync(
    policy,
    [
      'version: 1',
      'caps:',
      '  backfill: { rate: 100 }',
      'approval:',
      '  datasets: [protected_*]',
      '  allowedSigners:',
      ...signers.map((s) => `    - "${s}"`),
      'budgets:',
      '  retries: { limit: 2, max: 100 }',
      'priority: { highest: 2, maxFairnessWeight: 4 }',
      'reasons:',
      `  required: [${REASON_REQUIRED.join(', ')}]`,
      '  minLength: 5',
      '',
    ].join('\n'),
  );
  worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transforms, policyFile: policy });
  alice = await BackfillClient.connect({ settings: localConnection(address()), identity: principal('alice') });
  bob = await BackfillClient.connect({ settings: localConnection(address()), identity: principal('bob') });
});

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await worker?.stop();
});

let serial = 0;
const spec = (nodes: SpecInput['nodes'], days = 3) =>
  testSpec(queue, { name: `governance-${++serial}`, partitions: { grain: 'day', start: '2024-01-01', end: `2024-01-${String(1 + days).padStart(2, '0')}` }, nodes });

const exists = async (client: BackfillClient, workflowId: string) =>
  client.client.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      () => true,
      (error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return false;
        throw error;
      },
    );

/** Starts `input` with Temporal's own CLI, as anyone who can reach the server can (`extra`: more of its flags). */
async function startWithTemporalCli(input: BackfillInput, extra: string[] = []): Promise<void> {
  const file = join(dir, `${input.backfillId}.json`);
  writeFileSync(file, JSON.stringify(input));
  const started = await temporal(['workflow', 'start', '--type', 'backfillWorkflow', '--task-queue', queue, '--workflow-id', backfillWorkflowId(input.backfillId), '--input-file', file, ...extra]);
  expect(started.code, started.stderr).toBe(0);
}

/** How a workflow started with Temporal's CLI failed (it must fail): the cause carries the refusal's code. */
const failureOf = async (backfillId: string) => (await refusal(alice.client.workflow.getHandle(backfillWorkflowId(backfillId)).result())) as Error & { cause?: Error & { type?: string } };

const auditOf = async (backfillId: string): Promise<AuditEntry[]> => {
  const result = await runCli<AuditEntry[] | { entries: AuditEntry[] }>(['audit', backfillId, '--json']);
  expect(result.code, result.stderr).toBe(0);
  const json = result.json!;
  return Array.isArray(json) ? json : json.entries;
};

describe('governance on a real server', () => {
  it('a start the policy refuses fails fast naming the rule, and leaves nothing started: no node workflow, no partition, no lease', async () => {
    const refused = spec([{ id: 'orders', transform: 'noop' }]);
    const error = await refusal(alice.start(refused, { taskQueue: queue, id: `refused-${serial}`, limits: { rate: 500 } }));
    expect(error).toBeInstanceOf(BackfillError);
    expect((error as BackfillError).code).toBe('policy_violation');
    expect(error.message).toMatch(/caps\.backfill\.rate/);
    expect(await exists(alice, nodeWorkflowId(`refused-${serial}`, 'orders'))).toBe(false);
    expect(await worker.warehouse.ledger({ backfillId: `refused-${serial}` })).toEqual([]);
    // The dataset was not leased: another backfill of it, within the caps, runs at once.
    const allowed = await alice.start(refused, { taskQueue: queue, id: `allowed-${serial}`, limits: { rate: 50 } });
    expect((await alice.wait(allowed.backfillId, 60_000)).state).toBe('completed');
  });

  it('a refused start uses up nothing: status names the refusal, the same id starts again without --rerun; once a run of it ran, only --rerun does', async () => {
    const backfillId = `refused-again-${++serial}`;
    const again = spec([{ id: 'orders', transform: 'noop' }]);
    expect(await refusal(alice.start(again, { taskQueue: queue, id: backfillId, limits: { rate: 500 } }))).toMatchObject({ code: 'policy_violation' });
    const status = await alice.status(backfillId);
    expect(status.state).toBe('failed');
    expect(status.refused).toMatch(/^caps\.backfill\.rate: /);
    const text = await runCli(['status', backfillId]);
    expect(text.stdout).toContain(`refused by the policy at its start, so nothing of it ran:\n      ${status.refused}`);
    expect((await runCli<{ refused?: string }>(['status', backfillId, '--json'])).json?.refused).toBe(status.refused);

    await alice.start(again, { taskQueue: queue, id: backfillId, limits: { rate: 50 } });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    const ran = /already ran: pass --rerun/;
    expect(await refusal(alice.start(again, { taskQueue: queue, id: backfillId, limits: { rate: 50 } }))).toMatchObject({ code: 'already_exists', message: expect.stringMatching(ran) });
    // A --rerun the policy refused ran nothing, but the run before it did.
    expect(await refusal(alice.start(again, { taskQueue: queue, id: backfillId, rerun: true, limits: { rate: 500 } }))).toMatchObject({ code: 'policy_violation' });
    expect(await refusal(alice.start(again, { taskQueue: queue, id: backfillId, limits: { rate: 50 } }))).toMatchObject({ code: 'already_exists', message: expect.stringMatching(ran) });
  });

  it('a signed start after a refused one of its id follows that run, and is admitted once', async () => {
    const backfillId = `signed-again-${++serial}`;
    const again = spec([{ id: 'orders', transform: 'noop' }]);
    const signed = { taskQueue: queue, id: backfillId, reason: 'finance restated Q1', signKey: key('alice') };
    expect(await refusal(alice.start(again, { ...signed, limits: { rate: 500 } }))).toMatchObject({ code: 'policy_violation' });
    await alice.start(again, { ...signed, limits: { rate: 50 } });
    expect((await alice.progress(backfillId)).governance?.starter).toEqual({ identity: principal('alice'), verified: true });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
  });

  it('a start with Temporal\'s own CLI meets the same policy', async () => {
    const backfillId = `temporal-cli-${++serial}`;
    const input: BackfillInput = { core: CORE_GENERATION, backfillId, spec: spec([{ id: 'orders', transform: 'noop' }]), range: {}, limits: { rate: 500 }, governance: { identity: principal('bob') } };
    await startWithTemporalCli(input);
    const failure = await failureOf(backfillId);
    expect(failure.cause?.type).toBe('policy_violation');
    expect(failure.cause?.message).toMatch(/caps\.backfill\.rate/);
    expect(await exists(alice, nodeWorkflowId(backfillId, 'orders'))).toBe(false);
  });

  it("the policy's priority caps hold for Temporal's own CLI and the client; an allowed priority reaches the node workflows", async () => {
    // Temporal's CLI: more urgent than allowed, a weight above the most, and a weight with no key.
    const backfillId = `priority-cli-${++serial}`;
    const input: BackfillInput = { core: CORE_GENERATION, backfillId, spec: spec([{ id: 'orders', transform: 'noop' }]), range: {}, governance: { identity: principal('bob') } };
    await startWithTemporalCli(input, ['--priority-key', '1', '--fairness-weight', '10']);
    const failure = await failureOf(backfillId);
    expect(failure.cause?.type).toBe('policy_violation');
    for (const rule of ['priority.highest', 'priority.maxFairnessWeight', 'fairness key']) expect(failure.cause?.message).toContain(rule);
    expect(await exists(alice, nodeWorkflowId(backfillId, 'orders'))).toBe(false);

    // The client: refused before anything runs.
    const urgent = await refusal(alice.start(spec([{ id: 'orders', transform: 'noop' }]), { taskQueue: queue, id: `priority-client-${serial}`, priority: 1 }));
    expect((urgent as BackfillError).code).toBe('policy_violation');
    expect(urgent.message).toMatch(/priority 1 is more urgent than this policy allows .*--priority 2/);

    // Within the caps: it runs, and every run of its workflows (they continue as new here) has its priority, fairness key and weight.
    const allowed = `priority-ok-${serial}`;
    await alice.start(spec([{ id: 'orders', transform: 'noop', batchSize: 1 }], 28), { taskQueue: queue, id: allowed, priority: 2, fairnessWeight: 4, tuning: { historyLimit: 60 } });
    expect((await alice.wait(allowed, 90_000)).state).toBe('completed');
    const runs = await priorityOfRuns(alice, allowed, ['orders']);
    expect(runs.filter((r) => r.workflowId === nodeWorkflowId(allowed, 'orders')).length).toBeGreaterThan(1);
    for (const run of runs) expect(run.priority, `${run.workflowId} ${run.runId}`).toEqual({ priorityKey: 2, fairnessKey: allowed, fairnessWeight: 4 });
  });

  describe('approvals that cannot be faked', () => {
    let backfillId: string;
    let hash: string;
    const protectedSpec = spec([{ id: 'protected_orders', transform: 'spend' }]);

    it('a backfill of a protected dataset waits for an approval and runs nothing', async () => {
      const started = await alice.start(protectedSpec, { taskQueue: queue, id: `approval-${serial}`, reason: 'finance restated Q1', signKey: key('alice') });
      backfillId = started.backfillId;
      expect(started.admission?.state).toBe('awaiting_approval');
      const progress = await alice.progress(backfillId);
      expect(progress.state).toBe('awaiting_approval');
      expect(progress.governance?.starter).toEqual({ identity: principal('alice'), verified: true });
      hash = progress.governance!.planHash;
      expect(hash).toBe(planHash({ spec: protectedSpec, range: {} }));
    });

    it('a staged start of the same plan has a plan hash of its own, and meets the lease the waiting direct start holds', async () => {
      const started = await alice.start(protectedSpec, { taskQueue: queue, id: `approval-staged-${serial}`, reason: 'finance restated Q1, staged', signKey: key('alice'), stage: true });
      expect(started.admission?.state).toBe('awaiting_approval');
      const staged = started.admission!.planHash;
      expect(staged).toBe(planHash({ spec: protectedSpec, range: {}, stage: true }));
      expect(staged).not.toBe(hash);
      // A backfill waiting for its approval leases its datasets already: one writer per dataset, always.
      // (An approval of the staged plan, sent to the direct start, is refused below as another plan's.)
      expect((await failureOf(started.backfillId)).cause?.type).toBe('dataset_busy');
    });

    it('self-approval, an unlisted key, a junk signature and another plan\'s hash are each refused', async () => {
      const self = await refusal(alice.approve(backfillId, { reason: 'looks right to me', signKey: key('alice') }));
      expect(self.message).toMatch(/self_approval/);
      const unlisted = await refusal(alice.approve(backfillId, { reason: 'trust me on this', signKey: key('mallory') }));
      expect(unlisted.message).toMatch(/unknown_signer.*not among the policy's allowed signers/);

      const handle = bob.client.workflow.getHandle(backfillWorkflowId(backfillId));
      const subject = { action: 'approve' as const, backfillId, namespace: 'default', planHash: hash, reason: 'reviewed with finance', signedAt: new Date().toISOString() };
      const good = await signSubject(subject, { keyFile: key('bob') });
      const unsigned = await refusal(handle.executeUpdate(approveUpdate, { args: [{ text: good.text, signature: '' }, { identity: principal('bob') }] }));
      expect(unsigned).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(String((unsigned as WorkflowUpdateFailedError).cause?.message)).toMatch(/malformed_signature/);
      // bob's signature of another text (another reason) does not sign this one.
      const elsewhere = await signSubject({ ...subject, reason: 'something else entirely' }, { keyFile: key('bob') });
      const mismatched = await refusal(handle.executeUpdate(approveUpdate, { args: [{ text: good.text, signature: elsewhere.signature }, { identity: principal('bob') }] }));
      expect(String((mismatched as WorkflowUpdateFailedError).cause?.message)).toMatch(/bad_signature/);
      // The staged start of the same spec is another plan: its approval does not approve this one.
      const other = await signSubject({ ...subject, planHash: planHash({ spec: protectedSpec, range: {}, stage: true }) }, { keyFile: key('bob') });
      const otherPlan = await refusal(handle.executeUpdate(approveUpdate, { args: [other, { identity: principal('bob') }] }));
      expect(String((otherPlan as WorkflowUpdateFailedError).cause?.message)).toMatch(/other_plan/);

      // Still nothing ran.
      const progress = await alice.progress(backfillId);
      expect(progress).toMatchObject({ state: 'awaiting_approval', done: 0, running: 0 });
      expect(await worker.warehouse.ledger({ backfillId })).toEqual([]);
    });

    it('an approval signed by an allowed signer releases it, and the audit trail lists every attempt with who and why', async () => {
      const approved = await bob.approve(backfillId, { reason: 'reviewed with finance', signKey: key('bob') });
      expect(approved.approver).toBe(principal('bob'));
      expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
      expect(await worker.warehouse.ledger({ backfillId })).toHaveLength(3);

      const audit = await auditOf(backfillId);
      // A verified signer is named as such; an approval whose signature failed is recorded under the sender's declared identity.
      expect(audit.map((e) => [e.action, e.outcome, e.identity, e.verified])).toEqual([
        ['start', 'applied', principal('alice'), true],
        ['approve', 'refused', principal('alice'), true],
        ['approve', 'refused', principal('alice'), false],
        ['approve', 'refused', principal('bob'), false],
        ['approve', 'refused', principal('bob'), false],
        ['approve', 'refused', principal('bob'), false],
        ['approve', 'applied', principal('bob'), true],
      ]);
      expect(audit[0]!.reason).toBe('finance restated Q1');
      expect(audit[1]).toMatchObject({ reason: 'looks right to me', details: { code: 'self_approval' } });
      expect(audit.slice(2, 6).map((e) => e.details.code)).toEqual(['unknown_signer', 'malformed_signature', 'bad_signature', 'other_plan']);
      expect(audit[6]).toMatchObject({ reason: 'reviewed with finance', details: { planHash: hash } });
    });
  });

  it('a new run after a fix sent while it ran (resume --spec) is judged on the fixed spec: an approval is of that plan', async () => {
    const before = spec([{ id: 'protected_fixed', transform: 'spend', params: { v: 1 } }], 2);
    const fixed = { ...before, nodes: before.nodes.map((n) => ({ ...n, params: { v: 2 } })) };
    const backfillId = `approval-fixed-${serial}`;
    failing.add('protected_fixed/2024-01-01');
    await alice.start(before, { taskQueue: queue, id: backfillId, reason: 'finance restated Q1' });
    expect((await alice.resume(backfillId, { spec: fixed, reason: 'the parameters are fixed' })).changed).toEqual(['protected_fixed']);
    await bob.approve(backfillId, { reason: 'reviewed the fixed plan', signKey: key('bob') });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed_with_failures');

    failing.delete('protected_fixed/2024-01-01');
    await alice.retryFailed(backfillId, undefined, undefined, { reason: 'the source is repaired' });
    const judged = await waitFor('the new run to be judged', async () => {
      const progress = await alice.progress(backfillId);
      return progress.state === 'awaiting_approval' ? progress : undefined;
    });
    // The approval the new run waits for is of the fixed spec's plan, the one it runs.
    expect(judged.governance?.planHash).toBe(planHash({ spec: fixed, range: {} }));
    await alice.cancel(backfillId, { reason: 'test over' });
  });

  describe('budgets and reasons', () => {
    let backfillId: string;

    it('a spent retry budget stops new partitions', async () => {
      const budgetSpec = spec([{ id: 'spend', transform: 'spend', concurrency: 1 }], 20);
      failing.add('spend/2024-01-01').add('spend/2024-01-02');
      backfillId = (await bob.start(budgetSpec, { taskQueue: queue, id: `budget-${serial}`, tuning: { reportIntervalMs: 250 } })).backfillId;
      await waitFor('the retry budget to pause the backfill', async () => (await bob.progress(backfillId)).governance?.holds.some((h) => h.kind === 'budget'), 60_000);
      afterBudget.open();
      const held = await waitFor(
        'the running partitions to finish',
        async () => {
          const p = await bob.progress(backfillId);
          return p.governance?.holds.some((h) => h.kind === 'budget') && p.running === 0 ? p : undefined;
        },
        60_000,
      );
      expect(held.paused).toBe(true);
      expect(held.governance?.budgets.retries).toMatchObject({ used: 2, limit: 2 });
      expect(held.pending).toBeGreaterThan(0);
      expect(held.done + held.failed).toBeLessThan(20);
      // A control sent now sees the same count: nothing started since.
      await refusal(bob.setRate(backfillId, 5));
      expect((await bob.progress(backfillId)).done).toBe(held.done);
    });

    it('a control without a reason is refused where the policy requires one (client library and command line)', async () => {
      for (const control of [() => bob.setRate(backfillId, 5), () => bob.setBudget(backfillId, 'retries', 10), () => bob.pause(backfillId), () => bob.resume(backfillId)]) {
        const error = await refusal(control());
        expect(error).toBeInstanceOf(BackfillError);
        expect((error as BackfillError).code).toBe('policy_violation');
        expect(error.message).toMatch(/needs a reason: add --reason/);
      }
      const short = await refusal(bob.setRate(backfillId, 5, undefined, { reason: 'x' }));
      expect(short.message).toMatch(/too short/);
      const cli = await runCli(['pause', backfillId]);
      expect(cli.code).not.toBe(0);
      expect(cli.stderr).toMatch(/pause needs a reason: add --reason/);
      const cliJson = await runCli<{ error: { code: string } }>(['pause', backfillId, '--json']);
      expect(cliJson.json?.error.code).toBe('policy_violation');
      expect((await runCli(['pause', backfillId, '--reason', 'checking the command line'])).code).toBe(0);
      expect((await runCli(['resume', backfillId, '--reason', 'checked the command line'])).code).toBe(0);
      await bob.setRate(backfillId, 50, undefined, { reason: 'faster now that the source is fixed' });
    });

    it('set-budget raises the budget and the backfill goes on where it was: no partition runs twice', async () => {
      const before = (await bob.progress(backfillId)).done;
      await bob.setBudget(backfillId, 'retries', 10, { reason: 'two corrupt days, known (INC-77)' });
      const outcome = await bob.wait(backfillId, 90_000);
      expect(outcome.state).toBe('completed_with_failures');
      expect(outcome.progress).toMatchObject({ done: 18, failed: 2 });
      expect(before).toBeLessThan(18);
      const ledger = await worker.warehouse.ledger({ backfillId });
      expect(ledger).toHaveLength(18);
      expect(new Set(ledger.map((r) => r.partition)).size).toBe(18);
      expect(ledger.every((r) => r.executions === 1)).toBe(true);
    });

    it('backfill audit lists each operator action with its identity and reason', async () => {
      const audit = await auditOf(backfillId);
      const actions = audit.map((e) => ({ action: e.action, outcome: e.outcome, identity: e.identity, reason: e.reason }));
      expect(actions[0]).toMatchObject({ action: 'start', identity: principal('bob'), outcome: 'applied' });
      expect(actions).toContainEqual({ action: 'budget-pause', outcome: 'applied', identity: 'policy', reason: null });
      const cliIdentity = actions.find((a) => a.action === 'pause')?.identity;
      expect(cliIdentity).toMatch(/@/);
      expect(actions.filter((a) => a.outcome === 'applied' && ['pause', 'resume', 'set-rate', 'set-budget'].includes(a.action))).toEqual([
        { action: 'pause', outcome: 'applied', identity: cliIdentity, reason: 'checking the command line' },
        { action: 'resume', outcome: 'applied', identity: cliIdentity, reason: 'checked the command line' },
        { action: 'set-rate', outcome: 'applied', identity: principal('bob'), reason: 'faster now that the source is fixed' },
        { action: 'set-budget', outcome: 'applied', identity: principal('bob'), reason: 'two corrupt days, known (INC-77)' },
      ]);
      // Refused controls are not actions taken: the trail keeps what was applied and the refused approvals.
      expect(actions.filter((a) => a.outcome === 'refused')).toEqual([]);
      const human = await runCli(['audit', backfillId]);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toMatch(/set-budget/);
      expect(human.stdout).toContain('two corrupt days, known (INC-77)');
    });

    it('the discard of what a cancelled staged backfill left meets the reasons rule, and the audit trail has who and why', async () => {
      const id = (await bob.start(spec([{ id: 'staged_left', sql: 'SELECT :partition AS day, 1 AS v' }]), { taskQueue: queue, id: `left-${serial}`, stage: true })).backfillId;
      await waitFor('its partitions to be staged', async () => (await bob.progress(id)).state === 'staged', 60_000, 200);
      await bob.cancel(id, { reason: 'the source changed again' });
      expect((await bob.wait(id, 60_000)).state).toBe('cancelled');
      const refused = await refusal(bob.decideStaged(id, 'discard'));
      expect(refused).toMatchObject({ code: 'policy_violation', message: expect.stringMatching(/discard needs a reason: add --reason/) });
      expect(new Set((await worker.warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['staged']));
      expect(await bob.decideStaged(id, 'discard', 'left behind by the cancel')).toMatchObject({ versions: 3, by: principal('bob') });
      expect(new Set((await worker.warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['discarded']));
      const discards = (await auditOf(id)).filter((e) => e.action === 'discard').map((e) => ({ outcome: e.outcome, identity: e.identity, reason: e.reason }));
      expect(discards).toEqual([
        { outcome: 'refused', identity: principal('bob'), reason: null },
        { outcome: 'applied', identity: principal('bob'), reason: 'left behind by the cancel' },
      ]);
    });
  });

  describe("Temporal's own CLI, with junk and forged payloads", () => {
    let backfillId: string;
    let workflowId: string;

    it('junk approvals, a forged identity, over-the-cap budgets and short reasons are refused; the backfill still waits', async () => {
      backfillId = (await alice.start(spec([{ id: 'protected_ledger', transform: 'noop' }]), { taskQueue: queue, id: `forged-${++serial}`, reason: 'ledger fix for Q2' })).backfillId;
      workflowId = backfillWorkflowId(backfillId);
      const update = (name: string, ...inputs: string[]) => temporal(['workflow', 'update', 'execute', '--workflow-id', workflowId, '--name', name, ...inputs.flatMap((i) => ['--input', i])]);
      const signal = (name: string, ...inputs: string[]) => temporal(['workflow', 'signal', '--workflow-id', workflowId, '--name', name, ...inputs.flatMap((i) => ['--input', i])]);

      const cases: Array<[string[], RegExp]> = [
        [['approve', '"junk"'], /an approval is \{ text, signature \}/],
        [['approve', '{"text":"backfill signature v1\\n","signature":"x"}'], /signed text/],
        [['approve', JSON.stringify({ text: 'x', signature: 'y' }), '{"identity":"bob@example.com"}'], /signed text|refused/],
        [['setBudget', '{"budget":"retries","limit":1000000}', '{"reason":"because I can"}'], /above the policy's most/],
        [['setBudget', '{"budget":"retries","limit":-1}', '{"reason":"because I can"}'], /a budget change is/],
        [['pause', '{"identity":"root","reason":"x"}'], /too short/],
        [['pause', '"junk"'], /\{ reason\?, identity\? \}/],
        [['pause', '{"identity":"root","reason":"because","admin":true}'], /unknown fields 'admin'/],
        [['setRate', '5000', 'null', '{"reason":"because I can"}'], /caps\.backfill\.rate/],
      ];
      for (const [[name, ...inputs], expected] of cases) {
        const result = await update(name!, ...inputs);
        expect(result.code, `${name} ${inputs.join(' ')}: ${result.stdout}`).not.toBe(0);
        expect((result.stderr + result.stdout).replaceAll('\\"', '"'), `${name} ${inputs.join(' ')}`).toMatch(expected);
      }
      // A valid approval of alice's own backfill, signed by alice, sent with bob's identity: the signature decides, not the identity.
      const progress = await alice.progress(backfillId);
      const own = await signSubject(
        { action: 'approve', backfillId, namespace: 'default', planHash: progress.governance!.planHash, reason: 'I am bob, honestly', signedAt: new Date().toISOString() },
        { keyFile: key('alice') },
      );
      // Alice did not sign the start here, so her client identity is what she started it as; a declared identity cannot pass for another.
      const forged = await update('approve', JSON.stringify(own), JSON.stringify({ identity: principal('bob') }));
      expect(forged.code).not.toBe(0);
      expect(forged.stderr + forged.stdout).toMatch(/self_approval/);
      // Signals are not answered: junk ones are ignored.
      for (const junk of ['"junk"', JSON.stringify({ text: own.text, signature: 'forged' })]) expect((await signal('approve', junk)).code).toBe(0);
      expect((await signal('setBudget', '{"budget":"retries","limit":1000000}')).code).toBe(0);

      const after = await alice.progress(backfillId);
      expect(after).toMatchObject({ state: 'awaiting_approval', done: 0, running: 0 });
      expect(after.governance?.budgets.retries).toMatchObject({ limit: 2 });
      expect(await worker.warehouse.ledger({ backfillId })).toEqual([]);
    });

    it('a start with a forged carry (an approval "already given", a spec of its own) is judged again: the approval it claims is not given', async () => {
      const carry = (await alice.client.workflow.getHandle(workflowId).query(carryQuery)) as BackfillCarry;
      expect(carry.governance?.approval.needed).toBe(true);
      const forgedId = `forged-carry-${++serial}`;
      const forgedCarry: BackfillCarry = {
        ...carry,
        governance: { ...carry.governance!, approval: { ...carry.governance!.approval, approvedBy: principal('bob'), approvedAt: Date.now() } },
        // Not the spec it runs or is judged on, nor one it hands to a later run.
        spec: spec([{ id: 'protected_ledger', transform: 'noop', params: { smuggled: true } }]),
      };
      const input: BackfillInput = { core: CORE_GENERATION, backfillId: forgedId, spec: spec([{ id: 'protected_ledger', transform: 'noop' }]), range: {}, carry: forgedCarry };
      await startWithTemporalCli(input);
      // Judged, it then meets the lease of the backfill whose carry it forged (same dataset, still waiting):
      // it ends dataset_busy, always, and its end state still says what the judgement gave it.
      expect((await failureOf(forgedId)).cause?.type).toBe('dataset_busy');
      const progress = await alice.progress(forgedId);
      expect(progress.governance?.approval).toMatchObject({ needed: true, approvedBy: null });
      expect(progress.governance?.starter.identity).toMatch(/^unknown/);
      expect(progress.governance?.planHash).toBe(planHash({ spec: input.spec, range: {} }));
      expect(await alice.client.workflow.getHandle(backfillWorkflowId(forgedId)).query(carryQuery)).not.toHaveProperty('spec');
      expect(await worker.warehouse.ledger({ backfillId: forgedId })).toEqual([]);
    });

    it('a cancel with Temporal\'s CLI (no reason asked) is in the audit trail with the requester the server recorded', async () => {
      const cancelled = await temporal(['workflow', 'cancel', '--workflow-id', workflowId]);
      expect(cancelled.code, cancelled.stderr).toBe(0);
      expect((await alice.wait(backfillId, 60_000)).state).toBe('cancelled');
      const cancel = (await auditOf(backfillId)).find((e) => e.action === 'cancel');
      // Temporal's CLI asks for no reason (the policy's reasons.required cannot refuse a cancellation); the server names who asked.
      expect(cancel).toMatchObject({ reason: null, verified: false, details: { announced: false } });
      expect(cancel!.identity).toMatch(/^\S+ \(from the cancellation request\)$/);
    });
  });
});

/**
 * A run that continues as new (here at a low `tuning.historyLimit`, reached with signals it
 * ignores) in the very workflow task that brings an approval or a cancel's announcement: neither
 * is lost with the run.
 */
describe('across a continue-as-new of the parent', () => {
  const handleOf = (backfillId: string) => alice.client.workflow.getHandle(backfillWorkflowId(backfillId));
  /**
   * The latest run's history length once it has stopped growing: nothing of it on its way to the
   * worker or held by one (a workflow task scheduled and not yet started, or a lease activity, adds
   * its events later: on a loaded machine one waited longer than the 400 ms between two looks, and
   * the same length twice was taken for settled), and the same length twice.
   */
  async function settledLength(backfillId: string): Promise<{ length: number; runId: string }> {
    let last = -1;
    for (;;) {
      const d = await handleOf(backfillId).describe();
      const idle = await nothingInFlight(alice, backfillWorkflowId(backfillId));
      if (idle && d.historyLength === last) return { length: d.historyLength, runId: d.runId };
      last = idle ? d.historyLength : -1;
      await new Promise((r) => setTimeout(r, 400));
    }
  }
  /** A report of no node, which the workflow ignores: four events (the signal and a workflow task) and no command. */
  async function filler(backfillId: string, before: number): Promise<void> {
    await handleOf(backfillId).signal<[unknown]>(nodeReportSignal.name, {});
    await waitFor('the filler to land', async () => (await handleOf(backfillId).describe()).historyLength > before);
  }
  async function awaitingApproval(historyLimit: number): Promise<string> {
    const id = `approval-can-${++serial}`;
    await alice.start(spec([{ id: `protected_can_${serial}`, transform: 'noop' }]), { taskQueue: queue, id, reason: 'finance restated Q1', signKey: key('alice'), tuning: { historyLimit } });
    await waitFor('the approval to be awaited', async () => (await alice.progress(id)).state === 'awaiting_approval');
    return id;
  }
  /** Where a run awaiting approval levels off (measured once, at a limit it never reaches). */
  let baseline = 0;
  beforeAll(async () => {
    const id = await awaitingApproval(1000);
    baseline = (await settledLength(id)).length;
    await alice.cancel(id, { reason: 'the measure is taken' });
  });

  it('an approve signal whose workflow task continues as new is verified first, applied and audited', async () => {
    const limit = baseline + 14;
    const id = await awaitingApproval(limit);
    let { length, runId } = await settledLength(id);
    while (length + 3 < limit) {
      await filler(id, length);
      ({ length, runId } = await settledLength(id));
    }
    // The signal's workflow task starts at or past the limit: it continues as new.
    const hash = (await alice.progress(id)).governance!.planHash;
    const signed = await signSubject({ action: 'approve', backfillId: id, namespace: 'default', planHash: hash, reason: 'reviewed with finance', signedAt: new Date().toISOString() }, { keyFile: key('bob') });
    await bob.client.workflow.getHandle(backfillWorkflowId(id)).signal(approveSignal, signed, { identity: principal('bob') });
    expect((await alice.wait(id, 60_000)).state).toBe('completed');
    expect((await handleOf(id).describe()).runId).not.toBe(runId);
    const approvals = (await alice.audit(id)).filter((e) => e.action === 'approve');
    expect(approvals.map((e) => [e.outcome, e.identity, e.verified, e.reason])).toEqual([['applied', principal('bob'), true, 'reviewed with finance']]);
  });

  it("backfill cancel's announcement in a workflow task that continues as new: the cancel that follows is the announcer's", async () => {
    const limit = baseline + 14;
    const id = await awaitingApproval(limit);
    let { length, runId } = await settledLength(id);
    // The announcement's workflow task must start at the limit: fillers, then updates (fewer events each) to get there.
    while (length + 2 < limit) {
      if (length + 3 < limit) await filler(id, length);
      else await handleOf(id).executeUpdate(admissionUpdate);
      ({ length, runId } = await settledLength(id));
    }
    await alice.cancel(id, { reason: 'wrong range, stopping it' });
    expect((await alice.wait(id, 60_000)).state).toBe('cancelled');
    expect((await handleOf(id).describe()).runId).not.toBe(runId);
    const cancels = (await alice.audit(id)).filter((e) => e.action === 'cancel');
    expect(cancels.map((e) => [e.identity, e.reason, e.details])).toEqual([[principal('alice'), 'wrong range, stopping it', { requested: true }]]);
  });
});
