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
/** The node as a signal brings it: through JSON. */
const sent = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

const refusal = (value: unknown): string => {
  const error = thrownBackfillError(() => parseNodeControl(value, node, 10));
  expect(error.code).toBe('invalid_argument');
  return error.message;
};

describe('parseNodeControl', () => {
  it('accepts what the parent sends: a probe, ready partitions, settings, a new spec of the node, finish', () => {
    for (const control of [{}, { ready: RangeSet.of([0, 10]).toJSON() }, { settings }, { settings: { ...settings, rate: null, concurrency: 0 } }, { settings: { ...settings, openUntil: 1000, stopBy: 1600 } }, { node }, { finish: true }]) {
      expect(parseNodeControl(sent(control), node, 10)).toEqual(control);
    }
    // A new spec of the node (a fix sent with resume --spec) comes whole and is applied as parsed.
    const fixed = { ...node, params: { fix: 1 }, taskQueue: 'other', retry: { ...node.retry, maxAttempts: 5 } };
    expect(parseNodeControl(sent({ node: fixed }), node, 10)).toEqual({ node: fixed });
  });

  it('returns what it parsed, not what was sent: nothing the node workflow applies is left unchecked', () => {
    const value = { ready: RangeSet.of([0, 2]).toJSON(), settings: { ...settings }, node: sent(node), finish: false };
    const control = parseNodeControl(value, node, 10);
    expect(control).toEqual(value);
    expect(control.node).not.toBe(value.node);
    expect(control.settings).not.toBe(value.settings);
  });

  it('a node spec made by hand without its settings is refused (ignored and logged), not filled in nor applied half', () => {
    // temporal workflow signal --name nodeControl --input '{"node":{"id":"orders","transform":"noop","params":{},"checks":[]}}'
    // was applied as it came: the node workflow then failed every task on its missing retry settings, for good.
    const { id, transform, params, checks } = node;
    expect(refusal({ node: { id, transform, params, checks } })).toMatch(/^not a control of node orders: node\.\w+: /);
    for (const field of ['concurrency', 'rate', 'burst', 'retry', 'taskQueue', 'batchSize', 'batchTarget', 'pace', 'timeout', 'heartbeatTimeout', 'partitions', 'dependsOn'] as const) {
      const { [field]: _dropped, ...partial } = node;
      expect(refusal({ node: sent(partial) })).toMatch(new RegExp(`node\\.${field}`));
    }
    const { maxThrottles: _dropped, ...retry } = node.retry;
    expect(refusal({ node: { ...node, retry } })).toMatch(/node\.retry\.maxThrottles/);
  });

  it('a node spec with other partitions or dependencies is refused: the node workflow expands its plan from them when it continues as new', () => {
    expect(refusal({ node: { ...node, partitions: 'all of them' } })).toMatch(/node changes the partitions or dependencies of orders/);
    expect(refusal({ node: { ...node, partitions: { kind: 'static', keys: ['x'] } } })).toMatch(/partitions or dependencies/);
    expect(refusal({ node: { ...node, dependsOn: [{ node: 'other', mapping: 'all' }] } })).toMatch(/partitions or dependencies/);
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
    expect(refusal({ node: { ...node, sql: 42 } })).toMatch(/node\.sql: /);
    expect(refusal({ node: { ...node, checks: null } })).toMatch(/node\.checks: /);
    expect(refusal({ node: { ...node, params: [] } })).toMatch(/node\.params: /);
    expect(refusal({ node: { ...node, transform: '' } })).toMatch(/node\.transform: /);
    expect(refusal({ node: { ...node, timeout: 'forever' } })).toMatch(/node\.timeout: /);
    expect(refusal({ node: { ...node, extra: 1 } })).toMatch(/node/);
    expect(refusal({ node: { ...node, concurrency: -3 } })).toMatch(/node\.concurrency/);
    expect(refusal({ node: { ...node, retry: { ...node.retry, initialInterval: '2h', maximumInterval: '1m' } } })).toMatch(/node\.retry\.initialInterval/);
    expect(refusal({ finish: 'yes' })).toMatch(/finish is not true or false/);
  });
});
