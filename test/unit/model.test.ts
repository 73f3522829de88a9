/**
 * Model-based test of the coordinator, the scheduler and readiness (see model-world.ts): random
 * plans and random interleavings of everything that can happen to a backfill, with invariants
 * checked after every step, then a fault-free drain that must end the backfill.
 *
 * CI runs BACKFILL_MODEL_RUNS (default 10,000) cases from a fixed seed (BACKFILL_MODEL_SEED); a
 * failure prints the seed, the path and the shrunk counterexample, which replays with
 * `fc.assert(..., { seed, path })`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';
import { Violation, World, type Action } from './model-world.ts';

const RUNS = Number(process.env.BACKFILL_MODEL_RUNS ?? 10_000);
const SEED = Number(process.env.BACKFILL_MODEL_SEED ?? 20_240_301);

/** A small graph of day-partitioned nodes: each may depend on earlier ones, with any mapping. */
const specArbitrary = fc
  .record({
    days: fc.integer({ min: 1, max: 5 }),
    nodes: fc.array(
      fc.record({
        deps: fc.array(fc.record({ on: fc.nat(), mapping: fc.constantFrom('identity', 'all', 'lag') }), { maxLength: 2 }),
        concurrency: fc.integer({ min: 1, max: 3 }),
        batchSize: fc.integer({ min: 1, max: 3 }),
        rate: fc.constantFrom(null, 2),
        maxThrottles: fc.integer({ min: 0, max: 2 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    concurrency: fc.constantFrom(null, 1, 3),
  })
  .map(({ days, nodes, concurrency }) => {
    const spec: SpecInput = {
      name: 'model',
      partitions: { grain: 'day', start: '2024-01-01', end: `2024-01-0${1 + days}` },
      concurrency,
      nodes: nodes.map((n, i) => {
        const seen = new Set<number>();
        const dependsOn = i === 0 ? [] : n.deps.filter((d) => !seen.has(d.on % i) && seen.add(d.on % i)).map((d) => ({ node: `n${d.on % i}`, mapping: d.mapping === 'lag' ? { lag: { from: -1, to: 0 } } : d.mapping }));
        return { id: `n${i}`, transform: 'noop', concurrency: n.concurrency, batchSize: n.batchSize, rate: n.rate, retry: { maxThrottles: n.maxThrottles }, dependsOn };
      }),
    };
    return resolveSpec(spec);
  });

/** Limits as anyone may send them, junk included. */
const limitValue = fc.constantFrom<unknown>('unlimited', '7', -1, null, 'abc', 0, 0.5, 3, 1000, 10_001, Number.NaN, Infinity, {}, true, '');
const nodeRef = fc.option(fc.nat({ max: 7 }), { nil: null });

const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Action>({ kind: 'parent' }) },
  { weight: 8, arbitrary: fc.nat().map<Action>((pick) => ({ kind: 'deliverControl', pick })) },
  { weight: 8, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'nodeStep', node })) },
  { weight: 6, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'report', node })) },
  { weight: 6, arbitrary: fc.record({ pick: fc.nat(), duplicate: fc.boolean() }).map<Action>((r) => ({ kind: 'deliverReport', pick: r.pick, duplicate: r.duplicate && r.pick % 4 === 0 })) },
  {
    weight: 8,
    arbitrary: fc
      .record({ pick: fc.nat(), outcome: fc.constantFrom('complete', 'complete', 'complete', 'fail', 'throttle', 'partial') })
      .map<Action>((r) => ({ kind: 'activity', pick: r.pick, outcome: r.outcome as 'complete' })),
  },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 3000 }).map<Action>((ms) => ({ kind: 'tick', ms })) },
  { weight: 1, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'probe', node })) },
  { weight: 1, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'terminate', node })) },
  { weight: 2, arbitrary: fc.nat({ max: 7 }).map<Action>((node) => ({ kind: 'nodeContinueAsNew', node })) },
  { weight: 2, arbitrary: fc.constant<Action>({ kind: 'parentContinueAsNew' }) },
  { weight: 1, arbitrary: nodeRef.map<Action>((node) => ({ kind: 'retryFailed', node })) },
  { weight: 1, arbitrary: fc.record({ node: fc.nat({ max: 7 }), variant: fc.nat({ max: 11 }) }).map<Action>((r) => ({ kind: 'replaceSpec', ...r })) },
  { weight: 1, arbitrary: fc.boolean().map<Action>((paused) => ({ kind: 'pause', paused })) },
  { weight: 1, arbitrary: fc.record({ value: limitValue, node: nodeRef }).map<Action>((r) => ({ kind: 'setRate', ...r })) },
  { weight: 1, arbitrary: fc.record({ value: limitValue, node: nodeRef }).map<Action>((r) => ({ kind: 'setConcurrency', ...r })) },
  { weight: 1, arbitrary: fc.boolean().map<Action>((publishRunning) => ({ kind: 'cancel', publishRunning })) },
  { weight: 1, arbitrary: nodeRef.map<Action>((node) => ({ kind: 'resume', node })) },
);

/** Runs the actions, checking the invariants after each, then drains: true when every invariant held. */
function holds(spec: ReturnType<typeof resolveSpec>, actions: Action[]): void {
  const world = new World(spec);
  world.check();
  for (const action of actions) {
    world.apply(action);
    world.check();
  }
  world.drain();
}

describe('model: the coordinator, the scheduler and readiness under any interleaving', () => {
  it(`${RUNS} random backfills (seed ${SEED}) keep every invariant and end once the faults stop`, () => {
    process.stdout.write(`model test: ${RUNS} runs, seed ${SEED}\n`);
    const started = Date.now();
    fc.assert(
      fc.property(specArbitrary, fc.array(actionArbitrary, { maxLength: 120 }), (spec, actions) => {
        holds(spec, actions);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    process.stdout.write(`model test: ${RUNS} runs in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }, 600_000);

  it('a violation is reported as one (the harness can fail)', () => {
    expect(() => {
      throw new Violation('x');
    }).toThrow(Violation);
  });
});
