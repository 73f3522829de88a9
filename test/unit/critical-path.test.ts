import { describe, expect, it } from 'vitest';
import { criticalPath } from '../../core/critical-path.ts';
import { partitionInputs } from '../../core/inputs.ts';
import { expandPlan, planNode, planStats, upstreamOf } from '../../core/plan.ts';
import { seededRandom } from '../../core/random.ts';
import { resolveSpec } from '../../core/spec.ts';
import { loadSpecFile } from '../../client/spec-file.ts';

const EXAMPLE = new URL('../../examples/shop/backfill.yaml', import.meta.url).pathname;
const n = (id: string, extra: Record<string, unknown> = {}) => ({ id, transform: 'noop', ...extra });

/** Each step must be a partition the next one waits for. */
function expectChain(plan: ReturnType<typeof expandPlan>, path: ReturnType<typeof criticalPath>): void {
  for (let s = 1; s < path.length; s++) {
    const down = planNode(plan, path[s]!.node);
    const index = down.partitions.indexOf(path[s]!.partition);
    const waits = upstreamOf(plan, down.id, index).flatMap((r) =>
      Array.from({ length: r.end - r.start }, (_, i) => `${r.node}/${planNode(plan, r.node).partitions.key(r.start + i)}`),
    );
    expect(waits, `${path[s]!.node} ${path[s]!.partition}`).toContain(`${path[s - 1]!.node}/${path[s - 1]!.partition}`);
  }
}

describe('criticalPath', () => {
  it('is a chain of the length planStats reports, on the shop example', async () => {
    const { spec } = await loadSpecFile(EXAMPLE);
    const plan = expandPlan(spec);
    const path = criticalPath(plan);
    expect(path).toHaveLength(planStats(plan).criticalPathLength);
    expect(path.map((s) => s.node)).toEqual(['orders_raw', 'orders_clean', 'daily_revenue', expect.stringMatching(/revenue_7d|weekly_revenue/)]);
    expectChain(plan, path);
  });

  it('agrees with planStats on random graphs', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 30; trial++) {
      const count = 2 + Math.floor(random() * 5);
      const nodes = Array.from({ length: count }, (_, i) => {
        const deps = Array.from({ length: i }, (_, k) => `n${k}`).filter(() => random() < 0.5);
        const mapping = () => (random() < 0.3 ? { lag: { from: -Math.floor(random() * 3), to: 0 } } : 'identity');
        return n(`n${i}`, { dependsOn: deps.map((d) => ({ node: d, mapping: mapping() })) });
      });
      const plan = expandPlan(resolveSpec({ name: 'r', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-20' }, nodes }));
      const path = criticalPath(plan);
      expect(path).toHaveLength(planStats(plan).criticalPathLength);
      expectChain(plan, path);
    }
  });

  it('is empty for a plan with no partitions', () => {
    const plan = expandPlan(resolveSpec({ name: 'e', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' }, nodes: [n('a')] }), {
      from: Date.UTC(2025, 0, 1),
    });
    expect(criticalPath(plan)).toEqual([]);
  });
});

describe('partitionInputs', () => {
  const spec = resolveSpec({
    name: 'inputs',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-15' },
    nodes: [
      n('days'),
      n('rolling', { dependsOn: [{ node: 'days', mapping: { lag: { from: -2, to: 0 } } }] }),
      n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] }),
      n('regions', { partitions: { keys: ['eu', 'us', 'apac'] } }),
      n('by_region', { partitions: { keys: ['eu', 'us'] }, dependsOn: ['regions'] }),
      n('everything', { dependsOn: [{ node: 'regions', mapping: 'all' }] }),
    ],
  });
  const plan = expandPlan(spec);

  it('names a key range for time grains, reaching before the first partition', () => {
    expect(partitionInputs(planNode(plan, 'rolling'), 5)).toEqual([{ node: 'days', from: '2024-01-04', to: '2024-01-06' }]);
    expect(partitionInputs(planNode(plan, 'rolling'), 0)).toEqual([{ node: 'days', from: '2023-12-30', to: '2024-01-01' }]);
    expect(partitionInputs(planNode(plan, 'weeks'), 1)).toEqual([{ node: 'days', from: '2024-01-08', to: '2024-01-14' }]);
    expect(partitionInputs(planNode(plan, 'days'), 0)).toEqual([]);
  });

  it('lists static keys, or says all', () => {
    expect(partitionInputs(planNode(plan, 'by_region'), 1)).toEqual([{ node: 'regions', from: 'us', to: 'us', keys: ['us'] }]);
    expect(partitionInputs(planNode(plan, 'everything'), 3)).toEqual([{ node: 'regions', from: 'eu', to: 'apac', all: true }]);
  });
});
