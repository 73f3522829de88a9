/** plan's note of a coarser node's first or last period that reaches past its upstream's partitions (core/partial-periods.ts). */
import { describe, expect, it } from 'vitest';
import { partialPeriodNotes } from '../../core/partial-periods.ts';
import { expandPlan, planSummary } from '../../core/plan.ts';
import { startNotes } from '../../core/spec-notes.ts';
import { resolveSpec } from '../../core/spec.ts';

const daily = { id: 'daily_stats', transform: 'noop' };
const weekly = { id: 'weekly_stats', dependsOn: [{ node: 'daily_stats', mapping: 'window' }], transform: 'noop', partitions: { grain: 'week' } };
const spec = (start: string, end: string, nodes: unknown[] = [daily, weekly]) => resolveSpec({ name: 'meters', partitions: { grain: 'day', start, end }, nodes });

describe('partialPeriodNotes', () => {
  it("notes a week that begins before the days do, and one that ends after them, with where whole weeks would start and end (a Friday start summed three days without a word)", () => {
    // 2024-03-01 is a Friday; 2024-03-29 (the end, exclusive) too.
    expect(partialPeriodNotes(expandPlan(spec('2024-03-01', '2024-03-29')).nodes)).toEqual([
      "weekly_stats's first partition 2024-W09 begins 4 days before daily_stats's first partition (2024-03-01): it reads those as far as an earlier backfill published them, " +
        'so on a first backfill it covers part of its week. For whole weeks, start daily_stats\'s partitions at 2024-02-26',
      "weekly_stats's last partition 2024-W13 ends 3 days after daily_stats's last partition (2024-03-28): it reads those as far as published, so it may cover part of its week. " +
        "For whole weeks, end daily_stats's partitions at 2024-04-01",
    ]);
  });

  it('says one period in the singular, and hours before a day', () => {
    const hours = resolveSpec({
      name: 'meters',
      partitions: { grain: 'hour', start: '2024-03-01T01:00:00Z', end: '2024-03-02T00:00:00Z' },
      nodes: [{ id: 'hourly', transform: 'noop' }, { id: 'per_day', dependsOn: [{ node: 'hourly', mapping: 'window' }], transform: 'noop', partitions: { grain: 'day' } }],
    });
    expect(partialPeriodNotes(expandPlan(hours).nodes)).toEqual([expect.stringMatching(/^per_day's first partition 2024-03-01 begins 1 hour before hourly's first partition \(2024-03-01T01\): it reads that one as far as an earlier backfill published it, .* start hourly's partitions at 2024-03-01$/)]);
  });

  it('says nothing of whole weeks, of a lag reaching before the start, of a coarser upstream, or of a range narrowed by --from and --to', () => {
    expect(partialPeriodNotes(expandPlan(spec('2024-02-26', '2024-04-01')).nodes)).toEqual([]);
    const rolling = { id: 'rolling', dependsOn: [{ node: 'daily_stats', mapping: { lag: { from: -6, to: 0 } } }], transform: 'noop' };
    expect(partialPeriodNotes(expandPlan(spec('2024-03-01', '2024-03-29', [daily, rolling])).nodes)).toEqual([]);
    const monthly = { id: 'monthly', transform: 'noop', partitions: { grain: 'month' } };
    const perDay = { id: 'per_day', dependsOn: [{ node: 'monthly', mapping: 'window' }], transform: 'noop' };
    expect(partialPeriodNotes(expandPlan(spec('2024-03-15', '2024-04-15', [monthly, perDay])).nodes)).toEqual([]);
    expect(partialPeriodNotes(expandPlan(spec('2024-01-01', '2024-12-30'), { from: Date.UTC(2024, 2, 1), to: Date.UTC(2024, 2, 29) }).nodes)).toEqual([]);
  });

  it('start notes the same from the spec and its range, without a plan', () => {
    const friday = spec('2024-03-01', '2024-03-29');
    expect(startNotes(friday.nodes, {})).toEqual(planSummary(expandPlan(friday)).notes);
    const march = { from: Date.UTC(2024, 2, 11), to: Date.UTC(2024, 2, 18) };
    expect(startNotes(friday.nodes, march)).toEqual([]);
    expect(startNotes(spec('2024-02-26', '2024-04-01').nodes, {})).toEqual([]);
  });

  it('is among the notes plan shows, beside the SQL notes', () => {
    expect(planSummary(expandPlan(spec('2024-03-01', '2024-03-29'))).notes).toEqual([expect.stringMatching(/^weekly_stats's first partition/), expect.stringMatching(/^weekly_stats's last partition/)]);
    expect('notes' in planSummary(expandPlan(spec('2024-02-26', '2024-04-01')))).toBe(false);
  });
});
