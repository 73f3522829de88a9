/**
 * A policy that wants every start signed (`approval.signedStart`) on a real server: a new run of
 * an ended backfill (retry-failed, resume) is a start, signed with `--sign-key` on its own
 * command; the signature covers its action, the backfill, the plan and the carry the run starts
 * from and its reason, so a start's signature, one of the other action or of another end, one
 * sent with another reason and an old one are refused. `--sign-key` to a backfill that still runs (paused) is refused before anything is sent.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import { signSubject, type SignedMessage } from '../../client/sign.ts';
import { NonRetryableError } from '../../activities/errors.ts';
import type { Transform } from '../../activities/transforms.ts';
import { carryHash, planHash, type SignedSubject } from '../../core/approval.ts';
import type { AuditEntry } from '../../core/audit.ts';
import { resumeCarry } from '../../core/coordinator.ts';
import { BackfillError } from '../../core/errors.ts';
import { CORE_GENERATION, type BackfillCarry, type BackfillInput, type StartGovernance } from '../../core/protocol.ts';
import type { ResolvedSpec, SpecInput } from '../../core/spec.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import type { backfillWorkflow } from '../../workflows/index.ts';
import { Gate, address, runCli, refusal, scratch, sshKeygen, startTestWorker, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

/** Partitions (`node/key`) the `flaky` transform fails, for good, until the test repairs them. */
const failing = new Set<string>();
const gate = new Gate();
const transforms: Record<string, Transform> = {
  flaky: async ({ node, partition }) => {
    if (failing.has(`${node}/${partition}`)) throw new NonRetryableError(`source data for ${partition} is corrupt`);
  },
  held: gate.holding('2024-01-02'),
};

const dir = scratch('signed-resume');
const key = (name: string) => join(dir, `${name}_ed25519`);
const principal = (name: string) => `${name}@example.com`;

const keygen = (name: string): string => sshKeygen(key(name), principal(name));

const queue = uniqueQueue('signed-resume');
const warehousePath = join(dir, 'warehouse.db');
let worker: TestWorker;
let alice: BackfillClient;

beforeAll(async () => {
  const signers = [keygen('alice'), keygen('bob')];
  const policy = join(dir, 'backfill.policy.yaml');
  writeFileSync(policy, ['version: 1', 'approval:', '  signedStart: true', '  maxSignatureAge: 1h', '  allowedSigners:', ...signers.map((s) => `    - "${s}"`), ''].join('\n'));
  worker = await startTestWorker({ queue, warehousePath, transforms, policyFile: policy });
  alice = await BackfillClient.connect({ settings: localConnection(address()), identity: principal('alice') });
});

afterAll(async () => {
  gate.open();
  await alice?.close();
  await worker?.stop();
});

let serial = 0;
const spec = (nodes: SpecInput['nodes']) => testSpec(queue, { name: `signed-resume-${++serial}`, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' }, nodes });

const auditOf = async (backfillId: string): Promise<AuditEntry[]> => {
  const result = await runCli<AuditEntry[] | { entries: AuditEntry[] }>(['audit', backfillId, '--json']);
  expect(result.code, result.stderr).toBe(0);
  const json = result.json!;
  return Array.isArray(json) ? json : json.entries;
};

/** The reason the signed runs give (and sign). */
const REASON = 'the source is repaired';

/**
 * Starts a new run of an ended backfill by hand (as anyone who can start a workflow can), with
 * `signature` in place of the one its command would make; resolves to why the policy refused it.
 */
async function handMadeRun(backfillId: string, runSpec: ResolvedSpec, carry: BackfillCarry, governance: StartGovernance): Promise<string> {
  const input: BackfillInput = { core: CORE_GENERATION, backfillId, spec: runSpec, range: {}, carry, governance: { identity: principal('mallory'), reason: REASON, ...governance } };
  const handle = await alice.client.workflow.start<typeof backfillWorkflow>('backfillWorkflow', { workflowId: backfillWorkflowId(backfillId), taskQueue: queue, args: [input] });
  const failure = (await refusal(handle.result())) as Error & { cause?: Error & { type?: string } };
  expect(failure.cause?.type).toBe('policy_violation');
  return failure.cause!.message;
}

describe('a signed new run of an ended backfill, where the policy wants every start signed', () => {
  const backfillId = `signed-retry-${Date.now().toString(36)}`;
  let runSpec: ResolvedSpec;
  /** The carry a retry-failed of the first run's end starts from. */
  let retryCarry: BackfillCarry;
  let startSignature: SignedMessage;
  const sign = (subject: Partial<SignedSubject>) =>
    signSubject({ action: 'retry-failed', backfillId, namespace: alice.namespace, planHash: planHash({ spec: runSpec, range: {} }), carryHash: carryHash(retryCarry), reason: REASON, signedAt: new Date().toISOString(), ...subject }, { keyFile: key('alice') });

  beforeAll(async () => {
    const node = `orders_${serial}`;
    runSpec = spec([{ id: node, transform: 'flaky' }]);
    failing.add(`${node}/2024-01-02`);
    await alice.start(runSpec, { taskQueue: queue, id: backfillId, reason: 'restate January', signKey: key('alice') });
    const ended = await alice.wait(backfillId, 60_000);
    expect(ended.state).toBe('completed_with_failures');
    retryCarry = resumeCarry((await alice.result(backfillId)).carry);
    startSignature = (await alice.inputOf(backfillId))!.governance!.signature!;
    failing.clear();
  });

  it('an unsigned retry-failed is refused, naming --sign-key on retry-failed', async () => {
    const refused = await refusal(alice.retryFailed(backfillId));
    expect(refused).toBeInstanceOf(BackfillError);
    expect((refused as BackfillError).code).toBe('policy_violation');
    expect(refused.message).toContain('a retry-failed starts a new run, so sign it: backfill retry-failed <id> --sign-key <your ssh-ed25519 key>');
  });

  it("a signature replayed from another run, action, end or reason is refused: the start's own, a resume's, another end's, another reason, an old one", async () => {
    const retry = { action: 'resume' as const, resumeRequest: { retryFailed: {} } };
    // The start's signature is in its input, for anyone who reads the history: it does not retry.
    expect(await handMadeRun(backfillId, runSpec, retryCarry, { ...retry, signature: startSignature })).toMatch(/\(other_action\): the signature is for 'start', not 'retry-failed'/);
    // Nor does a resume's, nor a retry-failed's resume.
    expect(await handMadeRun(backfillId, runSpec, retryCarry, { ...retry, signature: await sign({ action: 'resume' }) })).toMatch(/\(other_action\): the signature is for 'resume', not 'retry-failed'/);
    expect(await handMadeRun(backfillId, runSpec, retryCarry, { action: 'resume', signature: await sign({}) })).toMatch(/\(other_action\): the signature is for 'retry-failed', not 'resume'/);
    // One made for another end of the backfill (here: the end before a later run) does not start from this one.
    const laterEnd = { ...retryCarry, runs: retryCarry.runs + 1 };
    expect(await handMadeRun(backfillId, runSpec, laterEnd, { ...retry, signature: await sign({}) })).toMatch(/\(other_carry\): the signature goes on from the end sha256:/);
    // The very signature meant for it, with a reason of the sender's: the audit trail would keep that one.
    expect(await handMadeRun(backfillId, runSpec, retryCarry, { ...retry, reason: 'mallory says so', signature: await sign({}) })).toMatch(/\(other_reason\): the signed retry-failed signs the reason "the source is repaired", but its request gives "mallory says so"/);
    // One older than approval.maxSignatureAge (1h), even of this very end.
    // The signature meant for it, made by an older client (its text does not name the run it goes on from).
    expect(await handMadeRun(backfillId, runSpec, retryCarry, { ...retry, signature: await sign({}) })).toMatch(
      /\(old_signature\): the signed retry-failed was made by an older backfill client.*sign the retry-failed again with this release's client \(backfill retry-failed \S+ --sign-key <your key>\)/,
    );
    const old = await sign({ signedAt: new Date(Date.now() - 2 * 3_600_000).toISOString() });
    expect(await handMadeRun(backfillId, runSpec, retryCarry, { ...retry, signature: old })).toMatch(/\(expired\): the signed retry-failed was signed at .* longer ago than the policy allows \(approval.maxSignatureAge\)/);
    // The same holds for a start: an old start's signature does not start the backfill again.
    const otherId = `${backfillId}-again`;
    const oldStart = await sign({ action: 'start', backfillId: otherId, carryHash: undefined, signedAt: new Date(Date.now() - 2 * 3_600_000).toISOString() });
    const input: BackfillInput = { core: CORE_GENERATION, backfillId: otherId, spec: runSpec, range: {}, governance: { reason: REASON, signature: oldStart } };
    const started = await alice.client.workflow.start<typeof backfillWorkflow>('backfillWorkflow', { workflowId: backfillWorkflowId(otherId), taskQueue: queue, args: [input] });
    const failure = (await refusal(started.result())) as Error & { cause?: Error };
    expect(failure.cause?.message).toMatch(/the start's signature was refused \(expired\): the signed start was signed at /);
    expect(await worker.warehouse.ledger({ backfillId: otherId })).toEqual([]);
  });

  it('a signed retry-failed (the command line) is admitted, runs the failure again, and its signer is in the audit trail and the report', async () => {
    const retried = await runCli<{ resumed: { runId: string } | null }>(['retry-failed', backfillId, '--sign-key', key('bob'), '--reason', REASON, '--json']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.json?.resumed).not.toBeNull();
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    const entry = (await auditOf(backfillId)).at(-1)!;
    expect(entry).toMatchObject({ action: 'retry-failed', identity: principal('bob'), verified: true, reason: REASON, outcome: 'applied' });
    const report = await runCli<{ actions: Array<{ action: string; identity: string; verified: boolean }> }>(['report', backfillId, '--format', 'json', '--output', '-'], { BACKFILL_WAREHOUSE: warehousePath });
    expect(report.code, report.stderr).toBe(0);
    expect(report.json?.actions.at(-1)).toMatchObject({ action: 'retry-failed', identity: principal('bob'), verified: true });
  });

  it("the signed retry-failed's input, copied from its history and started again with Temporal's CLI after it ended, is refused: it was used", async () => {
    const retried = (await alice.describe(backfillId)).runId;
    const input = (await alice.inputOf(backfillId))!;
    const rows = (await worker.warehouse.ledger({ backfillId })).length;
    expect(await copiedStart(input, backfillWorkflowId(backfillId))).toMatch(
      new RegExp(`\\(already_used\\): the signed retry-failed was made to go on from run \\S+ of backfill '${backfillId}', but a run after it was admitted already \\(run ${retried}, started `),
    );
    expect((await worker.warehouse.ledger({ backfillId })).length).toBe(rows);
  });
});

/** Starts `input` with Temporal's own CLI under the workflow id `workflowId`, as anyone who can read and start workflows can; resolves to why the policy refused it. */
async function copiedStart(input: BackfillInput, workflowId: string): Promise<string> {
  const file = join(dir, `copied-${Date.now().toString(36)}.json`);
  writeFileSync(file, JSON.stringify(input));
  const started = await temporal(['workflow', 'start', '--type', 'backfillWorkflow', '--task-queue', queue, '--workflow-id', workflowId, '--input-file', file]);
  expect(started.code, started.stderr).toBe(0);
  const failure = (await refusal(alice.client.workflow.getHandle(workflowId).result())) as Error & { cause?: Error & { type?: string } };
  expect(failure.cause?.type).toBe('policy_violation');
  return failure.cause!.message;
}

describe('a signed start admits one backfill, once', () => {
  it("its input copied from the history and started again with Temporal's CLI is refused, under another workflow id and under its own after it ended; a signed --rerun goes on", async () => {
    const runSpec = spec([{ id: `once_${serial}`, transform: 'flaky' }]);
    const backfillId = `signed-once-${Date.now().toString(36)}`;
    const first = await alice.start(runSpec, { taskQueue: queue, id: backfillId, reason: REASON, signKey: key('alice') });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    const rows = (await worker.warehouse.ledger({ backfillId })).length;
    const input = (await alice.inputOf(backfillId))!;

    // Under another workflow id: the signature names the backfill it starts, which is not this workflow's.
    const otherId = `${backfillId}-copy`;
    expect(await copiedStart(input, backfillWorkflowId(otherId))).toContain(
      `(other_backfill): the signed start is for backfill '${backfillId}', but this workflow is backfill '${otherId}'`,
    );
    // Audited as refused, as every refused signature is.
    expect((await alice.audit(otherId)).at(-1)).toMatchObject({ action: 'start', verified: false, outcome: 'refused', details: { why: expect.stringContaining('(other_backfill)') } });
    // Under its own id, once the first run ended (Temporal lets a closed workflow id be used again).
    expect(await copiedStart(input, backfillWorkflowId(backfillId))).toContain(`(already_used): the signed start was made for the first run of backfill '${backfillId}', but it already ran (run ${first.runId}, started `);
    expect((await worker.warehouse.ledger({ backfillId })).length).toBe(rows);

    // A run again on purpose, signed afresh after the last run: admitted, once.
    await alice.start(runSpec, { taskQueue: queue, id: backfillId, rerun: true, reason: REASON, signKey: key('bob') });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    expect((await alice.audit(backfillId)).at(-1)).toMatchObject({ action: 'start', identity: principal('bob'), verified: true, outcome: 'applied' });
  });

  it("after its workflow is deleted (the server lists no run of it), its copied input is refused all the same: the warehouse recorded the run that used it", async () => {
    const runSpec = spec([{ id: `deleted_${serial}`, transform: 'flaky' }]);
    const backfillId = `signed-deleted-${Date.now().toString(36)}`;
    const workflowId = backfillWorkflowId(backfillId);
    const first = await alice.start(runSpec, { taskQueue: queue, id: backfillId, reason: REASON, signKey: key('alice') });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    const input = (await alice.inputOf(backfillId))!;
    const rows = (await worker.warehouse.ledger({ backfillId })).length;

    // Whoever may delete workflows removes the signed run: the server no longer lists it.
    const deleted = await temporal(['workflow', 'delete', '--workflow-id', workflowId, '--run-id', first.runId]);
    expect(deleted.code, deleted.stderr).toBe(0);
    await waitFor('the run gone from the server and its visibility', async () => {
      const gone = await alice.client.workflow.getHandle(workflowId, first.runId).describe().then(() => false, () => true);
      if (!gone) return false;
      for await (const listed of alice.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) if (listed.runId === first.runId) return false;
      return true;
    });

    const refused = await copiedStart(input, workflowId);
    expect(refused).toContain(`(already_used): the signed start was used already by run ${first.runId} (recorded in the warehouse at `);
    expect(refused).toContain(`sign again (backfill start <spec> --id ${backfillId} --rerun --sign-key <your key>)`);
    expect((await alice.audit(backfillId)).at(-1)).toMatchObject({ action: 'start', verified: false, outcome: 'refused', details: { why: expect.stringContaining('(already_used)') } });
    expect((await worker.warehouse.ledger({ backfillId })).length).toBe(rows);
  });

  it("a start signed by an older client (its text does not name the run it follows) is refused, saying to sign again with this release's client", async () => {
    const runSpec = spec([{ id: `older_${serial}`, transform: 'flaky' }]);
    const backfillId = `signed-older-${Date.now().toString(36)}`;
    const signature = await signSubject(
      { action: 'start', backfillId, namespace: alice.namespace, planHash: planHash({ spec: runSpec, range: {} }), reason: REASON, signedAt: new Date().toISOString() },
      { keyFile: key('alice') },
    );
    const input: BackfillInput = { core: CORE_GENERATION, backfillId, spec: runSpec, range: {}, governance: { identity: principal('alice'), reason: REASON, signature } };
    expect(await copiedStart(input, backfillWorkflowId(backfillId))).toMatch(/\(old_signature\): the signed start was made by an older backfill client.*sign the start again with this release's client/);
    expect(await worker.warehouse.ledger({ backfillId })).toEqual([]);
  });
});

describe("a signed run whose claim the warehouse cannot record is refused, never admitted unclaimed", () => {
  it("a retry-failed whose carry names another warehouse than the workers': refused claim_unknown, naming the task queue and why; nothing runs", async () => {
    const node = `elsewhere_${serial}`;
    const runSpec = spec([{ id: node, transform: 'flaky' }]);
    const backfillId = `signed-elsewhere-${Date.now().toString(36)}`;
    failing.add(`${node}/2024-01-02`);
    await alice.start(runSpec, { taskQueue: queue, id: backfillId, reason: REASON, signKey: key('alice') });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    const first = (await alice.describe(backfillId)).runId;
    const carry = resumeCarry((await alice.result(backfillId)).carry);
    // Its workers were moved to another warehouse meanwhile: the claim would land where it does not count.
    const moved = { ...carry, warehouse: { id: 'another-warehouse', location: '/elsewhere.db' } };
    const signature = await signSubject(
      { action: 'retry-failed', backfillId, namespace: alice.namespace, planHash: planHash({ spec: runSpec, range: {} }), carryHash: carryHash(moved), afterRun: first, reason: REASON, signedAt: new Date().toISOString() },
      { keyFile: key('bob') },
    );
    const rows = (await worker.warehouse.ledger({ backfillId })).length;
    failing.delete(`${node}/2024-01-02`);
    expect(await handMadeRun(backfillId, runSpec, moved, { action: 'resume', resumeRequest: { retryFailed: {} }, signature })).toMatch(
      new RegExp(`\\(claim_unknown\\): the workers of task queue '${queue}' could not record in their warehouse that this signed retry-failed was used \\(.*not the backfill's \\(identity another-warehouse\\)\\).*nothing ran`),
    );
    expect((await worker.warehouse.ledger({ backfillId })).length).toBe(rows);
  });
});

describe('a signed resume admits one run, once', () => {
  it("its input copied from the history and started again with Temporal's CLI after it ended is refused; a resume signed afresh after that refusal goes on", async () => {
    const node = `resumed_${serial}`;
    const runSpec = spec([{ id: node, transform: 'flaky' }]);
    const backfillId = `signed-resume-once-${Date.now().toString(36)}`;
    failing.add(`${node}/2024-01-03`);
    await alice.start(runSpec, { taskQueue: queue, id: backfillId, reason: REASON, signKey: key('alice') });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    const first = (await alice.describe(backfillId)).runId;

    // Signed as the resume of the first run's end (its text names that run), admitted; the source is still broken.
    const resumed = await alice.resume(backfillId, { reason: REASON, signKey: key('bob') });
    expect(resumed.resumed).not.toBeNull();
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    expect((await alice.audit(backfillId)).at(-1)).toMatchObject({ action: 'resume', identity: principal('bob'), verified: true, outcome: 'applied' });
    const input = (await alice.inputOf(backfillId))!;
    expect(input.governance?.signature?.text).toContain(`after-run: ${JSON.stringify(first)}`);
    const rows = (await worker.warehouse.ledger({ backfillId })).length;

    // Its copy under the same id, once it ended: the same carry, but the run it goes on from was gone on from already.
    expect(await copiedStart(input, backfillWorkflowId(backfillId))).toContain(
      `(already_used): the signed resume was made to go on from run ${first} of backfill '${backfillId}', but a run after it was admitted already (run ${resumed.resumed!.runId}, started `,
    );
    expect((await alice.audit(backfillId)).at(-1)).toMatchObject({ action: 'resume', verified: false, outcome: 'refused', details: { why: expect.stringContaining('(already_used)') } });
    expect((await worker.warehouse.ledger({ backfillId })).length).toBe(rows);

    // Signed afresh: it goes on from the resumed run (the copy after it was refused at admission and ran nothing).
    failing.delete(`${node}/2024-01-03`);
    const again = await alice.resume(backfillId, { reason: REASON, signKey: key('alice') });
    expect(again.resumed).not.toBeNull();
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    expect((await alice.audit(backfillId)).at(-1)).toMatchObject({ action: 'resume', identity: principal('alice'), verified: true, outcome: 'applied' });
  });
});

describe('--sign-key for a backfill that still runs', () => {
  it('is refused before anything is sent (resume and retry-failed of a paused backfill); once cancelled, a signed resume goes on', async () => {
    const runSpec = spec([{ id: `held_${serial}`, transform: 'held' }]);
    const backfillId = `signed-resume-${Date.now().toString(36)}`;
    await alice.start(runSpec, { taskQueue: queue, id: backfillId, signKey: key('alice') });
    await alice.pause(backfillId, { reason: 'the warehouse is busy' });
    await waitFor('the pause', async () => (await alice.progress(backfillId)).paused);

    const resumed = await runCli<{ error: { code: string; message: string } }>(['resume', backfillId, '--sign-key', key('alice'), '--json']);
    expect(resumed.code).not.toBe(0);
    expect(resumed.json?.error.code).toBe('invalid_argument');
    expect(resumed.json?.error.message).toContain(`backfill '${backfillId}' is still running, so resume is a control of that run, which is not signed: --sign-key signs only a new run of an ended backfill`);
    const retried = await refusal(alice.retryFailed(backfillId, undefined, undefined, { signKey: key('alice') }));
    expect(retried).toMatchObject({ code: 'invalid_argument', path: 'sign-key' });
    expect((await alice.progress(backfillId)).paused).toBe(true);
    expect((await alice.audit(backfillId)).map((e) => e.action)).toEqual(['start', 'pause']);

    await alice.cancel(backfillId, { reason: 'start over tomorrow' });
    expect((await alice.wait(backfillId, 60_000)).state).toBe('cancelled');
    gate.open();
    const signed = await alice.resume(backfillId, { reason: 'the warehouse is free', signKey: key('alice') });
    expect(signed.resumed).not.toBeNull();
    expect((await alice.wait(backfillId, 60_000)).state).toBe('completed');
    expect((await alice.audit(backfillId)).at(-1)).toMatchObject({ action: 'resume', identity: principal('alice'), verified: true, reason: 'the warehouse is free' });
  });
});
