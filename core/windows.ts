/**
 * Run windows: when a backfill may start partitions (`windows:` in the spec or the policy).
 * A window is a span of wall-clock time in a time zone on some days of the week, e.g.
 * weekdays 22:00–06:00 Europe/Berlin; outside every window a backfill pauses, or runs at a
 * lower rate.
 *
 * Pure and deterministic, for the workflows too: times are inputs (epoch milliseconds), and
 * wall-clock time comes from `Intl.DateTimeFormat` with a time zone, which the workflow
 * sandbox has (test/integration/intl-workflow.test.ts runs these functions in a workflow).
 * What a zone's offsets are comes from the tz database of the worker's Node.js (ICU).
 *
 * The rules, for the edges:
 * - A window belongs to the day it opens: fri 22:00–06:00 runs into Saturday morning, and
 *   Monday 00:00–06:00 is not in it unless Sunday is listed too.
 * - `to` at or before `from` crosses midnight; `to: "24:00"` is the end of the day.
 * - A wall time that does not exist (the hour skipped when clocks go forward) is read with
 *   the offset before the jump, as RFC 5545 and JavaScript's Temporal ('compatible') do:
 *   02:30 on Europe/Berlin's spring-forward night is 03:30 CEST. A wall time that happens
 *   twice (the hour repeated when clocks go back) is its first occurrence. So 22:00–06:00
 *   lasts 7 hours on the spring-forward night and 9 on the fall-back night.
 * - Windows that overlap or touch are one window: it closes at the end of the last. Where one
 *   hands over to another with other limits, the limits change there (`RunWindows.nextChange`).
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { BackfillError } from './errors.ts';
import { BackfillConcurrencySchema, minRate, RateSchema } from './limits.ts';

export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Day = (typeof DAYS)[number];
const DAY_SETS = { daily: DAYS, weekdays: DAYS.slice(0, 5), weekends: DAYS.slice(5) } as const;

const CLOCK = /^(?:([01]\d|2[0-3]):([0-5]\d)|24:00)$/;
const clock = z.string().regex(CLOCK, { message: 'must be a time of day HH:MM, from 00:00 to 24:00 (e.g. 22:00)' });

/** True when `zone` names a time zone this runtime knows (an IANA name such as Europe/Berlin, or UTC). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const timeZone = z.string().refine(isTimeZone, {
  message: 'is not a time zone this worker knows: use an IANA name such as Europe/Berlin, America/New_York or UTC',
});

const concurrency = BackfillConcurrencySchema.unwrap();

export const DaysSchema = z.union([z.enum(['daily', 'weekdays', 'weekends']), z.array(z.enum(DAYS)).min(1, { message: 'needs at least one day' })], {
  message: `must be daily, weekdays, weekends or a list of days (${DAYS.join(', ')})`,
});

export const WindowSchema = z
  .strictObject({
    days: DaysSchema.default('daily'),
    from: clock,
    to: clock,
    /** Limits inside this window (below the backfill's own), e.g. a lower rate at the edges of the night. */
    rate: RateSchema.unwrap().optional(),
    concurrency: concurrency.optional(),
  })
  .refine((w) => w.from !== '24:00', { message: 'must be a time of day from 00:00 to 23:59 (24:00 only ends a window)', path: ['from'] })
  .refine((w) => w.from !== w.to, { message: 'must differ from from: for a whole day write from: "00:00", to: "24:00"', path: ['to'] });

export const OutsideSchema = z.union([z.literal('pause'), z.strictObject({ rate: RateSchema.unwrap(), concurrency: concurrency.optional() })], {
  message: "must be 'pause' or { rate: <partitions per second> } (a lower rate outside the windows)",
});

export const WindowsSchema = z.strictObject({
  timeZone: timeZone.default('UTC'),
  allow: z.array(WindowSchema).min(1, { message: 'needs at least one window, e.g. [{ days: weekdays, from: "22:00", to: "06:00" }]' }),
  /** Outside every window: pause (the default), or run at a lower rate. */
  outside: OutsideSchema.default('pause'),
  /** How long partitions running when a window closes may go on before they are cancelled. */
  grace: z
    .string()
    .refine((s) => parseDuration(s) !== undefined, { message: 'is not a duration: write a number and a unit, e.g. 10m' })
    .default('10m'),
});

export type WindowsInput = z.input<typeof WindowsSchema>;
export type Windows = z.output<typeof WindowsSchema>;
export type Window = z.output<typeof WindowSchema>;
export type Outside = z.output<typeof OutsideSchema>;

// ---- wall-clock time in a zone ----

type Wall = { year: number; month: number; day: number; hour: number; minute: number; second: number };

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new BackfillError('invalid_argument', `time zone '${zone}' does not exist: use an IANA name such as Europe/Berlin, America/New_York or UTC`, 'timeZone');
    }
    formatters.set(zone, f);
  }
  return f;
}

/** The wall-clock time at instant `t` in `zone`. */
export function wallTime(zone: string, t: number): Wall {
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(t)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour! % 24, minute: parts.minute!, second: parts.second! };
}

/** Offsets already read, by zone and instant (formatToParts is slow, and schedules ask the same instants again). */
const offsets = new Map<string, number>();

/** How far `zone`'s wall clock is ahead of UTC at instant `t`, in milliseconds. */
export function offsetAt(zone: string, t: number): number {
  const key = `${zone} ${t}`;
  const known = offsets.get(key);
  if (known !== undefined) return known;
  const w = wallTime(zone, t);
  const offset = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(t / 1000) * 1000;
  if (offsets.size >= 20_000) offsets.clear();
  offsets.set(key, offset);
  return offset;
}

/**
 * The instant of a wall-clock time in `zone` (`local` is the wall time written as if it were
 * UTC). A time in a gap maps past the gap; a time that happens twice maps to the first.
 */
export function instantOf(zone: string, local: number): number {
  const before = offsetAt(zone, local - 86_400_000);
  const after = offsetAt(zone, local + 86_400_000);
  const candidates = [...new Set([before, after])].map((o) => local - o).filter((t) => offsetAt(zone, t) === local - t);
  if (candidates.length > 0) return Math.min(...candidates);
  // A gap: the clock jumped over `local`; the offset before the jump carries it past the gap.
  return local - before;
}

const DAY_MS = 86_400_000;

function clockMinutes(text: string): number {
  const [h, m] = text.split(':').map(Number) as [number, number];
  return h * 60 + m;
}

function daysOf(days: Window['days']): ReadonlySet<Day> {
  return new Set(typeof days === 'string' ? DAY_SETS[days] : days);
}

/** Monday 0 … Sunday 6, of a date written as UTC midnight. */
function weekday(dateMs: number): number {
  return (new Date(dateMs).getUTCDay() + 6) % 7;
}

export type Interval = { start: number; end: number; window: number };

/** What a zone's windows say at one instant. */
export type WindowState = {
  open: boolean;
  /** When open: the index of the (first) window it is in. */
  window: number | null;
  /** When closed: when the next window opens. */
  opensAt: number | null;
  /** When open: when it closes (null: the windows cover every hour of the week). */
  closesAt: number | null;
};

/** One window's span on one local date: null where the window does not open that day. */
type Span = { start: number; end: number } | null;

/** Compiled run windows: answer where an instant stands, and when that changes. */
export class RunWindows {
  private readonly days: Array<ReadonlySet<Day>>;
  private readonly clocks: Array<{ from: number; to: number }>;
  /**
   * What formatToParts and the zone's offsets gave, kept: a workflow asks where the same instants
   * stand several times a step, and the spans of the same dates at every step.
   */
  private readonly localDates = new Map<number, number>();
  private readonly spans = new Map<number, Span[]>();

  constructor(readonly spec: Windows) {
    formatter(spec.timeZone);
    this.days = spec.allow.map((w) => daysOf(w.days));
    this.clocks = spec.allow.map((w) => ({ from: clockMinutes(w.from), to: clockMinutes(w.to) }));
  }

  static parse(input: unknown): RunWindows {
    return new RunWindows(WindowsSchema.parse(input));
  }

  get timeZone(): string {
    return this.spec.timeZone;
  }

  get graceMs(): number {
    return parseDuration(this.spec.grace)!;
  }

  /** The window intervals opening on the local dates from `fromDay` to `toDay` days around `t`'s, merged where they overlap or touch. */
  intervals(t: number, fromDay = -1, toDay = 8): Interval[] {
    const merged: Interval[] = [];
    for (const iv of this.rawIntervals(t, fromDay, toDay)) {
      const last = merged[merged.length - 1];
      if (last && iv.start <= last.end) last.end = Math.max(last.end, iv.end);
      else merged.push({ ...iv });
    }
    return merged;
  }

  /** `t`'s date on the zone's wall clock, written as UTC midnight. */
  private localDate(t: number): number {
    let date = this.localDates.get(t);
    if (date === undefined) {
      const w = wallTime(this.spec.timeZone, t);
      date = Date.UTC(w.year, w.month - 1, w.day);
      if (this.localDates.size >= 256) this.localDates.clear();
      this.localDates.set(t, date);
    }
    return date;
  }

  /** Each window's span opening on the local `date` (written as UTC midnight), in the order of `allow`. */
  private spansOn(date: number): Span[] {
    let spans = this.spans.get(date);
    if (spans === undefined) {
      const zone = this.spec.timeZone;
      const day = DAYS[weekday(date)]!;
      spans = this.clocks.map(({ from, to }, i) =>
        this.days[i]!.has(day)
          ? { start: instantOf(zone, date + from * 60_000), end: instantOf(zone, date + (to <= from ? DAY_MS : 0) + to * 60_000) }
          : null,
      );
      if (this.spans.size >= 256) this.spans.clear();
      this.spans.set(date, spans);
    }
    return spans;
  }

  /** Each window's own intervals opening on the local dates from `fromDay` to `toDay` days around `t`'s, by start. */
  private rawIntervals(t: number, fromDay: number, toDay: number): Interval[] {
    const today = this.localDate(t);
    const raw: Interval[] = [];
    for (let d = fromDay; d <= toDay; d++) {
      this.spansOn(today + d * DAY_MS).forEach((span, i) => {
        if (span !== null && span.end > span.start) raw.push({ start: span.start, end: span.end, window: i });
      });
    }
    raw.sort((a, b) => a.start - b.start || a.end - b.end);
    return raw;
  }

  /** Where `t` stands: inside a window (and until when), or outside (and when the next opens). */
  at(t: number): WindowState {
    const merged = this.intervals(t);
    const inside = merged.find((iv) => iv.start <= t && t < iv.end);
    if (inside) {
      // Open for more than a week from now without a gap: every week is covered (a window spans two days at most).
      const always = inside.end - t > 7 * DAY_MS;
      return { open: true, window: this.windowAt(t), opensAt: null, closesAt: always ? null : inside.end };
    }
    const next = merged.find((iv) => iv.start > t);
    return { open: false, window: null, opensAt: next ? next.start : null, closesAt: null };
  }

  isOpen(t: number): boolean {
    return this.at(t).open;
  }

  /**
   * When what the windows say next changes after `t`: they open or close, or one window hands
   * over to another with other limits (22:00–23:00 at rate 5, then 23:00–05:00 at full rate:
   * 23:00, though the two close together at 05:00). Null: never within the week ahead.
   */
  nextChange(t: number): number | null {
    const state = this.at(t);
    if (!state.open) return state.opensAt;
    const close = state.closesAt ?? Infinity;
    const limitsNow = this.limitsKey(state.window);
    const edges = new Set<number>();
    for (const iv of this.rawIntervals(t, -1, 8)) {
      for (const edge of [iv.start, iv.end]) if (edge > t && edge < close) edges.add(edge);
    }
    for (const edge of [...edges].sort((a, b) => a - b)) {
      if (this.limitsKey(this.windowAt(edge)) !== limitsNow) return edge;
    }
    return state.closesAt;
  }

  /** The limits a window sets (as `effectiveLimits` reads them), as a key to compare: windows with the same limits hand over unseen. */
  private limitsKey(window: number | null): string {
    const w = this.spec.allow[window ?? 0]!;
    return `${w.rate ?? null} ${w.concurrency ?? null}`;
  }

  /** The first window (by its place in `allow`) whose own span holds `t`. */
  private windowAt(t: number): number | null {
    const today = this.localDate(t);
    for (let d = -1; d <= 0; d++) {
      const i = this.spansOn(today + d * DAY_MS).findIndex((span) => span !== null && span.start <= t && t < span.end);
      if (i !== -1) return i;
    }
    return null;
  }

  /** `Mon 22:00 Europe/Berlin`: an instant as the zone's wall clock shows it. */
  formatLocal(t: number): string {
    const w = wallTime(this.spec.timeZone, t);
    const day = DAYS[weekday(Date.UTC(w.year, w.month - 1, w.day))]!;
    const name = day[0]!.toUpperCase() + day.slice(1);
    return `${name} ${String(w.hour).padStart(2, '0')}:${String(w.minute).padStart(2, '0')} ${this.spec.timeZone}`;
  }
}

// ---- limits through the windows ----

export type BaseLimits = { rate: number | null; concurrency: number | null };

export type EffectiveLimits = BaseLimits & {
  /** No partition may start (outside a window whose `outside` is pause). */
  paused: boolean;
  /** Inside every schedule's windows. */
  open: boolean;
  /** When the answer may change next (a window opens or closes), for a timer; null: never. */
  nextChangeAt: number | null;
};

function minCount(a: number | null, b: number | null | undefined): number | null {
  if (b === undefined || b === null) return a;
  return a === null ? b : Math.min(a, b);
}

/** Whose run windows they are: the spec's or the policy's. */
export type WindowsSource = 'spec' | 'policy';

/**
 * The run windows a backfill runs under: the spec's, then the policy's. Partitions start only
 * while every one allows (`effectiveLimits`); the governance keeps them in this order, and names
 * them by it.
 */
export function backfillWindows(spec: Windows | undefined, policy: Windows | undefined): Array<{ source: WindowsSource; windows: Windows }> {
  return [...(spec ? [{ source: 'spec' as const, windows: spec }] : []), ...(policy ? [{ source: 'policy' as const, windows: policy }] : [])];
}

/**
 * The limits in force at `t` under every schedule (a spec's and a policy's windows): paused
 * when any schedule pauses, else the lowest rate and concurrency any of them sets.
 *
 * `handovers`: `nextChangeAt` is also where one window hands over to another with other limits
 * (`RunWindows.nextChange`). Without it, the close of the merged windows: a workflow change
 * (patch `window-handovers`), which runs from before it keep.
 */
export function effectiveLimits(schedules: readonly RunWindows[], t: number, base: BaseLimits, handovers = false): EffectiveLimits {
  let { rate, concurrency } = base;
  let paused = false;
  let open = true;
  let nextChangeAt: number | null = null;
  for (const schedule of schedules) {
    const state = schedule.at(t);
    const change = state.open ? (handovers ? schedule.nextChange(t) : state.closesAt) : state.opensAt;
    if (change !== null) nextChangeAt = nextChangeAt === null ? change : Math.min(nextChangeAt, change);
    if (state.open) {
      const window = schedule.spec.allow[state.window ?? 0]!;
      rate = minRate(rate, window.rate ?? null);
      concurrency = minCount(concurrency, window.concurrency);
      continue;
    }
    open = false;
    const outside = schedule.spec.outside;
    if (outside === 'pause') paused = true;
    else {
      rate = minRate(rate, outside.rate);
      concurrency = minCount(concurrency, outside.concurrency);
    }
  }
  return { rate, concurrency, paused, open, nextChangeAt };
}

/**
 * What the run windows allow at each instant, as a simulation of the backfill follows them
 * (`plan --estimate`, `status`'s ETA): lower limits only, on top of the backfill's own, and the
 * next change where one window hands over to another with other limits too (22:00–23:00 at 5/s,
 * then 23:00–05:00 at 50/s changes at 23:00), as the workflow follows them since the patch
 * `window-handovers`.
 */
export function windowedLimits(schedules: readonly RunWindows[]): (at: number) => EffectiveLimits {
  return (at) => effectiveLimits(schedules, at, { rate: null, concurrency: null }, true);
}

/**
 * When `workMs` of work begun at `start` is done if it goes on only while every schedule lets
 * partitions start (not paused): the hours the windows are closed come on top (a backfill allowed
 * 22:00–05:00, at 04:50 with an hour's work left, is done at 22:50). Work outside the windows at
 * a lower rate counts as work. Null when a closed window never opens again within a week.
 */
export function finishThroughWindows(schedules: readonly RunWindows[], start: number, workMs: number): number | null {
  if (!(workMs > 0)) return start;
  let t = start;
  let left = workMs;
  // Each step ends where the windows change: a few a day, so this bounds a year of work.
  for (let step = 0; step < 5000; step++) {
    const limits = effectiveLimits(schedules, t, { rate: null, concurrency: null });
    const next = limits.nextChangeAt !== null && limits.nextChangeAt > t ? limits.nextChangeAt : null;
    if (limits.paused) {
      if (next === null) return null;
      t = next;
      continue;
    }
    if (next === null || left <= next - t) return t + left;
    left -= next - t;
    t = next;
  }
  return null;
}

/**
 * While partitions may start under every schedule: the instant the first schedule that pauses
 * outside its windows closes (`notAfter`: no partition starts at or after it) and that instant
 * plus the schedule's grace (`stopBy`: partitions still running then stop, to run again in the
 * next window). Null when no pausing schedule will close (or one is closed now).
 */
export function startDeadline(schedules: readonly RunWindows[], t: number): { notAfter: number; stopBy: number } | null {
  let best: { notAfter: number; stopBy: number } | null = null;
  for (const schedule of schedules) {
    if (schedule.spec.outside !== 'pause') continue;
    const state = schedule.at(t);
    if (!state.open) return null;
    if (state.closesAt === null) continue;
    const stopBy = state.closesAt + schedule.graceMs;
    if (!best || state.closesAt < best.notAfter) best = { notAfter: state.closesAt, stopBy: best ? Math.min(best.stopBy, stopBy) : stopBy };
    else best.stopBy = Math.min(best.stopBy, stopBy);
  }
  return best;
}

/** `3 h 12 min`, `45 min`, `under a minute`: how long until an instant, for people. */
export function formatWait(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return 'under a minute';
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  return [days > 0 ? `${days} d` : '', hours > 0 ? `${hours} h` : '', rest > 0 ? `${rest} min` : ''].filter(Boolean).join(' ');
}

/**
 * What `status` says of a schedule at `t`: "inside the run window until Tue 06:00
 * Europe/Berlin, in 3 h 12 min", or "outside the run windows (paused): next window opens Mon
 * 22:00 Europe/Berlin, in 3 h 12 min".
 */
export function describeWindows(schedule: RunWindows, t: number): string {
  const state = schedule.at(t);
  if (state.open) {
    if (state.closesAt === null) return 'inside the run windows (they cover the whole week)';
    return `inside the run window until ${schedule.formatLocal(state.closesAt)}, in ${formatWait(state.closesAt - t)}`;
  }
  const outside = schedule.spec.outside;
  const mode = outside === 'pause' ? 'paused' : `at rate ${outside.rate}/s`;
  if (state.opensAt === null) return `outside the run windows (${mode})`;
  return `outside the run windows (${mode}): next window opens ${schedule.formatLocal(state.opensAt)}, in ${formatWait(state.opensAt - t)}`;
}

