/** core/node-control.ts: what a node workflow accepts as its parent's order, and what it ignores. */
import { describe, expect, it } from 'vitest';
import { parseNodeControl } from '../../core/node-control.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec } from '../../core/spec.ts';
import { thrownBackfillError } from './backfill-error.ts';

const node = resolveSpec({
  name: 'orders',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
  nodes: [{ id: 'orders', transform: 'noop' }],
}).nodes[0]!;
const settings = { seq: 2, rate: 5, burst: 5, concurrency: 4, paused: false };

const refusal = (value: unknown): string => {
  const error = thrownBackfillError(() => parseNodeControl(value, 'orders', 10));
  expect(error.code).toBe('invalid_argument');
  return error.message;
};

describe('parseNodeControl', () => {
  it('accepts what the parent sends: a probe, ready partitions, settings, a new spec of the node, finish', () => {
    for (const control of [{}, { ready: RangeSet.of([0, 10]).toJSON() }, { settings }, { settings: { ...settings, rate: null, concurrency: 0 } }, { settings: { ...settings, openUntil: 1000, stopBy: 1600 } }, { node }, { finish: true }]) {
      expect(parseNodeControl(control, 'orders', 10)).toBe(control);
    }
  });

  it('refuses what is not an order of this node, naming the field', () => {
    expect(refusal(null)).toBe('not a control of node orders: not an object');
    expect(refusal('finish')).toMatch(/not an object/);
    expect(refusal([])).toMatch(/not an object/);
    expect(refusal({ drop: true })).toMatch(/unknown field drop/);
    expect(refusal({ ready: 7 })).toMatch(/ready is not a range set/);
    expect(refusal({ ready: 'abc' })).toMatch(/ready is not a range set/);
    expect(refusal({ ready: RangeSet.of([5, 11]).toJSON() })).toMatch(/ready names partitions outside the node's 10/);
    expect(refusal({ settings: { ...settings, rate: -1 } })).toMatch(/^not a control of node orders: settings\.rate:/);
    expect(refusal({ settings: { ...settings, concurrency: 'unlimited' } })).toMatch(/settings\.concurrency/);
    expect(refusal({ settings: { ...settings, burst: 0 } })).toMatch(/settings\.burst/);
    expect(refusal({ settings: { ...settings, seq: 0 } })).toMatch(/settings\.seq/);
    expect(refusal({ settings: { ...settings, extra: 1 } })).toMatch(/settings/);
    // A run window's deadline comes whole (the parent sends both, stopBy at or after openUntil).
    expect(refusal({ settings: { ...settings, openUntil: 1000 } })).toMatch(/settings\.stopBy: openUntil and stopBy come together/);
    expect(refusal({ settings: { ...settings, openUntil: 1000, stopBy: 999 } })).toMatch(/settings\.stopBy/);
    expect(refusal({ settings: { ...settings, openUntil: 'soon', stopBy: 1000 } })).toMatch(/settings\.openUntil/);
    expect(refusal({ node: { ...node, id: 'other' } })).toMatch(/node is not a spec of orders/);
    expect(refusal({ node: { ...node, sql: 42 } })).toMatch(/sql is not text/);
    expect(refusal({ node: { ...node, checks: null } })).toMatch(/no params or checks/);
    expect(refusal({ node: { ...node, concurrency: -3 } })).toMatch(/node\.concurrency/);
    expect(refusal({ node: { ...node, retry: { ...node.retry, initialInterval: '2h', maximumInterval: '1m' } } })).toMatch(/node\.retry\.initialInterval/);
    expect(refusal({ finish: 'yes' })).toMatch(/finish is not true or false/);
  });
});
