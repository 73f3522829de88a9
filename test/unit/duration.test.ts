import { describe, it, expect } from 'vitest';
import { formatDuration, parseDuration } from '../../core/duration.ts';

describe('parseDuration', () => {
  it('reads every unit', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
  });

  it('reads decimals, spaces and zero', () => {
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('0.25h')).toBe(900_000);
    expect(parseDuration('2.5ms')).toBe(3); // rounded to whole milliseconds
    expect(parseDuration('10 m')).toBe(600_000);
    expect(parseDuration('  30s  ')).toBe(30_000);
    expect(parseDuration('0s')).toBe(0);
  });

  it('rejects malformed durations', () => {
    for (const text of ['', '10', 'm', '10 minutes', '1w', '-5s', '1.s', '.5s', '1e3ms', '5S', '1h30m', 'ten s']) {
      expect(parseDuration(text), text).toBeUndefined();
    }
  });
});

describe('formatDuration', () => {
  it('writes milliseconds below a second', () => {
    expect(formatDuration(0)).toBe('0ms');
    expect(formatDuration(450)).toBe('450ms');
    expect(formatDuration(12.4)).toBe('12ms');
  });

  it('writes seconds with one decimal below a minute', () => {
    expect(formatDuration(1000)).toBe('1.0s');
    expect(formatDuration(12_500)).toBe('12.5s');
    expect(formatDuration(59_000)).toBe('59.0s');
  });

  it('writes minutes and seconds below an hour, hours and minutes above', () => {
    expect(formatDuration(60_000)).toBe('1m 00s');
    expect(formatDuration(185_000)).toBe('3m 05s');
    expect(formatDuration(3_599_000)).toBe('59m 59s');
    expect(formatDuration(3_600_000)).toBe('1h 00m');
    expect(formatDuration(7_800_000)).toBe('2h 10m');
    expect(formatDuration(30 * 3_600_000)).toBe('30h 00m');
  });

  it('writes infinity and NaN as ∞', () => {
    expect(formatDuration(Infinity)).toBe('∞');
    expect(formatDuration(Number.NaN)).toBe('∞');
  });

  it('round-trips with parseDuration on whole units', () => {
    expect(parseDuration(formatDuration(450))).toBe(450);
    expect(parseDuration(formatDuration(12_500))).toBe(12_500);
  });
});
