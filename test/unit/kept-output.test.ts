import { describe, expect, it } from 'vitest';
import { keptOldOutput, keptOutputLines, mixedDatasets, rangeFlags, upstreamSuspect } from '../../core/kept-output.ts';
import { RangeSet } from '../../core/ranges.ts';
import type { ReadinessJSON } from '../../core/readiness.ts';
import { retryFailedHint } from '../../core/retry-hint.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';
import { groupSimilar } from '../../client/render.ts';

const spec = (cleanSql: string, extra: Partial<SpecInput['nodes'][number]> = {}) =>
  resolveSpec({
    name: 'kept',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    nodes: [
      { id: 'raw', sql: 'SELECT 1 AS n' },
      { id: 'clean', dependsOn: ['raw'], sql: cleanSql, ...extra },
      { id: 'daily', dependsOn: ['clean'], sql: 'SELECT SUM(n) AS n FROM clean' },
    ],
  });
const ranges = (from: number, to: number) => RangeSet.of([from, to]).toJSON();
const readiness: ReadinessJSON = { raw: { done: ranges(0, 10) }, clean: { done: ranges(0, 5), failed: ranges(5, 10) }, daily: { done: new RangeSet().toJSON() } };
const failure = (type: string, partitions: number) => ({ message: 'x', type, partitions, examples: [] });
const nodes = [
  { id: 'raw', done: 10, failed: 0, blocked: 0, failures: [] },
  { id: 'clean', done: 5, failed: 5, blocked: 0, failures: [failure('CheckFailed', 5)] },
  { id: 'daily', done: 0, failed: 5, blocked: 5, failures: [failure('CheckFailed', 5)] },
];

describe('kept old output', () => {
  it('names the nodes whose SQL changed and that have done partitions, with how many', () => {
    expect(keptOldOutput(spec('SELECT n * 2 AS n FROM raw'), spec('SELECT n FROM raw'), readiness)).toEqual([{ node: 'clean', partitions: 5 }]);
  });

  it('names none when only checks or settings changed, or when the changed node published nothing', () => {
    const checked = spec('SELECT n FROM raw', { checks: [{ type: 'row_count', min: 1 }], concurrency: 2 });
    expect(keptOldOutput(spec('SELECT n FROM raw'), checked, readiness)).toEqual([]);
    expect(keptOldOutput(spec('SELECT n FROM raw'), spec('SELECT n FROM raw'), readiness)).toEqual([]);
    expect(keptOldOutput(spec('SELECT n FROM raw'), spec('SELECT n + 0 AS n FROM raw'), { ...readiness, clean: { done: new RangeSet().toJSON() } })).toEqual([]);
  });

  it('warns with the command that recomputes them, the range as the run had it', () => {
    const range = { from: Date.UTC(2024, 1, 1), to: Date.UTC(2024, 2, 1) };
    expect(rangeFlags(range)).toBe(' --from 2024-02-01 --to 2024-03-01');
    expect(rangeFlags({ from: Date.UTC(2024, 1, 1, 5) })).toBe(' --from 2024-02-01T05:00:00Z');
    const line = keptOutputLines('b10', { nodes: [{ node: 'clean', partitions: 14 }], range }, 'spec.yaml');
    expect(line).toMatch(/^\n {2}⚠ 14 published partitions keep what the old spec made \(clean 14\)/);
    expect(line).toContain('backfill start spec.yaml --id b10 --rerun --only-changed --from 2024-02-01 --to 2024-03-01');
    expect(keptOutputLines('b10', undefined, 'spec.yaml')).toBe('');
  });

  it('says so of a running backfill that took the new spec: it goes on with it for the rest, not in a new run', () => {
    const line = keptOutputLines('b10', { nodes: [{ node: 'clean', partitions: 1 }], range: {}, running: true }, 'fix.yaml');
    expect(line).toBe(
      "\n  ⚠ 1 published partition keeps what the old spec made (clean 1): the backfill goes on with the new spec for what it has not published, so the new SQL, transform or parameters do not reach it, nor what reads it downstream. If it is wrong too, once the backfill has ended recompute it and what reads it: backfill start fix.yaml --id b10 --rerun --only-changed",
    );
  });
});

describe('after a check failed downstream of published data', () => {
  it('the retry hint says the upstream may be wrong and names --rerun --only-changed', () => {
    const hint = retryFailedHint({ state: 'completed_with_failures', backfillId: 'b10', nodes })!;
    expect(hint).toMatch(/^fix the cause, then 'backfill retry-failed b10'/);
    expect(hint).toContain('daily failed a check on data this backfill published upstream (raw 10, clean 5)');
    expect(hint).toContain("'backfill start <spec> --id b10 --rerun --only-changed'");
  });

  it('says nothing more when no check failed, or nothing was published upstream of it', () => {
    const sqlErrors = nodes.map((n) => ({ ...n, failures: n.failures.map((f) => ({ ...f, type: 'SqlError' })) }));
    expect(upstreamSuspect({ backfillId: 'b', nodes: sqlErrors }, 'CheckFailed')).toBeNull();
    const firstOnly = [{ ...nodes[0]!, done: 0, failed: 10, failures: [failure('CheckFailed', 10)] }, { ...nodes[1]!, done: 0, failures: [] }];
    expect(upstreamSuspect({ backfillId: 'b', nodes: firstOnly }, 'CheckFailed')).toBeNull();
    expect(retryFailedHint({ state: 'completed', backfillId: 'b', nodes })).toBeNull();
  });

  it('names only the nodes upstream of the failing one, not a parallel branch, when the progress says what each reads', () => {
    const branched = [
      { id: 'raw', dependsOn: [], done: 10, failed: 0, blocked: 0, failures: [] },
      { id: 'customers', dependsOn: [], done: 7, failed: 0, blocked: 0, failures: [] },
      { id: 'clean', dependsOn: ['raw'], done: 5, failed: 5, blocked: 0, failures: [] },
      { id: 'daily', dependsOn: ['clean'], done: 0, failed: 5, blocked: 5, failures: [failure('CheckFailed', 5)] },
    ];
    expect(upstreamSuspect({ backfillId: 'b', nodes: branched }, 'CheckFailed')).toContain('on data this backfill published upstream (raw 10, clean 5)');
    expect(mixedDatasets({ backfillId: 'b', nodes: branched })).toMatch(/^datasets may disagree: this backfill published raw 10, clean 5, but/);
    // An older worker's progress has no dependsOn: every node before it counts.
    const older = branched.map(({ dependsOn: _, ...n }) => n);
    expect(upstreamSuspect({ backfillId: 'b', nodes: older }, 'CheckFailed')).toContain('(raw 10, customers 7, clean 5)');
  });

  it('names datasets that disagree: published upstream, failed or blocked downstream', () => {
    expect(mixedDatasets({ backfillId: 'b10', nodes })).toBe(
      "datasets may disagree: this backfill published raw 10, clean 5, but the failed or blocked partitions of clean 5, daily 10 keep their older versions, made from the upstream data as it was (the same data where the new upstream versions changed nothing: their checksums in 'backfill lineage <node> <partition>' tell); 'backfill retry-failed b10' completes them, 'backfill rollback b10' undoes the backfill",
    );
    expect(mixedDatasets({ backfillId: 'b', nodes: [{ ...nodes[0]!, done: 0, failed: 10 }, { ...nodes[1]!, done: 0, failed: 0, blocked: 10 }] })).toBeNull();
  });
});

describe('failure lines', () => {
  it('one line for messages of a type that differ only by their figures, summing partitions', () => {
    const drift = (before: number, after: string, key: string) => ({ message: `drift: sum(revenue) went from ${before} to ${after} (+100%), more than the 50% allowed`, type: 'CheckFailed', partitions: 1, examples: [key] });
    const lines = groupSimilar([drift(1200, '2,400', 'a'), drift(1300, '2,600', 'b'), { ...drift(1, '2', 'c'), type: 'SqlError' }, drift(1400, '2,800', 'd'), drift(1500, '3,000', 'e')]);
    expect(lines).toEqual([
      { message: drift(1200, '2,400', 'a').message, partitions: 4, examples: ['a', 'b', 'd'], similar: 3 },
      { message: drift(1, '2', 'c').message, partitions: 1, examples: ['c'], similar: 0 },
    ]);
  });
});
