/**
 * Canary backfills on a real server, with a worker in a process of its own, on both warehouses:
 * `start --canary 1` runs one partition per dataset and what it needs, staged, and waits (status
 * shows its diff); `approve` publishes the slice and the rest runs as a direct run would; a
 * failing check in the slice stops the backfill with nothing written beyond the slice (the ledger
 * holds the slice's partitions only); `discard` drops it; `canary.auto` goes on by itself within
 * its bounds and waits outside them. What is sent past the command line is validated where it
 * arrives: a bad canary in a start, a junk approval, a signal of the same name.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/canonical.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import { CORE_GENERATION, type BackfillInput, type Progress } from '../../core/protocol.ts';
import type { CanaryInput, SpecInput } from '../../core/spec.ts';
import { backendFixture, type Backend } from './backend-fixture.ts';
import { runCli, testSpec, waitFor } from './helpers.ts';

/**
 * Daily src (two rows a day, scaled by `factor`; a check refuses values above `most`), daily
 * totals of it, and weekly totals of those, over the first ten days of 2024. A canary of one
 * partition per dataset, newest: weekly 2024-W02, which needs daily 8-10 January, which need src
 * of the same days (daily's own newest, the 10th, is among them): 7 partitions of 22.
 */
function specInput(queue: string, prefix: string, factor: number, canary?: CanaryInput, most = 100): SpecInput {
  return {
    name: `canary-${prefix}`,
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    defaults: { taskQueue: queue, concurrency: 4, heartbeatTimeout: '5s', retry: { initialInterval: '200ms', maximumInterval: '1s' } },
    ...(canary ? { canary } : {}),
    nodes: [
      {
        id: `${prefix}_src`,
        sql: 'SELECT :partition AS day, 1 AS k, :factor AS v UNION ALL SELECT :partition, 2, :factor * 2',
        params: { factor },
        // The diff matches src's rows by day and k: a new v is a changed row, not one removed and one added.
        key: ['day', 'k'],
        checks: [{ type: 'sql', name: 'not_too_big', sql: `SELECT * FROM {{this}} WHERE v > ${most}` }],
      },
      { id: `${prefix}_daily`, dependsOn: [`${prefix}_src`], sql: `SELECT day, SUM(v) AS total, COUNT(*) AS n FROM ${prefix}_src GROUP BY day` },
      { id: `${prefix}_weekly`, partitions: { grain: 'week' }, dependsOn: [`${prefix}_daily`], sql: `SELECT :partition AS week, SUM(total) AS total, COUNT(*) AS days FROM ${prefix}_daily` },
    ],
  };
}

const nodesOf = (prefix: string) => [`${prefix}_src`, `${prefix}_daily`, `${prefix}_weekly`];
const SLICE_DAYS = ['2024-01-08', '2024-01-09', '2024-01-10'];
const sliceOf = (prefix: string) => new Set([...SLICE_DAYS.flatMap((d) => [`${prefix}_src/${d}`, `${prefix}_daily/${d}`]), `${prefix}_weekly/2024-W02`]);

async function views(warehouse: Warehouse, prefix: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const node of nodesOf(prefix)) out[node] = (await warehouse.query(`SELECT * FROM ${node}`)).map((row) => canonicalJson(row)).sort();
  return out;
}

describe.each<Backend>(['sqlite', 'postgres'])('canary backfills on %s', (kind) => {
  const fx = backendFixture(kind, 'canary');
  const { queue, dir, location } = fx;

  const direct = async (prefix: string, factor: number): Promise<string> => {
    const { backfillId } = await fx.client.start(testSpec(queue, specInput(queue, prefix, factor)), { taskQueue: queue, tuning: { reportIntervalMs: 200 }, id: `${prefix}-direct-${randomUUID().slice(0, 6)}` });
    expect((await fx.client.wait(backfillId, 120_000)).state).toBe('completed');
    return backfillId;
  };
  const cli = async <T>(...args: string[]) => {
    const result = await runCli<T>([...args, '--json'], { BACKFILL_WAREHOUSE: location, BACKFILL_TASK_QUEUE: queue });
    return { code: result.code, json: result.json!, stderr: result.stderr };
  };
  /** `backfill start <file> --canary 1` (over the spec's canary:, if any). */
  const startCanary = async (prefix: string, factor: number, options: { canary?: CanaryInput; most?: number; flag?: boolean } = {}): Promise<string> => {
    const file = join(dir, `${prefix}-${factor}-${randomUUID().slice(0, 4)}.json`);
    writeFileSync(file, JSON.stringify(specInput(queue, prefix, factor, options.canary, options.most)));
    const id = `${prefix}-canary-${randomUUID().slice(0, 6)}`;
    const started = await cli<{ backfillId: string }>('start', file, ...(options.flag === false ? [] : ['--canary', '1']), '--id', id);
    expect(started.code, started.stderr).toBe(0);
    return started.json.backfillId;
  };
  const awaiting = (id: string) => waitFor('the canary to wait', async () => {
    const progress = await fx.client.progress(id);
    return progress.state === 'awaiting_canary' && progress.canary?.diff ? progress : undefined;
  }, 120_000, 200);
  /** What the ledger holds of a backfill: node/partition → statuses. */
  const ledgerOf = async (id: string) => {
    const rows = await fx.warehouse.ledger({ backfillId: id });
    return rows.map((r) => ({ key: `${r.node}/${r.partition}`, status: r.status, staged: r.staged }));
  };

  it('runs the slice staged and waits (status shows its diff); approve publishes it and the rest runs as a direct run would', async () => {
    const p = `a_${kind}`;
    await direct(p, 1);
    const before = await views(fx.warehouse, p);
    // canary.auto is declared, but every row changes: it waits, and says why.
    const id = await startCanary(p, 2, { canary: { partitions: 5, pick: 'newest', auto: { maxRowChange: '5%' } } });
    const progress: Progress = await awaiting(id);
    expect(await views(fx.warehouse, p)).toEqual(before);
    expect(progress.canary).toMatchObject({ phase: 'awaiting', perNode: 1, pick: 'newest', partitions: 7 });
    expect(progress.canary!.note).toMatch(/canary.auto did not go on: .* changes 200% of its rows, above canary.auto.maxRowChange 5%/);
    expect(progress.canary!.diff!.nodes.map((n) => [n.node, n.partitions, n.added, n.removed, n.changed]).sort()).toEqual([
      [`${p}_daily`, 3, 3, 3, 0],
      [`${p}_src`, 3, 0, 0, 6],
      [`${p}_weekly`, 1, 1, 1, 0],
    ]);
    const ledger = await ledgerOf(id);
    expect(new Set(ledger.map((r) => r.key))).toEqual(sliceOf(p));
    expect(ledger.every((r) => r.status === 'staged')).toBe(true);
    // status and diff say the same.
    const status = await runCli(['status', id], { BACKFILL_TASK_QUEUE: queue });
    expect(status.stdout).toMatch(/awaiting_canary/);
    expect(status.stdout).toMatch(/canary: waits\. 7 partitions \(1 per dataset, newest/);
    const diff = await cli<{ phase: string; partitions: number }>('diff', id);
    expect(diff.json).toMatchObject({ phase: 'awaiting', partitions: 7 });

    // Past the command line: a signal does nothing; the update is validated where it arrives; publish is not the canary's word.
    const handle = fx.client.client.workflow.getHandle(`backfill/${id}`);
    await handle.signal('approveCanary', { by: 'mallory', reason: 'x' });
    for (const junk of [{ by: 'mallory' }, { by: 'mallory', reason: 'x', force: true }, 'yes']) {
      const refused = await handle.executeUpdate('approveCanary', { args: [junk] }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((refused as WorkflowUpdateFailedError).cause?.message).toMatch(/reason is missing|unknown field force|takes \{ by, reason \}/);
    }
    const publish = await cli<{ error: { code: string; message: string } }>('publish', id);
    expect(publish.json.error).toMatchObject({ code: 'not_staged' });
    expect(publish.json.error.message).toMatch(/canary backfill: backfill approve/);
    // Without --reason the command line refuses before sending anything.
    expect((await runCli(['approve', id])).code).not.toBe(0);
    expect((await fx.client.progress(id)).state).toBe('awaiting_canary');
    expect(await views(fx.warehouse, p)).toEqual(before);

    const approved = await cli<{ versions: number; by: string; reason: string; canary: boolean }>('approve', id, '--reason', 'canary diff reviewed');
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.json).toMatchObject({ canary: true, versions: 7, reason: 'canary diff reviewed' });
    const ended = await fx.client.wait(id, 120_000);
    expect(ended.state).toBe('completed');
    expect(ended.progress!.canary).toMatchObject({ phase: 'approved', decision: { action: 'approve', reason: 'canary diff reviewed', auto: false } });
    const rows = await ledgerOf(id);
    expect(rows).toHaveLength(22);
    expect(rows.every((r) => r.status === 'published')).toBe(true);
    expect(new Set(rows.filter((r) => r.staged).map((r) => r.key))).toEqual(sliceOf(p));
    // As a direct run of the same spec leaves the datasets.
    const after = await views(fx.warehouse, p);
    expect(after).not.toEqual(before);
    await direct(p, 2);
    expect(await views(fx.warehouse, p)).toEqual(after);
  });

  it('a failing check in the slice stops the backfill: nothing beyond the slice is written; fixed and resumed, the canary runs again', async () => {
    const p = `f_${kind}`;
    await direct(p, 1);
    const before = await views(fx.warehouse, p);
    // v = 3 and 6: the check refuses values above 5 in every src partition the canary runs.
    const id = await startCanary(p, 3, { most: 5 });
    const waited = await runCli<{ state: string }>(['wait', id, '--json', '--timeout', '120']);
    expect(waited.code).toBe(3);
    expect(waited.json!.state).toBe('canary_failed');
    const ledger = await ledgerOf(id);
    // The ledger holds the slice's partitions only (here src's three, failed; their downstream never ran).
    expect(ledger.filter((r) => !sliceOf(p).has(r.key))).toEqual([]);
    expect(new Set(ledger.map((r) => r.key))).toEqual(new Set(SLICE_DAYS.map((d) => `${p}_src/${d}`)));
    expect(ledger.every((r) => r.status !== 'published')).toBe(true);
    expect(await views(fx.warehouse, p)).toEqual(before);
    const progress = (await fx.client.wait(id)).progress!;
    expect(progress.canary).toMatchObject({ phase: 'failed' });
    expect(progress.canary!.note).toMatch(/3 partitions of the canary failed \(first: .*_src: .*not_too_big.*\); nothing beyond the canary was written/);
    // No one decided the stop, and no rule of the policy (the trail records it under the policy's identity): the report puts it down to the canary's own partitions, in the run its starter started.
    const audited = await cli<{ entries: Array<{ action: string; identity: string }> }>('audit', id);
    const starter = audited.json.entries.find((e) => e.action === 'start')!.identity;
    const report = await runCli<{ actions: Array<{ action: string; actor: string }> }>(['report', id, '--format', 'json', '--output', '-'], { BACKFILL_WAREHOUSE: location });
    expect(report.code, `${report.stdout.slice(0, 2000)}\n${report.stderr}`).toBe(0);
    expect(report.json!.actions.find((a) => a.action === 'discard')?.actor).toBe(`the canary's own failed partitions, in the run ${starter} (declared) started`);

    // Fixed (the check allows the values) and resumed: the slice's failures run again, staged, and the canary waits again.
    const fixed = join(dir, `${p}-fixed.json`);
    writeFileSync(fixed, JSON.stringify(specInput(queue, p, 3, undefined, 100)));
    const resumed = await cli<{ resumed: unknown }>('resume', id, '--spec', fixed);
    expect(resumed.code, resumed.stderr).toBe(0);
    const again = await awaiting(id);
    expect(again.canary).toMatchObject({ phase: 'awaiting', partitions: 7 });
    expect(await views(fx.warehouse, p)).toEqual(before);
    expect((await ledgerOf(id)).filter((r) => r.status === 'staged' || r.status === 'published').every((r) => sliceOf(p).has(r.key))).toBe(true);
    const approved = await cli<{ versions: number }>('approve', id, '--reason', 'fixed the check');
    expect(approved.json.versions).toBe(7);
    expect((await fx.client.wait(id, 120_000)).state).toBe('completed');
    expect((await ledgerOf(id)).filter((r) => r.status === 'published')).toHaveLength(22);
  });

  it('discard drops the slice and ends the backfill; auto goes on by itself within its bounds', async () => {
    const p = `d_${kind}`;
    await direct(p, 1);
    const before = await views(fx.warehouse, p);
    const id = await startCanary(p, 4);
    await awaiting(id);
    const discarded = await cli<{ versions: number; action: string }>('discard', id, '--reason', 'wrong factor');
    expect(discarded.code, discarded.stderr).toBe(0);
    expect(discarded.json).toMatchObject({ versions: 7, action: 'discard' });
    expect((await fx.client.wait(id, 60_000)).state).toBe('discarded');
    expect(await views(fx.warehouse, p)).toEqual(before);
    const ledger = await ledgerOf(id);
    expect(new Set(ledger.map((r) => r.key))).toEqual(sliceOf(p));
    expect(new Set(ledger.map((r) => r.status))).toEqual(new Set(['discarded']));

    // The same factor as published: the slice changes no row, and auto goes on with nobody approving.
    const auto = await startCanary(p, 1, { canary: { partitions: 1, auto: { maxRowChange: '0%' } }, flag: false });
    const ended = await fx.client.wait(auto, 120_000);
    expect(ended.state).toBe('completed');
    expect(ended.progress!.canary).toMatchObject({ phase: 'approved', decision: { by: 'canary.auto', auto: true }, diff: { added: 0, removed: 0, changed: 0, partitions: 7 } });
    expect(await ledgerOf(auto)).toHaveLength(22);
    expect(await views(fx.warehouse, p)).toEqual(before);
  });

  it("a new spec while the slice runs: the canary's diff (what canary.auto is held against) compares by its key columns", async () => {
    const p = `k_${kind}`;
    await direct(p, 1);
    // src without its key, and held back by a rate of one partition every 50 s, so that the new spec
    // with the key arrives while the slice computes: the slice's 3 days of src cannot be done before
    // 100 s have passed (at 0.5/s they took 4 s, less than a command line's resume on a loaded
    // machine, and the canary then waited, refusing the new spec). The new spec has no rate: the
    // slice goes on at once.
    const withKey = (key: boolean): SpecInput => {
      const input = specInput(queue, p, 2);
      const { key: _key, ...src } = input.nodes[0]!;
      return { ...input, nodes: [{ ...src, ...(key ? { key: ['day', 'k'] } : { rate: 0.02 }) }, ...input.nodes.slice(1)] };
    };
    const fileOf = (key: boolean) => {
      const file = join(dir, `${p}-${key ? 'key' : 'rows'}-${randomUUID().slice(0, 4)}.json`);
      writeFileSync(file, JSON.stringify(withKey(key)));
      return file;
    };
    const started = await cli<{ backfillId: string }>('start', fileOf(false), '--canary', '1', '--id', `${p}-canary-${randomUUID().slice(0, 6)}`);
    expect(started.code, started.stderr).toBe(0);
    const id = started.json.backfillId;
    const resumed = await cli('resume', id, '--spec', fileOf(true));
    expect(resumed.code, resumed.stderr).toBe(0);
    // src's 3 days by day and k: 6 rows changed; daily and weekly by whole rows: 3 + 1 removed and added (by whole rows src's would be 6 and 6 more).
    const waiting = await awaiting(id);
    expect(waiting.canary?.diff).toMatchObject({ added: 4, removed: 4, changed: 6, partitions: 7 });
    const discarded = await cli('discard', id, '--reason', 'keys checked');
    expect(discarded.code, discarded.stderr).toBe(0);
    expect((await fx.client.wait(id, 60_000)).state).toBe('discarded');
  });

  it("a start with a bad canary, sent past the command line, fails before anything runs; the command line refuses it first", async () => {
    const p = `v_${kind}`;
    const spec = testSpec(queue, specInput(queue, p, 1));
    const id = `${p}-bad-${randomUUID().slice(0, 6)}`;
    const input: BackfillInput = { core: CORE_GENERATION, backfillId: id, spec, range: {}, canary: { partitions: -3 } };
    const handle = await fx.client.client.workflow.start('backfillWorkflow', { workflowId: `backfill/${id}`, taskQueue: queue, args: [input] });
    const failure = await handle.result().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause?.message).toMatch(/canary.partitions must be 1 or more/);
    expect(await fx.warehouse.ledger({ backfillId: id })).toEqual([]);
    const both = await cli<{ error: { code: string; message: string } }>('start', join(dir, 'none.json'), '--canary', '0');
    expect(both.code).not.toBe(0);
    const file = join(dir, `${p}.json`);
    writeFileSync(file, JSON.stringify(specInput(queue, p, 1)));
    const staged = await cli<{ error: { code: string; message: string } }>('start', file, '--canary', '2', '--stage');
    expect(staged.json.error).toMatchObject({ code: 'invalid_argument' });
    expect(staged.json.error.message).toMatch(/--stage and a canary do not go together/);
    // An unsigned approval of a backfill without a canary names the two gates.
    const plain = await direct(p, 1);
    const approve = await cli<{ error: { code: string; message: string } }>('approve', plain, '--reason', 'looks fine');
    expect(approve.json.error.code).toMatch(/not_running|not_canary/);
  });
});
