/** BackfillCoordinator: what the parent workflow decides, tested without a server. */
import { describe, expect, it } from 'vitest';
import { parseCanary } from '../../core/canary.ts';
import { BackfillCoordinator } from '../../core/coordinator.ts';
import { thrownBackfillError } from './backfill-error.ts';
import { governedCoordinator } from './governed-coordinator.ts';
import { addFailures } from '../../core/failures.ts';
import { expandPlan } from '../../core/plan.ts';
import type { NodeReport, NodeStats } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import type { PolicyInput } from '../../core/policy.ts';
import { NodeScheduler } from '../../core/scheduler.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';

const chain = (nodes: SpecInput['nodes'], partitions: SpecInput['partitions'] = { grain: 'day', start: '2024-01-01', end: '2024-01-11' }) =>
  expandPlan(resolveSpec({ name: 'c', partitions, defaults: { concurrency: 4 }, nodes }));

const stats: NodeStats = { running: 0, rate: null, concurrency: 4, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null };
const report = (node: string, done: RangeSet, failed?: RangeSet): NodeReport => ({
  node,
  done: done.toJSON(),
  failures: failed ? addFailures([], 'boom', 'Error', failed) : [],
  stats,
});
const set = (control: { ready?: string }) => [...RangeSet.fromJSON(control.ready)];

describe('BackfillCoordinator: readiness and the outbox', () => {
  const plan = chain([
    { id: 'a', transform: 'noop' },
    { id: 'b', transform: 'noop', dependsOn: ['a'] },
  ]);

  it('releases the roots at the start and downstream partitions as their upstream completes', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    expect([...c.takeInitial('a')]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(c.takeInitial('b').isEmpty).toBe(true);
    c.onReport(report('a', RangeSet.of([0, 3])));
    expect(c.hasOutgoing('b')).toBe(true);
    expect(set(c.takeOutgoing('b'))).toEqual([0, 1, 2]);
    expect(c.hasOutgoing('b')).toBe(false);
  });

  it('puts back what could not be delivered, merged with what came since: nothing released is lost', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    c.onReport(report('a', RangeSet.of([0, 2])));
    const first = c.takeOutgoing('b');
    c.onReport(report('a', RangeSet.of([2, 4])));
    c.restore('b', first);
    expect(set(c.takeOutgoing('b'))).toEqual([0, 1, 2, 3]);
  });

  it('a node workflow that closed is started again with every partition it held, a limited number of times', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    c.onReport(report('a', RangeSet.of([0, 4])));
    c.takeOutgoing('b'); // delivered: b holds 0..3
    c.onReport(report('b', RangeSet.of([0, 1])));
    c.onReport(report('a', RangeSet.of([4, 5]))); // 4 released to b, still in the outbox
    const restart = c.restartNode('b', 2)!;
    expect([...restart.ready]).toEqual([1, 2, 3, 4]);
    expect(restart.attempt).toBe(1);
    expect(c.hasOutgoing('b')).toBe(false);
    expect(c.restartNode('b', 2)!.attempt).toBe(2);
    expect(c.restartNode('b', 2)).toBeNull();
    expect(c.restartsOf('b')).toBe(2);
  });

  it('settles once nothing is in hands, and finishAll tells every node to finish', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    c.onReport(report('a', RangeSet.of([0, 10])));
    c.takeOutgoing('b');
    expect(c.settled).toBe(false);
    c.onReport(report('b', RangeSet.of([0, 9]), RangeSet.of([9, 10])));
    expect(c.settled).toBe(true);
    expect(c.anyFailed).toBe(true);
    c.finishAll();
    expect(c.takeOutgoing('a').finish).toBe(true);
    expect(() => c.parseRetry()).toThrow(/finishing/);
  });

  it('retryFailed hands failures back and clears their groups', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    c.onReport(report('a', RangeSet.of([0, 8]), RangeSet.of([8, 10])));
    expect(c.progress('x', 'running', 1).failed).toBe(2);
    expect(c.retryFailed('a')).toBe(2);
    expect(set(c.takeOutgoing('a'))).toEqual([8, 9]);
    expect(c.progress('x', 'running', 1).nodes[0]!.failures).toEqual([]);
  });

  it('a node report that is not one of this plan (sent by hand) is refused and changes nothing', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    const before = JSON.stringify(c.toCarry());
    const good = report('a', RangeSet.of([0, 1]));
    for (const junk of [
      null,
      'a',
      { node: 'a' },
      { ...good, done: 5 },
      { ...good, done: 'x' },
      { ...good, done: RangeSet.of([0, 11]).toJSON() },
      { ...good, failures: 'boom' },
      { ...good, failures: [{ message: 'm', type: 't', ranges: RangeSet.of([99, 100]).toJSON() }] },
      { ...good, stats: { ...stats, running: 'many' } },
      { ...good, stats: { ...stats, rate: Number.NaN } },
      { ...good, final: 'done' },
    ]) {
      expect(thrownBackfillError(() => c.onReport(junk)).message).toMatch(/not a node report of this backfill/);
    }
    expect(JSON.stringify(c.toCarry())).toBe(before);
    c.onReport(good);
    expect([...c.readiness.done('a')]).toEqual([0]);
  });

  // Before, stats and totals were kept as sent: a field of any size rode in every carry and progress query.
  it('a node report sent by hand keeps only what a report is: no extra field is carried, a failure type is cut short', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    const junk = 'x'.repeat(100_000);
    const spending = { failedAttempts: 0, partitionSeconds: 1, rows: 1, reported: 0 };
    c.onReport({
      ...report('a', RangeSet.of([0, 1])),
      failures: [{ message: 'boom', type: junk, ranges: RangeSet.of([1, 2]).toJSON(), junk }],
      stats: { ...stats, batchSize: 'big', latencyP95Ms: 12, junk },
      total: { ...spending, junk },
      junk,
    });
    const carry = c.toCarry();
    expect(JSON.stringify(carry).length).toBeLessThan(2_000);
    expect(carry.reports.a).toEqual({ ...stats, latencyP95Ms: 12 });
    expect(carry.spentTotals?.a).toEqual(spending);
    expect(carry.failures.a).toEqual([{ message: 'boom', type: `${'x'.repeat(100)}…`, ranges: RangeSet.of([1, 2]).toJSON() }]);
  });

  it('a node report for a node it does not know is ignored', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.onReport(report('ghost', RangeSet.of([0, 1])));
    expect(c.progress('x', 'running', 1).done).toBe(0);
  });
});

describe('BackfillCoordinator: limits and controls', () => {
  const plan = chain([
    { id: 'a', transform: 'noop', concurrency: 8, rate: 4 },
    { id: 'b', transform: 'noop', dependsOn: ['a'] },
  ]);

  it('hands each node its share and marks changed settings for delivery, with a new seq', () => {
    const c = new BackfillCoordinator(plan, { rate: 2, concurrency: 3 });
    c.releaseInitial();
    c.refreshSettings();
    expect(c.settingsOf('a')).toMatchObject({ seq: 1, rate: 2, concurrency: 3, paused: false });
    c.takeInitial('a');
    c.setPaused(true);
    c.refreshSettings();
    const control = c.takeOutgoing('a');
    expect(control.settings).toMatchObject({ seq: 2, paused: true });
    expect(c.takeOutgoing('a').settings).toBeUndefined();
  });

  it("answers a node's orders (the nodeOrders query) as last decided, changing nothing; an unknown or odd node is refused", () => {
    const c = new BackfillCoordinator(plan, { rate: 2, concurrency: 3 });
    c.releaseInitial();
    c.refreshSettings();
    expect(c.ordersOf('a')).toEqual({ settings: c.settingsOf('a'), node: c.nodeSpec('a') });
    c.setPaused(true);
    // Not recomputed by a query: the settings the node was last told, until the workflow refreshes them (and rings again).
    expect(c.ordersOf('a').settings).toMatchObject({ seq: 1, paused: false });
    expect(c.needsRefresh).toBe(true);
    c.refreshSettings();
    expect(c.ordersOf('a').settings).toMatchObject({ seq: 2, paused: true });
    for (const odd of ['ghost', 42, null, { id: 'a' }]) expect(() => c.ordersOf(odd), String(odd)).toThrow(/no orders for node/);
  });

  it('validates controls with one schema, naming the problem, and changes nothing on bad input', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    const error = thrownBackfillError(() => c.parseRate(-1, 'a'));
    expect(error.message).toMatch(/above 0/);
    expect(() => c.parseRate(2, 'ghost')).toThrow(/unknown node 'ghost'.*a, b/);
    expect(() => c.parseConcurrency(null, 'a')).toThrow(/a node needs a concurrency/);
    expect(c.controlState()).toEqual({ paused: false, rate: null, concurrency: null, nodes: [{ id: 'a', rate: 4, concurrency: 8 }, { id: 'b', rate: null, concurrency: 4 }] });
    expect(c.setRate(9, 'b').nodes[1]).toEqual({ id: 'b', rate: 9, concurrency: 4 });
    expect(c.setConcurrency(2).concurrency).toBe(2);
  });

  it('marks a control that asks for what is in force unchanged, with who set it, when and why, as far as its trail tells', () => {
    const clock = { now: Date.parse('2024-05-01T12:00:00Z') };
    const spec = resolveSpec({ name: 'u', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' }, nodes: [{ id: 'a', transform: 'noop', rate: 4 }] });
    const c = governedCoordinator(spec, expandPlan(spec), { version: 1 }, { backfillId: 'u', now: () => clock.now });
    const paused = clock.now;
    expect(c.setPaused(true, { identity: 'alice', reason: 'source late' }).unchanged).toBeUndefined();
    clock.now += 60_000;
    expect(c.setPaused(true, { identity: 'bob' }).unchanged).toEqual({ since: paused, by: 'alice (declared)', reason: 'source late' });
    expect(c.setPaused(false, { identity: 'bob' }).unchanged).toBeUndefined();
    // Not paused since bob's resume just before: that entry says since when and by whom (it gave no reason).
    expect(c.setPaused(false).unchanged).toEqual({ since: clock.now, by: 'bob (declared)', reason: null });
    // A node's rate from its spec: unchanged, by no recorded control.
    expect(c.setRate(4, 'a').unchanged).toEqual({ since: null, by: null, reason: null });
    expect(c.setRate(5, 'a', { identity: 'carol', reason: 'faster' }).unchanged).toBeUndefined();
    expect(c.setRate(5, 'a').unchanged).toMatchObject({ by: 'carol (declared)', reason: 'faster' });
    // The backfill-wide rate is not the node's.
    expect(c.setRate(5).unchanged).toBeUndefined();
    expect(c.setConcurrency(3).unchanged).toBeUndefined();
    expect(c.setConcurrency(3).unchanged).toMatchObject({ since: clock.now });
    // Without a policy no trail is kept: unchanged all the same.
    const bare = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    expect(bare.setPaused(false).unchanged).toEqual({ since: null, by: null, reason: null });
  });

  it("records in a new run's start entry its own value of each limit it was given (resume --rate), not the request's", () => {
    const clock = { now: Date.parse('2024-05-01T12:00:00Z') };
    const spec = resolveSpec({ name: 'r', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' }, nodes: [{ id: 'a', transform: 'noop' }] });
    const c = governedCoordinator(spec, expandPlan(spec), { version: 1 }, { backfillId: 'r', now: () => clock.now });
    c.setRate(20);
    clock.now += 60_000;
    c.recordStart({ identity: 'op', reason: 'slower for the night' }, { resumed: true, partitions: 10, rate: 999 }, 'resume', ['rate']);
    const entry = c.governed!.audit.last!;
    expect(entry).toMatchObject({ action: 'resume', identity: 'op', details: { resumed: true, partitions: 10, rate: 20 } });
    expect(entry.details).not.toHaveProperty('concurrency');
    // The resume set it last: asking for it again is unchanged since then.
    clock.now += 60_000;
    expect(c.setRate(20).unchanged).toEqual({ since: clock.now - 60_000, by: 'op (declared)', reason: 'slower for the night' });
  });

  it('marks a budget asked at the cap in force unchanged, by the entry of that budget that set it', () => {
    const clock = { now: Date.parse('2024-05-01T12:00:00Z') };
    const spec = resolveSpec({ name: 'b', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' }, nodes: [{ id: 'a', transform: 'noop' }] });
    const budgets = { retries: { limit: 50, max: 1000 }, cost: { metric: 'reported' as const, unit: 'credits', limit: 100, max: 1000 } };
    const c = governedCoordinator(spec, expandPlan(spec), { version: 1, budgets }, { backfillId: 'b', now: () => clock.now });
    // The cap the backfill started with: unchanged, by no recorded control.
    expect(c.setBudget({ budget: 'retries', limit: 50 }).unchanged).toEqual({ since: null, by: null, reason: null });
    const raised = clock.now;
    expect(c.setBudget({ budget: 'cost', limit: 200 }, { identity: 'alice', reason: 'finance approved' }).unchanged).toBeUndefined();
    clock.now += 60_000;
    expect(c.setBudget({ budget: 'cost', limit: 200 }, { identity: 'bob' }).unchanged).toEqual({ since: raised, by: 'alice (declared)', reason: 'finance approved' });
    // Another budget's entry at the same number is not this one's.
    expect(c.setBudget({ budget: 'retries', limit: 200 }, { identity: 'carol' }).unchanged).toBeUndefined();
    expect(c.setBudget({ budget: 'cost', limit: 200 }).unchanged).toMatchObject({ by: 'alice (declared)' });
    expect(c.setBudget({ budget: 'retries', limit: 200 }).unchanged).toMatchObject({ since: clock.now, by: 'carol (declared)', reason: null });
  });

  it('carries its state through JSON and goes on the same', () => {
    const c = new BackfillCoordinator(plan, { rate: 5, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    c.onReport(report('a', RangeSet.of([0, 4]), RangeSet.of([4, 5])));
    c.setPaused(true);
    c.setRate(3, 'a');
    c.refreshSettings();
    const copy = new BackfillCoordinator(plan, { rate: null, concurrency: null }, JSON.parse(JSON.stringify(c.toCarry())));
    expect(copy.toCarry()).toEqual(c.toCarry());
    expect(copy.progress('x', 'running', 2)).toEqual(c.progress('x', 'running', 2));
    expect(set(copy.takeOutgoing('b'))).toEqual(set(c.takeOutgoing('b')));
  });
});

describe('carried state has a size budget', () => {
  /** Far below Temporal's 2 MB payload limit, whatever fails. */
  const BUDGET = 512 * 1024;

  it('100,000 partitions with a failure every seventh partition: parent and node carries stay small', () => {
    const plan = chain(
      [
        { id: 'raw', transform: 'noop' },
        { id: 'daily', transform: 'noop', dependsOn: ['raw'] },
      ],
      { grain: 'hour', start: '2020-01-01', end: new Date(Date.UTC(2020, 0, 1) + 100_000 * 3_600_000).toISOString().slice(0, 13) },
    );
    expect(plan.byId.get('raw')!.partitions.size).toBe(100_000);
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('raw');
    // Scattered failures with many distinct messages, reported in many small reports.
    const node = new NodeScheduler({ batchSize: 1, maxThrottles: 5 }, c.settingsOf('raw'), RangeSet.of([0, 100_000]));
    for (let start = 0; start < 100_000; start += 5000) {
      const done = new RangeSet();
      let failures = addFailures([], 'x', 'Error', new RangeSet());
      for (let i = start; i < start + 5000; i++) {
        if (i % 7 === 0) failures = addFailures(failures, `row ${i % 31} failed: ${'detail '.repeat(60)}`, 'Error', RangeSet.of([i, i + 1]));
        else done.add(i);
      }
      c.onReport({ node: 'raw', done: done.toJSON(), failures, stats });
    }
    // And the downstream node holds every partition that could be released.
    c.takeOutgoing('daily');
    const parent = JSON.stringify(c.toCarry()).length;
    const nodeCarry = JSON.stringify(node.toState()).length;
    expect(parent).toBeLessThan(BUDGET);
    expect(nodeCarry).toBeLessThan(BUDGET);
    // The restored parent knows exactly what failed.
    const restored = new BackfillCoordinator(plan, { rate: null, concurrency: null }, JSON.parse(JSON.stringify(c.toCarry())));
    expect(restored.progress('x', 'running', 1).nodes[0]).toMatchObject({ done: 85_714, failed: 14_286 });
    expect(restored.progress('x', 'running', 1).nodes[1]).toMatchObject({ blocked: 14_286 });
    // A size test, not a timed one: on a loaded 2-core machine it took up to 10 s.
  }, 60_000);
});

describe('BackfillCoordinator: control arguments are parsed where they arrive', () => {
  const plan = chain([
    { id: 'a', transform: 'noop', concurrency: 8, rate: 4 },
    { id: 'b', transform: 'noop', dependsOn: ['a'] },
  ]);
  const node = (state: ReturnType<BackfillCoordinator['controlState']>, id: string) => state.nodes.find((n) => n.id === id)!;

  it('applies the parsed value, never the raw argument (as Temporal CLI sends them)', () => {
    const c = new BackfillCoordinator(plan, { rate: 3, concurrency: 5 });
    expect(c.setRate('unlimited', 'a')).toMatchObject({ rate: 3 });
    expect(node(c.controlState(), 'a').rate).toBeNull();
    expect(node(c.setRate('7', 'a'), 'a').rate).toBe(7);
    expect(c.setRate('7').rate).toBe(7);
    expect(c.setRate(null).rate).toBeNull();
    expect(c.setConcurrency('unlimited').concurrency).toBeNull();
    expect(c.setConcurrency('7').concurrency).toBe(7);
    expect(node(c.setConcurrency('3', 'b'), 'b').concurrency).toBe(3);
    c.releaseInitial();
    c.refreshSettings();
    for (const id of ['a', 'b']) {
      const settings = c.settingsOf(id);
      expect(settings.rate === null || (typeof settings.rate === 'number' && settings.rate > 0)).toBe(true);
      expect(Number.isInteger(settings.concurrency) && settings.concurrency >= 1).toBe(true);
    }
  });

  it('refuses junk with a BackfillError naming it, and changes nothing', () => {
    const c = new BackfillCoordinator(plan, { rate: 3, concurrency: 5 });
    const before = c.controlState();
    for (const junk of [-1, 0, 'abc', '', NaN, Infinity, {}, [], true]) {
      expect(thrownBackfillError(() => c.setRate(junk)).code).toBe('invalid_argument');
      expect(thrownBackfillError(() => c.setRate(junk, 'a')).code).toBe('invalid_argument');
      expect(thrownBackfillError(() => c.setConcurrency(junk)).code).toBe('invalid_argument');
      expect(thrownBackfillError(() => c.setConcurrency(junk, 'b')).code).toBe('invalid_argument');
    }
    expect(thrownBackfillError(() => c.setConcurrency('unlimited', 'a')).message).toMatch(/a node needs a concurrency/);
    expect(thrownBackfillError(() => c.setConcurrency(null, 'a')).message).toMatch(/a node needs a concurrency/);
    expect(thrownBackfillError(() => c.setRate(2, 7)).code).toBe('unknown_node');
    expect(thrownBackfillError(() => c.setRate(2, { id: 'a' })).message).toMatch(/unknown node \{"id":"a"\}/);
    expect(thrownBackfillError(() => c.retryFailed(['a'])).code).toBe('unknown_node');
    expect(c.controlState()).toEqual(before);
    // Nothing to resend: the settings did not change.
    c.releaseInitial();
    c.refreshSettings();
    c.takeInitial('a');
    c.takeOutgoing('a');
    c.onReport(report('a', new RangeSet()));
    c.refreshSettings();
    expect(c.needsRefresh).toBe(false);
    expect(c.takeOutgoing('a').settings).toBeUndefined();
  });

  it('a new spec is parsed: settings out of bounds, or a changed plan, are refused', () => {
    const spec = resolveSpec({ name: 'c', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' }, nodes: [{ id: 'a', transform: 'noop' }] });
    const c = new BackfillCoordinator(expandPlan(spec), { rate: null, concurrency: null });
    const next = structuredClone(spec);
    next.nodes[0]!.params = { fixed: true };
    expect(c.replaceSpec(next, spec).changed).toEqual(['a']);
    const zero = structuredClone(spec);
    zero.nodes[0]!.timeout = '0s';
    expect(thrownBackfillError(() => c.parseSpec(zero, spec)).message).toMatch(/nodes\[0\]\.timeout must be from 1s to 7d/);
    const inverted = structuredClone(spec);
    inverted.nodes[0]!.retry = { ...inverted.nodes[0]!.retry, initialInterval: '5m', maximumInterval: '1m' };
    expect(thrownBackfillError(() => c.parseSpec(inverted, spec)).message).toMatch(/retry\.initialInterval \(5m\) is above retry\.maximumInterval/);
    expect(thrownBackfillError(() => c.parseSpec({ nodes: 'x' }, spec)).code).toBe('invalid_spec');
    expect(thrownBackfillError(() => c.parseSpec(null, spec)).code).toBe('invalid_spec');
  });
});

describe('BackfillCoordinator: the end of a backfill', () => {
  const plan = chain([
    { id: 'a', transform: 'noop' },
    { id: 'b', transform: 'noop', dependsOn: ['a'] },
  ]);
  const spec = resolveSpec({
    name: 'c',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    defaults: { concurrency: 4 },
    nodes: [
      { id: 'a', transform: 'noop' },
      { id: 'b', transform: 'noop', dependsOn: ['a'] },
    ],
  });
  const settledCoordinator = () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    c.onReport(report('a', RangeSet.of([0, 10])));
    c.takeOutgoing('b');
    c.onReport(report('b', RangeSet.of([0, 10])));
    expect(c.settled).toBe(true);
    c.finishAll();
    return c;
  };

  it('once finishing, a new spec and retry-failed are refused with the code finishing, and the outbox holds only the finish', () => {
    const c = settledCoordinator();
    const next = structuredClone(spec);
    next.nodes[0]!.params = { fixed: true };
    expect(thrownBackfillError(() => c.parseSpec(next, spec)).code).toBe('finishing');
    expect(thrownBackfillError(() => c.replaceSpec(next, spec)).code).toBe('finishing');
    expect(thrownBackfillError(() => c.retryFailed()).code).toBe('finishing');
    expect(thrownBackfillError(() => c.replaceNodeSpec(next.nodes[0]!)).code).toBe('finishing');
    expect(c.takeOutgoing('a')).toEqual({ finish: true });
  });

  it('a finish that cannot reach a node with nothing in hands is not put back: the node is gone', () => {
    const c = settledCoordinator();
    const control = c.takeOutgoing('a');
    expect(c.undeliverable('a', control)).toBe('gone');
    expect(c.hasOutgoing('a')).toBe(false);
  });

  it('while it runs, what cannot be delivered goes back, and the node is started again', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
    c.releaseInitial();
    c.takeInitial('a');
    c.onReport(report('a', RangeSet.of([0, 2])));
    const control = c.takeOutgoing('b');
    expect(c.undeliverable('b', control)).toBe('restart');
    expect(set(c.takeOutgoing('b'))).toEqual([0, 1]);
  });
});

describe('BackfillCoordinator: the time the backfill was held', () => {
  it('throughput leaves out an operator pause, once an upstream node had finished before it', () => {
    const plan = chain([
      { id: 'a', transform: 'noop' },
      { id: 'b', transform: 'noop', dependsOn: ['a'] },
    ]);
    const clock = { now: 0 };
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { now: () => clock.now });
    c.releaseInitial();
    c.refreshSettings();
    const H = 3_600_000;
    const ran = (node: string, done: [number, number], firstStartedAt: number, lastFinishedAt: number, completed: number) =>
      c.onReport({ ...report(node, RangeSet.of(done)), stats: { ...stats, completed, firstStartedAt, lastFinishedAt } });
    // a runs its 10 partitions in 10 s; b follows a second behind and is half done when the operator pauses at 6 s, for an hour.
    ran('a', [0, 10], 0, 10_000, 10);
    ran('b', [0, 5], 1000, 6000, 5);
    clock.now = 6000;
    c.setPaused(true);
    c.refreshSettings();
    clock.now = 6000 + H;
    c.setPaused(false);
    c.refreshSettings();
    ran('b', [5, 10], 1000, 11_000 + H, 10);
    // 20 partitions in 11 s of work (a reports no pause: it had finished).
    expect(c.progress('p', 'running', 1).throughput).toBeCloseTo(20 / 11);
    // Carried across continue-as-new.
    const copy = new BackfillCoordinator(plan, { rate: null, concurrency: null }, JSON.parse(JSON.stringify(c.toCarry())), { now: () => clock.now });
    expect(copy.progress('p', 'running', 1).throughput).toBeCloseTo(20 / 11);
  });
});

describe("BackfillCoordinator: a canary's wait for its decision", () => {
  it('is held time: throughput after the approval leaves out the wait, carried across continue-as-new, and no setting changes for it', () => {
    // Two roots; the canary's slice is one partition of each.
    const plan = chain([
      { id: 'a', transform: 'noop' },
      { id: 'b', transform: 'noop' },
    ]);
    const clock = { now: 0 };
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { now: () => clock.now, canary: parseCanary({ partitions: 1 }) });
    c.releaseInitial();
    c.refreshSettings();
    const H = 3_600_000;
    const ran = (on: BackfillCoordinator, node: string, done: RangeSet, firstStartedAt: number, lastFinishedAt: number) =>
      on.onReport({ ...report(node, done), stats: { ...stats, completed: done.size, firstStartedAt, lastFinishedAt } });
    // The slice runs in a second, settles, and waits an hour for its approval.
    for (const node of ['a', 'b']) ran(c, node, c.readiness.inHands(node), 0, 1000);
    clock.now = 1000;
    c.finishAll();
    const settings = JSON.stringify(plan.nodes.map((n) => c.settingsOf(n.id)));
    c.settleCanary();
    expect(c.canary!.current).toBe('awaiting');
    expect(JSON.stringify(plan.nodes.map((n) => c.settingsOf(n.id)))).toBe(settings);
    expect(c.toCarry().held).toEqual([[1000, null]]);

    // A continue-as-new while it waits; then the approval, an hour after the slice settled.
    clock.now = 1000 + H;
    const next = new BackfillCoordinator(plan, { rate: null, concurrency: null }, JSON.parse(JSON.stringify({ ...c.toCarry(), runKey: 'r', childrenRunning: [], startedAt: 0, runs: 1 })), { now: () => clock.now });
    next.beginCanaryDecision('approve', { by: 'ana@host', reason: 'diff reviewed' }, clock.now);
    next.canary!.end(true);
    next.liftCanary();
    expect(next.toCarry().held).toEqual([[1000, 1000 + H]]);
    // a's new node workflow runs its 9 other partitions in 9 s; b's has not reported yet (its last report is the slice's).
    ran(next, 'a', next.startAgain('a').ready, 1000 + H, 10_000 + H);
    next.startAgain('b');
    // 10 partitions reported (a's 9, b's slice's 1) in 10 s of work, not in an hour and 10 s.
    expect(next.progress('p', 'running', 2).throughput).toBeCloseTo(10 / 10);
  });
});

describe('BackfillCoordinator: run windows', () => {
  const spec = resolveSpec({ name: 'w', partitions: { grain: 'day', start: '2024-01-01', end: '2024-03-01' }, nodes: [{ id: 'a', transform: 'noop' }] });
  const plan = expandPlan(spec);
  const at = (iso: string) => Date.parse(iso);

  /** A backfill under a policy whose night starts at 1/s from 22:00 and runs at full rate from 23:00 (one merged window until 06:00). */
  function night(windowHandovers: boolean, clock: { now: number }): BackfillCoordinator {
    const policy = { version: 1, windows: { timeZone: 'UTC', allow: [{ from: '22:00', to: '23:00', rate: 1 }, { from: '23:00', to: '06:00' }] } } satisfies PolicyInput;
    return governedCoordinator(spec, plan, policy, { backfillId: 'w', now: () => clock.now, windowHandovers });
  }


  /** What the workflow's window watcher does: look at the windows, sleep until the next change; the settings after each wake. */
  function watch(c: BackfillCoordinator, clock: { now: number }, until: number): string[] {
    const seen: string[] = [];
    for (let next = c.applyWindows(); next !== null && next <= until; next = c.applyWindows()) {
      clock.now = next;
      c.applyWindows();
      c.refreshSettings();
      const s = c.settingsOf('a');
      seen.push(`${new Date(clock.now).toISOString().slice(11, 16)} rate ${s.rate} ${s.paused ? 'paused' : 'runs'}`);
    }
    return seen;
  }

  it('the timer wakes where one window hands over to another with other limits, so the edge rate ends at 23:00', () => {
    const clock = { now: at('2024-05-01T21:00:00Z') };
    const c = night(true, clock);
    expect(c.settingsOf('a')).toMatchObject({ paused: true });
    expect(watch(c, clock, at('2024-05-02T06:00:00Z'))).toEqual(['22:00 rate 1 runs', '23:00 rate null runs', '06:00 rate null paused']);
    // The close partitions must not start after stays the merged window's.
    clock.now = at('2024-05-01T22:30:00Z');
    const other = night(true, clock);
    expect(other.settingsOf('a')).toMatchObject({ rate: 1, openUntil: at('2024-05-02T06:00:00Z') });
  });

  it("status's ETA counts the hours the windows are closed: at 05:50 with an hour's work left, done at 22:50", () => {
    const clock = { now: at('2024-05-02T05:50:00Z') };
    const c = night(true, clock);
    c.refreshSettings();
    // 50 of 60 done in 5 hours of work: the 10 left take an hour, 10 min of it before 06:00.
    c.onReport({ ...report('a', RangeSet.of([0, 50])), stats: { ...stats, completed: 50, firstStartedAt: 0, lastFinishedAt: 5 * 3_600_000 } });
    expect(c.progress('w', 'running', 1).etaSeconds).toBe(17 * 3600);
    clock.now = at('2024-05-02T03:00:00Z');
    expect(c.progress('w', 'running', 1).etaSeconds).toBe(3600);
  });

  it('runs from before the patch window-handovers sleep until the merged window closes: the edge rate holds all night', () => {
    const clock = { now: at('2024-05-01T21:00:00Z') };
    const c = night(false, clock);
    expect(watch(c, clock, at('2024-05-02T06:00:00Z'))).toEqual(['22:00 rate 1 runs', '06:00 rate null paused']);
  });
});
