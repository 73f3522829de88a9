/** --only-changed facts from a real (SQLite) warehouse, written the way the partition activity writes. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changedPartitions } from '../../client/only-changed.ts';
import { partitionInputs } from '../../core/inputs.ts';
import { expandPlan, type Plan } from '../../core/plan.ts';
import { resolveSpec, type ResolvedSpec } from '../../core/spec.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';

const CODE = 'backfill@test';

function shopLike(params: Record<string, unknown> = {}): ResolvedSpec {
  return resolveSpec({
    name: 'facts',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-15' },
    nodes: [
      { id: 'raw', transform: 'gen' },
      { id: 'daily', transform: 'sql', sql: 'SELECT COUNT(*) AS n FROM raw', dependsOn: ['raw'], params },
      { id: 'rolling', transform: 'sql', sql: 'SELECT SUM(n) AS n FROM daily', dependsOn: [{ node: 'daily', mapping: { lag: { from: -2, to: 0 } } }] },
      { id: 'weekly', transform: 'sql', sql: 'SELECT SUM(n) AS n FROM daily', partitions: { grain: 'week' }, dependsOn: ['daily'] },
      { id: 'regions', transform: 'gen', partitions: { keys: ['eu', 'us'] } },
      { id: 'totals', transform: 'sql', sql: 'SELECT COUNT(*) AS n FROM regions', dependsOn: [{ node: 'regions', mapping: 'all' }] },
    ],
  });
}

describe('changedPartitions', () => {
  let dir: string;
  let warehouse: SqliteWarehouse;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-facts-'));
    warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
  });
  afterEach(async () => {
    await warehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Publishes every partition of `nodes` (all, by default) as the activity does, under run key `run`. */
  async function run(plan: Plan, runKey: string, nodes = plan.nodes.map((n) => n.id), codeVersion = CODE): Promise<void> {
    for (const node of plan.nodes) {
      if (!nodes.includes(node.id)) continue;
      for (let j = 0; j < node.partitions.size; j++) {
        const partition = node.partitions.key(j);
        await warehouse.publish({
          node: node.id,
          partition,
          backfillId: runKey,
          runKey,
          workflowId: `backfill/${runKey}/${node.id}`,
          data: { rows: [{ partition, run: runKey }], selects: [] },
          checks: node.spec.checks,
          transform: node.spec.transform,
          params: node.spec.params,
          codeVersion,
          inputs: partitionInputs(node, j),
          attempt: 1,
          startedAt: Date.now(),
        });
      }
    }
  }

  const counts = ({ decisions }: Awaited<ReturnType<typeof changedPartitions>>) => Object.fromEntries([...decisions].map(([id, d]) => [id, d.run.size]));

  it('runs everything on an empty warehouse, and nothing once it is published', async () => {
    const plan = expandPlan(shopLike());
    const before = await changedPartitions(plan, warehouse, CODE);
    expect(counts(before)).toEqual({ raw: 14, daily: 14, rolling: 14, weekly: 2, regions: 2, totals: 14 });
    expect(before.decisions.get('daily')!.reasons.unpublished).toBe(14);
    await run(plan, 'first');
    const after = await changedPartitions(plan, warehouse, CODE);
    expect(counts(after)).toEqual({ raw: 0, daily: 0, rolling: 0, weekly: 0, regions: 0, totals: 0 });
    expect(after.specHashRecorded).toBe(false);
  });

  it('a parameter change runs that node and its downstream', async () => {
    await run(expandPlan(shopLike()), 'first');
    const changes = await changedPartitions(expandPlan(shopLike({ threshold: 3 })), warehouse, CODE);
    expect(counts(changes)).toEqual({ raw: 0, daily: 14, rolling: 14, weekly: 2, regions: 0, totals: 0 });
    expect(changes.decisions.get('daily')!.reasons.spec).toBe(14);
    expect(changes.decisions.get('weekly')!.reasons.upstream).toBe(2);
  });

  it('a new upstream version runs the partitions that read it; a new code version runs everything', async () => {
    const plan = expandPlan(shopLike());
    await run(plan, 'first');
    // Another backfill recomputed raw for one region and the daily partitions: their readers are stale.
    await run(plan, 'second', ['regions', 'daily']);
    const changes = await changedPartitions(plan, warehouse, CODE);
    expect(counts(changes)).toEqual({ raw: 0, daily: 0, rolling: 14, weekly: 2, regions: 0, totals: 14 });
    expect(changes.decisions.get('rolling')!.reasons.inputs).toBe(14);
    expect(counts(await changedPartitions(plan, warehouse, 'backfill@next'))).toEqual({ raw: 14, daily: 14, rolling: 14, weekly: 2, regions: 2, totals: 14 });
  });

  it('a narrower range reads the same upstream partitions (also those before it): nothing runs again', async () => {
    await run(expandPlan(shopLike()), 'first');
    const narrow = expandPlan(shopLike(), { from: Date.UTC(2024, 0, 5), to: Date.UTC(2024, 0, 9) });
    const changes = await changedPartitions(narrow, warehouse, CODE);
    // rolling 01-05 and 01-06 read days before the range, in the full run and in this one alike.
    for (const node of narrow.nodes) expect(changes.decisions.get(node.id)!.run.size, node.id).toBe(0);
  });

  it('a version that recorded no input for a dependency (it read the whole upstream dataset) runs again, once', async () => {
    const spec = resolveSpec({
      name: 'edges',
      partitions: { grain: 'day', start: '2024-01-05', end: '2024-01-08' },
      nodes: [
        { id: 'days', transform: 'gen' },
        { id: 'vs_yesterday', transform: 'sql', sql: 'SELECT COUNT(*) AS n FROM days', dependsOn: [{ node: 'days', mapping: { lag: { from: -1, to: -1 } } }] },
      ],
    });
    const plan = expandPlan(spec);
    await run(plan, 'first');
    // As a release that left the input out published the first day: no input recorded.
    const first = plan.byId.get('vs_yesterday')!;
    expect(partitionInputs(first, 0)).toHaveLength(1);
    const row = { node: 'vs_yesterday', partition: '2024-01-05', backfillId: 'old', runKey: 'old', workflowId: 'w', data: { rows: [{ n: 3 }], selects: [] } };
    await warehouse.publish({ ...row, checks: [], transform: 'sql', params: {}, codeVersion: CODE, inputs: [], attempt: 1, startedAt: Date.now() });
    const changes = await changedPartitions(plan, warehouse, CODE);
    expect(counts(changes)).toEqual({ days: 0, vs_yesterday: 1 });
    expect(changes.decisions.get('vs_yesterday')!.reasons.inputs).toBe(1);
    await run(plan, 'second', ['vs_yesterday']);
    expect(counts(await changedPartitions(plan, warehouse, CODE))).toEqual({ days: 0, vs_yesterday: 0 });
  });
});
