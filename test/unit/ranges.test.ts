import { describe, it, expect } from 'vitest';
import { RangeSet } from '../../core/ranges.ts';
import { seededRandom } from '../../core/random.ts';

const ranges = (set: RangeSet) => [...set.ranges()];

/** Checks the internal invariants through the public surface: sorted, disjoint, never touching, size consistent. */
function expectWellFormed(set: RangeSet): void {
  const rs = ranges(set);
  let size = 0;
  for (let i = 0; i < rs.length; i++) {
    const [s, e] = rs[i]!;
    expect(s).toBeLessThan(e);
    if (i > 0) expect(s).toBeGreaterThan(rs[i - 1]![1]); // strictly greater: not touching
    size += e - s;
  }
  expect(set.size).toBe(size);
  expect(set.rangeCount).toBe(rs.length);
  expect(set.isEmpty).toBe(size === 0);
  expect(ranges(RangeSet.fromJSON(set.toJSON()))).toEqual(rs);
}

describe('RangeSet basics', () => {
  it('starts empty', () => {
    const set = new RangeSet();
    expect(set.size).toBe(0);
    expect(set.isEmpty).toBe(true);
    expect(set.rangeCount).toBe(0);
    expect(set.first()).toBeUndefined();
    expect(set.has(0)).toBe(false);
    expect([...set]).toEqual([]);
    expect(set.toJSON()).toBe('');
  });

  it('add keeps single values and merges neighbours', () => {
    const set = new RangeSet();
    set.add(5).add(7);
    expect(ranges(set)).toEqual([
      [5, 6],
      [7, 8],
    ]);
    set.add(6);
    expect(ranges(set)).toEqual([[5, 8]]);
    expect(set.size).toBe(3);
    set.add(6); // already there
    expect(set.size).toBe(3);
    set.add(4).add(8);
    expect(ranges(set)).toEqual([[4, 9]]);
    expect(set.size).toBe(5);
    expectWellFormed(set);
  });

  it('addRange merges adjacent ranges on either side', () => {
    const set = RangeSet.of([0, 5], [10, 15]);
    set.addRange(5, 10);
    expect(ranges(set)).toEqual([[0, 15]]);
    expect(set.size).toBe(15);
    const left = RangeSet.of([10, 15]).addRange(5, 10);
    expect(ranges(left)).toEqual([[5, 15]]);
    const right = RangeSet.of([10, 15]).addRange(15, 20);
    expect(ranges(right)).toEqual([[10, 20]]);
  });

  it('addRange merges overlapping ranges and swallows covered ones', () => {
    const set = RangeSet.of([0, 2], [4, 6], [8, 10], [20, 22]);
    set.addRange(1, 9);
    expect(ranges(set)).toEqual([
      [0, 10],
      [20, 22],
    ]);
    expect(set.size).toBe(12);
    set.addRange(-5, 30);
    expect(ranges(set)).toEqual([[-5, 30]]);
    expect(set.size).toBe(35);
    set.addRange(3, 7); // inside
    expect(ranges(set)).toEqual([[-5, 30]]);
    expect(set.size).toBe(35);
    expectWellFormed(set);
  });

  it('addRange inserts between ranges that it does not touch', () => {
    const set = RangeSet.of([0, 2], [10, 12]);
    set.addRange(5, 7);
    expect(ranges(set)).toEqual([
      [0, 2],
      [5, 7],
      [10, 12],
    ]);
    set.addRange(20, 21).addRange(-3, -2);
    expect(ranges(set)).toEqual([
      [-3, -2],
      [0, 2],
      [5, 7],
      [10, 12],
      [20, 21],
    ]);
    expectWellFormed(set);
  });

  it('ignores empty and reversed ranges', () => {
    const set = RangeSet.of([3, 3], [5, 2]);
    expect(set.isEmpty).toBe(true);
    set.addRange(1, 4).deleteRange(3, 3).deleteRange(4, 1);
    expect(ranges(set)).toEqual([[1, 4]]);
  });

  it('delete splits a range in two', () => {
    const set = RangeSet.of([0, 10]);
    set.delete(4);
    expect(ranges(set)).toEqual([
      [0, 4],
      [5, 10],
    ]);
    expect(set.size).toBe(9);
    set.delete(0).delete(9);
    expect(ranges(set)).toEqual([
      [1, 4],
      [5, 9],
    ]);
    expect(set.size).toBe(7);
    set.delete(100).delete(4); // absent values
    expect(set.size).toBe(7);
    expectWellFormed(set);
  });

  it('deleteRange trims, splits and removes several ranges at once', () => {
    const set = RangeSet.of([0, 5], [10, 15], [20, 25], [30, 35]);
    set.deleteRange(3, 22);
    expect(ranges(set)).toEqual([
      [0, 3],
      [22, 25],
      [30, 35],
    ]);
    expect(set.size).toBe(11);
    set.deleteRange(31, 33);
    expect(ranges(set)).toEqual([
      [0, 3],
      [22, 25],
      [30, 31],
      [33, 35],
    ]);
    set.deleteRange(-10, 100);
    expect(set.isEmpty).toBe(true);
    expect(set.size).toBe(0);
    expectWellFormed(set);
  });

  it('deleteRange on exact boundaries leaves the neighbours alone', () => {
    const set = RangeSet.of([0, 5], [10, 15]);
    set.deleteRange(5, 10);
    expect(ranges(set)).toEqual([
      [0, 5],
      [10, 15],
    ]);
    set.deleteRange(10, 15);
    expect(ranges(set)).toEqual([[0, 5]]);
    expect(set.size).toBe(5);
  });

  it('has answers at the boundaries', () => {
    const set = RangeSet.of([2, 4], [6, 7]);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((v) => set.has(v))).toEqual([false, false, true, true, false, false, true, false]);
  });
});

describe('containsRange and intersectsRange', () => {
  const set = RangeSet.of([0, 5], [10, 15]);

  it('an empty range is always contained and never intersects', () => {
    expect(set.containsRange(7, 7)).toBe(true);
    expect(set.containsRange(3, 3)).toBe(true);
    expect(set.containsRange(9, 2)).toBe(true);
    expect(new RangeSet().containsRange(0, 0)).toBe(true);
    expect(set.intersectsRange(3, 3)).toBe(false);
    expect(set.intersectsRange(9, 2)).toBe(false);
  });

  it('containsRange at the boundaries', () => {
    expect(set.containsRange(0, 5)).toBe(true);
    expect(set.containsRange(1, 4)).toBe(true);
    expect(set.containsRange(0, 6)).toBe(false);
    expect(set.containsRange(-1, 5)).toBe(false);
    expect(set.containsRange(4, 5)).toBe(true);
    expect(set.containsRange(5, 6)).toBe(false);
    expect(set.containsRange(4, 11)).toBe(false); // spans a gap
    expect(set.containsRange(10, 15)).toBe(true);
    expect(set.containsRange(14, 16)).toBe(false);
    expect(set.containsRange(20, 21)).toBe(false);
    expect(new RangeSet().containsRange(0, 1)).toBe(false);
  });

  it('intersectsRange at the boundaries', () => {
    expect(set.intersectsRange(5, 10)).toBe(false); // exactly the gap
    expect(set.intersectsRange(4, 10)).toBe(true);
    expect(set.intersectsRange(5, 11)).toBe(true);
    expect(set.intersectsRange(-5, 0)).toBe(false);
    expect(set.intersectsRange(-5, 1)).toBe(true);
    expect(set.intersectsRange(15, 20)).toBe(false);
    expect(set.intersectsRange(14, 20)).toBe(true);
    expect(set.intersectsRange(-100, 100)).toBe(true);
    expect(new RangeSet().intersectsRange(0, 100)).toBe(false);
  });
});

describe('take', () => {
  it('removes the smallest values across several ranges', () => {
    const set = RangeSet.of([0, 3], [5, 7], [10, 20]);
    expect(set.take(4)).toEqual([0, 1, 2, 5]);
    expect(ranges(set)).toEqual([
      [6, 7],
      [10, 20],
    ]);
    expect(set.size).toBe(11);
    expect(set.take(3)).toEqual([6, 10, 11]);
    expect(set.size).toBe(8);
    expect(set.first()).toBe(12);
    expectWellFormed(set);
  });

  it('takes everything when asked for more than there is, and nothing for 0', () => {
    const set = RangeSet.of([0, 2], [4, 5]);
    expect(set.take(0)).toEqual([]);
    expect(set.size).toBe(3);
    expect(set.take(100)).toEqual([0, 1, 4]);
    expect(set.isEmpty).toBe(true);
    expect(set.take(5)).toEqual([]);
  });

  it('takes exactly a whole range', () => {
    const set = RangeSet.of([0, 3], [5, 7]);
    expect(set.take(3)).toEqual([0, 1, 2]);
    expect(ranges(set)).toEqual([[5, 7]]);
  });
});

describe('set operations and serialisation', () => {
  it('addAll, deleteAll and minus', () => {
    const a = RangeSet.of([0, 10], [20, 30]);
    const b = RangeSet.of([5, 25]);
    const diff = a.minus(b);
    expect(ranges(diff)).toEqual([
      [0, 5],
      [25, 30],
    ]);
    expect(a.size).toBe(20); // minus does not change its operands
    expect(b.size).toBe(20);
    const union = a.clone().addAll(b);
    expect(ranges(union)).toEqual([[0, 30]]);
    expect(union.size).toBe(30);
    const rest = union.deleteAll(RangeSet.of([1, 2], [28, 40]));
    expect(ranges(rest)).toEqual([
      [0, 1],
      [2, 28],
    ]);
  });

  it('deleteAll and minus agree with a plain set on random operands, from any side of each other', () => {
    const random = seededRandom(11);
    const members = (set: RangeSet) => [...set.ranges()].flatMap(([s, e]) => Array.from({ length: e - s }, (_, i) => s + i));
    const randomSet = () => {
      const set = new RangeSet();
      const offset = Math.floor(random() * 200);
      for (let i = 0, n = Math.floor(random() * 12); i < n; i++) {
        const start = offset + Math.floor(random() * 150);
        set.addRange(start, start + 1 + Math.floor(random() * 20));
      }
      return set;
    };
    for (let run = 0; run < 2000; run++) {
      const a = randomSet();
      const b = randomSet();
      const gone = new Set(members(b));
      const expected = members(a).filter((v) => !gone.has(v));
      const diff = a.minus(b);
      expect(members(diff)).toEqual(expected);
      expect(diff.size).toBe(expected.length);
      expect(members(a.clone().deleteAll(b))).toEqual(expected);
    }
  });

  it('slice keeps the members within bounds', () => {
    const set = RangeSet.of([0, 5], [10, 15], [20, 25]);
    expect(ranges(set.slice(3, 12))).toEqual([
      [3, 5],
      [10, 12],
    ]);
    expect(ranges(set.slice(5, 10))).toEqual([]);
    expect(ranges(set.slice(-100, 100))).toEqual(ranges(set));
    expect(set.slice(12, 22).size).toBe(5);
    expect(set.size).toBe(15);
  });

  it('clear empties the set and keeps it usable', () => {
    const set = RangeSet.of([0, 5], [10, 12]);
    expect(set.clear()).toBe(set);
    expect(set.isEmpty).toBe(true);
    expect(set.size).toBe(0);
    expect(set.toJSON()).toBe('');
    set.addRange(3, 6);
    expect(ranges(set)).toEqual([[3, 6]]);
    expect(set.size).toBe(3);
  });

  it('clone is independent', () => {
    const a = RangeSet.of([0, 5]);
    const b = a.clone();
    b.add(10).delete(0);
    expect(ranges(a)).toEqual([[0, 5]]);
    expect(a.size).toBe(5);
    expect(ranges(b)).toEqual([
      [1, 5],
      [10, 11],
    ]);
    expect(b.size).toBe(5);
  });

  it('toJSON and fromJSON round-trip, through JSON.stringify too', () => {
    const a = RangeSet.of([0, 3], [7, 9], [100, 1000]);
    expect(a.toJSON()).toBe('r0,3;4,2;2j,p0'); // base 36: gaps and lengths
    const b = RangeSet.fromJSON(a.toJSON());
    expect(ranges(b)).toEqual(ranges(a));
    expect(b.size).toBe(a.size);
    expect(ranges(RangeSet.fromJSON(JSON.parse(JSON.stringify(a)) as string))).toEqual(ranges(a));
    expect(RangeSet.fromJSON(undefined).isEmpty).toBe(true);
    expect(RangeSet.fromJSON('').isEmpty).toBe(true);
    expect(new RangeSet().toJSON()).toBe('');
  });

  it('refuses text that is not a range set', () => {
    expect(() => RangeSet.fromJSON('x1,2')).toThrow(/not a range set/);
  });

  it('round-trips random sets, in whichever form is shorter', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 300; trial++) {
      const set = new RangeSet();
      const span = 1 + Math.floor(random() * 5000);
      const density = random();
      const offset = Math.floor(random() * 100_000);
      for (let i = 0; i < span; i++) if (random() < density) set.add(offset + i);
      const json = set.toJSON();
      const back = RangeSet.fromJSON(json);
      expect(ranges(back), `trial ${trial}: ${json.slice(0, 40)}`).toEqual(ranges(set));
      expect(back.size).toBe(set.size);
    }
  });

  it('keeps the worst case small: every other member of 100,000 costs about one character per six', () => {
    const alternate = new RangeSet();
    for (let i = 0; i < 100_000; i += 2) alternate.add(i);
    const json = alternate.toJSON();
    expect(json.startsWith('b')).toBe(true);
    expect(json.length).toBeLessThan(100_000 / 6 + 20);
    expect(ranges(RangeSet.fromJSON(json))).toEqual(ranges(alternate));
    // A failure every seventh partition: the ranges form or the bitmap, whichever is shorter.
    const sevenths = new RangeSet();
    for (let i = 0; i < 100_000; i += 7) sevenths.add(i);
    expect(sevenths.toJSON().length).toBeLessThan(100_000 / 6 + 20);
  });

  it('values and the iterator yield members in order', () => {
    const set = RangeSet.of([3, 5], [0, 1], [8, 10]);
    expect([...set]).toEqual([0, 3, 4, 8, 9]);
    expect([...set.values()]).toEqual([0, 3, 4, 8, 9]);
    expect(set.first()).toBe(0);
  });

  it('keeps 100,000 consecutive members as one range', () => {
    const set = new RangeSet();
    for (let i = 0; i < 100_000; i++) set.add(i);
    expect(set.rangeCount).toBe(1);
    expect(set.size).toBe(100_000);
    expect(set.toJSON()).toBe(`r0,${(100_000).toString(36)}`);
    // Out of order too: odds then evens.
    const scattered = new RangeSet();
    for (let i = 1; i < 1000; i += 2) scattered.add(i);
    expect(scattered.rangeCount).toBe(500);
    for (let i = 0; i < 1000; i += 2) scattered.add(i);
    expect(scattered.rangeCount).toBe(1);
  });
});

describe('RangeSet against a plain Set (randomised, seeded)', () => {
  const sorted = (values: Iterable<number>) => [...values].sort((a, b) => a - b);
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

  /** The first way `set` disagrees with `model` or breaks its own invariants, or undefined. */
  function problem(set: RangeSet, model: Set<number>, universe: number, random: () => number): string | undefined {
    const rs = [...set.ranges()];
    let size = 0;
    for (let i = 0; i < rs.length; i++) {
      const [s, e] = rs[i]!;
      if (s >= e) return `empty range [${s}, ${e})`;
      if (i > 0 && s <= rs[i - 1]![1]) return `ranges touch or overlap at ${s}`;
      size += e - s;
    }
    if (set.size !== size) return `size ${set.size} but ranges hold ${size}`;
    if (set.size !== model.size) return `size ${set.size}, model ${model.size}`;
    if (set.rangeCount !== rs.length) return 'rangeCount';
    if (set.isEmpty !== (size === 0)) return 'isEmpty';
    if (!same([...set], sorted(model))) return 'members differ';
    if (set.first() !== (model.size === 0 ? undefined : Math.min(...model))) return 'first';
    for (let k = 0; k < 10; k++) {
      const s = Math.floor(random() * (universe + 10)) - 5;
      const e = s + Math.floor(random() * 12) - 2;
      let all = true;
      let any = false;
      for (let v = s; v < e; v++) {
        if (model.has(v)) any = true;
        else all = false;
      }
      if (set.containsRange(s, e) !== all) return `containsRange(${s}, ${e})`;
      if (set.intersectsRange(s, e) !== any) return `intersectsRange(${s}, ${e})`;
      if (set.has(s) !== model.has(s)) return `has(${s})`;
    }
    return undefined;
  }

  for (const seed of [1, 42, 2024]) {
    it(`agrees over 5,000 random operations (seed ${seed})`, () => {
      const random = seededRandom(seed);
      const universe = 200;
      const set = new RangeSet();
      const model = new Set<number>();
      const counts = { add: 0, addRange: 0, delete: 0, deleteRange: 0, take: 0, minus: 0, json: 0 };
      let failure: string | undefined;
      for (let op = 0; op < 5000 && failure === undefined; op++) {
        const r = random();
        const s = Math.floor(random() * universe);
        const len = Math.floor(random() * 15);
        if (r < 0.3) {
          counts.add++;
          set.add(s);
          model.add(s);
        } else if (r < 0.5) {
          counts.addRange++;
          set.addRange(s, s + len);
          for (let v = s; v < s + len; v++) model.add(v);
        } else if (r < 0.7) {
          counts.delete++;
          set.delete(s);
          model.delete(s);
        } else if (r < 0.85) {
          counts.deleteRange++;
          set.deleteRange(s, s + len);
          for (let v = s; v < s + len; v++) model.delete(v);
        } else if (r < 0.9) {
          counts.take++;
          const n = Math.floor(random() * 6);
          const taken = set.take(n);
          const expected = sorted(model).slice(0, n);
          if (!same(taken, expected)) failure = `take(${n})`;
          for (const v of expected) model.delete(v);
        } else if (r < 0.95) {
          counts.minus++;
          const other = RangeSet.of([s, s + len], [s + len + 3, s + 2 * len + 3]);
          const diff = set.minus(other);
          const expected = new Set([...model].filter((v) => !other.has(v)));
          failure = problem(diff, expected, universe, random);
        } else {
          counts.json++;
          const restored = RangeSet.fromJSON(JSON.parse(JSON.stringify(set.toJSON())));
          if (!same([...restored], [...set]) || restored.size !== set.size) failure = 'JSON round-trip';
          const sliced = set.slice(s, s + len);
          if (!same([...sliced], sorted(model).filter((v) => v >= s && v < s + len))) failure = `slice(${s}, ${s + len})`;
        }
        failure ??= problem(set, model, universe, random);
        if (failure !== undefined) failure = `op ${op}: ${failure}`;
      }
      expect(failure).toBeUndefined();
      // Every kind of operation ran many times, and the set stayed non-trivial.
      for (const [kind, count] of Object.entries(counts)) expect(count, kind).toBeGreaterThan(100);
      expect(set.size).toBeGreaterThan(0);
    });
  }

  it('the check itself catches a wrong model', () => {
    const random = seededRandom(5);
    expect(problem(RangeSet.of([0, 3]), new Set([0, 1, 2]), 10, random)).toBeUndefined();
    expect(problem(RangeSet.of([0, 3]), new Set([0, 1]), 10, random)).toBeDefined();
  });
});
