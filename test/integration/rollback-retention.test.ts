/**
 * Rolling back a backfill whose workflow histories the server no longer keeps (the namespace's
 * retention removed them; here they are deleted), on a real server with a worker in a process of
 * its own that has a policy: `rollback --dry-run` and `rollback` find its nodes in the ledger,
 * downstream first by its lineage, and restore every partition (checksums verified); the policy
 * still judges the rollback, whose pin the lost history held; an id neither the server nor the
 * ledger knows is `not_found`.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { RollbackWaiting } from '../../client/backfill-client.ts';
import type { RollbackPreview } from '../../client/rollback-preview.ts';
import { BackfillError } from '../../core/errors.ts';
import type { RollbackSummary } from '../../core/rollback.ts';
import type { ResolvedSpec } from '../../core/spec.ts';
import { backfillWorkflowId, nodeWorkflowId } from '../../workflows/definitions.ts';
import { backendFixture, type Backend } from './backend-fixture.ts';
import { runCli, scratch, startTestWorker, testSpec, waitFor } from './helpers.ts';

const SUFFIX = randomUUID().slice(0, 6);
const policyFile = join(scratch('rollback-retention-policy'), 'backfill.policy.yaml');
writeFileSync(policyFile, 'version: 1\nreasons:\n  required: [rollback]\n  minLength: 3\n');

/** `policy`: the fixture's worker has the policy (else none: a worker with it joins in the test). */
function retentionSuite(kind: Backend, policy: 'worker' | 'joins') {
  describe(`rollback once the server no longer keeps the backfill's histories (${kind}, policy ${policy === 'worker' ? 'on the worker' : 'joins later'})`, () => {
    const fx = backendFixture(kind, `rollback-retention-${policy}`, policy === 'worker' ? { BACKFILL_POLICY: policyFile } : {});
    const { queue } = fx;
    // raw → daily → summary: the ledger's lineage says so.
    const nodes = ['rt_raw', 'rt_daily', 'rt_summary'] as const;
    const spec = (factor: number, to: string): ResolvedSpec =>
      testSpec(queue, {
        name: 'rollback-retention',
        partitions: { grain: 'day', start: '2024-01-01', end: to },
        defaults: { concurrency: 2, heartbeatTimeout: '5s', retry: { initialInterval: '200ms', maximumInterval: '1s' } },
        nodes: [
          { id: nodes[0], sql: 'SELECT :partition AS day, :factor AS v', params: { factor } },
          { id: nodes[1], sql: 'SELECT day, v * 10 AS v FROM rt_raw', params: { factor }, dependsOn: [nodes[0]] },
          { id: nodes[2], sql: 'SELECT day, v + 1 AS v FROM rt_daily', params: { factor }, dependsOn: [nodes[1]] },
        ],
      });
    const run = async (s: ResolvedSpec, id: string) => {
      await fx.client.start(s, { taskQueue: queue, id });
      return (await fx.client.wait(id, 120_000)).state;
    };
    const values = async () => {
      const all: string[] = [];
      for (const node of nodes) for (const r of await fx.warehouse.query(`SELECT day, v FROM ${node} ORDER BY day`)) all.push(`${node}/${String(r.day)}=${Number(r.v)}`);
      return all;
    };
    /**
     * Deletes the workflow once it has closed (a node workflow ends just after its parent), as the
     * retention would, and waits until the server no longer finds it (the deletion is asynchronous:
     * asked again on each look, which is harmless).
     */
    const forget = async (workflowId: string) => {
      const handle = fx.client.client.workflow.getHandle(workflowId);
      await waitFor(`${workflowId} to close`, async () => (await handle.describe()).status.name !== 'RUNNING', 60_000, 200);
      const remove = () => fx.client.connection.workflowService.deleteWorkflowExecution({ namespace: fx.client.namespace, workflowExecution: { workflowId } }).catch(() => undefined);
      await waitFor(`${workflowId} to be deleted`, async () => {
        const gone = await handle.describe().then(() => false, (error: unknown) => error instanceof WorkflowNotFoundError);
        if (!gone) await remove();
        return gone;
      }, 60_000, 500);
    };

    const badRun = async (tag: string) => {
      const base = `rt-base-${tag}-${SUFFIX}`;
      const bad = `rt-bad-${tag}-${SUFFIX}`;
      expect(await run(spec(1, '2024-01-04'), base)).toBe('completed');
      const before = await values();
      // One more day than before: the rollback removes it.
      expect(await run(spec(2, '2024-01-05'), bad)).toBe('completed');
      for (const node of nodes) await forget(nodeWorkflowId(bad, node));
      await forget(backfillWorkflowId(bad));
      return { bad, before };
    };

    if (policy === 'joins') {
      it('a worker without a policy does not judge the rollback: it waits, saying why, for one with a policy, which judges it', async () => {
        const { bad } = await badRun('joins');
        const { workflowId } = await fx.client.startRollback(bad, { taskQueue: queue });
        const handle = fx.client.client.workflow.getHandle(workflowId);
        const message = await waitFor('the worker without a policy to decline the rollback', async () => {
          const d = await handle.describe();
          return d.raw.pendingActivities?.find((a) => a.lastFailure?.applicationFailureInfo?.type === 'PolicyMismatch')?.lastFailure?.message ?? undefined;
        }, 30_000, 200);
        expect(message).toContain(`the server no longer keeps the history of backfill '${bad}', so whether a policy admitted it is unknown`);
        // Nothing restored meanwhile.
        expect(await fx.warehouse.rollbacks({ backfillId: bad })).toEqual([]);

        // Its waiter is told why it waits (what `rollback` prints then), once.
        const hints: RollbackWaiting[] = [];
        const result = fx.client.rollbackResult(bad, { onNoWorker: (waiting) => hints.push(waiting), lookEveryMs: 200 }).catch((e: unknown) => e);
        await waitFor('the waiter to be told why the rollback waits', async () => hints.length > 0, 30_000, 100);
        expect(hints).toEqual([{ taskQueue: queue, activityQueues: [], judgement: expect.stringContaining(`the server no longer keeps the history of backfill '${bad}'`) }]);

        // A worker with the policy joins (same queue, same warehouse): it judges, and its rule wants a reason.
        const governed = await startTestWorker({ queue, warehousePath: fx.location, policyFile });
        try {
          const refused = await result;
          expect(refused).toMatchObject({ code: 'policy_violation' });
          expect((refused as Error).message).toMatch(/rollback needs a reason/);
        } finally {
          await governed.stop();
        }
        expect(await fx.warehouse.rollbacks({ backfillId: bad })).toEqual([]);
      }, 90_000);
      return;
    }

    it('--dry-run and rollback restore every partition from the ledger, and the policy judges the rollback', async () => {
      const { bad, before } = await badRun(kind);

      const cli = await runCli<RollbackPreview>(['rollback', bad, '--dry-run', '--warehouse', fx.location, '--json']);
      expect(cli.code, cli.stderr).toBe(0);
      const preview = cli.json!;
      expect(preview).toMatchObject({ dryRun: true, historyGone: true, restored: 9, removed: 3, leftAlone: 0, fromLedger: ['rt_summary', 'rt_daily', 'rt_raw'] });
      expect(preview.nodes.map((n) => n.node)).toEqual(['rt_summary', 'rt_daily', 'rt_raw']);
      const text = await runCli(['rollback', bad, '--dry-run', '--warehouse', fx.location]);
      expect(text.stdout).toContain(`the server no longer keeps the history of ${bad}`);

      // The policy still judges it: no reason, refused, nothing restored.
      const refused = await fx.client.rollback(bad, { taskQueue: queue }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BackfillError);
      expect(refused).toMatchObject({ code: 'policy_violation' });
      expect((refused as Error).message).toMatch(/rollback needs a reason/);
      expect(await fx.warehouse.rollbacks({ backfillId: bad })).toEqual([]);

      // The command line starts it on its own workflow task queue, and says where its nodes came from.
      const rolled = await runCli<RollbackSummary>(['rollback', bad, '--reason', 'bad factor, found after the retention', '--warehouse', fx.location, '--json'], { BACKFILL_TASK_QUEUE: queue });
      expect(rolled.code, rolled.stderr).toBe(0);
      expect(rolled.stderr).toContain(`the server keeps no history of ${bad} (the namespace's retention removed it): the rollback walked the nodes the workers' ledger holds versions of`);
      const summary = rolled.json!;
      // What only a dry run says: nothing leases the datasets, and what it would leave computed from replaced versions.
      expect(preview).toMatchObject({ refusedBy: [], downstream: [] });
      const { dryRun: _dryRun, historyGone: _gone, fromLedger: _fromLedger, rollbackId: _previewId, runs: _previewRuns, refusedBy: _refusedBy, downstream: _downstream, ...previewed } = preview;
      expect(summary).toMatchObject({ downstream: [], downstreamChecked: true });
      const { rollbackId: _rollbackId, runs: _runs, downstream: _rolledDownstream, downstreamChecked: _checked, ...done } = summary as RollbackSummary & { downstream?: unknown; downstreamChecked?: boolean };
      expect(done).toEqual(previewed);
      expect(await values()).toEqual(before);
      // Every restore is in the rollback audit (each verified the checksum of the version it published again).
      const restores = await fx.warehouse.rollbacks({ backfillId: bad });
      expect(restores).toHaveLength(12);
      expect(restores.filter((r) => r.toVersion === null)).toHaveLength(3);
    }, 120_000);

    if (kind !== 'sqlite') return;
    it('refuses a backfill that neither the server nor the ledger knows (not_found)', async () => {
      const refused = await fx.client.rollback(`rt-nobody-${SUFFIX}`, { taskQueue: queue, reason: 'a typo' }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BackfillError);
      expect(refused).toMatchObject({ code: 'not_found' });
      expect((refused as Error).message).toMatch(/^no backfill with id 'rt-nobody-[^']+' in namespace .*: the server keeps no history of it, and the workers' ledger has no version of it: check the id/);
    }, 60_000);
  });
}

retentionSuite('sqlite', 'worker');
retentionSuite('postgres', 'worker');
retentionSuite('sqlite', 'joins');
