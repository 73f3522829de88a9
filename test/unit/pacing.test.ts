import { describe, it, expect } from 'vitest';
import { Aimd, LATENCY_MIN_SAMPLES, LATENCY_WINDOW, LatencyPacer, MAX_LATENESS_MS, MAX_TICK_MS, MIN_RATE, MIN_TICK_MS, TokenBucket, p95 } from '../../core/pacing.ts';
import { seededRandom } from '../../core/random.ts';

describe('TokenBucket', () => {
  it('starts full and grants up to what it holds', () => {
    const bucket = new TokenBucket(5, 5);
    expect(bucket.limited).toBe(true);
    expect(bucket.full).toBe(true);
    expect(bucket.available).toBe(5);
    expect(bucket.take(3)).toBe(3);
    expect(bucket.available).toBe(2);
    expect(bucket.full).toBe(false);
    expect(bucket.take(10)).toBe(2);
    expect(bucket.available).toBe(0);
    expect(bucket.take(1)).toBe(0);
    expect(bucket.take(0)).toBe(0);
  });

  it('refills at its rate, capped at the burst', () => {
    const bucket = new TokenBucket(5, 5, 0);
    bucket.refill(200);
    expect(bucket.available).toBe(1);
    bucket.refill(100);
    expect(bucket.available).toBe(1); // 1.5 tokens: one whole
    bucket.refill(100);
    expect(bucket.available).toBe(2);
    bucket.refill(60_000);
    expect(bucket.available).toBe(5);
    expect(bucket.full).toBe(true);
    expect(bucket.tokens).toBe(5);
    bucket.refill(0);
    expect(bucket.available).toBe(5);
  });

  it('counts a whole token made of floating-point fractions', () => {
    const bucket = new TokenBucket(10, 10, 0);
    for (let i = 0; i < 10; i++) bucket.refill(10); // 0.1 ten times is 0.9999999999999999
    expect(bucket.available).toBe(1);
    expect(bucket.take(1)).toBe(1);
    expect(bucket.available).toBe(0);
  });

  it('a slow rate takes many ticks per token', () => {
    const bucket = new TokenBucket(MIN_RATE, 1, 0);
    bucket.refill(59_000);
    expect(bucket.available).toBe(0);
    bucket.refill(1_000);
    expect(bucket.available).toBe(1);
  });

  it('unlimited grants everything and never runs dry', () => {
    const bucket = new TokenBucket(null, 1);
    expect(bucket.limited).toBe(false);
    expect(bucket.available).toBe(Infinity);
    expect(bucket.full).toBe(true);
    expect(bucket.take(1_000_000)).toBe(1_000_000);
    expect(bucket.take(1_000_000)).toBe(1_000_000);
    bucket.refill(1000);
    expect(bucket.tick).toBe(MAX_TICK_MS);
  });

  it('defaultBurst is one second of tokens, at least 1', () => {
    expect(TokenBucket.defaultBurst(null)).toBe(1);
    expect(TokenBucket.defaultBurst(0.5)).toBe(1);
    expect(TokenBucket.defaultBurst(MIN_RATE)).toBe(1);
    expect(TokenBucket.defaultBurst(1)).toBe(1);
    expect(TokenBucket.defaultBurst(2.5)).toBe(3);
    expect(TokenBucket.defaultBurst(100)).toBe(100);
  });

  it('tickMs refills about a bucket per tick, within its bounds', () => {
    // Half a bucket per tick.
    expect(TokenBucket.tickMs(5, 5)).toBe(500);
    expect(TokenBucket.tickMs(2, 1)).toBe(250);
    expect(TokenBucket.tickMs(100, 100)).toBe(500);
    expect(TokenBucket.tickMs(100, 10)).toBe(MIN_TICK_MS);
    expect(TokenBucket.tickMs(1000, 1)).toBe(MIN_TICK_MS);
    expect(TokenBucket.tickMs(1e9, 1)).toBe(MIN_TICK_MS);
    expect(TokenBucket.tickMs(MIN_RATE, 1)).toBe(30_000);
    expect(TokenBucket.tickMs(0.001, 1)).toBe(MAX_TICK_MS);
    expect(TokenBucket.tickMs(3, 1)).toBe(166);
    for (const [rate, burst] of [
      [0.01, 1],
      [1, 1],
      [7, 3],
      [50, 50],
      [5000, 2],
    ] as const) {
      const tick = TokenBucket.tickMs(rate, burst);
      expect(tick).toBeGreaterThanOrEqual(MIN_TICK_MS);
      expect(tick).toBeLessThanOrEqual(MAX_TICK_MS);
      expect(Number.isInteger(tick)).toBe(true);
    }
    expect(new TokenBucket(20, 5).tick).toBe(125);
    expect(new TokenBucket(20, 2).tick).toBe(MIN_TICK_MS); // the burst is raised to 4 to keep 20/s reachable
  });

  it('configure changes rate and burst, dropping tokens above the new burst', () => {
    const bucket = new TokenBucket(10, 10);
    bucket.configure(2, 3);
    expect(bucket.available).toBe(3);
    expect(bucket.tick).toBe(750);
    bucket.configure(2, 20); // a bigger bucket does not fill itself
    expect(bucket.available).toBe(3);
    expect(bucket.full).toBe(false);
    bucket.refill(1000);
    expect(bucket.available).toBe(5);
    bucket.configure(null, 1);
    expect(bucket.limited).toBe(false);
    expect(bucket.take(50)).toBe(50);
    bucket.configure(4, 4);
    expect(bucket.limited).toBe(true);
    expect(bucket.available).toBe(1); // the tokens it had, capped at the burst it had
  });

  it('its tokens carry across a restore', () => {
    const bucket = new TokenBucket(4, 8);
    bucket.take(5);
    bucket.refill(250);
    const restored = new TokenBucket(4, 8, JSON.parse(JSON.stringify({ tokens: bucket.tokens })).tokens);
    expect(restored.available).toBe(bucket.available);
    expect(restored.tokens).toBe(4);
  });

  it('keeps the long-run rate when ticks fire late', () => {
    // A server whose timers fire up to a second late: ticks of 500 ms take 1.5 s.
    const bucket = new TokenBucket(20, 20);
    let granted = bucket.take(1_000_000);
    expect(bucket.tick).toBe(500);
    for (let t = 0; t < 60_000; t += 1500) {
      bucket.refill(1500, 500);
      const now = bucket.take(1_000_000);
      expect(now).toBeLessThanOrEqual(30);
      granted += now;
    }
    expect(granted).toBeGreaterThanOrEqual(20 * 60);
    expect(granted).toBeLessThanOrEqual(20 * 60 + 20);
    // Without the schedule, the same late ticks lose a third of the rate to the burst cap.
    const capped = new TokenBucket(20, 20);
    let cappedGranted = capped.take(1_000_000);
    for (let t = 0; t < 60_000; t += 1500) {
      capped.refill(1500);
      cappedGranted += capped.take(1_000_000);
    }
    expect(cappedGranted).toBeLessThan(20 * 60 * 0.7);
    // Lateness is made up for only so far: a long silence is not a credit.
    const idle = new TokenBucket(20, 20, 0);
    idle.refill(60_000, 500);
    expect(idle.available).toBe(20 + (20 * MAX_LATENESS_MS) / 1000);
  });

  describe('a simulated 60-second run', () => {
    /** Ticks a saturated (or randomly hungry) consumer; returns [time, granted] of every tick. */
    function simulate(rate: number, burst: number, seconds: number, want: () => number): Array<[number, number]> {
      const bucket = new TokenBucket(rate, burst);
      const tick = bucket.tick;
      const grants: Array<[number, number]> = [[0, bucket.take(want())]];
      for (let t = tick; t <= seconds * 1000; t += tick) {
        bucket.refill(tick);
        grants.push([t, bucket.take(want())]);
      }
      return grants;
    }

    function maxInAnySecond(grants: Array<[number, number]>): number {
      let max = 0;
      for (const [start] of grants) {
        const sum = grants.filter(([t]) => t >= start && t < start + 1000).reduce((acc, [, g]) => acc + g, 0);
        max = Math.max(max, sum);
      }
      return max;
    }

    for (const rate of [5, 20, 100]) {
      for (let burst of [TokenBucket.defaultBurst(rate), Math.ceil(rate / 4), Math.ceil(rate / 10)]) {
        it(`rate ${rate}, burst ${burst}: grants rate × seconds (± one burst), never more than rate + burst a second`, () => {
          // A burst too small for the shortest tick is raised so that the rate stays reachable.
          burst = TokenBucket.usableBurst(rate, burst);
          const grants = simulate(rate, burst, 60, () => 1_000_000);
          const total = grants.reduce((acc, [, g]) => acc + g, 0);
          expect(total).toBeGreaterThanOrEqual(rate * 60 - burst);
          expect(total).toBeLessThanOrEqual(rate * 60 + burst);
          expect(maxInAnySecond(grants)).toBeLessThanOrEqual(rate + burst);
          for (const [, g] of grants) expect(g).toBeLessThanOrEqual(burst);
        });
      }

      it(`rate ${rate}: a consumer that wants less never gets more than the bound`, () => {
        const random = seededRandom(rate);
        const burst = TokenBucket.defaultBurst(rate);
        const grants = simulate(rate, burst, 60, () => Math.floor(random() * rate * 1.5));
        const total = grants.reduce((acc, [, g]) => acc + g, 0);
        expect(total).toBeLessThanOrEqual(rate * 60 + burst);
        expect(maxInAnySecond(grants)).toBeLessThanOrEqual(rate + burst);
      });
    }

    it('a fractional rate (0.5/s) grants one partition every 2 seconds', () => {
      const grants = simulate(0.5, 1, 60, () => 100);
      const total = grants.reduce((acc, [, g]) => acc + g, 0);
      expect(total).toBeGreaterThanOrEqual(30);
      expect(total).toBeLessThanOrEqual(31);
      expect(maxInAnySecond(grants)).toBeLessThanOrEqual(1);
    });
  });
});

describe('Aimd', () => {
  it('does nothing until throttled', () => {
    const aimd = new Aimd();
    expect(aimd.active).toBe(false);
    expect(aimd.throttles).toBe(0);
    expect(aimd.effective(10)).toBe(10);
    expect(aimd.effective(null)).toBeNull();
    aimd.onCalm(10, 60_000);
    expect(aimd.active).toBe(false);
    expect(aimd.toJSON()).toEqual({ ceiling: null, step: 0, recoverAt: null, throttles: 0 });
  });

  it('halves the lower of the configured and the observed pace, and halves again on the next throttle', () => {
    const aimd = new Aimd();
    aimd.onThrottle(10, 12);
    expect(aimd.active).toBe(true);
    expect(aimd.throttles).toBe(1);
    expect(aimd.effective(10)).toBe(5);
    aimd.onThrottle(10, 5);
    expect(aimd.effective(10)).toBe(2.5);
    expect(aimd.throttles).toBe(2);
    // Running below its rate (bound by concurrency), the node halves what it achieved.
    const bound = new Aimd();
    bound.onThrottle(40, 8);
    expect(bound.effective(40)).toBe(4);
  });

  it('grows additively with calm time and lifts the ceiling at the operator rate', () => {
    const aimd = new Aimd();
    aimd.onThrottle(10, 10);
    // Step: the operator rate over 20 seconds = 0.5/s per second of calm.
    aimd.onCalm(10, 4000);
    expect(aimd.effective(10)).toBeCloseTo(7, 9);
    aimd.onCalm(10, 1000);
    expect(aimd.effective(10)).toBeCloseTo(7.5, 9);
    expect(aimd.active).toBe(true);
    aimd.onCalm(10, 5000);
    expect(aimd.active).toBe(false);
    expect(aimd.effective(10)).toBe(10);
    expect(aimd.toJSON()).toMatchObject({ ceiling: null, recoverAt: null, throttles: 1 });
  });

  it('climbs back to the throttled pace in about 10 seconds, at a slope set by the last throttle', () => {
    const half = new Aimd();
    half.onThrottle(8, 8);
    half.onCalm(8, 9_900);
    expect(half.active).toBe(true);
    half.onCalm(8, 100);
    expect(half.active).toBe(false);
    // Throttled again at 4/s: back to 4/s in 10 s, then on to 8/s at the same slope (0.2/s a second).
    const quarter = new Aimd();
    quarter.onThrottle(8, 8);
    quarter.onThrottle(8, 4);
    expect(quarter.effective(8)).toBe(2);
    quarter.onCalm(8, 10_000);
    expect(quarter.effective(8)).toBeCloseTo(4, 9);
    quarter.onCalm(8, 19_900);
    expect(quarter.active).toBe(true);
    quarter.onCalm(8, 100);
    expect(quarter.active).toBe(false);
  });

  it('does not undo a slow-down at once when the operator rate is far above what the system takes', () => {
    const aimd = new Aimd();
    aimd.onThrottle(1000, 10);
    expect(aimd.effective(1000)).toBe(5);
    aimd.onCalm(1000, 1000);
    expect(aimd.effective(1000)).toBeCloseTo(5.5, 9);
    aimd.onCalm(1000, 9000);
    expect(aimd.effective(1000)).toBeCloseTo(10, 9);
  });

  it('never exceeds the operator rate, and an operator lowering the rate below the ceiling lifts it', () => {
    const aimd = new Aimd();
    aimd.onThrottle(10, 10);
    expect(aimd.effective(3)).toBe(3);
    aimd.onCalm(3, 0);
    expect(aimd.active).toBe(false);
    expect(aimd.effective(3)).toBe(3);
  });

  it('works when the operator rate is unlimited: halves the observed pace, lifts at twice the throttled pace', () => {
    const aimd = new Aimd();
    aimd.onThrottle(null, 8);
    expect(aimd.effective(null)).toBe(4);
    expect(aimd.toJSON()).toEqual({ ceiling: 4, step: 0.4, recoverAt: 16, throttles: 1 });
    aimd.onCalm(null, 10_000);
    expect(aimd.effective(null)).toBeCloseTo(8, 9);
    expect(aimd.active).toBe(true);
    aimd.onCalm(null, 20_000);
    expect(aimd.active).toBe(false);
    expect(aimd.effective(null)).toBeNull();
  });

  it('a second throttle while unlimited halves the current ceiling, not the observed pace', () => {
    const aimd = new Aimd();
    aimd.onThrottle(null, 8);
    aimd.onThrottle(null, 100);
    expect(aimd.effective(null)).toBe(2);
    expect(aimd.toJSON()).toMatchObject({ recoverAt: 8 });
  });

  it('never goes below the minimum rate', () => {
    const aimd = new Aimd();
    for (let i = 0; i < 50; i++) aimd.onThrottle(1, 1);
    expect(aimd.effective(1)).toBe(MIN_RATE);
    const idle = new Aimd();
    idle.onThrottle(null, 0); // unlimited and nothing observed yet: start from 1/s
    expect(idle.effective(null)).toBe(0.5);
    expect(idle.toJSON().step).toBeGreaterThanOrEqual(MIN_RATE);
    idle.onCalm(null, 60_000);
    expect(idle.active).toBe(false);
  });

  it('round-trips through toJSON', () => {
    const aimd = new Aimd();
    aimd.onThrottle(null, 6);
    aimd.onCalm(null, 2000);
    const restored = new Aimd(JSON.parse(JSON.stringify(aimd.toJSON())));
    expect(restored.toJSON()).toEqual(aimd.toJSON());
    expect(restored.effective(null)).toBe(aimd.effective(null));
    expect(restored.throttles).toBe(1);
    restored.onCalm(null, 60_000);
    aimd.onCalm(null, 60_000);
    expect(restored.toJSON()).toEqual(aimd.toJSON());
  });
});

describe('p95', () => {
  it('is the nearest-rank 95th percentile', () => {
    expect(p95([])).toBeNull();
    expect(p95([7])).toBe(7);
    expect(p95(Array.from({ length: 20 }, (_, i) => i + 1))).toBe(19);
    expect(p95(Array.from({ length: 100 }, (_, i) => 100 - i))).toBe(95);
  });
});

describe('LatencyPacer', () => {
  const high = (n: number, ms = 1000) => Array.from({ length: n }, () => ms);

  it('holds no cap until a p95 over the target, from enough latencies', () => {
    const pacer = new LatencyPacer();
    expect(pacer.active).toBe(false);
    expect(pacer.limit(40)).toBe(40);
    expect(pacer.observe(high(LATENCY_MIN_SAMPLES - 1), 500, 40, 40)).toBe(false);
    expect(pacer.recentP95).toBe(1000);
    expect(pacer.observe([100], 500, 40, 40)).toBe(true);
    expect(pacer.active).toBe(true);
    expect(pacer.slowdowns).toBe(1);
    // Latencies of the old pace are forgotten.
    expect(pacer.recentP95).toBeNull();
  });

  it('cuts what was running by target / p95, kept between a half and nine tenths', () => {
    const cut = (ms: number, running = 40, concurrency = 40) => {
      const pacer = new LatencyPacer();
      pacer.observe(high(LATENCY_MIN_SAMPLES, ms), 500, running, concurrency);
      return pacer.limit(concurrency);
    };
    expect(cut(625)).toBe(32); // 0.8
    expect(cut(520)).toBe(36); // 0.96: at most 0.9
    expect(cut(5000)).toBe(20); // 0.1: at least 0.5
    // From what was running when fewer than the concurrency ran, never below one.
    expect(cut(625, 10, 40)).toBe(8);
    expect(cut(5000, 1, 40)).toBe(1);
  });

  it('climbs one activity per target of calm time while the p95 is below nine tenths of the target, holds up to it, and lifts at the concurrency', () => {
    const pacer = new LatencyPacer();
    pacer.observe(high(LATENCY_MIN_SAMPLES), 500, 20, 40);
    expect(pacer.limit(40)).toBe(10);
    // Nothing measured since the slow-down: no climbing yet.
    expect(pacer.onCalm(500, 40, 10_000)).toBe(false);
    pacer.observe([300], 500, 10, 40);
    expect(pacer.onCalm(500, 40, 250)).toBe(false); // 10.5: the same whole limit
    expect(pacer.onCalm(500, 40, 250)).toBe(true);
    expect(pacer.limit(40)).toBe(11);
    // Between 0.9 × target and the target it holds.
    pacer.observe(Array.from({ length: LATENCY_WINDOW }, () => 480), 500, 11, 40);
    expect(pacer.onCalm(500, 40, 5000)).toBe(false);
    expect(pacer.limit(40)).toBe(11);
    pacer.observe(Array.from({ length: LATENCY_WINDOW }, () => 100), 500, 11, 40);
    pacer.onCalm(500, 40, 14_000);
    expect(pacer.limit(40)).toBe(39);
    pacer.onCalm(500, 40, 1000);
    expect(pacer.active).toBe(false);
    expect(pacer.limit(40)).toBe(40);
  });

  it('a concurrency lowered below the cap applies, and a cap at the concurrency is lifted', () => {
    const pacer = new LatencyPacer();
    pacer.observe(high(LATENCY_MIN_SAMPLES), 500, 20, 20);
    expect(pacer.limit(4)).toBe(4);
    pacer.observe([10], 500, 4, 4);
    pacer.onCalm(500, 4, 1);
    expect(pacer.active).toBe(false);
  });

  it('binds only while as many run as it allows, below a concurrency above 0; a concurrency of 0 lifts it only in runs from before', () => {
    const pacer = new LatencyPacer();
    pacer.observe(high(LATENCY_MIN_SAMPLES), 500, 20, 40);
    expect(pacer.limit(40)).toBe(10);
    expect(pacer.binds(10, 40)).toBe(true);
    expect(pacer.binds(9, 40)).toBe(false);
    expect(pacer.binds(10, 10)).toBe(false);
    expect(pacer.binds(10, 5)).toBe(false);
    expect(pacer.binds(10, 0)).toBe(false);
    pacer.observe([100], 500, 10, 40);
    expect(pacer.onCalm(500, 0, 1000, true)).toBe(false);
    expect(pacer.active).toBe(true);
    pacer.onCalm(500, 0, 1000);
    expect(pacer.active).toBe(false);
  });

  it('keeps only the latest latencies, and carries everything through JSON', () => {
    const pacer = new LatencyPacer();
    pacer.observe(Array.from({ length: 100 }, (_, i) => i), 1000, 4, 4);
    expect(pacer.toJSON().samples).toHaveLength(LATENCY_WINDOW);
    pacer.observe(high(LATENCY_WINDOW, 2000), 1000, 30, 40);
    const copy = new LatencyPacer(JSON.parse(JSON.stringify(pacer.toJSON())));
    expect(copy.toJSON()).toEqual(pacer.toJSON());
    expect(copy.limit(40)).toBe(15);
    expect(copy.slowdowns).toBe(1);
  });

  it('starts slowly at one, doubles on each latency well under the target, and climbs additively after its first slow-down', () => {
    const pacer = new LatencyPacer();
    pacer.startSlow();
    expect(pacer.limit(40)).toBe(1);
    // No latency yet: no step, however long.
    expect(pacer.onCalm(500, 40, 60_000, true, true)).toBe(false);
    for (const limit of [2, 4, 8]) {
      pacer.observe([100], 500, pacer.limit(40), 40);
      // One step per latency, whatever the time: the latency it climbed on is forgotten.
      expect(pacer.onCalm(500, 40, 1, true, true)).toBe(true);
      expect(pacer.limit(40)).toBe(limit);
      expect(pacer.recentP95).toBeNull();
      expect(pacer.onCalm(500, 40, 1, true, true)).toBe(false);
    }
    // Between nine tenths of the target and the target: it holds.
    pacer.observe([480], 500, 8, 40);
    expect(pacer.onCalm(500, 40, 60_000, true, true)).toBe(false);
    const copy = new LatencyPacer(JSON.parse(JSON.stringify(pacer.toJSON())));
    expect(copy.toJSON()).toEqual({ limit: 8, samples: [480], slowdowns: 0, starting: true });
    // The first slow-down ends the start: from then on a step is one activity per target's worth of time, at most doubling.
    expect(copy.observe(high(LATENCY_MIN_SAMPLES), 500, 8, 40)).toBe(true);
    expect(copy.limit(40)).toBe(4);
    expect(copy.toJSON().starting).toBeUndefined();
    copy.observe([100], 500, 4, 40);
    copy.onCalm(500, 40, 1000, true, true);
    expect(copy.limit(40)).toBe(6);
    copy.observe([100], 500, 6, 40);
    copy.onCalm(500, 40, 60_000, true, true);
    expect(copy.limit(40)).toBe(12);
    // Doubling to the concurrency or past it lifts the cap.
    const lifted = new LatencyPacer();
    lifted.startSlow();
    lifted.observe([100], 500, 1, 2);
    expect(lifted.onCalm(500, 2, 1, true, true)).toBe(true);
    expect(lifted.active).toBe(false);
    expect(lifted.toJSON()).toEqual({ limit: null, samples: [], slowdowns: 0 });
  });

  it('does not start slowly once anything is known', () => {
    for (const state of [{ limit: 5, samples: [], slowdowns: 1 }, { limit: null, samples: [100], slowdowns: 0 }, { limit: null, samples: [], slowdowns: 2 }]) {
      const pacer = new LatencyPacer(state);
      pacer.startSlow();
      expect(pacer.toJSON()).toEqual(state);
    }
  });
});
