/** The shape of a start's carry: what a backfill hands its next run passes; a field of another type is named. */
import { describe, expect, it } from 'vitest';
import { carryShapeProblem, carrySpecProblem, uncheckedCarryFields } from '../../core/carry-shape.ts';
import { BackfillCoordinator } from '../../core/coordinator.ts';
import { addFailures } from '../../core/failures.ts';
import { expandPlan } from '../../core/plan.ts';
import type { BackfillCarry } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec } from '../../core/spec.ts';

const plan = expandPlan(
  resolveSpec({
    name: 'c',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    defaults: { concurrency: 4 },
    nodes: [
      { id: 'a', transform: 'noop' },
      { id: 'b', transform: 'noop', dependsOn: ['a'], rate: 2 },
    ],
  }),
);

/** A carry as a run hands it on: with reports, failures, settings, a restart and an override. */
function handedOn(): BackfillCarry {
  const c = new BackfillCoordinator(plan, { rate: 5, concurrency: 8 });
  c.releaseInitial();
  c.refreshSettings();
  c.setConcurrency(2, 'b');
  c.onReport({
    node: 'a',
    done: RangeSet.of([0, 3]).toJSON(),
    failures: addFailures([], 'boom', 'Error', RangeSet.of([3, 4])),
    stats: { running: 1, rate: 2.5, concurrency: 4, throttles: 0, completed: 3, firstStartedAt: 1000, lastFinishedAt: 2000, pausedMs: 0 },
    spent: { failedAttempts: 1, partitionSeconds: 1.5, rows: 30, reported: 0 },
    total: { failedAttempts: 1, partitionSeconds: 1.5, rows: 30, reported: 0 },
  });
  c.refreshSettings();
  c.restartNode('b', 3);
  return { ...c.toCarry(), runKey: 'run-1', childrenRunning: false, startedAt: 1000, runs: 2, lineage: { ended: ['a'] }, warehouse: { id: 'w', location: 'sqlite:x.db' } };
}

describe('carryShapeProblem', () => {
  it('finds nothing wrong with a carry a run hands on, through JSON as Temporal carries it', () => {
    const carry = JSON.parse(JSON.stringify(handedOn())) as BackfillCarry;
    expect(Object.keys(carry.settings)).toEqual(['a', 'b']);
    expect(carry.failures.a).toHaveLength(1);
    expect(carryShapeProblem(carry)).toBeNull();
  });

  it('knows every field a run hands on, and names one it does not', () => {
    const carry = JSON.parse(JSON.stringify(handedOn())) as BackfillCarry;
    expect(uncheckedCarryFields(carry)).toEqual([]);
    expect(uncheckedCarryFields({ ...carry, spec: {}, announcedCancel: {}, tally: 5, constructor: 1 })).toEqual(['tally', 'constructor']);
  });

  it('names the field of a hand-made carry that is not of its type', () => {
    const carry = handedOn();
    const cases: [Record<string, unknown>, string][] = [
      [{ limits: 'fast' }, 'carry.limits must be object'],
      [{ limits: { rate: 'fast', concurrency: null } }, 'carry.limits.rate '],
      [{ overrides: { b: 5 } }, 'carry.overrides.b '],
      [{ settings: { a: { ...carry.settings.a, rate: 'x' } } }, 'carry.settings.a.rate '],
      [{ restarts: { b: 'x' } }, 'carry.restarts.b '],
      [{ outbox: 5 }, 'carry.outbox '],
      [{ reports: { a: 5 } }, 'carry.reports.a '],
      [{ failures: { a: 5 } }, 'carry.failures.a '],
      [{ failures: { a: [{ message: 'm', type: 't', ranges: '0' }] } }, 'carry.failures.a[0].ranges is not a range set'],
      [{ recheck: { a: 5 } }, 'carry.recheck.a '],
      [{ runs: 'x' }, 'carry.runs must be number'],
      [{ held: [[1, 'x']] }, 'carry.held[0][1] '],
    ];
    for (const [change, problem] of cases) expect(carryShapeProblem({ ...carry, ...change })).toContain(problem);
  });
});

describe('carrySpecProblem: the spec a carry hands the next run', () => {
  const spec = resolveSpec({ name: 's', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop' }] });

  it('passes a resolved spec, as a run hands one on (through JSON)', () => {
    expect(carrySpecProblem(JSON.parse(JSON.stringify(spec)))).toBeNull();
  });

  it('names the field of one that is not a resolved spec: of another shape, or a setting out of its bounds', () => {
    expect(carrySpecProblem('x')).toMatch(/^carry\.spec must be object/);
    expect(carrySpecProblem({ ...spec, nodes: 'a' })).toMatch(/^carry\.spec\.nodes /);
    const { taskQueue: _dropped, ...node } = spec.nodes[0]!;
    expect(carrySpecProblem({ ...spec, nodes: [node] })).toMatch(/^carry\.spec\.nodes\[0\]\.taskQueue /);
    expect(carrySpecProblem({ ...spec, nodes: [{ ...spec.nodes[0]!, concurrency: -1 }] })).toMatch(/^carry\.spec\.nodes\[0\]\.concurrency /);
  });
});
