import { describe, it, expect } from 'vitest';
import { NodePartitions, windowStrings } from '../../core/partitions.ts';

const at = (date: string) => Date.parse(date.length === 10 ? `${date}T00:00:00Z` : `${date}Z`);
const time = (grain: 'hour' | 'day' | 'week' | 'month', start: string, end: string) =>
  ({ kind: 'time', grain, start: at(start), end: at(end) }) as const;

describe('NodePartitions of time partitions', () => {
  it('lists the keys of every period overlapping [start, end)', () => {
    const days = NodePartitions.of(time('day', '2024-02-27', '2024-03-02'));
    expect(days.grain).toBe('day');
    expect(days.keys()).toEqual(['2024-02-27', '2024-02-28', '2024-02-29', '2024-03-01']);
    expect(days.size).toBe(4);
    const weeks = NodePartitions.of(time('week', '2024-01-03', '2024-01-16'));
    expect(weeks.keys()).toEqual(['2024-W01', '2024-W02', '2024-W03']);
  });

  it('gives each partition its UTC window', () => {
    const months = NodePartitions.of(time('month', '2024-01-15', '2024-04-01'));
    expect(months.keys()).toEqual(['2024-01', '2024-02', '2024-03']);
    expect(months.window(0)).toEqual({ start: at('2024-01-01'), end: at('2024-02-01') });
    expect(months.window(1)).toEqual({ start: at('2024-02-01'), end: at('2024-03-01') });
    expect(months.window(2)).toEqual({ start: at('2024-03-01'), end: at('2024-04-01') });
    const hours = NodePartitions.of(time('hour', '2024-03-31T22:00:00', '2024-04-01T02:00:00'));
    expect(hours.keys()).toEqual(['2024-03-31T22', '2024-03-31T23', '2024-04-01T00', '2024-04-01T01']);
    expect(hours.window(2)).toEqual({ start: at('2024-04-01'), end: at('2024-04-01T01:00:00') });
  });

  it('indexAt counts periods from the first partition, also outside the range', () => {
    const days = NodePartitions.of(time('day', '2024-01-10', '2024-01-20'));
    expect(days.indexAt(at('2024-01-10'))).toBe(0);
    expect(days.indexAt(at('2024-01-12T13:00:00'))).toBe(2);
    expect(days.indexAt(at('2024-01-09T23:59:59'))).toBe(-1);
    expect(days.indexAt(at('2024-01-20'))).toBe(10);
    const months = NodePartitions.of(time('month', '2023-11-01', '2024-03-01'));
    expect(months.indexAt(at('2024-02-29'))).toBe(3);
    expect(months.indexAt(at('2023-10-31'))).toBe(-1);
  });

  it('indexOf and key are inverse', () => {
    const weeks = NodePartitions.of(time('week', '2020-12-01', '2021-02-01'));
    expect(weeks.keys()).toContain('2020-W53');
    weeks.keys().forEach((key, i) => {
      expect(weeks.indexOf(key)).toBe(i);
      expect(weeks.key(i)).toBe(key);
    });
    expect(weeks.indexOf('2021-W53')).toBe(-1);
    expect(weeks.indexOf('2020-12-28')).toBe(-1);
  });

  it('key throws outside 0..size-1', () => {
    const days = NodePartitions.of(time('day', '2024-01-01', '2024-01-03'));
    expect(() => days.key(2)).toThrow(RangeError);
    expect(() => days.key(-1)).toThrow(/outside 0\.\.1/);
  });

  it('periodKey names the periods before and after the partitions too', () => {
    const days = NodePartitions.of(time('day', '2024-01-01', '2024-01-03'));
    expect([-2, -1, 0, 1, 2].map((i) => days.periodKey(i))).toEqual(['2023-12-30', '2023-12-31', '2024-01-01', '2024-01-02', '2024-01-03']);
    const weeks = NodePartitions.of(time('week', '2024-01-01', '2024-01-08'));
    expect(weeks.periodKey(-1)).toBe('2023-W52');
    expect(NodePartitions.of(time('month', '2024-01-01', '2024-02-01')).periodKey(-13)).toBe('2022-12');
  });

  it('narrows to a range by overlap', () => {
    const spec = time('day', '2024-01-01', '2024-03-01');
    const narrowed = NodePartitions.of(spec, { from: at('2024-01-15T12:00:00'), to: at('2024-01-18') });
    expect(narrowed.keys()).toEqual(['2024-01-15', '2024-01-16', '2024-01-17']);
    expect(narrowed.window(0)).toEqual({ start: at('2024-01-15'), end: at('2024-01-16') });
    expect(narrowed.indexAt(at('2024-01-15'))).toBe(0);
    const month = NodePartitions.of(time('month', '2024-01-01', '2024-03-01'), { from: at('2024-02-10') });
    expect(month.keys()).toEqual(['2024-02']);
    expect(month.window(0)).toEqual({ start: at('2024-02-01'), end: at('2024-03-01') });
    const empty = NodePartitions.of(spec, { from: at('2025-01-01') });
    expect(empty.size).toBe(0);
    expect(empty.keys()).toEqual([]);
  });
});

describe('NodePartitions of static keys', () => {
  const regions = NodePartitions.of({ kind: 'static', keys: ['eu', 'us', 'apac'] }, { from: at('2024-01-01'), to: at('2024-01-02') });

  it('keeps the keys in order and ignores the range', () => {
    expect(regions.grain).toBe('static');
    expect(regions.keys()).toEqual(['eu', 'us', 'apac']);
    expect(regions.indexOf('apac')).toBe(2);
    expect(regions.indexOf('latam')).toBe(-1);
  });

  it('has no windows and no time index', () => {
    expect(regions.window(0)).toBeUndefined();
    expect(() => regions.indexAt(0)).toThrow(TypeError);
    expect(() => regions.periodKey(0)).toThrow(TypeError);
  });
});

describe('windowStrings', () => {
  it('writes a window as ISO instants, or null for static keys', () => {
    expect(windowStrings({ start: at('2024-03-01'), end: at('2024-03-02') })).toEqual({
      start: '2024-03-01T00:00:00Z',
      end: '2024-03-02T00:00:00Z',
    });
    expect(windowStrings(undefined)).toBeNull();
  });
});
