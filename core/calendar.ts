/**
 * Time grains and their canonical partition keys, all in UTC.
 *
 *   hour   2024-03-01T05
 *   day    2024-03-01
 *   week   2024-W09   (ISO 8601 week: Monday start; the week-year is the year of its Thursday)
 *   month  2024-03
 *
 * Times are epoch milliseconds. Every function here is pure.
 */

export const GRAINS = ['hour', 'day', 'week', 'month'] as const;
export type Grain = (typeof GRAINS)[number];

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
/** 1970-01-05 was a Monday: the origin of week numbers. */
const FIRST_MONDAY_MS = 4 * DAY_MS;

/** How many of the finer grain's periods make up the coarser: the grains that nest. */
const NESTS: Readonly<Record<Grain, readonly Grain[]>> = {
  hour: ['hour', 'day', 'week', 'month'],
  day: ['day', 'week', 'month'],
  week: ['week'],
  month: ['month'],
};

/** True when every period of `coarse` is a whole number of `fine` periods. */
export function nests(fine: Grain, coarse: Grain): boolean {
  return NESTS[fine].includes(coarse);
}

/** The grains `a` and `b` fit together when one nests in the other. */
export function grainsFit(a: Grain, b: Grain): boolean {
  return nests(a, b) || nests(b, a);
}

const pad = (n: number, width = 2): string => `${n}`.padStart(width, '0');

// Read once: the workflow sandbox reads a global (`Math`) through the vm context's interceptor (see core/mapping.ts).
const { floor } = Math;

/** Start of the period of `grain` that contains `ms`. */
export function floorTo(ms: number, grain: Grain): number {
  switch (grain) {
    case 'hour':
      return floor(ms / HOUR_MS) * HOUR_MS;
    case 'day':
      return floor(ms / DAY_MS) * DAY_MS;
    case 'week':
      return floor((ms - FIRST_MONDAY_MS) / WEEK_MS) * WEEK_MS + FIRST_MONDAY_MS;
    case 'month': {
      const d = new Date(ms);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    }
  }
}

/** `periodStart` moved by `n` periods (`periodStart` must already be floored). */
export function addPeriods(periodStart: number, grain: Grain, n: number): number {
  switch (grain) {
    case 'hour':
      return periodStart + n * HOUR_MS;
    case 'day':
      return periodStart + n * DAY_MS;
    case 'week':
      return periodStart + n * WEEK_MS;
    case 'month': {
      const d = new Date(periodStart);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1);
    }
  }
}

/** A running number for the period containing `ms`: consecutive periods differ by one. */
export function periodNumber(ms: number, grain: Grain): number {
  switch (grain) {
    case 'hour':
      return floor(ms / HOUR_MS);
    case 'day':
      return floor(ms / DAY_MS);
    case 'week':
      return floor((ms - FIRST_MONDAY_MS) / WEEK_MS);
    case 'month': {
      const d = new Date(ms);
      return (d.getUTCFullYear() - 1970) * 12 + d.getUTCMonth();
    }
  }
}

/** ISO week-year and week number of the week starting on the Monday `mondayMs`. */
function isoWeek(mondayMs: number): { year: number; week: number } {
  const thursday = new Date(mondayMs + 3 * DAY_MS);
  const year = thursday.getUTCFullYear();
  const dayOfYear = floor((thursday.getTime() - Date.UTC(year, 0, 1)) / DAY_MS);
  return { year, week: floor(dayOfYear / 7) + 1 };
}

/** Monday of ISO week 1 of `year`: the week that holds January 4th. */
function firstIsoMonday(year: number): number {
  return floorTo(Date.UTC(year, 0, 4), 'week');
}

/** Number of ISO weeks (52 or 53) in the ISO week-year `year`. */
export function isoWeeksInYear(year: number): number {
  return (firstIsoMonday(year + 1) - firstIsoMonday(year)) / WEEK_MS;
}

/** Canonical key of the period of `grain` containing `ms`. */
export function formatKey(ms: number, grain: Grain): string {
  const start = floorTo(ms, grain);
  const d = new Date(start);
  const ymd = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  switch (grain) {
    case 'hour':
      return `${ymd}T${pad(d.getUTCHours())}`;
    case 'day':
      return ymd;
    case 'week': {
      const { year, week } = isoWeek(start);
      return `${pad(year, 4)}-W${pad(week)}`;
    }
    case 'month':
      return ymd.slice(0, 7);
  }
}

const KEY_PATTERNS: Readonly<Record<Grain, RegExp>> = {
  hour: /^(\d{4})-(\d{2})-(\d{2})T(\d{2})$/,
  day: /^(\d{4})-(\d{2})-(\d{2})$/,
  week: /^(\d{4})-W(\d{2})$/,
  month: /^(\d{4})-(\d{2})$/,
};

const KEY_EXAMPLES: Readonly<Record<Grain, string>> = {
  hour: '2024-03-01T05',
  day: '2024-03-01',
  week: '2024-W09',
  month: '2024-03',
};

export function keyExample(grain: Grain): string {
  return KEY_EXAMPLES[grain];
}

/**
 * The grain whose canonical keys all of `keys` are (their formats do not overlap), or undefined
 * (none, or static keys: a static node's key may look like a date, `2024-03`, but its others
 * rarely all do).
 */
export function grainOfKeys(...keys: readonly string[]): Grain | undefined {
  return GRAINS.find((grain) => keys.length > 0 && keys.every((key) => parseKey(key, grain) !== undefined));
}

/** Date.UTC reads years 0-99 as 1900-1999; no backfill reaches that far back, so keys start at year 1000. */
const FIRST_YEAR = 1000;

function validDate(year: number, month: number, day: number): number | undefined {
  if (year < FIRST_YEAR || month < 1 || month > 12 || day < 1) return undefined;
  const ms = Date.UTC(year, month - 1, day);
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}

/** Start (ms) of the period a canonical key names, or undefined when the key is not valid. */
export function parseKey(key: string, grain: Grain): number | undefined {
  const m = KEY_PATTERNS[grain].exec(key);
  if (!m) return undefined;
  const [year, a, b, c] = m.slice(1).map(Number) as [number, number, number?, number?];
  switch (grain) {
    case 'hour': {
      const day = validDate(year, a, b ?? 0);
      if (day === undefined || (c ?? 99) > 23) return undefined;
      return day + (c ?? 0) * HOUR_MS;
    }
    case 'day':
      return validDate(year, a, b ?? 0);
    case 'week':
      if (year < FIRST_YEAR || a < 1 || a > isoWeeksInYear(year)) return undefined;
      return firstIsoMonday(year) + (a - 1) * WEEK_MS;
    case 'month':
      return validDate(year, a, 1);
  }
}

/** Exclusive end of the period that starts at `periodStart`. */
export function periodEnd(periodStart: number, grain: Grain): number {
  return addPeriods(periodStart, grain, 1);
}

const INSTANT_PATTERN = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?(?:Z|[+-]00:?00)?)?$/;

/**
 * Parses a range bound written by a person: a date (`2024-03-01`), a date and hour
 * (`2024-03-01T05`, `2024-03-01T05:00:00Z`), or a period key (`2024-03`, `2024-W09`,
 * meaning the start of that period). Always UTC. Undefined when it is not a valid instant.
 */
export function parseInstant(text: string): number | undefined {
  const m = INSTANT_PATTERN.exec(text);
  if (m) {
    const [year, month, day, hour, minute, second] = m.slice(1).map((v) => (v === undefined ? 0 : Number(v))) as [
      number, number, number, number, number, number,
    ];
    const date = validDate(year, month, day);
    if (date === undefined || hour > 23 || minute > 59 || second > 59) return undefined;
    return date + hour * HOUR_MS + minute * 60_000 + second * 1000;
  }
  return parseKey(text, 'month') ?? parseKey(text, 'week');
}

/** The forms `parseInstant` reads, with an example of each, for the messages that refuse another. */
export const INSTANT_FORMS =
  'YYYY-MM-DD, YYYY-MM-DDTHH (minutes and seconds may follow), YYYY-MM (a month) or YYYY-Www (an ISO week, upper-case W), e.g. 2024-03-01, 2024-03-01T05, 2024-03 or 2024-W10';

/**
 * What to write instead of `text`, which `parseInstant` does not read: a week key with a
 * lower-case w, or a week its year does not have, is named as such; else the forms it reads.
 */
export function instantFix(text: string): string {
  const lower = /^(\d{4})-w(\d{2})$/.exec(text);
  if (lower && parseKey(`${lower[1]}-W${lower[2]}`, 'week') !== undefined) return `a week key takes an upper-case W: write ${lower[1]}-W${lower[2]}`;
  const week = /^(\d{4})-[wW](\d{2})$/.exec(text);
  if (week && Number(week[1]) >= FIRST_YEAR) {
    const weeks = isoWeeksInYear(Number(week[1]));
    return `${week[1]} has ${weeks} ISO weeks: write a week from ${week[1]}-W01 to ${week[1]}-W${weeks}`;
  }
  return `write ${INSTANT_FORMS}`;
}

/** ISO 8601 timestamp with seconds, e.g. `2024-03-01T00:00:00Z`. */
export function formatInstant(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** Starts of every period of `grain` that overlaps [start, end). */
export function periodsOverlapping(start: number, end: number, grain: Grain): number[] {
  const starts: number[] = [];
  for (let p = floorTo(start, grain); p < end; p = addPeriods(p, grain, 1)) starts.push(p);
  return starts;
}
