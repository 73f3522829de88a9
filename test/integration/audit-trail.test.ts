/**
 * What the workflow cannot record, in the audit trail all the same, on a real server: a publish
 * the warehouse refused for good (the workflow recorded only that it was asked), and a node
 * workflow terminated through Temporal's CLI (the backfill starts it again and records nothing).
 * `backfill audit` (JSON and table) and the report read both from the histories.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { Report } from '../../client/report/model.ts';
import type { AuditEntry } from '../../core/audit.ts';
import { nodeWorkflowId } from '../../core/workflow-ids.ts';
import { Gate, connectClient, endLeftRunning, refusal, runCli, scratch, startTestWorker, temporal, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const dir = scratch('audit-trail');
const queue = uniqueQueue('audit-trail');
const warehousePath = join(dir, 'warehouse.db');
/** Partitions of the terminated node wait here until its workflow has been terminated. */
const gate = new Gate();
let worker: TestWorker;
let client: BackfillClient;

beforeAll(async () => {
  worker = await startTestWorker({ queue, warehousePath, transforms: { held: gate.holding('2024-01-01T02') } });
  client = await connectClient();
});

afterAll(async () => {
  gate.open();
  if (client) await endLeftRunning(client, [queue]);
  await client?.close();
  await worker?.stop();
});

const audit = async (backfillId: string): Promise<AuditEntry[]> => {
  const out = await runCli<{ entries: AuditEntry[] }>(['audit', backfillId, '--json']);
  expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
  return out.json!.entries;
};
const auditTable = async (backfillId: string): Promise<string> => {
  const out = await runCli(['audit', backfillId]);
  expect(out.code, out.stderr).toBe(0);
  return out.stdout;
};
const report = async (backfillId: string): Promise<Report> => {
  const out = await runCli<Report>(['report', backfillId, '--format', 'json', '--output', '-'], { BACKFILL_WAREHOUSE: warehousePath });
  expect(out.code, out.stderr).toBe(0);
  return out.json!;
};
/** Moves the node's dataset lease to another run (as if another backfill held it), or back; behind the warehouse's back. */
const leaseTo = (node: string, backfillId: string, runKey: string): { backfillId: string; runKey: string } => {
  const db = new Database(warehousePath);
  try {
    db.pragma('busy_timeout = 10000');
    const before = db.prepare('SELECT backfill_id AS backfillId, run_key AS runKey FROM main.backfill_leases WHERE node = ?').get(node) as { backfillId: string; runKey: string } | undefined;
    if (!before) throw new Error(`no lease on ${node}`);
    db.prepare('UPDATE main.backfill_leases SET backfill_id = ?, run_key = ? WHERE node = ?').run(backfillId, runKey, node);
    return before;
  } finally {
    db.close();
  }
};

describe('the audit trail of what the workflow cannot record', () => {
  it('a publish the warehouse refused for good: the trail says it failed, when and why, after the entry that it was asked; a later publish succeeds', async () => {
    const node = 'audit_staged';
    const spec = testSpec(queue, { name: 'audit-staged', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: node, sql: 'SELECT :partition AS day, 1 AS v' }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue, stage: true, id: `audit-staged-${Date.now()}` });
    await waitFor('every partition to be staged', async () => (await client.progress(backfillId)).state === 'staged', 120_000, 200);

    const own = leaseTo(node, 'someone-else', 'their-run');
    const askedAt = Date.now();
    const refused = await refusal(client.decideStaged(backfillId, 'publish', 'diff reviewed'));
    // Whoever asked hears why, and where it is kept.
    expect(refused.message).toMatch(new RegExp(`^backfill '${backfillId}': the publish failed: Activity task failed: dataset audit_staged is leased to run their-run .*; it waits for a decision again \\('backfill audit ${backfillId}' records the failure\\)$`));

    const entries = await audit(backfillId);
    const publishes = entries.filter((e) => e.action === 'publish');
    expect(publishes.map((e) => e.outcome)).toEqual(['applied', 'failed']);
    const [asked, failed] = publishes;
    expect(failed).toMatchObject({ identity: asked!.identity, reason: 'diff reviewed', details: { failureType: 'StaleRun', attempts: 1, why: expect.stringMatching(/dataset audit_staged is leased to run their-run/) } });
    expect(failed!.at).toBeGreaterThanOrEqual(asked!.at);
    expect(failed!.at).toBeGreaterThanOrEqual(askedAt - 5_000);
    expect(failed!.seq).toBe(asked!.seq + 1);
    const table = await auditTable(backfillId);
    expect(table).toContain('(failed)');
    // Cells wrap line by line, the action's "(failed)" beside the text: look for the words.
    expect(table.replace(/[│\s]+/g, ' ')).toMatch(/the publish failed after 1 attempt .*\(StaleRun\): dataset audit_staged is leased/);
    const inReport = (await report(backfillId)).actions.filter((a) => a.action === 'publish');
    expect(inReport.map((a) => [a.outcome, a.seq])).toEqual([
      ['applied', asked!.seq],
      ['failed', failed!.seq],
    ]);
    expect(inReport[1]!.change).toMatch(/^the publish failed after 1 attempt \(StaleRun\): .*; nothing was published: the backfill is staged again, waiting for publish or discard$/);

    // As it says: staged again, and a publish once the lease is back goes through, and is recorded as applied.
    expect((await client.progress(backfillId)).state).toBe('staged');
    leaseTo(node, own.backfillId, own.runKey);
    expect((await client.decideStaged(backfillId, 'publish', 'lease back')).versions).toBe(2);
    expect((await audit(backfillId)).filter((e) => e.action === 'publish').map((e) => [e.outcome, e.reason])).toEqual([
      ['applied', 'diff reviewed'],
      ['failed', 'diff reviewed'],
      ['applied', 'lease back'],
    ]);
  });

  it("a node workflow terminated through Temporal's CLI: the trail names who terminated it, why, and that the backfill started it again", async () => {
    const spec = testSpec(queue, {
      name: 'audit-lost-node',
      partitions: { grain: 'hour', start: '2024-01-01T00', end: '2024-01-01T06' },
      // One partition per activity: a held one holds back no other's commit.
      defaults: { concurrency: 2, batchSize: 1 },
      nodes: [{ id: 'slow', transform: 'held' }],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, id: `audit-lost-node-${Date.now()}`, tuning: { probeIntervalMs: 1000, reportIntervalMs: 200 } });
    await waitFor('the partitions before the gate', async () => (await worker.warehouse.ledger({ backfillId })).length >= 2, 120_000, 200);
    const terminated = await temporal(['workflow', 'terminate', '--workflow-id', nodeWorkflowId(backfillId, 'slow'), '--reason', 'stuck, killing it', '--identity', 'oncall@bastion']);
    expect(terminated.code, terminated.stderr).toBe(0);
    gate.open();
    expect((await client.wait(backfillId, 120_000)).state).toBe('completed');

    // Visibility lists the terminated run a moment after it closes.
    const entry = await waitFor('the termination in the audit trail', async () => (await audit(backfillId)).find((e) => e.action === 'terminate'), 30_000, 500);
    // Temporal's CLI 1.5.1 sends its reason but not its --identity with a terminate: the server records its Go client's default, <pid>@<host>@.
    const terminator = expect.stringMatching(/^\d+@\S+ \(from the termination\)$/);
    expect(entry).toMatchObject({ identity: terminator, reason: 'stuck, killing it', outcome: 'applied', details: { node: 'slow', restarted: true } });
    const entries = await audit(backfillId);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    expect(entries[0]!.action).toBe('start');
    // Cells wrap line by line beside each other: look for the words in order.
    expect((await auditTable(backfillId)).replace(/[│\s]+/g, ' ')).toMatch(/node slow's workflow terminated .*through Temporal: the backfill started it again with what it held/);
    const inReport = (await report(backfillId)).actions.find((a) => a.action === 'terminate');
    expect(inReport).toMatchObject({ identity: entry.identity, reason: 'stuck, killing it', workflowId: nodeWorkflowId(backfillId, 'slow') });
  });
});
