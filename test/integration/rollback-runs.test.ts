/**
 * Rolling back a backfill id that ran more than once, on a real server with a worker in a
 * process of its own (SQLite): the rollback covers the nodes of every run, not only the latest
 * spec's; a backfill rolled back is not resumed into a `completed` that is mostly undone, nor
 * run again while its rollback runs; and
 * `rollback --dry-run` shows exactly what the rollback then does, changing nothing.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { rollbackWorkflowId, type RollbackSummary } from '../../core/rollback.ts';
import type { ResolvedSpec } from '../../core/spec.ts';
import type { RollbackPreview } from '../../client/rollback-preview.ts';
import { backendFixture } from './backend-fixture.ts';
import { runCli, testSpec, waitFor } from './helpers.ts';

const SUFFIX = randomUUID().slice(0, 6);

describe('rollback across the runs of a backfill (sqlite)', () => {
  const fx = backendFixture('sqlite', 'rollback-runs');
  const { queue } = fx;

  /** Daily nodes, each `SELECT day, factor`, from 2024-01-01 to `to` (exclusive); `dependsOn` by node. */
  const spec = (nodes: string[], factor: number, options: { to?: string; from?: string; dependsOn?: Record<string, string[]>; sql?: string; maxAttempts?: number } = {}): ResolvedSpec =>
    testSpec(queue, {
      name: 'rollback-runs',
      partitions: { grain: 'day', start: options.from ?? '2024-01-01', end: options.to ?? '2024-01-04' },
      defaults: { concurrency: 2, heartbeatTimeout: '5s', retry: { initialInterval: '200ms', maximumInterval: '1s', ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}) } },
      nodes: nodes.map((id) => ({
        id,
        sql: options.sql ?? 'SELECT :partition AS day, :factor AS v',
        params: { factor },
        checks: [{ type: 'row_count' as const, min: 1 }],
        ...(options.dependsOn?.[id] ? { dependsOn: options.dependsOn[id] } : {}),
      })),
    });

  const run = async (s: ResolvedSpec, id: string, extra: { rerun?: boolean } = {}) => {
    await fx.client.start(s, { taskQueue: queue, id, ...extra });
    return (await fx.client.wait(id, 120_000)).state;
  };
  const values = async (node: string) => (await fx.warehouse.query(`SELECT day, v FROM ${node} ORDER BY day`)).map((r) => `${String(r.day)}=${Number(r.v)}`);
  const publishedBy = async (backfillId: string) =>
    (await fx.warehouse.changesBy(backfillId)).changes.filter((c) => c.currentBackfillId === backfillId).map((c) => `${c.node}/${c.partition}`);

  it('rolls back the nodes an earlier run published, that a --rerun with fewer nodes left out', async () => {
    const [a, b] = ['rr_a', 'rr_b'];
    expect(await run(spec([a, b], 1), `rr-base-${SUFFIX}`)).toBe('completed');
    const bad = `rr-bad-${SUFFIX}`;
    expect(await run(spec([a, b], 2), bad)).toBe('completed');
    // Run again, deliberately, for one node only: its latest spec no longer names rr_b.
    expect(await run(spec([a], 3), bad, { rerun: true })).toBe('completed');

    const summary = await fx.client.rollback(bad);
    expect(summary.nodes.map((n) => n.node).sort()).toEqual([a, b]);
    expect(summary).toMatchObject({ restored: 6, removed: 0, leftAlone: 0 });
    expect(await values(a)).toEqual(['2024-01-01=1', '2024-01-02=1', '2024-01-03=1']);
    expect(await values(b)).toEqual(['2024-01-01=1', '2024-01-02=1', '2024-01-03=1']);
    expect(await publishedBy(bad)).toEqual([]);
  });

  it('refuses to resume or retry a backfill rolled back since its last run, naming --rerun; a new run lifts it', async () => {
    const node = 'rs_r';
    const id = `rs-${SUFFIX}`;
    // 2024-01-02 has no row: its row_count check fails, the other three days are published.
    const failing = spec([node], 2, { to: '2024-01-05', sql: "SELECT :partition AS day, :factor AS v WHERE :partition <> '2024-01-02'", maxAttempts: 1 });
    const fixed = spec([node], 2, { to: '2024-01-05' });
    expect(await run(failing, id)).toBe('completed_with_failures');
    expect(await fx.client.rollback(id)).toMatchObject({ removed: 3, restored: 0 });

    for (const resumeIt of [() => fx.client.retryFailed(id, undefined, fixed), () => fx.client.resume(id, { spec: fixed })]) {
      const refused = await resumeIt().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BackfillError);
      expect(refused).toMatchObject({ code: 'not_running' });
      expect((refused as Error).message).toMatch(new RegExp(`backfill '${id}' was rolled back after its last run .*backfill start <spec> --id ${id} --rerun`));
    }
    const described = await fx.client.describe(id);
    expect(described.status.name).toBe('COMPLETED');
    expect(await values(node)).toEqual([]);

    // A run after the rollback is a backfill of its own again: its failures can be retried.
    expect(await run(failing, id, { rerun: true })).toBe('completed_with_failures');
    const retried = await fx.client.retryFailed(id, undefined, fixed);
    expect(retried.resumed).not.toBeNull();
    expect((await fx.client.wait(id, 120_000)).state).toBe('completed');
    expect(await values(node)).toEqual(['2024-01-01=2', '2024-01-02=2', '2024-01-03=2', '2024-01-04=2']);
  });

  it('refuses start --rerun while the rollback runs, then runs it again once the rollback has ended', async () => {
    const node = 'rw_r';
    const id = `rw-${SUFFIX}`;
    expect(await run(spec([node], 1), id)).toBe('completed');
    // The warehouse's write lock, held: the rollback's first restore waits on it (busy_timeout), so the rollback stays RUNNING.
    const db = new Database(fx.location);
    db.exec('BEGIN IMMEDIATE');
    let held = true;
    const letGo = () => {
      if (!held) return;
      held = false;
      db.exec('COMMIT');
      db.close();
    };
    try {
      const rollback = await fx.client.startRollback(id);
      expect(rollback.attached).toBe(false);
      // Its batch has started and waits on the lock: the rollback is under way, nothing restored yet.
      await waitFor('the rollback batch to start', async () => {
        const d = await fx.client.client.workflow.getHandle(rollbackWorkflowId(id)).describe();
        return d.status.name === 'RUNNING' && (d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'rollbackBatch');
      }, 30_000);

      const refused = await fx.client.start(spec([node], 2), { taskQueue: queue, id, rerun: true }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BackfillError);
      expect(refused).toMatchObject({ code: 'still_running' });
      expect((refused as Error).message).toMatch(new RegExp(`backfill '${id}' is being rolled back: wait for it to end .*then start again with --rerun`));
      // Nothing was started: the backfill's last run is still the one rolled back.
      expect((await fx.client.describe(id)).status.name).toBe('COMPLETED');
      expect(await fx.client.client.workflow.getHandle(rollbackWorkflowId(id)).describe().then((d) => d.status.name)).toBe('RUNNING');
    } finally {
      letGo();
    }
    expect(await fx.client.rollbackResult(id)).toMatchObject({ removed: 3, restored: 0 });
    expect(await values(node)).toEqual([]);
    expect(await run(spec([node], 2), id, { rerun: true })).toBe('completed');
    expect(await values(node)).toEqual(['2024-01-01=2', '2024-01-02=2', '2024-01-03=2']);
  });

  it('--dry-run shows per node what the rollback then does, and who changed what it leaves alone, changing nothing', async () => {
    const [a, b] = ['dr_a', 'dr_b'];
    const dependsOn = { [b]: [a] };
    const base = `dr-base-${SUFFIX}`;
    const bad = `dr-bad-${SUFFIX}`;
    const later = `dr-later-${SUFFIX}`;
    expect(await run(spec([a, b], 1, { dependsOn }), base)).toBe('completed');
    // One more day than before: the rollback removes it.
    expect(await run(spec([a, b], 2, { dependsOn, to: '2024-01-05' }), bad)).toBe('completed');
    expect(await run(spec([a], 3, { from: '2024-01-02', to: '2024-01-03' }), later)).toBe('completed');
    const ledgerBefore = await fx.warehouse.ledger({});
    const valuesBefore = [await values(a), await values(b)];

    const cli = await runCli<RollbackPreview>(['rollback', bad, '--dry-run', '--warehouse', fx.location, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    const preview = cli.json!;
    expect(preview).toMatchObject({ dryRun: true, backfillId: bad, restored: 5, removed: 2, alreadyRestored: 0, leftAlone: 1, forced: 0, changedBy: { [later]: 1 }, historyGone: false, fromLedger: [] });
    expect(preview.nodes).toEqual([
      { node: b, restored: 3, removed: 1, alreadyRestored: 0, leftAlone: 0, forced: 0, undone: 0 },
      { node: a, restored: 2, removed: 1, alreadyRestored: 0, leftAlone: 1, forced: 0, undone: 0 },
    ]);
    expect(preview.leftAloneExamples).toEqual([{ node: a, partition: '2024-01-02', version: 2, currentVersion: 3, changedBy: later }]);
    // Nothing was started, nothing written.
    const notStarted = await fx.client.client.workflow.getHandle(rollbackWorkflowId(bad)).describe().catch((e: unknown) => e);
    expect(notStarted).toBeInstanceOf(WorkflowNotFoundError);
    expect(await fx.warehouse.ledger({})).toEqual(ledgerBefore);
    expect(await fx.warehouse.rollbacks({ backfillId: bad })).toEqual([]);
    expect([await values(a), await values(b)]).toEqual(valuesBefore);

    const text = await runCli(['rollback', bad, '--dry-run', '--warehouse', fx.location]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`would roll back ${bad} (dry run: nothing was started or changed)`);
    expect(text.stdout).toContain(`would leave alone: 1 partition changed since by ${later}\n`);
    expect(text.stdout).toContain(`${a} 2024-01-02: ${bad} published version 2, now version 3 by ${later}`);

    // The rollback does what the preview said.
    const summary: RollbackSummary = await fx.client.rollback(bad);
    expect(preview).toMatchObject({ refusedBy: [], downstream: [] });
    const { dryRun: _dryRun, historyGone: _historyGone, fromLedger: _fromLedger, rollbackId: _previewId, runs: _previewRuns, refusedBy: _refusedBy, downstream: _downstream, ...previewed } = preview;
    const { rollbackId: _rollbackId, runs: _runs, ...done } = summary;
    expect(done).toEqual(previewed);

    // With --force, what it left alone; a preview after the rollback finds the rest restored.
    const forced = await runCli<RollbackPreview>(['rollback', bad, '--dry-run', '--force', '--warehouse', fx.location, '--json']);
    expect(forced.json).toMatchObject({ restored: 1, removed: 0, alreadyRestored: 7, leftAlone: 0, forced: 1, force: true });
  });
});
