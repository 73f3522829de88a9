import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import { BackfillCoordinator, resumeCarry } from '../../core/coordinator.ts';
import { addFailures } from '../../core/failures.ts';
import type { BackfillCarry, NodeStats } from '../../core/protocol.ts';
import { expandPlan, planNode, type Plan } from '../../core/plan.ts';
import { RangeSet } from '../../core/ranges.ts';
import { Readiness, resumeRunsAgain, resumedReadiness } from '../../core/readiness.ts';
import { resolveSpec } from '../../core/spec.ts';
import { seededRandom } from '../../core/random.ts';

function plan(nodes: unknown[], partitions: unknown = { grain: 'day', start: '2024-01-01', end: '2024-01-11' }): Plan {
  return expandPlan(resolveSpec({ name: 'test', partitions, nodes }));
}
const stats: NodeStats = { running: 0, rate: null, concurrency: 4, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null };
const n = (id: string, extra: Record<string, unknown> = {}) => ({ id, transform: 'noop', ...extra });

/** A released map as plain arrays, for readable expectations. */
const asArrays = (released: Map<string, RangeSet>): Record<string, number[]> =>
  Object.fromEntries([...released].map(([id, set]) => [id, [...set]]));
const set = (...values: number[]) => {
  const s = new RangeSet();
  for (const v of values) s.add(v);
  return s;
};
const span = (start: number, end: number) => RangeSet.of([start, end]);

function expectCountsAddUp(r: Readiness, p: Plan): void {
  for (const node of p.nodes) {
    const c = r.counts(node.id);
    expect(c.done + c.failed + c.inHands + c.blocked + c.waiting, node.id).toBe(c.total);
    expect(c.total).toBe(node.partitions.size);
    for (const v of Object.values(c)) expect(v).toBeGreaterThanOrEqual(0);
    // The cheap test by sizes agrees with the set itself.
    expect(r.hasInHands(node.id), node.id).toBe(!r.inHands(node.id).isEmpty);
    // A node settles (its lineage run may end) when nothing of it is in hands or waiting.
    expect(r.nodeSettled(node.id), node.id).toBe(c.done + c.failed + c.blocked >= c.total);
  }
}

describe('a chain a -> b -> c and an unrelated z', () => {
  const chain = () => plan([n('a'), n('b', { dependsOn: ['a'] }), n('c', { dependsOn: ['b'] }), n('z')]);

  it('releaseAll releases the roots only, and only once', () => {
    const p = chain();
    const r = new Readiness(p);
    expect(asArrays(r.releaseAll())).toEqual({ a: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], z: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] });
    expect(r.releaseAll().size).toBe(0);
    expect(r.counts('a')).toEqual({ total: 10, done: 0, failed: 0, inHands: 10, blocked: 0, waiting: 0 });
    expect(r.counts('b')).toEqual({ total: 10, done: 0, failed: 0, inHands: 0, blocked: 0, waiting: 10 });
    expectCountsAddUp(r, p);
  });

  it('markDone releases the matching downstream partition, one level at a time', () => {
    const p = chain();
    const r = new Readiness(p);
    r.releaseAll();
    expect(asArrays(r.markDone('a', set(3)))).toEqual({ b: [3] });
    expect(asArrays(r.markDone('a', set(3)))).toEqual({}); // already done: nothing new
    expect(asArrays(r.markDone('b', set(3)))).toEqual({ c: [3] });
    expect(asArrays(r.markDone('c', set(3)))).toEqual({});
    expect(asArrays(r.markDone('a', span(0, 10)))).toEqual({ b: [0, 1, 2, 4, 5, 6, 7, 8, 9] });
    expect(r.counts('a')).toEqual({ total: 10, done: 10, failed: 0, inHands: 0, blocked: 0, waiting: 0 });
    expect(r.counts('b')).toEqual({ total: 10, done: 1, failed: 0, inHands: 9, blocked: 0, waiting: 0 });
    expect(r.counts('c')).toEqual({ total: 10, done: 1, failed: 0, inHands: 0, blocked: 0, waiting: 9 });
    expectCountsAddUp(r, p);
  });

  it('settled is true only when nothing is in hands', () => {
    const p = chain();
    const r = new Readiness(p);
    expect(r.settled).toBe(true); // nothing released yet
    r.releaseAll();
    expect(r.settled).toBe(false);
    r.markDone('z', span(0, 10));
    r.markDone('a', span(0, 10));
    expect(r.settled).toBe(false);
    r.markDone('b', span(0, 10));
    expect(r.settled).toBe(false);
    r.markDone('c', span(0, 9));
    expect(r.settled).toBe(false);
    r.markDone('c', set(9));
    expect(r.settled).toBe(true);
    for (const id of ['a', 'b', 'c', 'z']) expect(r.counts(id).done).toBe(10);
  });

  it('a failure blocks its downstream partitions two levels deep, and nothing else', () => {
    const p = chain();
    const r = new Readiness(p);
    r.releaseAll();
    r.markFailed('a', set(2));
    expect([...r.failed('a')]).toEqual([2]);
    expect([...r.blocked('b')]).toEqual([2]);
    expect([...r.blocked('c')]).toEqual([2]);
    expect([...r.blocked('z')]).toEqual([]);
    // The rest goes on.
    expect(asArrays(r.markDone('a', span(0, 10).delete(2)))).toEqual({ b: [0, 1, 3, 4, 5, 6, 7, 8, 9] });
    expect(asArrays(r.markDone('z', span(0, 10)))).toEqual({});
    expect(asArrays(r.markDone('b', span(0, 10).delete(2)))).toEqual({ c: [0, 1, 3, 4, 5, 6, 7, 8, 9] });
    expect(r.counts('a')).toEqual({ total: 10, done: 9, failed: 1, inHands: 0, blocked: 0, waiting: 0 });
    expect(r.counts('b')).toEqual({ total: 10, done: 9, failed: 0, inHands: 0, blocked: 1, waiting: 0 });
    expect(r.counts('c')).toEqual({ total: 10, done: 0, failed: 0, inHands: 9, blocked: 1, waiting: 0 });
    expectCountsAddUp(r, p);
    r.markDone('c', span(0, 10).delete(2));
    expect(r.settled).toBe(true);
    expectCountsAddUp(r, p);
  });

  it('retryFailed hands failures back; once they complete, the blocked partitions are released', () => {
    const p = chain();
    const r = new Readiness(p);
    r.releaseAll();
    r.markFailed('a', set(2, 7));
    r.markDone('a', span(0, 10).deleteRange(2, 3).deleteRange(7, 8));
    r.markDone('b', span(0, 10).deleteRange(2, 3).deleteRange(7, 8));
    r.markDone('c', span(0, 10).deleteRange(2, 3).deleteRange(7, 8));
    r.markDone('z', span(0, 10));
    expect(r.settled).toBe(true);
    expect([...r.blocked('c')]).toEqual([2, 7]);
    expect(['a', 'b', 'c', 'z'].map((id) => r.nodeSettled(id))).toEqual([true, true, true, true]);

    const retried = r.retryFailed();
    // The failed node has them in hands again, and its downstream nodes wait for them: none of the three is settled.
    expect(['a', 'b', 'c', 'z'].map((id) => r.nodeSettled(id))).toEqual([false, false, false, true]);
    expect(asArrays(retried)).toEqual({ a: [2, 7] });
    expect(r.failed('a').isEmpty).toBe(true);
    expect([...r.inHands('a')]).toEqual([2, 7]);
    expect(r.settled).toBe(false);
    expect(r.blocked('b').isEmpty).toBe(true);
    expect(r.counts('b')).toEqual({ total: 10, done: 8, failed: 0, inHands: 0, blocked: 0, waiting: 2 });
    expect(r.retryFailed().size).toBe(0); // nothing left to retry

    expect(asArrays(r.markDone('a', set(2)))).toEqual({ b: [2] });
    expect(asArrays(r.markDone('b', set(2)))).toEqual({ c: [2] });
    expect(asArrays(r.markDone('a', set(7)))).toEqual({ b: [7] });
    r.markDone('b', set(7));
    r.markDone('c', set(2, 7));
    expect(r.settled).toBe(true);
    for (const id of ['a', 'b', 'c', 'z']) expect(r.counts(id)).toMatchObject({ done: 10, failed: 0, blocked: 0, waiting: 0 });
  });

  it('retryFailed(node) retries only that node', () => {
    const p = chain();
    const r = new Readiness(p);
    r.releaseAll();
    r.markFailed('a', set(1));
    r.markFailed('z', set(4));
    expect(asArrays(r.retryFailed('z'))).toEqual({ z: [4] });
    expect([...r.failed('a')]).toEqual([1]);
    expect(r.failed('z').isEmpty).toBe(true);
  });

  it('a late success clears a failure; a failure never undoes a success', () => {
    const p = chain();
    const r = new Readiness(p);
    r.releaseAll();
    r.markDone('a', set(0));
    r.markFailed('a', set(0, 1));
    expect([...r.failed('a')]).toEqual([1]);
    expect([...r.done('a')]).toEqual([0]);
    expect(asArrays(r.markDone('a', set(1)))).toEqual({ b: [1] });
    expect(r.failed('a').isEmpty).toBe(true);
    expect(r.blocked('b').isEmpty).toBe(true);
    expectCountsAddUp(r, p);
  });

  it('a failure downstream blocks further downstream only', () => {
    const p = chain();
    const r = new Readiness(p);
    r.releaseAll();
    r.markDone('a', span(0, 10));
    r.markFailed('b', set(5));
    expect(r.blocked('b').isEmpty).toBe(true);
    expect([...r.blocked('c')]).toEqual([5]);
    expect(r.counts('b')).toEqual({ total: 10, done: 0, failed: 1, inHands: 9, blocked: 0, waiting: 0 });
    expectCountsAddUp(r, p);
  });

  it('unknown nodes are errors', () => {
    const r = new Readiness(chain());
    expect(() => r.markDone('ghost', set(1))).toThrow(/unknown node 'ghost'/);
    expect(() => r.counts('ghost')).toThrow(RangeError);
    expect(() => r.blocked('ghost')).toThrow(RangeError);
  });
});

describe('window: a week waits for its 7 days', () => {
  const weekly = () =>
    plan([n('days'), n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] })], { grain: 'day', start: '2024-01-01', end: '2024-01-29' });

  it('releases the week only after all 7 days, in any order', () => {
    const p = weekly();
    const r = new Readiness(p);
    expect(asArrays(r.releaseAll())).toEqual({ days: Array.from({ length: 28 }, (_, i) => i) });
    for (const day of [6, 0, 5, 1, 4, 2]) expect(asArrays(r.markDone('days', set(day)))).toEqual({});
    expect(r.counts('weeks').waiting).toBe(4);
    expect(asArrays(r.markDone('days', set(3)))).toEqual({ weeks: [0] });
    // Days of weeks 1 and 2 together in one batch release both.
    expect(asArrays(r.markDone('days', span(7, 21)))).toEqual({ weeks: [1, 2] });
    expect(asArrays(r.markDone('days', span(21, 27)))).toEqual({});
    expect(asArrays(r.markDone('days', set(27)))).toEqual({ weeks: [3] });
    expectCountsAddUp(r, p);
  });

  it('a failed day blocks its week only', () => {
    const p = weekly();
    const r = new Readiness(p);
    r.releaseAll();
    r.markFailed('days', set(9));
    expect(asArrays(r.markDone('days', span(0, 28).delete(9)))).toEqual({ weeks: [0, 2, 3] });
    expect([...r.blocked('weeks')]).toEqual([1]);
    expect(r.counts('weeks')).toEqual({ total: 4, done: 0, failed: 0, inHands: 3, blocked: 1, waiting: 0 });
  });

  it('a week with a day still running is waiting, not blocked', () => {
    const p = weekly();
    const r = new Readiness(p);
    r.releaseAll();
    r.markFailed('days', set(1));
    r.markDone('days', span(7, 14));
    expect(r.counts('weeks')).toEqual({ total: 4, done: 0, failed: 0, inHands: 1, blocked: 1, waiting: 2 });
  });
});

describe('lag: a rolling window waits for the 7 preceding days present in the range', () => {
  const rolling = () => plan([n('a'), n('r', { dependsOn: [{ node: 'a', mapping: { lag: { from: -6, to: 0 } } }] })]);

  it('releases each day once its window (cut at the range start) is done', () => {
    const p = rolling();
    const r = new Readiness(p);
    r.releaseAll();
    expect(asArrays(r.markDone('a', set(0)))).toEqual({ r: [0] });
    expect(asArrays(r.markDone('a', set(2)))).toEqual({}); // r[2] still waits for a[1]
    expect(asArrays(r.markDone('a', set(1)))).toEqual({ r: [1, 2] });
    // a[3..8] done except 5: r[3], r[4] go; r[5..8] wait for a[5].
    expect(asArrays(r.markDone('a', set(3, 4, 6, 7, 8)))).toEqual({ r: [3, 4] });
    expect(asArrays(r.markDone('a', set(5)))).toEqual({ r: [5, 6, 7, 8] });
    // r[9] needs a[3..9]: only a[9] is missing.
    expect(asArrays(r.markDone('a', set(9)))).toEqual({ r: [9] });
    expectCountsAddUp(r, p);
  });

  it('a failed day blocks every rolling day whose window holds it', () => {
    const p = rolling();
    const r = new Readiness(p);
    r.releaseAll();
    r.markFailed('a', set(2));
    expect(asArrays(r.markDone('a', span(0, 10).delete(2)))).toEqual({ r: [0, 1, 9] });
    expect([...r.blocked('r')]).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expectCountsAddUp(r, p);
  });
});

describe('all and static keys', () => {
  it('mapping all waits for every upstream partition', () => {
    const p = plan([n('a'), n('m', { partitions: { grain: 'month' }, dependsOn: [{ node: 'a', mapping: 'all' }] }), n('s', { partitions: { keys: ['x', 'y'] }, dependsOn: ['a'] })]);
    const r = new Readiness(p);
    r.releaseAll();
    expect(asArrays(r.markDone('a', span(0, 9)))).toEqual({});
    expect(asArrays(r.markDone('a', set(9)))).toEqual({ m: [0], s: [0, 1] });
  });

  it('static identity with keys in another order (a non-monotone edge)', () => {
    const p = plan([
      n('regions', { partitions: { keys: ['eu', 'us', 'apac'] } }),
      n('totals', { partitions: { keys: ['apac', 'latam', 'eu', 'us'] }, dependsOn: ['regions'] }),
    ]);
    expect(planNode(p, 'totals').upstream[0]!.monotone).toBe(false);
    const r = new Readiness(p);
    // latam has no upstream key: it is ready at once.
    expect(asArrays(r.releaseAll())).toEqual({ regions: [0, 1, 2], totals: [1] });
    expect(asArrays(r.markDone('regions', set(2)))).toEqual({ totals: [0] }); // apac
    r.markFailed('regions', set(1)); // us
    expect([...r.blocked('totals')]).toEqual([3]);
    expect(asArrays(r.markDone('regions', set(0)))).toEqual({ totals: [2] }); // eu
    expectCountsAddUp(r, p);
  });

  it('a node with two upstream nodes waits for both', () => {
    const p = plan([n('a'), n('b'), n('c', { dependsOn: ['a', 'b'] })]);
    const r = new Readiness(p);
    r.releaseAll();
    expect(asArrays(r.markDone('a', set(4)))).toEqual({});
    expect(asArrays(r.markDone('b', set(4)))).toEqual({ c: [4] });
    r.markFailed('b', set(5));
    r.markDone('a', set(5));
    expect([...r.blocked('c')]).toEqual([5]);
  });
});

describe('serialisation', () => {
  const build = () =>
    plan([n('a'), n('b', { dependsOn: ['a'] }), n('w', { partitions: { grain: 'week' }, dependsOn: ['b'] }), n('z')], {
      grain: 'day',
      start: '2024-01-01',
      end: '2024-01-22',
    });

  it('toJSON and the constructor round-trip', () => {
    const p = build();
    const r = new Readiness(p);
    r.releaseAll();
    r.markDone('a', span(0, 12));
    r.markFailed('a', set(14));
    r.markDone('b', span(0, 7));
    r.markDone('z', set(3, 4, 5));
    const json = JSON.parse(JSON.stringify(r.toJSON()));
    expect(json.a).toEqual({ done: span(0, 12).toJSON(), failed: set(14).toJSON(), inHands: set(12, 13, 15, 16, 17, 18, 19, 20).toJSON() });
    const restored = new Readiness(p, json);
    expect(restored.toJSON()).toEqual(r.toJSON());
    for (const node of p.nodes) {
      expect(restored.counts(node.id)).toEqual(r.counts(node.id));
      expect([...restored.inHands(node.id)]).toEqual([...r.inHands(node.id)]);
      expect([...restored.blocked(node.id)]).toEqual([...r.blocked(node.id)]);
    }
    // Nothing is released twice after a restore.
    expect(restored.releaseAll().size).toBe(0);
    // Both go on identically.
    expect(asArrays(restored.markDone('a', span(12, 14)))).toEqual(asArrays(r.markDone('a', span(12, 14))));
    expect(asArrays(restored.markDone('b', span(7, 14)))).toEqual(asArrays(r.markDone('b', span(7, 14))));
    expect(restored.toJSON()).toEqual(r.toJSON());
  });

  it('from done partitions only, everything not done whose upstream is done is released again', () => {
    const p = build();
    const r = new Readiness(p, { a: { done: span(0, 10).toJSON() }, b: { done: span(0, 3).toJSON() } });
    expect(r.counts('a')).toMatchObject({ done: 10, inHands: 0, waiting: 11 });
    const released = asArrays(r.releaseAll());
    expect(released).toEqual({
      a: Array.from({ length: 11 }, (_, i) => 10 + i),
      b: [3, 4, 5, 6, 7, 8, 9],
      z: Array.from({ length: 21 }, (_, i) => i),
    });
    expect(r.releaseAll().size).toBe(0);
    expect(r.counts('b')).toEqual({ total: 21, done: 3, failed: 0, inHands: 7, blocked: 0, waiting: 11 });
    expectCountsAddUp(r, p);
  });

  it('from done partitions only, earlier failures are considered again, not kept as failed', () => {
    const p = build();
    const r = new Readiness(p, { a: { done: span(0, 10).toJSON(), failed: span(10, 12).toJSON() } });
    expectCountsAddUp(r, p);
    expect(r.failed('a').isEmpty).toBe(true);
    const released = asArrays(r.releaseAll());
    expect(released.a).toEqual(Array.from({ length: 11 }, (_, i) => 10 + i));
    expect([...r.inHands('a')]).toEqual(released.a);
    expect(r.counts('a')).toEqual({ total: 21, done: 10, failed: 0, inHands: 11, blocked: 0, waiting: 0 });
    expect(r.settled).toBe(false);
    expectCountsAddUp(r, p);
  });

  it('with inHands, failures are restored as failures', () => {
    const p = build();
    const r = new Readiness(p, { a: { done: span(0, 10).toJSON(), failed: span(10, 12).toJSON(), inHands: span(12, 21).toJSON() } });
    expect([...r.failed('a')]).toEqual([10, 11]);
    expect(r.releaseAll().has('a')).toBe(false);
    expect([...r.blocked('b')]).toEqual([10, 11]);
    expectCountsAddUp(r, p);
  });

  it('resumeRunsAgain says whether the resumed run of a settled one releases anything, for every node retried or all', () => {
    const p = build();
    /** Settles a run in which `fail` of a fails: everything else that can run is done. */
    const settled = (fail: RangeSet) => {
      const r = new Readiness(p);
      let released = r.releaseAll();
      while (released.size > 0) {
        const next = new Map<string, RangeSet>();
        for (const [id, ready] of released) {
          const failed = id === 'a' ? ready.minus(ready.minus(fail)) : new RangeSet();
          if (!failed.isEmpty) r.markFailed(id, failed);
          for (const [down, more] of r.markDone(id, ready.minus(failed))) next.set(down, (next.get(down) ?? new RangeSet()).addAll(more));
        }
        released = next;
      }
      expect(r.settled).toBe(true);
      return JSON.parse(JSON.stringify(r.toJSON()));
    };
    for (const fail of [new RangeSet(), set(14), set(0, 20)]) {
      const json = settled(fail);
      for (const retry of [undefined, 'a', 'b', 'w', 'z']) {
        const releases = new Readiness(p, resumedReadiness(json, retry)).releaseAll().size > 0;
        expect(resumeRunsAgain(json, retry), `fail ${[...fail].join(',')} retry ${retry}`).toBe(releases);
      }
    }
  });

  it('a node missing from the saved state starts fresh', () => {
    const p = build();
    const r = new Readiness(p, { a: { done: span(0, 21).toJSON(), failed: '', inHands: '' } });
    expect(asArrays(r.releaseAll())).toEqual({ b: Array.from({ length: 21 }, (_, i) => i), z: Array.from({ length: 21 }, (_, i) => i) });
  });
});

describe('randomised runs keep every invariant', () => {
  const p = plan(
    [
      n('hours', { partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-04' } }),
      n('days', { dependsOn: ['hours'] }),
      n('rolling', { dependsOn: [{ node: 'days', mapping: { lag: { from: -2, to: 0 } } }] }),
      n('weeks', { partitions: { grain: 'week' }, dependsOn: ['days'] }),
      n('dims', { partitions: { keys: ['k1', 'k2', 'k3'] } }),
      n('joined', { dependsOn: ['rolling', { node: 'dims', mapping: 'all' }] }),
      n('top', { partitions: { keys: ['k3', 'k1', 'k9'] }, dependsOn: ['dims'] }),
    ],
    { grain: 'day', start: '2024-01-01', end: '2024-01-15' },
  );

  /** Blocked, by the definition: not released and needs a failed or blocked partition. */
  function naiveBlocked(r: Readiness, released: Map<string, Set<number>>): Map<string, Set<number>> {
    const out = new Map<string, Set<number>>();
    for (const node of p.nodes) {
      const blocked = new Set<number>();
      for (let j = 0; j < node.partitions.size; j++) {
        if (released.get(node.id)!.has(j)) continue;
        const bad = node.upstream.some((e) => {
          for (let i = e.lo[j]!; i < e.hi[j]!; i++) if (r.failed(e.node).has(i) || out.get(e.node)!.has(i)) return true;
          return false;
        });
        if (bad) blocked.add(j);
      }
      out.set(node.id, blocked);
    }
    return out;
  }

  for (const seed of [7, 99, 12345]) {
    it(`seed ${seed}`, () => {
      const random = seededRandom(seed);
      const r = new Readiness(p);
      const released = new Map(p.nodes.map((node) => [node.id, new Set<number>()]));
      const done = new Map(p.nodes.map((node) => [node.id, new Set<number>()]));
      const inHands = () => p.nodes.flatMap((node) => [...r.inHands(node.id)].map((j) => [node.id, j] as const));

      const accept = (map: Map<string, RangeSet>) => {
        for (const [id, ready] of map) {
          const node = planNode(p, id);
          for (const j of ready) {
            expect(released.get(id)!.has(j), `${id}[${j}] released twice`).toBe(false);
            released.get(id)!.add(j);
            // Released only when every upstream partition is done.
            for (const e of node.upstream) for (let i = e.lo[j]!; i < e.hi[j]!; i++) expect(done.get(e.node)!.has(i)).toBe(true);
          }
        }
      };

      accept(r.releaseAll());
      let steps = 0;
      let failures = 0;
      let blockedSeen = 0;
      for (let round = 0; round < 3; round++) {
        while (inHands().length > 0 && steps < 5000) {
          steps++;
          const hands = inHands();
          const batch = hands.filter(() => random() < 0.3);
          const pick = batch.length > 0 ? batch : [hands[Math.floor(random() * hands.length)]!];
          const byNode = new Map<string, { ok: RangeSet; bad: RangeSet }>();
          for (const [id, j] of pick) {
            const entry = byNode.get(id) ?? { ok: new RangeSet(), bad: new RangeSet() };
            (random() < 0.05 ? entry.bad : entry.ok).add(j);
            byNode.set(id, entry);
          }
          for (const [id, { ok, bad }] of byNode) {
            if (!bad.isEmpty) r.markFailed(id, bad);
            failures += bad.size;
            for (const j of ok) done.get(id)!.add(j);
            accept(r.markDone(id, ok));
          }
          expectCountsAddUp(r, p);
          const blocked = naiveBlocked(r, released);
          for (const node of p.nodes) expect([...r.blocked(node.id)]).toEqual([...blocked.get(node.id)!].sort((a, b) => a - b));
          blockedSeen += p.nodes.reduce((sum, node) => sum + r.blocked(node.id).size, 0);
          if (steps % 7 === 0) {
            // A restore in the middle changes nothing.
            const restored = new Readiness(p, JSON.parse(JSON.stringify(r.toJSON())));
            expect(restored.toJSON()).toEqual(r.toJSON());
            expect(restored.releaseAll().size).toBe(0);
          }
        }
        expect(r.settled).toBe(true);
        // Every partition ends done, failed, or blocked: nothing waits forever.
        for (const node of p.nodes) expect(r.counts(node.id).waiting).toBe(0);
        // Retry the failures; those partitions are in hands again.
        const retried = r.retryFailed();
        for (const [id, ranges] of retried) for (const j of ranges) expect(r.inHands(id).has(j)).toBe(true);
      }
      // The run was not vacuous: partitions failed and blocked others.
      expect(failures).toBeGreaterThan(0);
      expect(blockedSeen).toBeGreaterThan(0);
      // Finally, succeed at everything that is left.
      while (inHands().length > 0) {
        for (const node of p.nodes) {
          const hands = r.inHands(node.id).clone();
          for (const j of hands) done.get(node.id)!.add(j);
          accept(r.markDone(node.id, hands));
        }
        const again = r.retryFailed();
        for (const [id, ranges] of again) expect(ranges.isEmpty, id).toBe(true);
      }
      for (const node of p.nodes) expect(r.counts(node.id)).toMatchObject({ done: node.partitions.size, failed: 0, blocked: 0, waiting: 0, inHands: 0 });
    });
  }
});

describe('resuming an ended run agrees with Readiness', () => {
  const plan = expandPlan(
    resolveSpec({
      name: 'resume',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-07' },
      nodes: [
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: ['a'] },
        { id: 'c', transform: 'noop' },
        { id: 'd', transform: 'noop', dependsOn: [{ node: 'b', mapping: { lag: { from: -1, to: 0 } } }, 'c'] },
      ],
    }),
  );
  const ids = plan.nodes.map((n) => n.id);
  // Reports of partitions in hands: done or failed, in any order, before the run ends.
  const reportsArbitrary = fc.array(fc.record({ node: fc.nat({ max: 3 }), index: fc.nat({ max: 5 }), failed: fc.boolean() }), { maxLength: 40 });

  it('every partition a resumed run counts in hands is handed to its new node workflows, and the run settles once they report', () => {
    fc.assert(
      fc.property(reportsArbitrary, fc.option(fc.nat({ max: 3 }), { nil: undefined }), (reports, retry) => {
        const ended = new BackfillCoordinator(plan, { rate: null, concurrency: null });
        ended.releaseInitial();
        for (const id of ids) ended.takeInitial(id);
        for (const r of reports) {
          const id = ids[r.node]!;
          if (!ended.readiness.inHands(id).has(r.index)) continue;
          const one = RangeSet.of([r.index, r.index + 1]);
          ended.onReport({ node: id, done: r.failed ? '' : one.toJSON(), failures: r.failed ? addFailures([], 'boom', 'Error', one) : [], stats });
        }
        const carry = JSON.parse(JSON.stringify({ ...ended.toCarry(), runKey: 'k', childrenRunning: false, startedAt: 0, runs: 1 })) as BackfillCarry;
        const node = retry === undefined ? undefined : ids[retry];
        const resumed = new BackfillCoordinator(plan, { rate: null, concurrency: null }, resumeCarry(carry, node));
        resumed.releaseInitial();
        // The invariant: what Readiness counts in hands is exactly what the new node workflows start with.
        const handed = new Map(ids.map((id) => [id, resumed.takeInitial(id)]));
        for (const id of ids) expect([...handed.get(id)!], id).toEqual([...resumed.readiness.inHands(id)]);
        // What the ended run had in hands may have been published unreported: the new run looks first.
        for (const id of ids) expect([...resumed.recheckOf(id)]).toEqual([...ended.readiness.inHands(id)]);
        // Done stays done; the retried node's failures run again, the others' stay failed.
        for (const id of ids) {
          expect([...resumed.readiness.done(id)]).toEqual([...ended.readiness.done(id)]);
          if (node === undefined || id === node) expect(resumed.readiness.failed(id).isEmpty).toBe(true);
          else expect([...resumed.readiness.failed(id)]).toEqual([...ended.readiness.failed(id)]);
        }
        // Everything handed out completes: the resumed run settles with every partition accounted for.
        for (let round = 0; round < ids.length + 1 && !resumed.settled; round++) {
          for (const id of ids) {
            const more = resumed.takeOutgoing(id).ready;
            const held = handed.get(id)!.addAll(RangeSet.fromJSON(more));
            handed.set(id, new RangeSet());
            if (!held.isEmpty) resumed.onReport({ node: id, done: held.toJSON(), failures: [], stats });
          }
        }
        expect(resumed.settled).toBe(true);
      }),
      { numRuns: 500, seed: 17 },
    );
  }, 60_000);
});
