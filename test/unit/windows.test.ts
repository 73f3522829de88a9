import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../core/random.ts';
import {
  RunWindows,
  WindowsSchema,
  describeWindows,
  effectiveLimits,
  finishThroughWindows,
  formatWait,
  instantOf,
  isTimeZone,
  offsetAt,
  startDeadline,
  wallTime,
  type WindowsInput,
} from '../../core/windows.ts';
import { thrownBackfillError } from './backfill-error.ts';

const at = (iso: string) => Date.parse(iso);
const H = 3_600_000;
const windows = (input: WindowsInput) => new RunWindows(WindowsSchema.parse(input));
const nights = (extra: Partial<WindowsInput> = {}) =>
  windows({ timeZone: 'Europe/Berlin', allow: [{ days: 'weekdays', from: '22:00', to: '06:00' }], ...extra });

describe('wall time in a zone', () => {
  it('reads offsets from the tz database, DST included', () => {
    expect(offsetAt('Europe/Berlin', at('2024-01-15T12:00:00Z'))).toBe(1 * H);
    expect(offsetAt('Europe/Berlin', at('2024-07-15T12:00:00Z'))).toBe(2 * H);
    expect(offsetAt('Asia/Kathmandu', at('2024-07-15T12:00:00Z'))).toBe(5.75 * H);
    expect(offsetAt('America/New_York', at('2024-07-15T12:00:00Z'))).toBe(-4 * H);
    expect(offsetAt('UTC', at('2024-07-15T12:00:00.999Z'))).toBe(0);
    expect(wallTime('Europe/Berlin', at('2024-03-04T23:30:00Z'))).toEqual({ year: 2024, month: 3, day: 5, hour: 0, minute: 30, second: 0 });
  });

  it('maps a wall time to its instant; a skipped one past the gap, a repeated one to its first occurrence', () => {
    const local = (iso: string) => Date.parse(`${iso}Z`);
    expect(instantOf('Europe/Berlin', local('2024-01-15T22:00:00'))).toBe(at('2024-01-15T21:00:00Z'));
    // Spring forward: 02:00 → 03:00 on 31 March 2024. 02:30 does not exist: read at +01:00, it is 03:30 CEST.
    expect(instantOf('Europe/Berlin', local('2024-03-31T02:30:00'))).toBe(at('2024-03-31T01:30:00Z'));
    expect(instantOf('Europe/Berlin', local('2024-03-31T03:00:00'))).toBe(at('2024-03-31T01:00:00Z'));
    expect(instantOf('Europe/Berlin', local('2024-03-31T01:59:00'))).toBe(at('2024-03-31T00:59:00Z'));
    // Fall back: 03:00 → 02:00 on 27 October 2024. 02:30 happens twice: the first, at +02:00.
    expect(instantOf('Europe/Berlin', local('2024-10-27T02:30:00'))).toBe(at('2024-10-27T00:30:00Z'));
    expect(instantOf('Europe/Berlin', local('2024-10-27T03:00:00'))).toBe(at('2024-10-27T02:00:00Z'));
    // Southern hemisphere, half-hour DST.
    expect(instantOf('Australia/Lord_Howe', local('2024-07-01T12:00:00'))).toBe(at('2024-07-01T01:30:00Z'));
  });

  it('round-trips every instant of a year through its wall time, except the repeated hour', () => {
    const random = seededRandom(7);
    for (const zone of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'UTC']) {
      for (let i = 0; i < 300; i++) {
        const t = Math.floor((at('2024-01-01T00:00:00Z') + random() * 366 * 24 * H) / 60_000) * 60_000;
        const w = wallTime(zone, t);
        const back = instantOf(zone, Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute));
        // In the repeated hour the first occurrence comes back: the same wall time, at most an hour earlier.
        expect(back === t || (back < t && t - back <= H && offsetAt(zone, back) > offsetAt(zone, t))).toBe(true);
      }
    }
  });
});

describe('the windows schema', () => {
  const problem = (input: unknown) => {
    const result = WindowsSchema.safeParse(input);
    expect(result.success).toBe(false);
    return result.error!.issues[0]!;
  };

  it('fills in the defaults: UTC, every day, pause outside, 10 minutes of grace', () => {
    const parsed = WindowsSchema.parse({ allow: [{ from: '22:00', to: '06:00' }] });
    expect(parsed).toEqual({ timeZone: 'UTC', allow: [{ days: 'daily', from: '22:00', to: '06:00' }], outside: 'pause', grace: '10m' });
    expect(new RunWindows(parsed).graceMs).toBe(600_000);
  });

  it('refuses a time zone that does not exist, naming the fix', () => {
    const issue = problem({ timeZone: 'Europe/Berln', allow: [{ from: '22:00', to: '06:00' }] });
    expect(issue.path).toEqual(['timeZone']);
    expect(issue.message).toMatch(/not a time zone.*IANA name such as Europe\/Berlin/);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
  });

  it('refuses a compiled schedule whose zone does not exist with a BackfillError', () => {
    const error = thrownBackfillError(() => new RunWindows({ timeZone: 'Mars/Olympus_Mons', allow: [{ days: 'daily', from: '01:00', to: '02:00' }], outside: 'pause', grace: '1m' }));
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toMatch(/time zone 'Mars\/Olympus_Mons' does not exist: use an IANA name/);
  });

  it('refuses bad times, equal ends, unknown days and an empty list, each at its field', () => {
    expect(problem({ allow: [{ from: '25:00', to: '06:00' }] }).path).toEqual(['allow', 0, 'from']);
    expect(problem({ allow: [{ from: '7:00', to: '06:00' }] }).message).toMatch(/HH:MM/);
    expect(problem({ allow: [{ from: '24:00', to: '06:00' }] }).path).toEqual(['allow', 0, 'from']);
    const same = problem({ allow: [{ from: '06:00', to: '06:00' }] });
    expect(same.path).toEqual(['allow', 0, 'to']);
    expect(same.message).toMatch(/00:00.*24:00/);
    expect(problem({ allow: [{ days: ['monday'], from: '01:00', to: '02:00' }] }).path.slice(0, 3)).toEqual(['allow', 0, 'days']);
    expect(problem({ allow: [] }).message).toMatch(/at least one window/);
    expect(problem({ allow: [{ from: '01:00', to: '02:00' }], outside: 'slow' }).message).toMatch(/'pause' or \{ rate/);
    expect(problem({ allow: [{ from: '01:00', to: '02:00' }], outside: { rate: 0 } }).path).toEqual(['outside', 'rate']);
    expect(problem({ allow: [{ from: '01:00', to: '02:00' }], grace: 'soon' }).message).toMatch(/duration/);
    expect(problem({ allow: [{ from: '01:00', to: '02:00', when: 'night' }] }).message).toMatch(/when/);
  });
});

describe('RunWindows', () => {
  it('weekdays 22:00–06:00 Europe/Berlin: inside on a weeknight, until 06:00 the next morning', () => {
    const w = nights();
    // Monday 4 March 2024, 23:00 in Berlin (CET, +01:00).
    expect(w.at(at('2024-03-04T22:00:00Z'))).toEqual({ open: true, window: 0, opensAt: null, closesAt: at('2024-03-05T05:00:00Z') });
    // Tuesday 05:59: still Monday's window.
    expect(w.isOpen(at('2024-03-05T04:59:59Z'))).toBe(true);
    expect(w.isOpen(at('2024-03-05T05:00:00Z'))).toBe(false);
    // Opening edge is inclusive.
    expect(w.isOpen(at('2024-03-04T21:00:00Z'))).toBe(true);
    expect(w.isOpen(at('2024-03-04T20:59:59Z'))).toBe(false);
  });

  it('a window belongs to the day it opens: Friday night runs into Saturday, Monday morning is not Sunday night', () => {
    const w = nights();
    expect(w.isOpen(at('2024-03-09T03:00:00Z'))).toBe(true); // Saturday 04:00: Friday's window
    expect(w.isOpen(at('2024-03-09T22:00:00Z'))).toBe(false); // Saturday 23:00
    expect(w.isOpen(at('2024-03-11T02:00:00Z'))).toBe(false); // Monday 03:00: Sunday is not listed
    // From Saturday morning the next window opens Monday 22:00.
    expect(w.at(at('2024-03-09T06:00:00Z'))).toEqual({ open: false, window: null, opensAt: at('2024-03-11T21:00:00Z'), closesAt: null });
  });

  it("crosses Europe/Berlin's spring-forward night in 7 hours and its fall-back night in 9", () => {
    const w = windows({ timeZone: 'Europe/Berlin', allow: [{ days: 'daily', from: '22:00', to: '06:00' }] });
    const spring = w.at(at('2024-03-30T21:00:00Z')); // Saturday 22:00 CET
    expect(spring.open).toBe(true);
    expect(spring.closesAt).toBe(at('2024-03-31T04:00:00Z')); // Sunday 06:00 CEST
    expect(spring.closesAt! - at('2024-03-30T21:00:00Z')).toBe(7 * H);
    const autumn = w.at(at('2024-10-26T20:00:00Z')); // Saturday 22:00 CEST
    expect(autumn.closesAt).toBe(at('2024-10-27T05:00:00Z')); // Sunday 06:00 CET
    expect(autumn.closesAt! - at('2024-10-26T20:00:00Z')).toBe(9 * H);
    // Inside the repeated hour (02:30 CET, the second time) the window is still open.
    expect(w.isOpen(at('2024-10-27T01:30:00Z'))).toBe(true);
  });

  it('a window inside the skipped hour shrinks; one over the repeated hour grows', () => {
    const skipped = windows({ timeZone: 'Europe/Berlin', allow: [{ from: '02:00', to: '04:00' }] });
    // 02:00 does not exist on 31 March: the window runs 03:00–04:00 CEST, one hour.
    expect(skipped.at(at('2024-03-31T01:00:00Z'))).toMatchObject({ open: true, closesAt: at('2024-03-31T02:00:00Z') });
    expect(skipped.isOpen(at('2024-03-31T00:59:59Z'))).toBe(false);
    const repeated = windows({ timeZone: 'Europe/Berlin', allow: [{ from: '02:00', to: '03:00' }] });
    // On 27 October it opens at the first 02:00 (CEST) and closes at 03:00 CET: two hours.
    expect(repeated.at(at('2024-10-27T00:00:00Z'))).toMatchObject({ open: true, closesAt: at('2024-10-27T02:00:00Z') });
    // A window wholly inside the skipped hour runs an hour later by the wall clock, as long as ever: 03:15–03:45 CEST.
    const skippedWhole = windows({ timeZone: 'Europe/Berlin', allow: [{ from: '02:15', to: '02:45' }] });
    expect(skippedWhole.at(at('2024-03-31T00:30:00Z'))).toMatchObject({ open: false, opensAt: at('2024-03-31T01:15:00Z') });
    expect(skippedWhole.at(at('2024-03-31T01:15:00Z'))).toMatchObject({ open: true, closesAt: at('2024-03-31T01:45:00Z') });
  });

  it('merges windows that touch or overlap, and says when they never close', () => {
    const day = windows({ allow: [{ from: '00:00', to: '12:00' }, { from: '12:00', to: '24:00' }] });
    expect(day.at(at('2024-05-01T10:00:00Z'))).toEqual({ open: true, window: 0, opensAt: null, closesAt: null });
    const overlapping = windows({ allow: [{ from: '08:00', to: '12:00' }, { from: '11:00', to: '14:00' }] });
    expect(overlapping.at(at('2024-05-01T09:00:00Z')).closesAt).toBe(at('2024-05-01T14:00:00Z'));
    expect(overlapping.at(at('2024-05-01T13:00:00Z')).window).toBe(1);
    const weekdays = windows({ allow: [{ days: 'weekdays', from: '00:00', to: '24:00' }] });
    // Friday 3 May 2024: open until Saturday 00:00, then closed until Monday 00:00.
    expect(weekdays.at(at('2024-05-03T12:00:00Z')).closesAt).toBe(at('2024-05-04T00:00:00Z'));
    expect(weekdays.at(at('2024-05-04T12:00:00Z')).opensAt).toBe(at('2024-05-06T00:00:00Z'));
  });

  it('lists days by name and by set', () => {
    const w = windows({ allow: [{ days: ['sat', 'sun'], from: '10:00', to: '11:00' }] });
    const weekends = windows({ allow: [{ days: 'weekends', from: '10:00', to: '11:00' }] });
    for (const t of [at('2024-05-04T10:30:00Z'), at('2024-05-05T10:30:00Z'), at('2024-05-06T10:30:00Z')]) {
      expect(w.isOpen(t)).toBe(weekends.isOpen(t));
    }
    expect(w.isOpen(at('2024-05-06T10:30:00Z'))).toBe(false);
  });

  it('agrees with itself at every edge: opensAt is the first open instant, closesAt the first closed one', () => {
    const random = seededRandom(42);
    const schedules = [
      nights(),
      windows({ timeZone: 'America/New_York', allow: [{ days: ['mon', 'wed'], from: '01:30', to: '02:30' }, { days: 'weekends', from: '23:00', to: '01:00' }] }),
      windows({ timeZone: 'Australia/Lord_Howe', allow: [{ days: 'daily', from: '01:45', to: '02:15' }] }),
      windows({ timeZone: 'Europe/Berlin', allow: [{ days: 'daily', from: '02:30', to: '03:30' }] }),
    ];
    for (const w of schedules) {
      for (let i = 0; i < 400; i++) {
        const t = at('2024-01-01T00:00:00Z') + Math.floor(random() * 366 * 24 * 60) * 60_000;
        const state = w.at(t);
        expect(state.open).toBe(w.isOpen(t));
        if (state.open) {
          expect(state.closesAt).not.toBeNull();
          expect(w.isOpen(state.closesAt! - 1)).toBe(true);
          expect(w.isOpen(state.closesAt!)).toBe(false);
        } else {
          expect(state.opensAt).not.toBeNull();
          expect(state.opensAt!).toBeGreaterThan(t);
          expect(w.isOpen(state.opensAt!)).toBe(true);
          expect(w.isOpen(state.opensAt! - 1)).toBe(false);
          // Closed all the way from t to the opening.
          expect(w.at(state.opensAt! - 1).opensAt).toBe(state.opensAt);
        }
      }
    }
  });

  it('formats an instant as the zone shows it', () => {
    expect(nights().formatLocal(at('2024-03-04T21:00:00Z'))).toBe('Mon 22:00 Europe/Berlin');
    expect(windows({ allow: [{ from: '01:00', to: '02:00' }] }).formatLocal(at('2024-03-10T23:59:00Z'))).toBe('Sun 23:59 UTC');
  });
});

describe('effectiveLimits', () => {
  const base = { rate: 200, concurrency: 20 };

  it('inside a window keeps the base limits, below any the window sets; the next change is where the limits change', () => {
    const w = windows({ allow: [{ from: '00:00', to: '06:00', rate: 50 }, { from: '06:00', to: '08:00' }] });
    expect(effectiveLimits([w], at('2024-05-01T01:00:00Z'), base, true)).toEqual({ rate: 50, concurrency: 20, paused: false, open: true, nextChangeAt: at('2024-05-01T06:00:00Z') });
    expect(effectiveLimits([w], at('2024-05-01T07:00:00Z'), base, true)).toEqual({ rate: 200, concurrency: 20, paused: false, open: true, nextChangeAt: at('2024-05-01T08:00:00Z') });
    // Runs from before the patch window-handovers: the close of the merged windows, so the rate of 50 held until 08:00.
    expect(effectiveLimits([w], at('2024-05-01T01:00:00Z'), base)).toMatchObject({ rate: 50, nextChangeAt: at('2024-05-01T08:00:00Z') });
  });

  it('a window handing over to another with other limits is a change, though the merged windows close later', () => {
    // The edges of the night at 5/s, the middle at full rate: 22:00–06:00 is one merged window.
    const night = windows({ allow: [{ from: '22:00', to: '23:00', rate: 5 }, { from: '23:00', to: '05:00' }, { from: '05:00', to: '06:00', rate: 5 }] });
    const limits = (iso: string) => effectiveLimits([night], at(iso), base, true);
    expect(limits('2024-05-01T21:00:00Z')).toMatchObject({ paused: true, nextChangeAt: at('2024-05-01T22:00:00Z') });
    expect(limits('2024-05-01T22:30:00Z')).toMatchObject({ rate: 5, nextChangeAt: at('2024-05-01T23:00:00Z') });
    expect(limits('2024-05-01T23:00:00Z')).toMatchObject({ rate: 200, nextChangeAt: at('2024-05-02T05:00:00Z') });
    expect(limits('2024-05-02T05:30:00Z')).toMatchObject({ rate: 5, nextChangeAt: at('2024-05-02T06:00:00Z') });
    // The real close stays the merged window's: partitions may start until 06:00.
    expect(night.at(at('2024-05-01T22:30:00Z')).closesAt).toBe(at('2024-05-02T06:00:00Z'));
    expect(startDeadline([night], at('2024-05-01T22:30:00Z'))?.notAfter).toBe(at('2024-05-02T06:00:00Z'));
    // Windows with the same limits hand over unseen; an overlap changes where the later window's limits take over.
    expect(windows({ allow: [{ from: '00:00', to: '12:00' }, { from: '12:00', to: '24:00' }] }).nextChange(at('2024-05-01T10:00:00Z'))).toBeNull();
    const overlapping = windows({ allow: [{ from: '08:00', to: '12:00', concurrency: 2 }, { from: '11:00', to: '14:00' }] });
    expect(overlapping.nextChange(at('2024-05-01T09:00:00Z'))).toBe(at('2024-05-01T12:00:00Z'));
    expect(overlapping.nextChange(at('2024-05-01T12:00:00Z'))).toBe(at('2024-05-01T14:00:00Z'));
  });

  it('nextChangeAt agrees with a scan: the limits hold until it and change there (DST nights too)', () => {
    const key = (w: RunWindows, t: number) => {
      const { nextChangeAt: _, ...limits } = effectiveLimits([w], t, base, true);
      return JSON.stringify(limits);
    };
    const schedules: Array<[WindowsInput, string]> = [
      [{ allow: [{ from: '22:00', to: '23:00', rate: 5 }, { from: '23:00', to: '05:00' }, { from: '05:00', to: '06:00', concurrency: 2 }] }, '2024-05-01T00:00:00Z'],
      // Midnight does not exist on 8 September 2024 in Santiago (clocks go from 00:00 to 01:00).
      [{ timeZone: 'America/Santiago', allow: [{ from: '20:00', to: '00:00' }, { from: '00:00', to: '01:00', rate: 1 }] }, '2024-09-05T00:00:00Z'],
      [{ timeZone: 'Europe/Berlin', allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'], from: '00:00', to: '24:00' }, { days: ['sun'], from: '00:00', to: '23:00', rate: 3 }] }, '2024-10-24T00:00:00Z'],
    ];
    for (const [input, startIso] of schedules) {
      const w = windows(input);
      const end = at(startIso) + 4 * 24 * H;
      let changes = 0;
      for (let t = at(startIso); t < end; changes++) {
        const next = effectiveLimits([w], t, base, true).nextChangeAt;
        expect(next, `${startIso} ${new Date(t).toISOString()}`).not.toBeNull();
        for (let m = t + 10 * 60_000; m < Math.min(next!, end); m += 10 * 60_000) expect(key(w, m), new Date(m).toISOString()).toBe(key(w, t));
        if (next! < end) {
          expect(key(w, next! - 1), new Date(next! - 1).toISOString()).toBe(key(w, t));
          expect(key(w, next!), new Date(next!).toISOString()).not.toBe(key(w, t));
        }
        t = next!;
      }
      expect(changes).toBeGreaterThanOrEqual(4);
    }
  });

  it("outside, pauses, or lowers the rate (never raises it)", () => {
    const pause = nights();
    const saturday = at('2024-03-09T12:00:00Z');
    expect(effectiveLimits([pause], saturday, base)).toEqual({ rate: 200, concurrency: 20, paused: true, open: false, nextChangeAt: at('2024-03-11T21:00:00Z') });
    const slow = nights({ outside: { rate: 50, concurrency: 4 } });
    expect(effectiveLimits([slow], saturday, base)).toMatchObject({ rate: 50, concurrency: 4, paused: false, open: false });
    expect(effectiveLimits([slow], saturday, { rate: 10, concurrency: null })).toMatchObject({ rate: 10, concurrency: 4 });
    expect(effectiveLimits([slow], saturday, { rate: null, concurrency: null })).toMatchObject({ rate: 50, concurrency: 4 });
  });

  it("combines a spec's and a policy's windows: a pause wins, the lowest limit wins, the first change is next", () => {
    const spec = windows({ allow: [{ from: '20:00', to: '23:00' }], outside: { rate: 30 } });
    const policy = windows({ allow: [{ from: '22:00', to: '06:00' }] });
    expect(effectiveLimits([spec, policy], at('2024-05-01T21:00:00Z'), base)).toEqual({ rate: 200, concurrency: 20, paused: true, open: false, nextChangeAt: at('2024-05-01T22:00:00Z') });
    expect(effectiveLimits([spec, policy], at('2024-05-01T22:30:00Z'), base)).toEqual({ rate: 200, concurrency: 20, paused: false, open: true, nextChangeAt: at('2024-05-01T23:00:00Z') });
    expect(effectiveLimits([spec, policy], at('2024-05-01T23:30:00Z'), base)).toEqual({ rate: 30, concurrency: 20, paused: false, open: false, nextChangeAt: at('2024-05-02T06:00:00Z') });
    expect(effectiveLimits([], at('2024-05-01T23:30:00Z'), base)).toEqual({ ...base, paused: false, open: true, nextChangeAt: null });
  });
});

describe('finishThroughWindows', () => {
  const night = windows({ allow: [{ from: '22:00', to: '05:00' }] });

  it("adds the hours the windows are closed: at 04:50 with an hour's work left, done at 22:50, not 05:50", () => {
    expect(finishThroughWindows([night], at('2024-05-01T04:50:00Z'), H)).toBe(at('2024-05-01T22:50:00Z'));
    // Work that fits in what is left of the window, and no work at all, end as they would.
    expect(finishThroughWindows([night], at('2024-05-01T03:00:00Z'), H)).toBe(at('2024-05-01T04:00:00Z'));
    expect(finishThroughWindows([night], at('2024-05-01T12:00:00Z'), 0)).toBe(at('2024-05-01T12:00:00Z'));
    // Begun while closed: from the opening; three nights' work (7 h each) ends on the third.
    expect(finishThroughWindows([night], at('2024-05-01T12:00:00Z'), 21 * H)).toBe(at('2024-05-04T05:00:00Z'));
  });

  it('counts work at the outside rate as work, and needs every schedule open', () => {
    expect(finishThroughWindows([windows({ allow: [{ from: '22:00', to: '05:00' }], outside: { rate: 1 } })], at('2024-05-01T04:50:00Z'), H)).toBe(at('2024-05-01T05:50:00Z'));
    const policy = windows({ allow: [{ from: '23:00', to: '04:00' }] });
    expect(finishThroughWindows([night, policy], at('2024-05-01T03:30:00Z'), H)).toBe(at('2024-05-01T23:30:00Z'));
  });
});

describe('describing windows for status', () => {
  it('says when the next window opens, in the zone and from now', () => {
    // Monday 4 March 2024, 18:48 in Berlin: 3 h 12 min to 22:00.
    expect(describeWindows(nights(), at('2024-03-04T17:48:00Z'))).toBe('outside the run windows (paused): next window opens Mon 22:00 Europe/Berlin, in 3 h 12 min');
    expect(describeWindows(nights({ outside: { rate: 50 } }), at('2024-03-09T12:00:00Z'))).toBe(
      'outside the run windows (at rate 50/s): next window opens Mon 22:00 Europe/Berlin, in 2 d 9 h',
    );
    expect(describeWindows(nights(), at('2024-03-05T04:30:00Z'))).toBe('inside the run window until Tue 06:00 Europe/Berlin, in 30 min');
    expect(describeWindows(windows({ allow: [{ from: '00:00', to: '24:00' }] }), 0)).toBe('inside the run windows (they cover the whole week)');
  });

  it('formats waits in days, hours and minutes', () => {
    expect(formatWait(59_000)).toBe('under a minute');
    expect(formatWait(60_000)).toBe('1 min');
    expect(formatWait(3 * H)).toBe('3 h');
    expect(formatWait(26 * H + 5 * 60_000)).toBe('1 d 2 h 5 min');
  });
});
