import { describe, it, expect } from 'vitest';
import {
  GRAINS,
  addPeriods,
  floorTo,
  formatInstant,
  formatKey,
  grainOfKeys,
  grainsFit,
  isoWeeksInYear,
  keyExample,
  nests,
  parseInstant,
  parseKey,
  periodEnd,
  periodNumber,
  periodsOverlapping,
  type Grain,
} from '../../core/calendar.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/** Epoch ms of an ISO instant written without zone (read as UTC). */
const at = (iso: string): number => {
  const ms = Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : `${iso}Z`);
  if (Number.isNaN(ms)) throw new Error(`bad test date ${iso}`);
  return ms;
};
const keysOf = (starts: number[], grain: Grain) => starts.map((s) => formatKey(s, grain));

describe('formatKey', () => {
  it('formats every grain canonically', () => {
    const ms = at('2024-03-01T05:42:17');
    expect(formatKey(ms, 'hour')).toBe('2024-03-01T05');
    expect(formatKey(ms, 'day')).toBe('2024-03-01');
    expect(formatKey(ms, 'week')).toBe('2024-W09');
    expect(formatKey(ms, 'month')).toBe('2024-03');
  });

  it('zero-pads months, days, hours and weeks', () => {
    const ms = at('2024-01-02T03:00:00');
    expect(formatKey(ms, 'hour')).toBe('2024-01-02T03');
    expect(formatKey(ms, 'day')).toBe('2024-01-02');
    expect(formatKey(ms, 'week')).toBe('2024-W01');
    expect(formatKey(ms, 'month')).toBe('2024-01');
  });

  it('formats the epoch and pre-epoch instants', () => {
    expect(formatKey(0, 'hour')).toBe('1970-01-01T00');
    expect(formatKey(0, 'week')).toBe('1970-W01'); // Thursday 1970-01-01 is in week 1
    expect(formatKey(-1, 'day')).toBe('1969-12-31');
    expect(formatKey(-1, 'hour')).toBe('1969-12-31T23');
    expect(formatKey(-1, 'month')).toBe('1969-12');
  });

  it('uses the last millisecond of a period as that period', () => {
    expect(formatKey(at('2024-03-01') - 1, 'day')).toBe('2024-02-29');
    expect(formatKey(at('2024-03-01') - 1, 'month')).toBe('2024-02');
    expect(formatKey(at('2024-03-04') - 1, 'week')).toBe('2024-W09'); // Sunday 2024-03-03
    expect(formatKey(at('2024-03-04'), 'week')).toBe('2024-W10'); // Monday
  });
});

describe('ISO weeks', () => {
  it('puts week 1 on the week holding January 4th', () => {
    expect(formatKey(at('2021-01-04'), 'week')).toBe('2021-W01');
    expect(parseKey('2021-W01', 'week')).toBe(at('2021-01-04'));
    expect(parseKey('2024-W01', 'week')).toBe(at('2024-01-01'));
    expect(formatKey(at('2024-01-01'), 'week')).toBe('2024-W01');
    expect(parseKey('2020-W01', 'week')).toBe(at('2019-12-30'));
    expect(parseKey('2026-W01', 'week')).toBe(at('2025-12-29'));
  });

  it('uses the week-year, which can differ from the calendar year', () => {
    expect(formatKey(at('2024-12-30'), 'week')).toBe('2025-W01');
    expect(formatKey(at('2024-12-31'), 'week')).toBe('2025-W01');
    expect(formatKey(at('2021-01-01'), 'week')).toBe('2020-W53');
    expect(formatKey(at('2021-01-03'), 'week')).toBe('2020-W53');
    expect(formatKey(at('2019-12-30'), 'week')).toBe('2020-W01');
    expect(formatKey(at('2027-01-03'), 'week')).toBe('2026-W53');
    expect(formatKey(at('2023-01-01'), 'week')).toBe('2022-W52');
  });

  it('knows 2020-W53 and its dates', () => {
    expect(parseKey('2020-W53', 'week')).toBe(at('2020-12-28'));
    expect(parseKey('2020-W52', 'week')).toBe(at('2020-12-21'));
    expect(formatKey(at('2020-12-28'), 'week')).toBe('2020-W53');
  });

  it('counts 53 weeks exactly in the long years', () => {
    for (const year of [2004, 2009, 2015, 2020, 2026, 2032, 2037]) expect(isoWeeksInYear(year), String(year)).toBe(53);
    for (const year of [2019, 2021, 2022, 2023, 2024, 2025, 2027, 2100]) expect(isoWeeksInYear(year), String(year)).toBe(52);
  });

  it('agrees with the calendar rule: 53 weeks when January 1st is a Thursday, or a Wednesday in a leap year', () => {
    for (let year = 1971; year <= 2400; year++) {
      const jan1 = new Date(Date.UTC(year, 0, 1)).getUTCDay();
      const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
      const long = jan1 === 4 || (leap && jan1 === 3);
      expect(isoWeeksInYear(year), String(year)).toBe(long ? 53 : 52);
    }
  });

  it('accepts W53 only in long years', () => {
    expect(parseKey('2026-W53', 'week')).toBe(at('2026-12-28'));
    expect(parseKey('2015-W53', 'week')).toBe(at('2015-12-28'));
    expect(parseKey('2032-W53', 'week')).toBe(at('2032-12-27'));
    expect(parseKey('2023-W53', 'week')).toBeUndefined();
    expect(parseKey('2024-W53', 'week')).toBeUndefined();
    expect(parseKey('2021-W53', 'week')).toBeUndefined();
  });

  it('every week key round-trips over 25 years and weeks are consecutive', () => {
    let monday = at('2010-01-04');
    let previous = '';
    for (let i = 0; i < 52 * 25; i++, monday += WEEK) {
      const key = formatKey(monday, 'week');
      expect(key).not.toBe(previous);
      expect(parseKey(key, 'week')).toBe(monday);
      expect(new Date(monday).getUTCDay()).toBe(1);
      // The week-year is the calendar year of the week's Thursday.
      expect(Number(key.slice(0, 4))).toBe(new Date(monday + 3 * DAY).getUTCFullYear());
      previous = key;
    }
  });
});

describe('parseKey', () => {
  it('parses every grain to the start of its period', () => {
    expect(parseKey('2024-03-01T05', 'hour')).toBe(at('2024-03-01T05:00:00'));
    expect(parseKey('2024-03-01', 'day')).toBe(at('2024-03-01'));
    expect(parseKey('2024-W09', 'week')).toBe(at('2024-02-26'));
    expect(parseKey('2024-03', 'month')).toBe(at('2024-03-01'));
  });

  it('handles leap days', () => {
    expect(parseKey('2024-02-29', 'day')).toBe(at('2024-02-29'));
    expect(parseKey('2000-02-29', 'day')).toBe(at('2000-02-29'));
    expect(parseKey('2023-02-29', 'day')).toBeUndefined();
    expect(parseKey('2100-02-29', 'day')).toBeUndefined();
    expect(parseKey('1900-02-29', 'day')).toBeUndefined();
    expect(parseKey('2024-02-29T23', 'hour')).toBe(at('2024-02-29T23:00:00'));
    expect(parseKey('2023-02-29T00', 'hour')).toBeUndefined();
  });

  it('rejects malformed and out-of-range keys', () => {
    const bad: Array<[string, Grain]> = [
      ['2024-13', 'month'],
      ['2024-00', 'month'],
      ['2024-1', 'month'],
      ['2024-W54', 'week'],
      ['2024-W00', 'week'],
      ['2023-W53', 'week'],
      ['2024-W9', 'week'],
      ['2024W09', 'week'],
      ['2024-02-30', 'day'],
      ['2024-04-31', 'day'],
      ['2024-00-10', 'day'],
      ['2024-01-00', 'day'],
      ['2024-1-01', 'day'],
      ['24-01-01', 'day'],
      // Date.UTC would read years 0-99 as the 1900s.
      ['0050-01-01', 'day'],
      ['0050-01', 'month'],
      ['0050-W01', 'week'],
      ['0999-W10', 'week'],
      ['2024-03-01T24', 'hour'],
      ['2024-03-01T5', 'hour'],
      ['2024-03-01T05:00', 'hour'],
      ['2024-02-30T00', 'hour'],
      ['', 'day'],
      [' 2024-03-01', 'day'],
      ['2024-03-01 ', 'day'],
    ];
    for (const [key, grain] of bad) expect(parseKey(key, grain), `${grain} ${key}`).toBeUndefined();
  });

  it('rejects a key of another grain', () => {
    expect(parseKey('2024-03-01', 'hour')).toBeUndefined();
    expect(parseKey('2024-03-01T05', 'day')).toBeUndefined();
    expect(parseKey('2024-03', 'day')).toBeUndefined();
    expect(parseKey('2024-W09', 'month')).toBeUndefined();
    expect(parseKey('2024-03', 'week')).toBeUndefined();
  });

  it('round-trips with formatKey for every grain over a span with month ends, leap days and year ends', () => {
    const start = at('2023-12-25');
    const end = at('2025-01-10');
    for (const grain of GRAINS) {
      for (const p of periodsOverlapping(start, end, grain)) {
        const key = formatKey(p, grain);
        expect(parseKey(key, grain)).toBe(p);
        expect(formatKey(parseKey(key, grain)!, grain)).toBe(key);
      }
    }
  });
});

describe('hour keys', () => {
  it('cross midnight, month end and year end', () => {
    const hours = (from: string, n: number) =>
      Array.from({ length: n }, (_, i) => formatKey(addPeriods(at(from), 'hour', i), 'hour'));
    expect(hours('2024-03-01T22:00:00', 4)).toEqual(['2024-03-01T22', '2024-03-01T23', '2024-03-02T00', '2024-03-02T01']);
    expect(hours('2024-02-29T23:00:00', 2)).toEqual(['2024-02-29T23', '2024-03-01T00']);
    expect(hours('2023-02-28T23:00:00', 2)).toEqual(['2023-02-28T23', '2023-03-01T00']);
    expect(hours('2024-04-30T23:00:00', 2)).toEqual(['2024-04-30T23', '2024-05-01T00']);
    expect(hours('2024-12-31T23:00:00', 2)).toEqual(['2024-12-31T23', '2025-01-01T00']);
  });

  it('a day has 24 hours (UTC has no daylight saving)', () => {
    expect(periodsOverlapping(at('2024-03-31'), at('2024-04-01'), 'hour')).toHaveLength(24);
    expect(periodsOverlapping(at('2024-10-27'), at('2024-10-28'), 'hour')).toHaveLength(24);
  });
});

describe('month boundaries', () => {
  it('months have their right number of days', () => {
    const days = (month: string) => {
      const start = parseKey(month, 'month')!;
      return periodsOverlapping(start, periodEnd(start, 'month'), 'day').length;
    };
    expect(days('2024-01')).toBe(31);
    expect(days('2024-02')).toBe(29);
    expect(days('2023-02')).toBe(28);
    expect(days('2100-02')).toBe(28);
    expect(days('2000-02')).toBe(29);
    expect(days('2024-04')).toBe(30);
    expect(days('2024-12')).toBe(31);
  });

  it('addPeriods moves months across year ends in both directions', () => {
    const jan = at('2024-01-01');
    expect(formatKey(addPeriods(jan, 'month', -1), 'month')).toBe('2023-12');
    expect(formatKey(addPeriods(jan, 'month', 12), 'month')).toBe('2025-01');
    expect(formatKey(addPeriods(jan, 'month', 25), 'month')).toBe('2026-02');
    expect(formatKey(addPeriods(jan, 'month', -13), 'month')).toBe('2022-12');
    expect(addPeriods(at('2024-01-01'), 'month', 1)).toBe(at('2024-02-01'));
    expect(addPeriods(at('2024-02-01'), 'month', 1)).toBe(at('2024-03-01'));
  });

  it('periodEnd is the next period start', () => {
    expect(periodEnd(at('2024-02-01'), 'month')).toBe(at('2024-03-01'));
    expect(periodEnd(at('2024-12-01'), 'month')).toBe(at('2025-01-01'));
    expect(periodEnd(at('2024-02-29'), 'day')).toBe(at('2024-03-01'));
    expect(periodEnd(at('2024-02-26'), 'week')).toBe(at('2024-03-04'));
    expect(periodEnd(at('2024-03-31T23:00:00'), 'hour')).toBe(at('2024-04-01'));
  });
});

describe('floorTo', () => {
  it('floors to the start of each grain', () => {
    const ms = at('2024-03-07T13:45:12'); // a Thursday
    expect(floorTo(ms, 'hour')).toBe(at('2024-03-07T13:00:00'));
    expect(floorTo(ms, 'day')).toBe(at('2024-03-07'));
    expect(floorTo(ms, 'week')).toBe(at('2024-03-04'));
    expect(floorTo(ms, 'month')).toBe(at('2024-03-01'));
  });

  it('is idempotent and a floored value is its own floor', () => {
    const ms = at('2024-07-19T08:30:00');
    for (const grain of GRAINS) {
      const f = floorTo(ms, grain);
      expect(f).toBeLessThanOrEqual(ms);
      expect(floorTo(f, grain)).toBe(f);
      expect(periodEnd(f, grain)).toBeGreaterThan(ms);
    }
  });

  it('floors a Sunday and a Monday to the right Monday, also before 1970', () => {
    expect(floorTo(at('2024-03-03T23:59:59'), 'week')).toBe(at('2024-02-26'));
    expect(floorTo(at('2024-03-04'), 'week')).toBe(at('2024-03-04'));
    expect(floorTo(at('1969-12-31'), 'week')).toBe(at('1969-12-29'));
    expect(floorTo(at('1970-01-01'), 'week')).toBe(at('1969-12-29'));
    expect(floorTo(-1, 'hour')).toBe(-HOUR);
    expect(floorTo(-1, 'day')).toBe(-DAY);
  });
});

describe('addPeriods and periodNumber', () => {
  it('consecutive periods differ by one in periodNumber', () => {
    const origin = at('2023-11-15T07:00:00');
    for (const grain of GRAINS) {
      const p = floorTo(origin, grain);
      for (const n of [-40, -13, -1, 0, 1, 2, 11, 12, 53, 400]) {
        const moved = addPeriods(p, grain, n);
        expect(periodNumber(moved, grain), `${grain} ${n}`).toBe(periodNumber(p, grain) + n);
        expect(floorTo(moved, grain)).toBe(moved);
        // Any instant inside the period has the same number.
        expect(periodNumber(periodEnd(moved, grain) - 1, grain)).toBe(periodNumber(moved, grain));
      }
    }
  });

  it('periodNumber is 0 for the period holding the origin of each grain', () => {
    expect(periodNumber(0, 'hour')).toBe(0);
    expect(periodNumber(0, 'day')).toBe(0);
    expect(periodNumber(0, 'month')).toBe(0);
    expect(periodNumber(at('1970-01-05'), 'week')).toBe(0);
    expect(periodNumber(at('1970-01-04'), 'week')).toBe(-1);
    expect(periodNumber(at('1969-12-01'), 'month')).toBe(-1);
    expect(periodNumber(at('2024-03-01'), 'month')).toBe(54 * 12 + 2);
  });

  it('addPeriods by 0 is the identity', () => {
    for (const grain of GRAINS) {
      const p = floorTo(at('2024-05-17T09:00:00'), grain);
      expect(addPeriods(p, grain, 0)).toBe(p);
    }
  });
});

describe('parseInstant', () => {
  it('reads dates, date-hours, times and period keys as UTC', () => {
    expect(parseInstant('2024-03-01')).toBe(at('2024-03-01'));
    expect(parseInstant('2024-03-01T05')).toBe(at('2024-03-01T05:00:00'));
    expect(parseInstant('2024-03-01 05')).toBe(at('2024-03-01T05:00:00'));
    expect(parseInstant('2024-03-01T05:30')).toBe(at('2024-03-01T05:30:00'));
    expect(parseInstant('2024-03-01T05:30:15')).toBe(at('2024-03-01T05:30:15'));
    expect(parseInstant('2024-03-01T05:00:00Z')).toBe(at('2024-03-01T05:00:00'));
    expect(parseInstant('2024-03-01T05:00:00+00:00')).toBe(at('2024-03-01T05:00:00'));
    expect(parseInstant('2024-03-01T05:00:00-0000')).toBe(at('2024-03-01T05:00:00'));
    // What Date#toISOString writes (a Date in a TypeScript spec) is read too.
    expect(parseInstant('2024-03-01T05:00:00.000Z')).toBe(at('2024-03-01T05:00:00'));
    expect(parseInstant(new Date(at('2024-03-01')).toISOString())).toBe(at('2024-03-01'));
    expect(parseInstant('2024-03')).toBe(at('2024-03-01'));
    expect(parseInstant('2024-W09')).toBe(at('2024-02-26'));
    expect(parseInstant('2020-W53')).toBe(at('2020-12-28'));
  });

  it('rejects invalid instants', () => {
    for (const text of [
      '',
      'yesterday',
      '2024-02-30',
      '2023-02-29',
      '2024-13-01',
      '2024-03-01T24',
      '2024-03-01T23:60',
      '2024-03-01T23:59:60',
      '2024-03-01T05:00:00+01:00',
      '2024-03-01T05:00.000Z',
      '2024-03-01T05:00:00.Z',
      '2024-13',
      '2024-W54',
      '2023-W53',
      '2024/03/01',
      '20240301',
      '2024-3-1',
      '0050-01-01',
      '0050-03',
      '0050-W01',
    ]) {
      expect(parseInstant(text), text).toBeUndefined();
    }
  });

  it('accepts leap days only in leap years', () => {
    expect(parseInstant('2024-02-29')).toBe(at('2024-02-29'));
    expect(parseInstant('2000-02-29')).toBe(at('2000-02-29'));
    expect(parseInstant('2100-02-29')).toBeUndefined();
  });

  it('reads what formatInstant writes', () => {
    for (const ms of [0, at('2024-02-29T23:00:00'), at('2031-07-04T12:34:56')]) {
      expect(parseInstant(formatInstant(ms))).toBe(ms);
    }
  });
});

describe('formatInstant', () => {
  it('writes ISO 8601 with seconds and Z', () => {
    expect(formatInstant(at('2024-03-01'))).toBe('2024-03-01T00:00:00Z');
    expect(formatInstant(at('2024-03-01T05:06:07'))).toBe('2024-03-01T05:06:07Z');
    expect(formatInstant(at('2024-03-01') + 250)).toBe('2024-03-01T00:00:00.250Z');
  });
});

describe('periodsOverlapping', () => {
  it('includes partial periods at both ends when the range does not align to the grain', () => {
    // 2024-01-03 is a Wednesday of W01; 2024-02-10 a Saturday of W06.
    expect(keysOf(periodsOverlapping(at('2024-01-03'), at('2024-02-10'), 'week'), 'week')).toEqual([
      '2024-W01',
      '2024-W02',
      '2024-W03',
      '2024-W04',
      '2024-W05',
      '2024-W06',
    ]);
    expect(keysOf(periodsOverlapping(at('2024-01-15'), at('2024-03-01'), 'month'), 'month')).toEqual(['2024-01', '2024-02']);
    expect(keysOf(periodsOverlapping(at('2024-01-15'), at('2024-03-02'), 'month'), 'month')).toEqual([
      '2024-01',
      '2024-02',
      '2024-03',
    ]);
    expect(keysOf(periodsOverlapping(at('2024-03-01T05:30:00'), at('2024-03-01T07:00:01'), 'hour'), 'hour')).toEqual([
      '2024-03-01T05',
      '2024-03-01T06',
      '2024-03-01T07',
    ]);
  });

  it('treats the end as exclusive', () => {
    expect(periodsOverlapping(at('2024-01-01'), at('2024-01-08'), 'week')).toEqual([at('2024-01-01')]);
    expect(periodsOverlapping(at('2024-01-01'), at('2024-01-08') + 1, 'week')).toHaveLength(2);
    expect(periodsOverlapping(at('2024-01-01'), at('2024-02-01'), 'day')).toHaveLength(31);
    expect(periodsOverlapping(at('2024-01-01'), at('2025-01-01'), 'month')).toHaveLength(12);
    expect(periodsOverlapping(at('2024-01-01'), at('2025-01-01'), 'day')).toHaveLength(366);
    expect(periodsOverlapping(at('2024-01-01'), at('2025-01-01'), 'hour')).toHaveLength(366 * 24);
    expect(periodsOverlapping(at('2024-01-01'), at('2024-12-30'), 'week')).toHaveLength(52);
  });

  it('is empty for an empty range and has one period for a tiny range', () => {
    expect(periodsOverlapping(at('2024-01-01'), at('2024-01-01'), 'day')).toEqual([]);
    expect(periodsOverlapping(at('2024-01-02'), at('2024-01-01'), 'day')).toEqual([]);
    expect(periodsOverlapping(at('2024-01-17T10:00:00'), at('2024-01-17T10:00:00') + 1, 'month')).toEqual([at('2024-01-01')]);
  });

  it('returns consecutive period starts', () => {
    for (const grain of GRAINS) {
      const starts = periodsOverlapping(at('2023-12-20T10:00:00'), at('2024-03-05'), grain);
      for (let i = 1; i < starts.length; i++) expect(starts[i]).toBe(addPeriods(starts[i - 1]!, grain, 1));
      expect(starts[0]).toBeLessThanOrEqual(at('2023-12-20T10:00:00'));
      expect(periodEnd(starts[starts.length - 1]!, grain)).toBeGreaterThanOrEqual(at('2024-03-05'));
    }
  });
});

describe('nests and grainsFit', () => {
  it('knows which grains nest', () => {
    expect(nests('hour', 'day')).toBe(true);
    expect(nests('hour', 'week')).toBe(true);
    expect(nests('hour', 'month')).toBe(true);
    expect(nests('day', 'week')).toBe(true);
    expect(nests('day', 'month')).toBe(true);
    expect(nests('week', 'month')).toBe(false);
    expect(nests('month', 'week')).toBe(false);
    expect(nests('day', 'hour')).toBe(false);
    for (const g of GRAINS) expect(nests(g, g)).toBe(true);
  });

  it('fits in both directions except week and month', () => {
    expect(grainsFit('week', 'month')).toBe(false);
    expect(grainsFit('month', 'week')).toBe(false);
    for (const a of GRAINS) {
      for (const b of GRAINS) {
        const expected = !((a === 'week' && b === 'month') || (a === 'month' && b === 'week'));
        expect(grainsFit(a, b), `${a} ${b}`).toBe(expected);
        expect(grainsFit(a, b)).toBe(grainsFit(b, a));
      }
    }
  });
});

describe('keyExample', () => {
  it('gives a parseable example per grain', () => {
    for (const grain of GRAINS) {
      const example = keyExample(grain);
      expect(parseKey(example, grain)).toBeDefined();
      expect(formatKey(parseKey(example, grain)!, grain)).toBe(example);
    }
  });
});

describe('grainOfKeys', () => {
  it("tells a canonical key's grain, and none for a key of no grain", () => {
    for (const grain of GRAINS) expect(grainOfKeys(keyExample(grain))).toBe(grain);
    for (const key of ['eu', '2024-3-01', '2024-02-30', '2024-W60', '']) expect(grainOfKeys(key), key).toBeUndefined();
    // A static node's keys that look like a month and a day, or a month and a name: no grain.
    expect(grainOfKeys('2024-03', 'all')).toBeUndefined();
    expect(grainOfKeys('2024-03', '2024-03-01')).toBeUndefined();
    expect(grainOfKeys('2024-03-01', '2024-03-31')).toBe('day');
    expect(grainOfKeys()).toBeUndefined();
  });
});
