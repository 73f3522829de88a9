import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/canonical.ts';
import { decideRecompute, initialRelease, ownReason, skipOf, type Making, type OwnReason, type OwnReasons } from '../../core/only-changed.ts';
import { expandPlan, planNode, type Plan } from '../../core/plan.ts';
import { seededRandom } from '../../core/random.ts';
import { RangeSet } from '../../core/ranges.ts';
import { Readiness } from '../../core/readiness.ts';
import { resolveSpec, type ResolvedSpec } from '../../core/spec.ts';
import { loadSpecFile } from '../../client/spec-file.ts';

const EXAMPLE = new URL('../../examples/shop/backfill.yaml', import.meta.url).pathname;

const made: Making = {
  transform: 'sql',
  params: { a: 1, nested: { x: [1, 2], y: 'z' } },
  codeVersion: 'backfill@1',
  specHash: 'aaaa',
  inputs: [
    { node: 'up', digest: 'd1' },
    { node: 'other', digest: 'd2' },
  ],
};

describe('ownReason', () => {
  it('keeps a version made from the same spec, code and inputs', () => {
    expect(ownReason(made, { ...made })).toBeNull();
    // Key order and input order do not matter (PostgreSQL's jsonb reorders keys).
    expect(ownReason(made, { ...made, params: { nested: { y: 'z', x: [1, 2] }, a: 1 }, inputs: [...made.inputs].reverse() })).toBeNull();
  });

  const cases: Array<[string, Partial<Making>, OwnReason]> = [
    ['a different transform', { transform: 'noop' }, 'spec'],
    ['a changed parameter', { params: { a: 2, nested: { x: [1, 2], y: 'z' } } }, 'spec'],
    ['a new parameter', { params: { ...made.params, b: true } }, 'spec'],
    ['a changed array element', { params: { a: 1, nested: { x: [2, 1], y: 'z' } } }, 'spec'],
    ['a different spec hash', { specHash: 'bbbb' }, 'spec'],
    ['another code version', { codeVersion: 'backfill@2' }, 'code'],
    ['an upstream version that changed', { inputs: [{ node: 'up', digest: 'changed' }, made.inputs[1]!] }, 'inputs'],
    ['an input it did not read', { inputs: [...made.inputs, { node: 'third', digest: 'd3' }] }, 'inputs'],
    ['an input it no longer reads', { inputs: [made.inputs[0]!] }, 'inputs'],
  ];
  for (const [label, change, reason] of cases) {
    it(`runs again for ${label}: ${reason}`, () => expect(ownReason(made, { ...made, ...change })).toBe(reason));
  }

  it('runs a partition that was never published', () => expect(ownReason(null, made)).toBe('unpublished'));

  it('compares spec hashes only when the ledger recorded one', () => {
    expect(ownReason({ ...made, specHash: undefined }, { ...made, specHash: 'other' })).toBeNull();
    expect(ownReason({ ...made, specHash: null }, { ...made, specHash: 'other' })).toBeNull();
  });

  it('names the first reason when there are several: spec, then code, then inputs', () => {
    expect(ownReason(made, { ...made, transform: 'x', codeVersion: 'y', inputs: [] })).toBe('spec');
    expect(ownReason(made, { ...made, codeVersion: 'y', inputs: [] })).toBe('code');
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops undefined fields', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson(undefined)).toBe('null');
  });
});

/** The run set of every node as sorted keys, for readable expectations. */
function runKeys(plan: Plan, decisions: ReturnType<typeof decideRecompute>): Record<string, string[]> {
  return Object.fromEntries(plan.nodes.map((n) => [n.id, [...decisions.get(n.id)!.run.values()].map((j) => n.partitions.key(j))]));
}

function allOf(plan: Plan, node: string): RangeSet {
  return RangeSet.of([0, planNode(plan, node).partitions.size]);
}

describe('decideRecompute on the shop example (2024-01-01 to 2024-02-01)', () => {
  let spec: ResolvedSpec;
  let plan: Plan;
  beforeAll(async () => {
    spec = (await loadSpecFile(EXAMPLE)).spec;
    plan = expandPlan(spec, { from: Date.UTC(2024, 0, 1), to: Date.UTC(2024, 1, 1) });
  });

  it('runs nothing when nothing changed', () => {
    const decisions = decideRecompute(plan, new Map());
    for (const node of plan.nodes) {
      expect(decisions.get(node.id)!.run.size, node.id).toBe(0);
      expect(decisions.get(node.id)!.skip.size, node.id).toBe(node.partitions.size);
    }
    expect(skipOf(decisions)).toEqual(Object.fromEntries(plan.nodes.map((n) => [n.id, RangeSet.of([0, n.partitions.size]).toJSON()])));
  });

  it('a parameter change on one node runs exactly that node and its downstream', () => {
    const decisions = decideRecompute(plan, new Map([['daily_revenue', { spec: allOf(plan, 'daily_revenue') }]]));
    const sizes = Object.fromEntries(plan.nodes.map((n) => [n.id, decisions.get(n.id)!.run.size]));
    expect(sizes).toEqual({
      orders_raw: 0,
      orders_clean: 0,
      daily_revenue: 31,
      revenue_7d: 31,
      weekly_revenue: planNode(plan, 'weekly_revenue').partitions.size,
      monthly_active_customers: 0,
    });
    expect(decisions.get('daily_revenue')!.reasons).toMatchObject({ spec: 31, upstream: 0 });
    expect(decisions.get('revenue_7d')!.reasons).toMatchObject({ spec: 0, upstream: 31 });
    expect(Object.keys(skipOf(decisions)).sort()).toEqual(['monthly_active_customers', 'orders_clean', 'orders_raw']);
  });

  it('a changed upstream version runs its dependants, through every mapping', () => {
    const index = planNode(plan, 'orders_clean').partitions.indexOf('2024-01-10');
    const decisions = decideRecompute(plan, new Map([['orders_clean', { inputs: RangeSet.of([index, index + 1]) }]]));
    expect(runKeys(plan, decisions)).toEqual({
      orders_raw: [],
      orders_clean: ['2024-01-10'],
      daily_revenue: ['2024-01-10'],
      // Each day of the 7-day window that ends on or after the 10th.
      revenue_7d: ['2024-01-10', '2024-01-11', '2024-01-12', '2024-01-13', '2024-01-14', '2024-01-15', '2024-01-16'],
      weekly_revenue: ['2024-W02'],
      monthly_active_customers: ['2024-01'],
    });
    expect(decisions.get('orders_clean')!.reasons).toMatchObject({ inputs: 1 });
  });

  it('counts each partition under its first reason, and the rest under upstream', () => {
    const decisions = decideRecompute(
      plan,
      new Map<string, Partial<Record<OwnReason, RangeSet>>>([
        ['orders_raw', { unpublished: RangeSet.of([0, 2]), code: RangeSet.of([1, 4]) }],
        ['orders_clean', { spec: RangeSet.of([3, 5]) }],
      ]),
    );
    expect(decisions.get('orders_raw')!.reasons).toEqual({ unpublished: 2, spec: 0, code: 2, inputs: 0, upstream: 0 });
    // Days 0-3 run for orders_raw; day 3 is orders_clean's own spec change, day 4 too.
    expect(decisions.get('orders_clean')!.reasons).toEqual({ unpublished: 0, spec: 2, code: 0, inputs: 0, upstream: 3 });
    expect([...decisions.get('orders_clean')!.run.ranges()]).toEqual([[0, 5]]);
  });

  it('ignores indexes beyond a node\'s partitions', () => {
    const decisions = decideRecompute(plan, new Map([['monthly_active_customers', { code: RangeSet.of([0, 50]) }]]));
    expect(decisions.get('monthly_active_customers')!.run.size).toBe(1);
  });
});

describe('decideRecompute agrees with the obvious recursion on random graphs', () => {
  it('for 40 random plans and facts', () => {
    const random = seededRandom(11);
    let plans = 0;
    for (let trial = 0; trial < 40; trial++) {
      const count = 2 + Math.floor(random() * 5);
      const nodes = Array.from({ length: count }, (_, i) => {
        const deps = Array.from({ length: i }, (_, k) => `n${k}`).filter(() => random() < 0.5);
        const grain = random() < 0.2 ? 'week' : 'day';
        const mapping = () => (random() < 0.2 ? 'all' : grain === 'day' && random() < 0.4 ? { lag: { from: -Math.floor(random() * 4), to: 0 } } : undefined);
        return {
          id: `n${i}`,
          transform: 'noop',
          partitions: { grain },
          dependsOn: deps.map((d) => {
            const m = mapping();
            return m === undefined ? d : { node: d, mapping: m };
          }),
        };
      });
      let plan: Plan;
      try {
        plan = expandPlan(resolveSpec({ name: 'r', partitions: { grain: 'day', start: '2024-01-01', end: '2024-02-10' }, nodes }));
      } catch {
        continue; // a lag between grains that do not fit: not a plan
      }
      plans++;
      const own: OwnReasons = new Map(
        plan.nodes.map((n) => {
          const set = new RangeSet();
          for (let j = 0; j < n.partitions.size; j++) if (random() < 0.05) set.add(j);
          return [n.id, { inputs: set }];
        }),
      );
      const expected = new Map<string, boolean[]>();
      for (const node of plan.nodes) {
        const mine = own.get(node.id)!.inputs!;
        expected.set(
          node.id,
          Array.from({ length: node.partitions.size }, (_, j) =>
            mine.has(j) || node.upstream.some((e) => Array.from({ length: e.hi[j]! - e.lo[j]! }, (_, k) => expected.get(e.node)![e.lo[j]! + k]).some(Boolean)),
          ),
        );
      }
      const decisions = decideRecompute(plan, own);
      for (const node of plan.nodes) {
        const run = decisions.get(node.id)!.run;
        expect(Array.from({ length: node.partitions.size }, (_, j) => run.has(j)), `trial ${trial} ${node.id}`).toEqual(expected.get(node.id));
      }
    }
    expect(plans).toBeGreaterThan(20);
  });
});

describe('initialRelease', () => {
  let plan: Plan;
  beforeAll(async () => {
    plan = expandPlan((await loadSpecFile(EXAMPLE)).spec, { from: Date.UTC(2024, 0, 1), to: Date.UTC(2024, 1, 1) });
  });
  const json = (released: Map<string, RangeSet>) => Object.fromEntries([...released].map(([id, set]) => [id, [...set.ranges()].flat()]));

  it('is releaseAll when nothing is skipped', () => {
    expect(json(initialRelease(plan, new Readiness(plan)))).toEqual(json(new Readiness(plan).releaseAll()));
    expect(json(initialRelease(plan, new Readiness(plan), {}))).toEqual({ orders_raw: [0, 31] });
  });

  it('counts skipped partitions as done and releases what waits only on them', () => {
    const readiness = new Readiness(plan);
    const released = initialRelease(plan, readiness, { orders_raw: RangeSet.of([0, 31]).toJSON(), orders_clean: RangeSet.of([0, 10]).toJSON() });
    expect(json(released)).toEqual({ orders_clean: [10, 31], daily_revenue: [0, 10] });
    expect([...readiness.done('orders_clean').ranges()]).toEqual([[0, 10]]);
    expect(readiness.counts('orders_raw')).toMatchObject({ done: 31, inHands: 0 });
  });

  it('releases nothing when everything is skipped, and the backfill has settled', () => {
    const readiness = new Readiness(plan);
    const skip = Object.fromEntries(plan.nodes.map((n) => [n.id, RangeSet.of([0, n.partitions.size]).toJSON()]));
    expect(initialRelease(plan, readiness, skip).size).toBe(0);
    expect(readiness.settled).toBe(true);
  });

  it('ignores indexes beyond a node\'s partitions', () => {
    const readiness = new Readiness(plan);
    initialRelease(plan, readiness, { monthly_active_customers: RangeSet.of([0, 9]).toJSON() });
    expect([...readiness.done('monthly_active_customers').ranges()]).toEqual([[0, 1]]);
  });
});
