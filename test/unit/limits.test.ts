import { describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { MIN_RATE, limitsAsked, nodeShares, parseConcurrency, parseOperatorRate, parseQueueRate, parseRate, shareLimit, type Claim } from '../../core/limits.ts';
import { seededRandom } from '../../core/random.ts';

describe('shareLimit', () => {
  const claim = (id: string, cap: number | null, active = true): Claim => ({ id, cap, active });
  const sum = (m: Map<string, number | null>) => [...m.values()].reduce<number>((acc, v) => acc + (v ?? 0), 0);

  it('without a total, each active node keeps its own cap', () => {
    const out = shareLimit(null, [claim('a', 5), claim('b', null), claim('c', 2, false)]);
    expect(Object.fromEntries(out)).toEqual({ a: 5, b: null });
  });

  it('splits equally among uncapped nodes', () => {
    const out = shareLimit(12, [claim('a', null), claim('b', null), claim('c', null)]);
    expect(Object.fromEntries(out)).toEqual({ a: 4, b: 4, c: 4 });
    const third = shareLimit(10, [claim('a', null), claim('b', null), claim('c', null)]);
    for (const v of third.values()) expect(v).toBeCloseTo(10 / 3, 9);
    expect(sum(third)).toBeCloseTo(10, 9);
  });

  it('respects caps and hands the leftover to the others', () => {
    expect(Object.fromEntries(shareLimit(10, [claim('a', 2), claim('b', null), claim('c', null)]))).toEqual({ a: 2, b: 4, c: 4 });
    expect(Object.fromEntries(shareLimit(10, [claim('a', null), claim('b', 3), claim('c', 2)]))).toEqual({ a: 5, b: 3, c: 2 });
    expect(Object.fromEntries(shareLimit(10, [claim('a', 6), claim('b', 6)]))).toEqual({ a: 5, b: 5 });
  });

  it('gives every node its cap when the caps fit under the total', () => {
    expect(Object.fromEntries(shareLimit(100, [claim('a', 2), claim('b', 3)]))).toEqual({ a: 2, b: 3 });
  });

  it('leaves inactive nodes out and shares among the active', () => {
    const out = shareLimit(9, [claim('a', null), claim('b', null, false), claim('c', null)]);
    expect(out.has('b')).toBe(false);
    expect(Object.fromEntries(out)).toEqual({ a: 4.5, c: 4.5 });
    expect(shareLimit(9, [claim('a', null, false)]).size).toBe(0);
    expect(shareLimit(9, []).size).toBe(0);
  });

  it('integral shares are whole numbers that sum to the total when caps allow', () => {
    const out = shareLimit(10, [claim('a', null), claim('b', null), claim('c', null)], true);
    expect(Object.fromEntries(out)).toEqual({ a: 4, b: 3, c: 3 });
    const capped = shareLimit(10, [claim('a', 1), claim('b', null), claim('c', null), claim('d', 2)], true);
    expect(Object.fromEntries(capped)).toEqual({ a: 1, b: 4, c: 3, d: 2 });
    expect(sum(capped)).toBe(10);
    const tight = shareLimit(2, [claim('a', null), claim('b', null), claim('c', null)], true);
    expect(sum(tight)).toBe(2);
    for (const v of tight.values()) expect(v).toBeLessThanOrEqual(1);
    const small = shareLimit(100, [claim('a', 3), claim('b', 4)], true);
    expect(Object.fromEntries(small)).toEqual({ a: 3, b: 4 });
  });

  it('holds its invariants on random claims', () => {
    const random = seededRandom(31337);
    for (let round = 0; round < 500; round++) {
      const integral = random() < 0.5;
      const count = 1 + Math.floor(random() * 6);
      const claims: Claim[] = Array.from({ length: count }, (_, i) =>
        claim(`n${i}`, random() < 0.3 ? null : 1 + Math.floor(random() * 20), random() < 0.85),
      );
      const total = 1 + Math.floor(random() * 60);
      const out = shareLimit(total, claims, integral);
      const active = claims.filter((c) => c.active);
      expect([...out.keys()].sort()).toEqual(active.map((c) => c.id).sort());
      const capacity = active.reduce((acc, c) => acc + (c.cap ?? Infinity), 0);
      const shares = active.map((c) => out.get(c.id) as number);
      for (const [i, c] of active.entries()) {
        expect(shares[i]).toBeGreaterThanOrEqual(0);
        if (c.cap !== null) expect(shares[i]).toBeLessThanOrEqual(c.cap);
        if (integral) expect(Number.isInteger(shares[i])).toBe(true);
      }
      const given = shares.reduce((a, b) => a + b, 0);
      if (active.length > 0) expect(given).toBeCloseTo(Math.min(total, capacity), 6);
      // Max-min fairness: a node held below its cap gets at least as much as any other (within 1 when integral).
      for (const [i, c] of active.entries()) {
        if (c.cap !== null && shares[i]! >= c.cap) continue;
        for (const other of shares) expect(shares[i]!).toBeGreaterThanOrEqual(other - (integral ? 1 : 1e-9));
      }
    }
  });
});

describe('parseQueueRate (set-queue-rate)', () => {
  it('reads numbers, numeric text and unlimited as parseRate does', () => {
    expect(parseQueueRate('20')).toBe(20);
    expect(parseQueueRate('unlimited')).toBeNull();
  });

  it('counts activities, as the server does, not partitions (a batch of partitions is one activity)', () => {
    expect(() => parseQueueRate('abc')).toThrow(new BackfillError('invalid_argument', "the queue rate must be a number of activities per second above 0, or 'unlimited' (got \"abc\")", 'rate'));
    expect(() => parseQueueRate('0')).toThrow(/activities per second/);
  });
});

describe('parseRate and parseConcurrency: one schema for the spec, the CLI and the updates', () => {
  it('reads numbers, numeric text and unlimited', () => {
    expect(parseRate(5)).toBe(5);
    expect(parseRate('2.5')).toBe(2.5);
    expect(parseRate('unlimited')).toBeNull();
    expect(parseRate(null)).toBeNull();
    expect(parseConcurrency('8')).toBe(8);
    expect(parseConcurrency('unlimited')).toBeNull();
    expect(parseConcurrency(3, 'orders')).toBe(3);
  });

  it('refuses what is not a limit, naming the rule', () => {
    for (const bad of [0, -1, 'fast', Number.NaN, '']) {
      const error = (() => {
        try {
          parseRate(bad);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error, String(bad)).toBeInstanceOf(BackfillError);
      expect((error as BackfillError).code).toBe('invalid_argument');
      expect((error as BackfillError).message).toMatch(/above 0|number/);
    }
    expect(() => parseConcurrency(0)).toThrow(/whole number from 1 to 10000/);
    expect(() => parseConcurrency(1.5)).toThrow(BackfillError);
    expect(() => parseConcurrency(20_000)).toThrow(/from 1 to 10000/);
    expect(() => parseConcurrency(2000, 'orders')).toThrow(/from 1 to 1000 /);
    expect(() => parseConcurrency(null, 'orders')).toThrow(/a node needs a concurrency/);
  });
});

describe('parseOperatorRate: no slower than one partition a day', () => {
  it('takes a day\'s one partition and anything faster, and unlimited', () => {
    expect(parseOperatorRate(MIN_RATE)).toBe(MIN_RATE);
    expect(parseOperatorRate('0.001')).toBe(0.001);
    expect(parseOperatorRate('unlimited')).toBeNull();
  });

  it('refuses a slower rate, naming pause', () => {
    for (const slow of ['1e-9', MIN_RATE / 2, '0.00001']) {
      expect(() => parseOperatorRate(slow), String(slow)).toThrow(/slower than one partition a day \(0\.0000116\/s\).*pause it/);
    }
    expect(parseRate('1e-9')).toBe(1e-9);
    expect(() => limitsAsked({ rate: '1e-9' })).toThrow(/one partition a day/);
  });
});

describe('limitsAsked: --rate and --concurrency of start, resume and retry-failed', () => {
  it('parses only the limits given, unlimited as null', () => {
    expect(limitsAsked({})).toEqual({});
    expect(limitsAsked({ rate: undefined, concurrency: undefined })).toEqual({});
    expect(limitsAsked({ rate: '5', concurrency: '2' })).toEqual({ rate: 5, concurrency: 2 });
    expect(limitsAsked({ rate: '0.5' })).toEqual({ rate: 0.5 });
    expect(limitsAsked({ rate: 'unlimited', concurrency: 'unlimited' })).toEqual({ rate: null, concurrency: null });
  });

  it('refuses a value that is not a limit, naming the flag and what it takes', () => {
    const refused = (flags: { rate?: string; concurrency?: string }) => {
      try {
        limitsAsked(flags);
      } catch (error) {
        return error as BackfillError;
      }
      throw new Error(`accepted ${JSON.stringify(flags)}`);
    };
    expect(refused({ rate: '0' })).toMatchObject({ code: 'invalid_argument', path: 'rate', message: "rate must be a number of partitions per second above 0, or 'unlimited' (got \"0\")" });
    expect(refused({ rate: 'fast' })).toMatchObject({ path: 'rate' });
    expect(refused({ rate: '5', concurrency: '2.5' })).toMatchObject({ code: 'invalid_argument', path: 'concurrency', message: expect.stringMatching(/^concurrency must be a whole number from 1 to 10000, or 'unlimited'/) });
  });
});

describe('nodeShares', () => {
  const own = (rate: number | null, concurrency: number) => ({ rate, concurrency });

  it('shares the backfill-wide limits among active nodes, each within its own', () => {
    const shares = nodeShares({ rate: 10, concurrency: 6 }, [
      { id: 'a', own: own(null, 10), active: true },
      { id: 'b', own: own(2, 1), active: true },
    ]);
    expect(shares.get('a')).toEqual({ rate: 8, concurrency: 5 });
    expect(shares.get('b')).toEqual({ rate: 2, concurrency: 1 });
  });

  it('an idle node keeps its previous share, or starts at its own limits within the backfill', () => {
    const shares = nodeShares({ rate: 10, concurrency: 4 }, [
      { id: 'a', own: own(null, 10), active: true },
      { id: 'idle', own: own(20, 8), active: false, previous: { rate: 3, concurrency: 2 } },
      { id: 'fresh', own: own(20, 8), active: false },
    ]);
    expect(shares.get('a')).toEqual({ rate: 10, concurrency: 4 });
    expect(shares.get('idle')).toEqual({ rate: 3, concurrency: 2 });
    expect(shares.get('fresh')).toEqual({ rate: 10, concurrency: 4 });
  });

  it('without backfill-wide limits, every node runs at its own', () => {
    const shares = nodeShares({ rate: null, concurrency: null }, [{ id: 'a', own: own(5, 3), active: true }]);
    expect(shares.get('a')).toEqual({ rate: 5, concurrency: 3 });
  });
});
